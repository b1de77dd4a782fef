/*
 * park.c - the sections that describe the park and the gateway in it:
 * gateway (id, time zone, log level; its http group in operator.c), storage, mqtt (with tls and the
 * password file), buses (Modbus TCP and RTU), enterprises and their meters
 * (each on a bus, with a profile from profiles.c), and tariffs with their
 * time-of-use bands. config.c calls each parser in the file's order.
 */
#include "config/config_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define MAX_PASSWORD_BYTES 65535
#define ZONEINFO_DIR "/usr/share/zoneinfo"

static const char *const log_levels[] = {"err", "warning", "notice", "info", "debug", NULL};


static bool timezone_ok(const char *tz)
{
    if (strcmp(tz, "UTC") == 0)
        return true;
    if (!tz[0] || tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 200)
        return false;
    char *p = xasprintf("%s/%s", ZONEINFO_DIR, tz);
    bool ok = cfg_regular_readable(p);
    free(p);
    return ok;
}

int cfg_parse_gateway(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    static const char *const keys[] = {"id", "timezone", "log_level", "http", NULL};
    config_setting_t *g, *s;
    int r;

    cfg_set_ctx(ld, "%s", "");
    if ((r = cfg_get_group(ld, root, "gateway", true, &g)))
        return r;
    cfg_set_ctx(ld, "gateway");
    if ((r = cfg_check_keys(ld, g, keys)))
        return r;
    if ((r = cfg_dup_str(ld, g, "id", true, &cfg->gateway_id, &s)))
        return r;
    if (!cfg_id_ok(cfg->gateway_id, "-"))
        return cfg_fail(ld, s, "id '%s' must match [a-z0-9-]+ (at most %d characters)",
                        cfg->gateway_id, MAX_ID_LEN);
    cfg->timezone = xstrdup("UTC");
    if ((r = cfg_dup_str(ld, g, "timezone", false, &cfg->timezone, &s)) < 0)
        return r;
    if (r == 0 && !timezone_ok(cfg->timezone))
        return cfg_fail(ld, s, "unknown time zone '%s' (not in %s)", cfg->timezone, ZONEINFO_DIR);
    if ((r = cfg_dup_str(ld, g, "log_level", false, &cfg->log_level, &s)) < 0)
        return r;
    if (r == 0 && !cfg_in_list(cfg->log_level, log_levels))
        return cfg_fail(ld, s, "log_level '%s' must be one of err, warning, notice, info, debug",
                        cfg->log_level);
    return cfg_parse_http(ld, g, cfg);
}

int cfg_parse_storage(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    static const char *const keys[] = {"path", "raw_retention_days", NULL};
    config_setting_t *g, *s;
    int r;

    cfg_set_ctx(ld, "%s", "");
    if ((r = cfg_get_group(ld, root, "storage", true, &g)))
        return r;
    cfg_set_ctx(ld, "storage");
    if ((r = cfg_check_keys(ld, g, keys)))
        return r;
    if ((r = cfg_dup_str(ld, g, "path", true, &cfg->storage_path, &s)))
        return r;
    if (!cfg->storage_path[0])
        return cfg_fail(ld, s, "path must not be empty");
    cfg->raw_retention_days = 400;
    if ((r = cfg_get_int(ld, g, "raw_retention_days", false, 0, 100000, &cfg->raw_retention_days,
                         NULL)) < 0)
        return r;
    return 0;
}

static int parse_tls(struct ld *ld, const config_setting_t *m, struct config *cfg)
{
    static const char *const keys[] = {"ca_file", "cert_file", "key_file", NULL};
    static const char *const names[] = {"ca_file", "cert_file", "key_file"};
    char **fields[] = {&cfg->tls.ca_file, &cfg->tls.cert_file, &cfg->tls.key_file};
    config_setting_t *g, *s;
    int r;

    if ((r = cfg_get_group(ld, m, "tls", false, &g)))
        return r < 0 ? r : 0;
    if ((r = cfg_check_keys(ld, g, keys)))
        return r;
    cfg->tls_set = true;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if ((r = cfg_dup_str(ld, g, names[i], false, fields[i], &s)) < 0)
            return r;
        if (r == 0 && !cfg_regular_readable(*fields[i]))
            return cfg_fail(ld, s, "cannot read %s '%s'", names[i], *fields[i]);
    }
    if (!cfg->tls.cert_file != !cfg->tls.key_file)
        return cfg_fail(ld, g, "cert_file and key_file must be given together");
    if (strncmp(cfg->mqtt_uri, "ssl://", 6) && strncmp(cfg->mqtt_uri, "mqtts://", 8) &&
        strncmp(cfg->mqtt_uri, "wss://", 6))
        return cfg_fail(ld, g, "tls is set but uri '%s' is not ssl://, mqtts:// or wss://",
                        cfg->mqtt_uri);
    return 0;
}

static int read_password(struct ld *ld, const config_setting_t *s, struct config *cfg)
{
    char *pw;
    size_t len;
    int r = cfg_slurp(cfg->mqtt_password_file, MAX_PASSWORD_BYTES, &pw, &len);
    if (r < 0) {
        cfg_fail(ld, s, "cannot read password_file '%s': %s", cfg->mqtt_password_file,
                 strerror(-r));
        return r;
    }
    while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
        pw[--len] = '\0';
    cfg->mqtt_password = pw;
    return 0;
}

int cfg_parse_mqtt(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    static const char *const keys[] = {"uri",          "client_id",        "username",
                                       "password_file", "topic_prefix",     "summary_interval",
                                       "outbox_max_messages", "tls",        "ha_discovery",
                                       "ha_prefix",           NULL};
    static const char *const schemes[] = {"tcp://", "ssl://", "mqtt://", "mqtts://",
                                          "ws://",  "wss://"};
    config_setting_t *g, *s;
    int r;

    cfg_set_ctx(ld, "%s", "");
    if ((r = cfg_get_group(ld, root, "mqtt", true, &g)))
        return r;
    cfg_set_ctx(ld, "mqtt");
    if ((r = cfg_check_keys(ld, g, keys)))
        return r;
    if ((r = cfg_dup_str(ld, g, "uri", true, &cfg->mqtt_uri, &s)))
        return r;
    bool scheme_ok = false;
    for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(cfg->mqtt_uri, schemes[i], n) == 0 && cfg->mqtt_uri[n])
            scheme_ok = true;
    }
    if (!scheme_ok)
        return cfg_fail(ld, s,
                        "uri '%s' must look like tcp://HOST:PORT (or ssl://, mqtt://, "
                        "mqtts://, ws://, wss://)",
                        cfg->mqtt_uri);

    cfg->mqtt_client_id = xasprintf("parkgw-%s", cfg->gateway_id);
    if ((r = cfg_dup_str(ld, g, "client_id", false, &cfg->mqtt_client_id, &s)) < 0)
        return r;
    if (r == 0 && !cfg->mqtt_client_id[0])
        return cfg_fail(ld, s, "client_id must not be empty");

    if ((r = cfg_dup_str(ld, g, "username", false, &cfg->mqtt_username, NULL)) < 0)
        return r;
    if ((r = cfg_dup_str(ld, g, "password_file", false, &cfg->mqtt_password_file, &s)) < 0)
        return r;
    if (r == 0) {
        if (!cfg->mqtt_username)
            return cfg_fail(ld, s, "password_file needs a username");
        if ((r = read_password(ld, s, cfg)) < 0)
            return r;
    }

    cfg->topic_prefix = xstrdup("park");
    if ((r = cfg_dup_str(ld, g, "topic_prefix", false, &cfg->topic_prefix, &s)) < 0)
        return r;
    const char *tp = cfg->topic_prefix;
    if (r == 0 && (!tp[0] || strpbrk(tp, "+#") || tp[0] == '/' || tp[strlen(tp) - 1] == '/'))
        return cfg_fail(ld, s,
                        "topic_prefix '%s' must be non-empty, without + or # and without a "
                        "leading or trailing /",
                        tp);

    cfg->summary_interval = 60;
    if ((r = cfg_get_int(ld, g, "summary_interval", false, 1, 86400, &cfg->summary_interval,
                         NULL)) < 0)
        return r;
    long long obm = 1000000;
    if ((r = cfg_get_integer(ld, g, "outbox_max_messages", false, 1, 1000000000LL, &obm, NULL)) < 0)
        return r;
    cfg->outbox_max_messages = (long)obm;
    if ((r = cfg_get_bool(ld, g, "ha_discovery", &cfg->ha_discovery, NULL)) < 0)
        return r;
    cfg->ha_prefix = xstrdup("homeassistant");
    if ((r = cfg_dup_str(ld, g, "ha_prefix", false, &cfg->ha_prefix, &s)) < 0)
        return r;
    if (r == 0 && (!cfg->ha_prefix[0] || strpbrk(cfg->ha_prefix, "+#")))
        return cfg_fail(ld, s, "ha_prefix '%s' must be non-empty, without + or #", cfg->ha_prefix);
    return parse_tls(ld, g, cfg);
}


/* An IPv4 or IPv6 address, or a syntactically valid host name (RFC 1123
 * labels). Digits and dots only is an IPv4 address: "999.1.1.1" is not a
 * name, and would only fail when the poller resolves it. */
static bool host_valid(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (strchr(h, ':'))
        return inet_pton(AF_INET6, h, buf) == 1;
    if (strspn(h, "0123456789.") == strlen(h))
        return inet_pton(AF_INET, h, buf) == 1;
    size_t n = strlen(h), label = 0;
    if (n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (c != '-' || label == 0))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0 && h[n - 1] != '-';
}

static int find_bus(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_buses; i++)
        if (cfg->buses[i].name && strcmp(cfg->buses[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int parse_bus(struct ld *ld, const config_setting_t *g, struct config *cfg, size_t idx)
{
    static const char *const keys[] = {"name",      "type",      "host",       "port",
                                       "device",    "baud",      "parity",     "data_bits",
                                       "stop_bits", "timeout_ms", "byte_timeout_ms",
                                       "rs485",     "frame_delay_ms", "description", "protocol",
                                       NULL};
    static const char *const tcp_only[] = {"host", "port", NULL};
    static const char *const rtu_only[] = {"device",    "baud",  "parity",         "data_bits",
                                           "stop_bits", "rs485", "frame_delay_ms", "protocol",
                                           NULL};
    struct cfg_bus *b = &cfg->buses[idx];
    config_setting_t *s = NULL;
    const char *v;
    int r;

    cfg_set_ctx(ld, "buses[%zu]", idx);
    b->line = cfg_setting_line(g);
    if ((r = cfg_check_keys(ld, g, keys)) || (r = cfg_dup_str(ld, g, "name", true, &b->name, &s)))
        return r;
    if (!cfg_id_ok(b->name, "-_"))
        return cfg_fail(ld, s, "name '%s' must match [a-z0-9_-]+", b->name);
    cfg_set_ctx(ld, "bus '%s'", b->name);
    int prev = find_bus(cfg, b->name);
    if (prev >= 0 && (size_t)prev < idx)
        return cfg_fail(ld, s, "duplicate bus name (first defined at line %d)",
                        cfg->buses[prev].line);
    if ((r = cfg_get_str(ld, g, "description", false, &v, NULL)) < 0)
        return r;
    if ((r = cfg_get_str(ld, g, "type", true, &v, &s)))
        return r;
    if (strcmp(v, "tcp") == 0)
        b->type = BUS_TCP;
    else if (strcmp(v, "rtu") == 0)
        b->type = BUS_RTU;
    else
        return cfg_fail(ld, s, "type '%s' must be \"tcp\" or \"rtu\"", v);

    const char *const *foreign = b->type == BUS_TCP ? rtu_only : tcp_only;
    for (const char *const *k = foreign; *k; k++) {
        config_setting_t *f = config_setting_get_member(g, *k);
        if (f)
            return cfg_fail(ld, f, "'%s' is not valid for a %s bus", *k,
                            b->type == BUS_TCP ? "tcp" : "rtu");
    }

    b->port = 502;
    b->baud = 9600;
    b->parity = 'E';
    b->data_bits = 8;
    b->stop_bits = 1;
    b->timeout_ms = 500;
    b->byte_timeout_ms = 0;
    if (b->type == BUS_TCP) {
        if ((r = cfg_dup_str(ld, g, "host", true, &b->host, &s)))
            return r;
        if (!b->host[0])
            return cfg_fail(ld, s, "host must not be empty");
        if (!host_valid(b->host))
            return cfg_fail(ld, s,
                            "host '%s' is not an address or a host name (an IPv4 address is "
                            "four numbers 0-255: 10.0.0.21)",
                            b->host);
        if ((r = cfg_get_int(ld, g, "port", false, 1, 65535, &b->port, NULL)) < 0)
            return r;
    } else {
        if ((r = cfg_dup_str(ld, g, "device", true, &b->device, &s)))
            return r;
        if (!b->device[0])
            return cfg_fail(ld, s, "device must not be empty");
        /* What UARTs and RS-485 converters agree on: the standard rates
         * (termios has no 9601; a typo would open the line at another one). */
        static const int std_baud[] = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200};
        config_setting_t *s_baud = NULL;
        if ((r = cfg_get_int(ld, g, "baud", false, 1, 10000000, &b->baud, &s_baud)) < 0)
            return r;
        bool std = false;
        for (size_t i = 0; i < sizeof(std_baud) / sizeof(std_baud[0]); i++)
            std |= b->baud == std_baud[i];
        if (!std)
            return cfg_fail(ld, s_baud,
                            "baud %d is not a standard rate (1200, 2400, 4800, 9600, 19200, "
                            "38400, 57600 or 115200)",
                            b->baud);
        if ((r = cfg_get_str(ld, g, "parity", false, &v, &s)) < 0)
            return r;
        if (r == 0) {
            if (strcmp(v, "N") && strcmp(v, "E") && strcmp(v, "O"))
                return cfg_fail(ld, s, "parity '%s' must be \"N\", \"E\" or \"O\"", v);
            b->parity = v[0];
        }
        config_setting_t *s_bits = NULL;
        if ((r = cfg_get_int(ld, g, "data_bits", false, 5, 8, &b->data_bits, &s_bits)) < 0)
            return r;
        /* Modbus RTU, DL/T 645 and CJ/T 188 frames are 8-bit bytes; 7 data
         * bits belong to Modbus ASCII, which parkgw does not speak. */
        if (b->data_bits != 8)
            return cfg_fail(ld, s_bits,
                            "data_bits %d: Modbus RTU, DL/T 645 and CJ/T 188 need 8 data bits",
                            b->data_bits);
        if ((r = cfg_get_int(ld, g, "stop_bits", false, 1, 2, &b->stop_bits, NULL)) < 0 ||
            (r = cfg_get_bool(ld, g, "rs485", &b->rs485, NULL)) < 0 ||
            (r = cfg_get_int(ld, g, "frame_delay_ms", false, 0, 10000, &b->frame_delay_ms, NULL)) <
                0 ||
            (r = cfg_get_protocol(ld, g, &b->protocol)) < 0)
            return r;
    }
    if ((r = cfg_get_int(ld, g, "timeout_ms", false, 1, 600000, &b->timeout_ms, NULL)) < 0 ||
        (r = cfg_get_int(ld, g, "byte_timeout_ms", false, 0, 600000, &b->byte_timeout_ms, NULL)) <
            0)
        return r;
    return 0;
}

int cfg_parse_buses(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    config_setting_t *l;
    int r;

    cfg_set_ctx(ld, "%s", "");
    if ((r = cfg_get_list(ld, root, "buses", false, &l)))
        return r < 0 ? r : 0;
    cfg->n_buses = (size_t)config_setting_length(l);
    cfg->buses = xcalloc(cfg->n_buses ? cfg->n_buses : 1, sizeof *cfg->buses);
    for (size_t i = 0; i < cfg->n_buses; i++)
        if ((r = parse_bus(ld, config_setting_get_elem(l, (unsigned)i), cfg, i)))
            return r;
    return 0;
}

const struct cfg_meter *cfg_meter_clash(const struct config *cfg, const struct cfg_meter *m,
                                        bool (*same)(const struct cfg_meter *,
                                                     const struct cfg_meter *))
{
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        const struct cfg_enterprise *ent = &cfg->enterprises[e];
        for (size_t i = 0; i < ent->n_meters; i++) {
            const struct cfg_meter *o = &ent->meters[i];
            if (o == m)
                return NULL;
            if (o->id && o->bus == m->bus && same(o, m))
                return o;
        }
    }
    return NULL;
}

static bool same_unit(const struct cfg_meter *a, const struct cfg_meter *b)
{
    return a->unit_id == b->unit_id;
}

static int parse_meter(struct ld *ld, const config_setting_t *g, struct config *cfg,
                       struct cfg_enterprise *ent, size_t idx)
{
    static const char *const keys[] = {"id",       "utility",  "bus",
                                       "unit_id",  "profile",  "interval",
                                       "pt_ratio", "ct_ratio", "max_registers_per_read",
                                       "no_gap_fill", "one_request_per_point", "description",
                                       "address", "alarms", "comm_timeout",
                                       "capacity_kva", "max_demand", "reactive", NULL};
    struct cfg_meter *m = &ent->meters[idx];
    config_setting_t *s = NULL;
    const char *v;
    int r;

    m->enterprise = ent;
    m->line = cfg_setting_line(g);
    m->bus = -1;
    m->profile = -1;
    cfg_set_ctx(ld, "enterprise '%s' meters[%zu]", ent->id, idx);
    if ((r = cfg_check_keys(ld, g, keys)))
        return r;
    char *id = NULL;
    if ((r = cfg_dup_str(ld, g, "id", true, &id, &s)))
        return r;
    if (!cfg_id_ok(id, "-")) {
        r = cfg_fail(ld, s, "meter id '%s' must match [a-z0-9-]+", id);
        free(id);
        return r;
    }
    for (size_t i = 0; i < idx; i++) {
        if (strcmp(ent->meters[i].id, id) == 0) {
            r = cfg_fail(ld, s, "duplicate meter id '%s' (first defined at line %d)", id,
                         ent->meters[i].line);
            free(id);
            return r;
        }
    }
    /* Only a validated id is stored: unit_taken() skips meters without one. */
    m->id = id;
    cfg_set_ctx(ld, "meter '%s/%s'", ent->id, m->id);
    if ((r = cfg_get_str(ld, g, "description", false, &v, NULL)) < 0)
        return r;

    config_setting_t *s_util;
    if ((r = cfg_get_utility(ld, g, &m->utility)))
        return r;
    s_util = config_setting_get_member(g, "utility");
    if ((r = cfg_get_str(ld, g, "profile", true, &v, &s)))
        return r;
    m->profile = config_find_profile(cfg, v);
    if (m->profile < 0)
        return cfg_fail(ld, s, "unknown profile '%s'", v);
    const struct cfg_profile *p = &cfg->profiles[m->profile];
    if (!profile_suits(p, m->utility)) {
        char list[64] = "";
        size_t len = 0;
        for (int u = 0; u < UTIL__COUNT; u++)
            if (profile_suits(p, (enum utility)u))
                len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "",
                                        utility_name((enum utility)u));
        return cfg_fail(ld, s_util,
                        "utility '%s' is not one profile '%s' suits (%s); a profile may list "
                        "several: utilities = [ ... ]",
                        utility_name(m->utility), p->name, list);
    }

    if ((r = cfg_get_str(ld, g, "bus", true, &v, &s)))
        return r;
    m->bus = find_bus(cfg, v);
    if (m->bus < 0)
        return cfg_fail(ld, s, "unknown bus '%s'", v);
    const struct cfg_bus *b = &cfg->buses[m->bus];
    if (p->protocol != b->protocol)
        return cfg_fail(ld, s, "bus '%s' speaks %s, but profile '%s' is for %s meters", b->name,
                        bus_protocol_name(b->protocol), p->name, bus_protocol_name(p->protocol));
    if (b->protocol != PROTO_MODBUS) {
        if ((r = cfg_parse_meter_address(ld, g, cfg, m)))
            return r;
    } else {
        config_setting_t *f = config_setting_get_member(g, "address");
        if (f)
            return cfg_fail(ld, f, "address is for meters on dlt645-2007 or cjt188 buses; "
                            "bus '%s' is Modbus: use unit_id", b->name);
        /* Modbus TCP gateways pass any unit id byte; RTU slaves are 1..247 (0 is broadcast). */
        int umin = b->type == BUS_TCP ? 0 : 1, umax = b->type == BUS_TCP ? 255 : 247;
        if ((r = cfg_get_int(ld, g, "unit_id", true, umin, umax, &m->unit_id, &s)))
            return r;
        const struct cfg_meter *o = cfg_meter_clash(cfg, m, same_unit);
        if (o)
            return cfg_fail(ld, s,
                            "unit_id %d on bus '%s' is already used by meter '%s/%s' (line %d)",
                            m->unit_id, b->name, o->enterprise->id, o->id, o->line);
    }

    if ((r = cfg_get_int(ld, g, "interval", true, 1, 86400, &m->interval, NULL)) ||
        (r = cfg_get_int(ld, g, "comm_timeout", false, 1, 86400, &m->comm_timeout, NULL)) < 0)
        return r;
    m->pt_ratio = 1.0;
    m->ct_ratio = 1.0;
    if ((r = cfg_get_double(ld, g, "pt_ratio", false, &m->pt_ratio, &s)) < 0)
        return r;
    if (!(m->pt_ratio > 0))
        return cfg_fail(ld, s, "pt_ratio must be > 0");
    if ((r = cfg_get_double(ld, g, "ct_ratio", false, &m->ct_ratio, &s)) < 0)
        return r;
    if (!(m->ct_ratio > 0))
        return cfg_fail(ld, s, "ct_ratio must be > 0");
    m->max_registers_per_read = 125;
    if ((r = cfg_get_int(ld, g, "max_registers_per_read", false, 1, 125, &m->max_registers_per_read,
                         NULL)) < 0 ||
        (r = cfg_get_bool(ld, g, "no_gap_fill", &m->no_gap_fill, NULL)) < 0 ||
        (r = cfg_get_bool(ld, g, "one_request_per_point", &m->one_request_per_point, NULL)) < 0)
        return r;
    if ((r = cfg_parse_meter_charges(ld, g, cfg, m)))
        return r;
    return cfg_parse_alarm_overrides(ld, g, cfg, m);
}

static const char *const reserved_ids[] = {"status", "summary", "events", NULL};

static int parse_enterprise(struct ld *ld, const config_setting_t *g, struct config *cfg,
                            size_t idx)
{
    static const char *const keys[] = {"id", "name", "meters", "description", NULL};
    struct cfg_enterprise *ent = &cfg->enterprises[idx];
    config_setting_t *s, *ms;
    const char *v;
    int r;

    ent->line = cfg_setting_line(g);
    cfg_set_ctx(ld, "enterprises[%zu]", idx);
    if ((r = cfg_check_keys(ld, g, keys)))
        return r;
    char *id = NULL;
    if ((r = cfg_dup_str(ld, g, "id", true, &id, &s)))
        return r;
    ent->id = id;
    if (!cfg_id_ok(id, "-"))
        return cfg_fail(ld, s, "enterprise id '%s' must match [a-z0-9-]+", id);
    if (cfg_in_list(id, reserved_ids))
        return cfg_fail(ld, s, "enterprise id '%s' is reserved (it is an MQTT topic level)", id);
    for (size_t i = 0; i < idx; i++)
        if (strcmp(cfg->enterprises[i].id, id) == 0)
            return cfg_fail(ld, s, "duplicate enterprise id '%s' (first defined at line %d)", id,
                            cfg->enterprises[i].line);
    cfg_set_ctx(ld, "enterprise '%s'", id);
    ent->name = xstrdup(id);
    if ((r = cfg_dup_str(ld, g, "name", false, &ent->name, &s)) < 0)
        return r;
    if (r == 0 && !ent->name[0])
        return cfg_fail(ld, s, "name must not be empty");
    if ((r = cfg_get_str(ld, g, "description", false, &v, NULL)) < 0)
        return r;
    if ((r = cfg_get_list(ld, g, "meters", false, &ms)) < 0)
        return r;
    if (r == 0) {
        ent->n_meters = (size_t)config_setting_length(ms);
        ent->meters = xcalloc(ent->n_meters ? ent->n_meters : 1, sizeof *ent->meters);
        for (size_t i = 0; i < ent->n_meters; i++)
            if ((r = parse_meter(ld, config_setting_get_elem(ms, (unsigned)i), cfg, ent, i)))
                return r;
    }
    return 0;
}

int cfg_parse_enterprises(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    config_setting_t *l;
    int r;

    cfg_set_ctx(ld, "%s", "");
    if ((r = cfg_get_list(ld, root, "enterprises", true, &l)))
        return r;
    if (config_setting_length(l) == 0)
        return cfg_fail(ld, l, "no enterprises configured");
    cfg->n_enterprises = (size_t)config_setting_length(l);
    cfg->enterprises = xcalloc(cfg->n_enterprises, sizeof *cfg->enterprises);
    for (size_t i = 0; i < cfg->n_enterprises; i++)
        if ((r = parse_enterprise(ld, config_setting_get_elem(l, (unsigned)i), cfg, i)))
            return r;
    return 0;
}

static int two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

bool cfg_parse_hours(const char *s, int *ret_from, int *ret_to)
{
    if (strlen(s) != 11 || s[2] != ':' || s[5] != '-' || s[8] != ':')
        return false;
    int h1 = two_digits(s), m1 = two_digits(s + 3), h2 = two_digits(s + 6),
        m2 = two_digits(s + 9);
    if (h1 < 0 || m1 < 0 || h2 < 0 || m2 < 0 || h1 > 23 || m1 > 59 || m2 > 59 || h2 > 24 ||
        (h2 == 24 && m2 != 0))
        return false;
    *ret_from = h1 * 60 + m1;
    *ret_to = h2 * 60 + m2;
    return true;
}

