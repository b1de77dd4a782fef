/*
 * daemon.c - the daemon's lifecycle (`parkgw run`, cli/cmd_run.c). Opens
 * the store and starts the writer, the MQTT client and one poller per bus;
 * then the main thread only watches signal flags (SIGTERM/SIGINT stop,
 * SIGHUP reloads) and feeds the systemd watchdog while every thread makes
 * progress. Stopping flushes the last batch and publishes the offline status.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/alerter.h"
#include "daemon/daemon.h"
#include "daemon/hadisc.h"
#include "daemon/http.h"
#include "daemon/metrics.h"
#include "daemon/status.h"
#include "common/log.h"
#include "daemon/poller.h"
#include "daemon/runstate.h"
#include "common/util.h"
#include "daemon/publisher.h"
#include "engine/statement.h"
#include "engine/statement_html.h"
#include "engine/statement_out.h"
#include "engine/meterhist.h"
#include "engine/summary.h"
#include "common/timeparse.h"
#include "common/utility.h"
#include "protocols/mqtt.h"
#include "protocols/payload.h"
#include "protocols/webhook.h"
#include "storage/alertq.h"
#include "storage/dblock.h"
#include "storage/store.h"
#include "daemon/writer.h"
#include "version.h"

/* Queued samples the writer may hold while SQLite is slow or the disk full:
 * WRITER_QUEUE_SECONDS of the configured load, at least WRITER_MIN_QUEUED
 * (about 25 bytes each). A move of a period's staged samples holds the
 * writer for seconds at 150,000 points/s (docs/PERFORMANCE.md). */
#define WRITER_MIN_QUEUED 2000000
#define WRITER_QUEUE_SECONDS 30

static size_t writer_bound(const struct config *cfg)
{
    double n = config_points_per_second(cfg) * WRITER_QUEUE_SECONDS;
    return n > WRITER_MIN_QUEUED ? (size_t)n : WRITER_MIN_QUEUED;
}
/* Group samples for up to a second per transaction: each commit writes WAL
 * frames of its own for the pages it touches (the staged rows at the right
 * edge of their table, the outbox rows), so committing every meter's poll on
 * its own multiplies the bytes written to flash by five
 * (docs/decisions/2026-11-29-commit-window.md, writer.h). */
#define WRITER_COMMIT_INTERVAL_MS 1000
/* How long start-up waits for the broker before polling anyway. */
#define BROKER_WAIT_MS 3000
/* How often the counters file for `parkgw status` is rewritten. */
#define RUNSTATE_INTERVAL_MS 5000

static volatile sig_atomic_t got_stop, got_reload;

static void on_stop(int sig)
{
    UNUSED(sig);
    got_stop = 1;
}

static void on_reload(int sig)
{
    UNUSED(sig);
    got_reload = 1;
}

/*
 * A loaded configuration and the point ids registered for it. Each poller
 * runs on the generation it was started with, so a reload can keep an
 * unchanged bus's thread polling on the old generation while changed buses
 * start on the new one. The current generation's cfg and point_ids are
 * owned by struct daemon (d->cfg, d->point_ids); a retired one owns them and
 * is freed with its last poller.
 */
struct cfg_gen {
    struct config *cfg;
    uint32_t **point_ids;
    size_t n_meters;
    struct poller_env env;   /* what its pollers were started with */
    size_t users;            /* pollers running on it */
    bool retired;
};

struct daemon {
    struct config *cfg;
    struct dblock *lock;         /* one daemon per database, held until the store is closed */
    struct store *store;
    struct writer *writer;
    struct mqtt *mqtt;
    struct publisher *publisher;   /* drains the outbox (after the writer, before it at stop) */
    char *topic_base;
    uint32_t **point_ids;
    size_t n_meters;
    struct poller_env env;
    struct poller **pollers;
    size_t n_pollers;
    struct cfg_gen *gen;         /* the generation of cfg (NULL before the pollers) */
    struct cfg_gen **poller_gen; /* [n_pollers] the generation each poller runs on */
    struct http *http;           /* NULL unless gateway.http is configured */
    struct alerter *alerter;     /* NULL unless alerts.webhooks are configured */
    struct hadisc *hadisc;       /* NULL unless mqtt.ha_discovery is on */
    /* Held for writing while reload replaces cfg; for reading by an HTTP
     * thread computing a statement with it (GET /api/bill). */
    pthread_rwlock_t cfg_lock;
    struct store *status_store;  /* read-only connection for the status document */
    bool level_from_cfg;         /* no -v/-q: the config's log_level applies */
};

/* Gives the writer a summary engine for d->cfg and its point ids: it
 * picks up the intervals where the database says the last run stopped. */
static void start_summaries(struct daemon *d)
{
    struct summary *sum;
    char *base = topic_base(d->cfg->topic_prefix, d->cfg->gateway_id);
    if (summary_new(d->cfg, d->point_ids, base, &sum) == 0)
        writer_set_summary(d->writer, sum);
    else
        log_err("summary: summary_interval %d is invalid; no summaries", d->cfg->summary_interval);
    free(base);
    writer_set_outbox_max(d->writer, d->cfg->outbox_max_messages);
}

static void free_point_ids(uint32_t **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

/* Point ids of every meter of cfg in st: *ret_ids[meter index][point]. */
static int register_points_in(struct store *st, const struct config *cfg, uint32_t ***ret_ids,
                              size_t *ret_n)
{
    size_t n = config_count_meters(cfg);
    uint32_t **ids = xcalloc(n ? n : 1, sizeof(uint32_t *));
    size_t idx = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++, idx++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            const struct cfg_profile *prof = &cfg->profiles[m->profile];
            ids[idx] = xcalloc(prof->n_points ? prof->n_points : 1, sizeof(uint32_t));
            for (size_t p = 0; p < prof->n_points; p++) {
                int r = store_point_id(st, cfg->enterprises[e].id, m->id, prof->points[p].name,
                                       m->utility, prof->points[p].kind, &ids[idx][p]);
                if (r < 0) {
                    free_point_ids(ids, n);
                    return r;
                }
            }
        }
    *ret_ids = ids;
    *ret_n = n;
    return 0;
}

/*
 * Records in the meter history what cfg's ratios change (engine/meterhist.h):
 * on st's connection, at now. The changes go to *ret (free()) for
 * announce_ratio_changes once the writer runs. 0 or -errno.
 */
static int record_ratios(struct store *st, const struct config *cfg, const char *source,
                         struct meterhist_change **ret, size_t *ret_n)
{
    return meterhist_sync(store_db(st), cfg, now_real_ms(), source, false, ret, ret_n);
}

/* A warning and a durable meter_changed event on P/events per change. */
static void announce_ratio_changes(struct daemon *d, const struct meterhist_change *c, size_t n,
                                   int64_t ts)
{
    char *topic = n ? topic_events(d->topic_base) : NULL;
    for (size_t i = 0; i < n; i++) {
        log_warn("meter %s/%s: PT/CT ratio %g x %g (multiplier %g) -> %g x %g (multiplier %g) "
                 "from now on, recorded in the meter history; readings before stay billed at "
                 "%g",
                 c[i].ent->id, c[i].m->id, c[i].old_pt, c[i].old_ct, c[i].old_mult, c[i].pt,
                 c[i].ct, c[i].mult, c[i].old_mult);
        struct payload_field f[] = {
            {.key = "enterprise", .type = PF_STR, .s = c[i].ent->id},
            {.key = "meter", .type = PF_STR, .s = c[i].m->id},
            {.key = "utility", .type = PF_STR, .s = utility_name(c[i].m->utility)},
            {.key = "change", .type = PF_STR, .s = "ratio"},
            {.key = "pt_ratio_before", .type = PF_REAL, .d = c[i].old_pt},
            {.key = "ct_ratio_before", .type = PF_REAL, .d = c[i].old_ct},
            {.key = "pt_ratio", .type = PF_REAL, .d = c[i].pt},
            {.key = "ct_ratio", .type = PF_REAL, .d = c[i].ct},
            {.key = "multiplier_before", .type = PF_REAL, .d = c[i].old_mult},
            {.key = "multiplier", .type = PF_REAL, .d = c[i].mult},
        };
        char *payload = payload_event(-1, ts, "meter_changed", f, ARRAY_SIZE(f));
        if (writer_submit_msg(d->writer, topic, payload, 1, false) < 0)
            log_err("meter %s/%s: the meter_changed event could not be queued", c[i].ent->id,
                    c[i].m->id);
        free(payload);
    }
    free(topic);
}

static int register_points(struct daemon *d)
{
    return register_points_in(d->store, d->cfg, &d->point_ids, &d->n_meters);
}

/* A poller stopped: the last one on a retired generation frees it. */
static void gen_unuse(struct cfg_gen *g)
{
    if (!g || --g->users > 0 || !g->retired)
        return;
    config_free(g->cfg);
    free_point_ids(g->point_ids, g->n_meters);
    free(g);
}

/* d->cfg is being replaced: g takes over its cfg and point ids. */
static void gen_retire(struct cfg_gen *g)
{
    if (!g)
        return;
    g->retired = true;
    g->users++;
    gen_unuse(g);
}

/* The generation for d->cfg: the poller environment as of now. */
static struct cfg_gen *gen_new(struct daemon *d)
{
    d->env.cfg = d->cfg;
    d->env.writer = d->writer;
    d->env.mqtt = d->mqtt;
    d->env.topic_base = d->topic_base;
    d->env.point_ids = d->point_ids;
    struct cfg_gen *g = xcalloc(1, sizeof(*g));
    g->cfg = d->cfg;
    g->point_ids = d->point_ids;
    g->n_meters = d->n_meters;
    g->env = d->env;
    return g;
}

/* Starts bus b of g's config into *ret; logs a failure. */
static int start_poller_on(struct cfg_gen *g, size_t b, struct poller **ret)
{
    int r = poller_start(&g->env, (int)b, ret);
    if (r < 0) {
        log_err("bus %s: cannot start: %s", g->cfg->buses[b].name, strerror(-r));
        *ret = NULL;
        return r;
    }
    g->users++;
    return 0;
}

static void stop_pollers(struct daemon *d)
{
    for (size_t i = 0; i < d->n_pollers; i++) {
        poller_stop(d->pollers[i]);
        gen_unuse(d->pollers[i] && d->poller_gen ? d->poller_gen[i] : NULL);
    }
    free(d->pollers);
    free(d->poller_gen);
    d->pollers = NULL;
    d->poller_gen = NULL;
    d->n_pollers = 0;
}

static int start_pollers(struct daemon *d)
{
    if (!d->gen)
        d->gen = gen_new(d);
    size_t n = d->cfg->n_buses ? d->cfg->n_buses : 1;
    d->pollers = xcalloc(n, sizeof(struct poller *));
    d->poller_gen = xcalloc(n, sizeof(struct cfg_gen *));
    for (size_t b = 0; b < d->cfg->n_buses; b++) {
        int r = start_poller_on(d->gen, b, &d->pollers[b]);
        if (r < 0)
            return r;
        d->poller_gen[b] = d->gen;
        d->n_pollers++;
    }
    return 0;
}

/* Every bus thread and the writer must have moved within the last
 * 'limit_ms'; a stuck thread stops the pings and systemd restarts us. */
static bool all_progressing(struct daemon *d, int64_t limit_ms)
{
    int64_t now = now_mono_ms();
    for (size_t i = 0; i < d->n_pollers; i++)
        if (d->pollers[i] && now - poller_last_progress(d->pollers[i]) > limit_ms)
            return false;
    if (d->writer) {
        struct writer_stats ws;
        writer_get_stats(d->writer, &ws);
        if (now - ws.last_commit_mono_ms > limit_ms)
            return false;
    }
    return true;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Compares two config structs bytewise apart from their pointer and line
 * fields, which the caller clears in the copies (and compares by content).
 * A field added to a struct later thus counts as a change, i.e. a restart of
 * the bus, which is always safe. The loader allocates zeroed structs. */
#define CFG_SAME(type, pa, pb, ...)                                                         \
    __extension__({                                                                        \
        type a_, b_;                                                                       \
        memcpy(&a_, (pa), sizeof(type));                                                   \
        memcpy(&b_, (pb), sizeof(type));                                                   \
        type *cl_[] = {&a_, &b_};                                                          \
        for (int k_ = 0; k_ < 2; k_++) {                                                   \
            type *x_ = cl_[k_];                                                            \
            __VA_ARGS__;                                                                   \
        }                                                                                  \
        memcmp(&a_, &b_, sizeof(type)) == 0;                                               \
    })

static bool profile_same(const struct cfg_profile *a, const struct cfg_profile *b)
{
    if (!str_eq(a->name, b->name) ||
        !CFG_SAME(struct cfg_profile, a, b, x_->name = NULL; x_->points = NULL;
                  x_->alarms = NULL; x_->file = NULL; x_->line = 0))
        return false;
    for (size_t i = 0; i < a->n_points; i++)
        if (!str_eq(a->points[i].name, b->points[i].name) ||
            !CFG_SAME(struct cfg_point, &a->points[i], &b->points[i], x_->name = NULL;
                      x_->line = 0))
            return false;
    for (size_t i = 0; i < a->n_alarms; i++)
        if (!str_eq(a->alarms[i].name, b->alarms[i].name) ||
            !CFG_SAME(struct cfg_alarm, &a->alarms[i], &b->alarms[i], x_->name = NULL;
                      x_->line = 0))
            return false;
    return true;
}

static bool meter_same(const struct config *ca, const struct cfg_meter *a,
                       const struct config *cb, const struct cfg_meter *b)
{
    return str_eq(a->id, b->id) && str_eq(a->enterprise->id, b->enterprise->id) &&
           str_eq(a->enterprise->name, b->enterprise->name) && str_eq(a->address, b->address) &&
           profile_same(&ca->profiles[a->profile], &cb->profiles[b->profile]) &&
           CFG_SAME(struct cfg_meter, a, b, x_->id = NULL; x_->address = NULL; x_->bus = 0;
                    x_->profile = 0; x_->enterprise = NULL; x_->line = 0);
}

/* Index of the bus named 'name', or cfg->n_buses. */
static size_t bus_index(const struct config *cfg, const char *name)
{
    size_t b = 0;
    while (b < cfg->n_buses && strcmp(cfg->buses[b].name, name) != 0)
        b++;
    return b;
}

/* The meters of bus 'bus' in config order; *ret_n of them. */
static const struct cfg_meter **bus_meters(const struct config *cfg, int bus, size_t *ret_n)
{
    const struct cfg_meter **v = xcalloc(config_count_meters(cfg) + 1, sizeof(*v));
    size_t n = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++)
            if (cfg->enterprises[e].meters[i].bus == bus)
                v[n++] = &cfg->enterprises[e].meters[i];
    *ret_n = n;
    return v;
}

/* True when bus ob of 'old' and bus nb of 'ncfg' have the same settings and
 * the same meters (ids, profiles, intervals, ratios...): its thread can keep
 * polling on the old config without a missed or extra read. */
static bool bus_same(const struct config *old, size_t ob, const struct config *ncfg, size_t nb)
{
    const struct cfg_bus *a = &old->buses[ob], *b = &ncfg->buses[nb];
    if (!str_eq(a->name, b->name) || !str_eq(a->host, b->host) ||
        !str_eq(a->device, b->device) ||
        !CFG_SAME(struct cfg_bus, a, b, x_->name = NULL; x_->host = NULL; x_->device = NULL;
                  x_->line = 0))
        return false;
    size_t na, nbm;
    const struct cfg_meter **ma = bus_meters(old, (int)ob, &na);
    const struct cfg_meter **mb = bus_meters(ncfg, (int)nb, &nbm);
    bool same = na == nbm;
    for (size_t i = 0; same && i < na; i++)
        same = meter_same(old, ma[i], ncfg, mb[i]);
    free(ma);
    free(mb);
    return same;
}

/*
 * SIGHUP. An invalid file (or one changing what needs a restart) is refused
 * and the running configuration stays. Otherwise the new config's points are
 * registered on a second connection to the database, so the writer, its
 * queue and the outbox never pause; buses whose settings and meters did not
 * change keep their threads (on the old config generation: no poll is
 * skipped or repeated); changed and removed buses stop, new and changed ones
 * start on the new config and read their meters at once.
 */
static void reload(struct daemon *d, const char *cfg_path)
{
    char err[1024];
    struct config *ncfg;
    if (config_load(cfg_path, &ncfg, err, sizeof(err)) < 0) {
        log_err("reload refused, keeping the running configuration: %s", err);
        return;
    }
    /* Storage and broker settings need a restart; buses, meters and
     * profiles are applied by restarting the pollers on the new config. */
    if (strcmp(ncfg->storage_path, d->cfg->storage_path) != 0 ||
        strcmp(ncfg->mqtt_uri, d->cfg->mqtt_uri) != 0 ||
        strcmp(ncfg->gateway_id, d->cfg->gateway_id) != 0 ||
        strcmp(ncfg->topic_prefix, d->cfg->topic_prefix) != 0) {
        log_err("reload refused: storage, mqtt uri, gateway id or topic prefix changed; "
                "restart parkgw to apply them");
        config_free(ncfg);
        return;
    }
    /* The broker connection keeps the credentials and TLS files it was made
     * with: refuse rather than silently go on with the old ones. */
    if (!str_eq(ncfg->mqtt_username, d->cfg->mqtt_username) ||
        !str_eq(ncfg->mqtt_password, d->cfg->mqtt_password) ||
        !str_eq(ncfg->mqtt_client_id, d->cfg->mqtt_client_id) ||
        ncfg->tls_set != d->cfg->tls_set || !str_eq(ncfg->tls.ca_file, d->cfg->tls.ca_file) ||
        !str_eq(ncfg->tls.cert_file, d->cfg->tls.cert_file) ||
        !str_eq(ncfg->tls.key_file, d->cfg->tls.key_file)) {
        log_err("reload refused: mqtt username, password (file), client id or tls settings "
                "changed; restart parkgw to apply them");
        config_free(ncfg);
        return;
    }
    /* Point ids of new meters, on a second connection (the writer owns the
     * first one); SQLite's busy timeout serialises it with the writer. */
    struct store *st2;
    uint32_t **nids = NULL;
    size_t nn = 0, n_changes = 0;
    struct meterhist_change *changes = NULL;
    int64_t changes_ts = 0;
    int r = store_open(ncfg->storage_path, false, &st2, err, sizeof(err));
    if (r == 0) {
        r = register_points_in(st2, ncfg, &nids, &nn);
        if (r < 0)
            snprintf(err, sizeof(err), "cannot register points: %s", strerror(-r));
        if (r == 0 && alertq_install(store_db(st2), ncfg->n_webhooks > 0) < 0) {
            snprintf(err, sizeof(err), "cannot set up the alert queue");
            r = -EIO;
        }
        if (r == 0) {
            changes_ts = now_real_ms();
            r = record_ratios(st2, ncfg, "reload", &changes, &n_changes);
            if (r < 0) {
                free_point_ids(nids, nn);
                nids = NULL;
                snprintf(err, sizeof(err), "cannot record the meter history: %s",
                         strerror(-r));
            }
        }
        store_close(st2);
    }
    if (r < 0) {
        log_err("reload refused, keeping the running configuration: storage: %s", err);
        config_free(ncfg);
        return;
    }
    if (!str_eq(ncfg->http_listen, d->cfg->http_listen) ||
        !str_eq(ncfg->http_password, d->cfg->http_password))
        log_warn("reload: the http listener's changes apply after a restart");
    if (!str_eq(ncfg->timezone, d->cfg->timezone))
        log_warn("reload: the time zone change (%s) applies after a restart",
                 ncfg->timezone ? ncfg->timezone : "UTC");
    sd_notify(0, "RELOADING=1");

    size_t nb = ncfg->n_buses;
    struct poller **np = xcalloc(nb ? nb : 1, sizeof(*np));
    struct cfg_gen **ng = xcalloc(nb ? nb : 1, sizeof(*ng));
    size_t kept = 0;
    /* Keep the threads of unchanged buses, stop the rest (before starting
     * their successors: a serial device is opened by one thread at a time). */
    for (size_t i = 0; i < d->n_pollers; i++) {
        struct cfg_gen *g = d->poller_gen[i];
        /* Poller i serves bus i of d->cfg; its own generation may be older. */
        const char *name = d->cfg->buses[i].name;
        size_t ob = bus_index(g ? g->cfg : d->cfg, name), b = bus_index(ncfg, name);
        if (d->pollers[i] && b < nb && bus_same(g->cfg, ob, ncfg, b)) {
            np[b] = d->pollers[i];
            ng[b] = g;
            kept++;
            log_info("reload: bus %s unchanged, keeps polling", ncfg->buses[b].name);
        } else {
            poller_stop(d->pollers[i]);
            gen_unuse(d->pollers[i] ? g : NULL);
        }
    }
    free(d->pollers);
    free(d->poller_gen);
    d->pollers = np;
    d->poller_gen = ng;
    d->n_pollers = nb;

    /* The alerter reads the old config: it restarts on the new one (its
     * cursors and held messages are in the database). */
    alerter_stop(d->alerter);
    d->alerter = NULL;
    pthread_rwlock_wrlock(&d->cfg_lock);
    gen_retire(d->gen);  /* owns old cfg and ids now; freed with its last poller */
    d->cfg = ncfg;
    d->point_ids = nids;
    d->n_meters = nn;
    d->gen = gen_new(d);
    hadisc_free(d->hadisc);
    d->hadisc = hadisc_new(d->cfg);   /* publishes the new config's sensors */
    pthread_rwlock_unlock(&d->cfg_lock);
    writer_set_max_queued(d->writer, writer_bound(ncfg));
    announce_ratio_changes(d, changes, n_changes, changes_ts);
    free(changes);
    start_summaries(d);
    alerter_start(d->cfg, &d->alerter);
    for (size_t b = 0; b < nb; b++) {
        if (np[b])
            continue;
        if (start_poller_on(d->gen, b, &np[b]) < 0) {
            got_stop = 1;
            continue;
        }
        ng[b] = d->gen;
    }
    if (d->level_from_cfg) {
        enum log_level lvl = LOG_LVL_INFO;
        if (ncfg->log_level)
            log_level_parse(ncfg->log_level, &lvl);
        log_set_level(lvl);
    }
    log_notice("configuration reloaded: %zu meters on %zu buses (%zu buses kept running)",
               d->n_meters, nb, kept);
    sd_notifyf(0, "READY=1\nSTATUS=polling %zu meters on %zu buses", d->n_meters, nb);
}

/* format=html: the printable page of the requested enterprise, or the index
 * of all, whose links ask this API for each enterprise's page. */
static int http_bill_html(FILE *out, const struct config *cfg, struct store *st,
                          const struct http_bill_query *q, struct statement_request *req,
                          char *err, size_t errlen)
{
    struct statement *s;
    req->daily = true;
    int r = statement_build(cfg, st, req, &s, err, errlen);
    if (r < 0)
        return r;
    if (req->enterprise) {
        for (size_t e = 0; e < cfg->n_enterprises; e++)
            if (!strcmp(cfg->enterprises[e].id, req->enterprise))
                r = statement_html_page(out, cfg, s, e);
    } else {
        /* the query's own from and to, percent-encoded for the links */
        char *base = NULL;
        size_t len = 0;
        FILE *b = open_memstream(&base, &len);
        const char *part[2] = {q->from, q->to};
        fputs("/api/bill?", b);
        for (int k = 0; k < 2; k++) {
            fputs(k ? "&to=" : "from=", b);
            for (const unsigned char *c = (const unsigned char *)part[k]; *c; c++)
                if (isalnum(*c) || *c == '-' || *c == '.' || *c == '_')
                    fputc(*c, b);
                else
                    fprintf(b, "%%%02X", *c);
        }
        if (q->utility)
            fprintf(b, "&utility=%s", q->utility);
        fputs("&format=html&enterprise=", b);
        fclose(b);
        r = statement_html_index(out, cfg, s, base);
        free(base);
    }
    statement_free(s);
    if (r < 0)
        snprintf(err, errlen, "writing the statement: %s", strerror(errno));
    return r;
}

/* GET /api/bill (daemon/http.h): the statement of `parkgw bill` with the
 * configuration in force, on a read-only connection of the request's own;
 * times in the gateway's time zone (TZ, set when the config was loaded). */
static int http_bill(void *ud, const struct http_bill_query *q, FILE *out, char *err,
                     size_t errlen)
{
    struct daemon *d = ud;
    struct statement_request req = {0};
    enum statement_format fmt;
    struct store *st;
    int r;

    if (!strcmp(q->format, "csv"))
        fmt = STATEMENT_CSV;
    else if (!strcmp(q->format, "json"))
        fmt = STATEMENT_JSON;
    else if (!strcmp(q->format, "table") || !strcmp(q->format, "html"))
        fmt = STATEMENT_TABLE;
    else {
        snprintf(err, errlen, "unknown format '%s' (csv, json, table, html)", q->format);
        return -EINVAL;
    }
    if (!q->from || !q->to) {
        snprintf(err, errlen, "from and to are required: /api/bill?from=DATE&to=DATE");
        return -EINVAL;
    }
    const char *bad = NULL;
    if ((r = timeparse(q->from, &req.from)) < 0)
        bad = q->from;
    else if ((r = timeparse(q->to, &req.to)) < 0)
        bad = q->to;
    if (bad) {
        snprintf(err, errlen, "bad time '%s': %s; use %s", bad, timeparse_why(r), TIMEPARSE_FORMS);
        return -EINVAL;
    }
    if (req.from >= req.to) {
        snprintf(err, errlen, "from %s is not before to %s", q->from, q->to);
        return -EINVAL;
    }
    if (q->utility) {
        if (utility_parse(q->utility, &req.utility) < 0) {
            snprintf(err, errlen, "unknown utility '%s' (electricity, water, gas, wastewater)",
                     q->utility);
            return -EINVAL;
        }
        req.has_utility = true;
    }
    req.enterprise = q->enterprise;
    pthread_rwlock_rdlock(&d->cfg_lock);
    if (req.enterprise && !statement_has_enterprise(d->cfg, req.enterprise)) {
        snprintf(err, errlen, "unknown enterprise '%s'", req.enterprise);
        r = -EINVAL;
    } else if ((r = store_open(d->cfg->storage_path, true, &st, err, errlen)) == 0) {
        if (!strcmp(q->format, "html"))
            r = http_bill_html(out, d->cfg, st, q, &req, err, errlen);
        else
            r = statement_out_print(out, d->cfg, st, &req, fmt, err, errlen);
        store_close(st);
    }
    pthread_rwlock_unlock(&d->cfg_lock);
    return r;
}

/* Starts the HTTP listener when configured. A listener that cannot start
 * (address in use) is logged and the daemon meters on without it. */
static void start_http(struct daemon *d)
{
    char err[512];
    if (!d->cfg->http_listen)
        return;
    int r = store_open(d->cfg->storage_path, true, &d->status_store, err, sizeof(err));
    if (r < 0) {
        log_err("http: cannot open the database for the status: %s", err);
        return;
    }
    struct http_opts o = {.listen = d->cfg->http_listen,
                          .password = d->cfg->http_password,
                          .storage_path = d->cfg->storage_path,
                          .bill = http_bill,
                          .bill_ud = d};
    r = http_start(&o, &d->http, err, sizeof(err));
    if (r < 0) {
        log_err("http: %s; going on without the listener", err);
        store_close(d->status_store);
        d->status_store = NULL;
        return;
    }
    log_info("http: listening on %s%s", d->cfg->http_listen,
             d->cfg->http_password ? " (basic auth)" : "");
}

/* The documents the listener serves, built on this thread while someone
 * asks for them (http_wanted): the status document and the metrics. */
static void publish_http(struct daemon *d, int64_t started)
{
    json_t *rs = runstate_build(started, d->pollers, d->n_pollers, d->writer, d->mqtt);
    json_t *doc = status_build(d->cfg, d->status_store, rs, now_real_ms(), 0);
    char *metrics = metrics_render(d->cfg, doc, rs);
    json_decref(rs);
    http_publish(d->http, doc, metrics);
}

int daemon_run(struct config *cfg, const char *cfg_path)
{
    struct daemon d = {0};
    char err[1024];
    int r, rc = 2;
    uint64_t wd_usec = 0;

    d.cfg = cfg;
    pthread_rwlock_init(&d.cfg_lock, NULL);
    d.level_from_cfg = log_get_level() == LOG_LVL_INFO;
    if (d.cfg->log_level) {
        enum log_level lvl;
        if (log_level_parse(d.cfg->log_level, &lvl) == 0 && log_get_level() == LOG_LVL_INFO)
            log_set_level(lvl);
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_reload;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Before the store is opened (it migrates and moves staged rows): two
     * daemons on one database would poll twice and drain one outbox twice. */
    pid_t holder = 0;
    r = dblock_acquire(d.cfg->storage_path, &d.lock, &holder);
    if (r == -EBUSY) {
        char *lp = dblock_path(d.cfg->storage_path);
        if (holder > 0)
            log_err("storage: %s is in use by another parkgw daemon (pid %ld, lock %s); "
                    "one daemon per database: stop it first",
                    d.cfg->storage_path, (long)holder, lp);
        else
            log_err("storage: %s is in use by another parkgw daemon (its pid is not in %s yet); "
                    "one daemon per database: stop it first",
                    d.cfg->storage_path, lp);
        free(lp);
        goto out_free_cfg;
    }
    if (r < 0) {
        char *lp = dblock_path(d.cfg->storage_path);
        log_err("storage: cannot create or lock %s: %s", lp, strerror(-r));
        free(lp);
        goto out_free_cfg;
    }
    r = store_open(d.cfg->storage_path, false, &d.store, err, sizeof(err));
    if (r < 0) {
        log_err("storage: %s", err);
        goto out_release_lock;
    }
    store_set_retention(d.store, d.cfg->raw_retention_days);
    /* Alert events are queued by a trigger in the writer's transactions:
     * it must be there (or gone) before the first one. */
    if (alertq_install(store_db(d.store), d.cfg->n_webhooks > 0) < 0) {
        log_err("storage: cannot set up the alert queue in %s", d.cfg->storage_path);
        goto out_close_store;
    }
    webhook_global_init();
    r = register_points(&d);
    if (r < 0) {
        log_err("storage: cannot register points in %s: %s", d.cfg->storage_path, strerror(-r));
        goto out_close_store;
    }
    /* The config edited while the daemon was down: its ratio changes count
     * from this start (announced once the writer runs). */
    struct meterhist_change *start_changes = NULL;
    size_t n_start_changes = 0;
    int64_t start_ts = now_real_ms();
    r = record_ratios(d.store, d.cfg, "start", &start_changes, &n_start_changes);
    if (r < 0) {
        log_err("storage: cannot record the meter history in %s: %s", d.cfg->storage_path,
                strerror(-r));
        goto out_close_store;
    }
    r = writer_start(d.store, writer_bound(d.cfg), &d.writer);
    if (r < 0) {
        log_err("storage: cannot start the writer: %s", strerror(-r));
        goto out_close_store;
    }
    writer_set_commit_interval(d.writer, WRITER_COMMIT_INTERVAL_MS);
    start_summaries(&d);

    d.topic_base = topic_base(d.cfg->topic_prefix, d.cfg->gateway_id);
    announce_ratio_changes(&d, start_changes, n_start_changes, start_ts);
    free(start_changes);
    start_changes = NULL;
    char *online = payload_status_online(PARKGW_VERSION, now_real_ms(), d.n_meters);
    r = mqtt_new(d.cfg, online, &d.mqtt);
    free(online);
    if (r < 0) {
        log_err("mqtt: cannot create the client for %s: %s", d.cfg->mqtt_uri, strerror(-r));
        goto out_stop_writer;
    }
    mqtt_start(d.mqtt);
    r = publisher_start(d.cfg->storage_path, d.mqtt, NULL, &d.publisher);
    if (r < 0)
        goto out_stop_pollers;
    writer_set_outbox_notify(d.writer, publisher_kick, d.publisher);

    /* A broker that is up is usually connected within a second or two: give
     * it that long so the first live values are not dropped. A broker that
     * is down does not delay polling (samples and durable messages wait). */
    for (int64_t end = now_mono_ms() + BROKER_WAIT_MS; now_mono_ms() < end && !got_stop;) {
        struct mqtt_stats ms;
        mqtt_get_stats(d.mqtt, &ms);
        if (ms.connected)
            break;
        sleep_ms(50);
    }

    if (start_pollers(&d) < 0)
        goto out_stop_pollers;

    log_info("parkgw %s running: gateway %s, %zu enterprises, %zu meters on %zu buses, store %s, "
             "broker %s",
             PARKGW_VERSION, d.cfg->gateway_id, d.cfg->n_enterprises, d.n_meters, d.cfg->n_buses,
             d.cfg->storage_path, d.cfg->mqtt_uri);
    start_http(&d);
    alerter_start(d.cfg, &d.alerter);
    d.hadisc = hadisc_new(d.cfg);
    sd_notifyf(0, "READY=1\nSTATUS=polling %zu meters on %zu buses", d.n_meters, d.cfg->n_buses);

    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
    int64_t wd_interval = watchdog ? (int64_t)(wd_usec / 1000 / 2) : 0;
    int64_t last_ping = now_mono_ms();
    char *state_path = runstate_path(d.cfg->storage_path);
    int64_t started = now_real_ms(), last_state = 0;
    bool state_warned = false;
    bool failed = false;
    while (!got_stop) {
        sleep_ms(200);
        if (writer_file_lost(d.writer)) {
            /* The writer logged why; a failure exit lets systemd start us
             * again onto a fresh file (Restart=on-failure). */
            failed = true;
            break;
        }
        /* Counters for `parkgw status`, written by this thread only. */
        if (now_mono_ms() - last_state >= RUNSTATE_INTERVAL_MS) {
            last_state = now_mono_ms();
            json_t *snap = runstate_build(started, d.pollers, d.n_pollers, d.writer, d.mqtt);
            int sr = runstate_write(state_path, snap);
            json_decref(snap);
            if (sr < 0 && !state_warned)
                log_warn("status: cannot write %s: %s", state_path, strerror(-sr));
            state_warned = sr < 0;
        }
        if (http_wanted(d.http))
            publish_http(&d, started);
        hadisc_tick(d.hadisc, d.mqtt);
        if (got_reload) {
            got_reload = 0;
            log_notice("SIGHUP: reloading %s", cfg_path);
            reload(&d, cfg_path);
        }
        if (watchdog && now_mono_ms() - last_ping >= wd_interval) {
            /* Threads wake at least once a second; allow a full interval. */
            if (all_progressing(&d, (int64_t)(wd_usec / 1000))) {
                sd_notify(0, "WATCHDOG=1");
                last_ping = now_mono_ms();
            }
        }
    }
    /* `parkgw status` must not show a stopped daemon's last counters as live. */
    unlink(state_path);
    free(state_path);
    if (failed)
        log_err("stopping with a failure: the database file is gone");
    else
        log_info("stopping: flushing samples and publishing offline status");
    sd_notify(0, "STOPPING=1");
    rc = failed ? 2 : 0;

out_stop_pollers:
    hadisc_free(d.hadisc);
    alerter_stop(d.alerter);
    http_stop(d.http);
    store_close(d.status_store);
    stop_pollers(&d);
    if (d.publisher) {
        writer_set_outbox_notify(d.writer, NULL, NULL);
        publisher_stop(d.publisher);
    }
    if (d.mqtt) {
        mqtt_stop(d.mqtt, 2000);
        mqtt_free(d.mqtt);
    }
out_stop_writer:
    if (d.writer)
        if (writer_stop(d.writer) < 0 && rc == 0) {
            log_err("stopping with a failure: samples were not written (see above)");
            rc = 2;
        }
out_close_store:
    store_close(d.store);
out_release_lock:
    dblock_release(d.lock);
    free(d.gen); /* stop_pollers released every retired generation */
    for (size_t i = 0; d.point_ids && i < d.n_meters; i++)
        free(d.point_ids[i]);
    free(d.point_ids);
    free(d.topic_base);
out_free_cfg:
    config_free(d.cfg);
    pthread_rwlock_destroy(&d.cfg_lock);
    return rc;
}
