/*
 * operator.c - the operator surface's settings (docs/OPERATOR.md):
 * gateway.http, the daemon's read-only HTTP listener (called from park.c's
 * gateway section; a non-loopback address without a password is refused
 * here, so `check` and `run` both refuse it with FILE:LINE), and the
 * top-level alerts group, the webhook targets of outage alerts.
 */
#include "config/config_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/netaddr.h"
#include "common/util.h"

#define MAX_HTTP_PASSWORD_BYTES 4096

int cfg_parse_http(struct ld *ld, const config_setting_t *gw, struct config *cfg)
{
    static const char *const keys[] = {"listen", "password_file", NULL};
    config_setting_t *g, *s, *ps = NULL;
    struct sockaddr_storage addr;
    socklen_t alen;
    char err[256];
    int r;

    if ((r = cfg_get_group(ld, gw, "http", false, &g)))
        return r < 0 ? r : 0;
    cfg_set_ctx(ld, "gateway.http");
    if ((r = cfg_check_keys(ld, g, keys)))
        return r;
    cfg->http_listen = xstrdup("127.0.0.1:8080");
    s = g;
    if ((r = cfg_dup_str(ld, g, "listen", false, &cfg->http_listen, &s)) < 0)
        return r;
    if (netaddr_parse(cfg->http_listen, &addr, &alen, err, sizeof(err)) < 0)
        return cfg_fail(ld, s, "%s", err);
    if ((r = cfg_dup_str(ld, g, "password_file", false, &cfg->http_password_file, &ps)) < 0)
        return r;
    if (r == 0) {
        char *pw;
        size_t len;
        r = cfg_slurp(cfg->http_password_file, MAX_HTTP_PASSWORD_BYTES, &pw, &len);
        if (r < 0)
            return cfg_fail(ld, ps, "cannot read password_file '%s': %s",
                            cfg->http_password_file, strerror(-r));
        while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
            pw[--len] = '\0';
        cfg->http_password = pw;
        if (!len)
            return cfg_fail(ld, ps, "password_file '%s' is empty", cfg->http_password_file);
    }
    /* Anyone on the network could read the park's consumption otherwise. */
    if (!netaddr_is_loopback(&addr) && !cfg->http_password)
        return cfg_fail(ld, s,
                        "listen \"%s\" is not a loopback address: it needs password_file "
                        "(HTTP basic auth)",
                        cfg->http_listen);
    return 0;
}

void cfg_free_http(struct config *cfg)
{
    free(cfg->http_listen);
    free(cfg->http_password_file);
    if (cfg->http_password) {
        explicit_bzero(cfg->http_password, strlen(cfg->http_password));
        free(cfg->http_password);
    }
}

/* Alerts sent per meter and target at most this often, by default (s). */
#define DEFAULT_MIN_INTERVAL 300

static const char *const webhook_formats[] = {"json", "wecom", "dingtalk", NULL};
static const char *const default_events[] = {"supply_lost", "comm_lost", "bus_down"};

static int parse_webhook(struct ld *ld, const config_setting_t *w, struct config *cfg,
                         size_t i)
{
    static const char *const keys[] = {"name",       "url",          "format", "events",
                                       "timeout_ms", "min_interval", "secret", NULL};
    struct cfg_webhook *h = &cfg->webhooks[i];
    config_setting_t *s;
    const char *fmt = "json";
    int r;

    h->line = cfg_setting_line(w);
    cfg_set_ctx(ld, "alerts.webhooks[%zu]", i);
    if ((r = cfg_check_keys(ld, w, keys)))
        return r;
    if ((r = cfg_dup_str(ld, w, "name", true, &h->name, &s)))
        return r;
    if (!cfg_id_ok(h->name, "-_"))
        return cfg_fail(ld, s, "name '%s' must match [a-z0-9_-]+", h->name);
    for (size_t k = 0; k < i; k++)
        if (strcmp(cfg->webhooks[k].name, h->name) == 0)
            return cfg_fail(ld, s, "duplicate webhook name '%s' (also at line %d)", h->name,
                            cfg->webhooks[k].line);
    cfg_set_ctx(ld, "webhook '%s'", h->name);
    if ((r = cfg_dup_str(ld, w, "url", true, &h->url, &s)))
        return r;
    if ((strncmp(h->url, "http://", 7) != 0 || !h->url[7]) &&
        (strncmp(h->url, "https://", 8) != 0 || !h->url[8]))
        return cfg_fail(ld, s, "url '%s' must start with http:// or https://", h->url);
    if ((r = cfg_get_str(ld, w, "format", false, &fmt, &s)) < 0)
        return r;
    if (!cfg_in_list(fmt, webhook_formats))
        return cfg_fail(ld, s, "format '%s' must be json, wecom or dingtalk", fmt);
    h->format = strcmp(fmt, "wecom") == 0      ? WEBHOOK_WECOM
                : strcmp(fmt, "dingtalk") == 0 ? WEBHOOK_DINGTALK
                                               : WEBHOOK_JSON;
    h->timeout_ms = 5000;
    if ((r = cfg_get_int(ld, w, "timeout_ms", false, 100, 60000, &h->timeout_ms, NULL)) < 0)
        return r;
    if ((r = cfg_dup_str(ld, w, "secret", false, &h->secret, &s)) < 0)
        return r;
    if (r == 0 && (h->format != WEBHOOK_DINGTALK || !h->secret[0]))
        return cfg_fail(ld, s, "secret is the signing secret of a dingtalk robot (format = "
                               "\"dingtalk\"), non-empty");
    h->min_interval = cfg->alerts_min_interval;
    if ((r = cfg_get_int(ld, w, "min_interval", false, 0, 86400, &h->min_interval, NULL)) < 0)
        return r;
    config_setting_t *ev = config_setting_get_member(w, "events");
    if (!ev) {
        h->n_events = ARRAY_SIZE(default_events);
        h->events = xcalloc(h->n_events, sizeof(char *));
        for (size_t k = 0; k < h->n_events; k++)
            h->events[k] = xstrdup(default_events[k]);
        return 0;
    }
    int et = config_setting_type(ev);
    if ((et != CONFIG_TYPE_ARRAY && et != CONFIG_TYPE_LIST) || config_setting_length(ev) == 0)
        return cfg_fail(ld, ev, "events must be a non-empty list of names, e.g. "
                                "[ \"supply_lost\", \"comm_lost\", \"bus_down\" ]");
    h->n_events = (size_t)config_setting_length(ev);
    h->events = xcalloc(h->n_events, sizeof(char *));
    for (size_t k = 0; k < h->n_events; k++) {
        const char *name = config_setting_get_string(config_setting_get_elem(ev, (unsigned)k));
        if (!name || !name[0])
            return cfg_fail(ld, ev, "events entry %zu must be a non-empty string", k + 1);
        h->events[k] = xstrdup(name);
    }
    return 0;
}

int cfg_parse_alerts(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    static const char *const keys[] = {"min_interval", "webhooks", NULL};
    config_setting_t *g, *l;
    int r;

    cfg->alerts_min_interval = DEFAULT_MIN_INTERVAL;
    cfg_set_ctx(ld, "%s", "");
    if ((r = cfg_get_group(ld, root, "alerts", false, &g)))
        return r < 0 ? r : 0;
    cfg_set_ctx(ld, "alerts");
    if ((r = cfg_check_keys(ld, g, keys)))
        return r;
    if ((r = cfg_get_int(ld, g, "min_interval", false, 0, 86400, &cfg->alerts_min_interval,
                         NULL)) < 0)
        return r;
    if ((r = cfg_get_list(ld, g, "webhooks", false, &l)))
        return r < 0 ? r : 0;
    cfg->n_webhooks = (size_t)config_setting_length(l);
    cfg->webhooks = xcalloc(cfg->n_webhooks ? cfg->n_webhooks : 1, sizeof(*cfg->webhooks));
    for (size_t i = 0; i < cfg->n_webhooks; i++)
        if ((r = parse_webhook(ld, config_setting_get_elem(l, (unsigned)i), cfg, i)))
            return r;
    return 0;
}

void cfg_free_alerts(struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_webhooks; i++) {
        struct cfg_webhook *h = &cfg->webhooks[i];
        free(h->name);
        free(h->url);
        free(h->secret);
        for (size_t k = 0; k < h->n_events; k++)
            free(h->events[k]);
        free(h->events);
    }
    free(cfg->webhooks);
}
