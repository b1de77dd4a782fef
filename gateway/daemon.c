/*
 * daemon.c - `parkgw run`: the daemon's lifecycle. Loads the config, opens
 * the store and starts the writer, the MQTT client and one poller per bus;
 * then the main thread only watches signal flags (SIGTERM/SIGINT stop,
 * SIGHUP reloads) and feeds the systemd watchdog while every thread makes
 * progress. Stopping flushes the last batch and publishes the offline status.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "config/config.h"
#include "gateway/cli.h"
#include "gateway/log.h"
#include "gateway/poller.h"
#include "gateway/util.h"
#include "protocols/mqtt.h"
#include "protocols/payload.h"
#include "storage/store.h"
#include "storage/writer.h"
#include "version.h"

/* Queued samples the writer may hold while SQLite is slow or the disk full. */
#define WRITER_MAX_QUEUED 2000000
/* Group samples for up to a second per transaction: each commit rewrites the
 * tail page of every point it touches, so committing every meter's poll on
 * its own multiplies the bytes written to flash (docs/PERFORMANCE.md). */
#define WRITER_COMMIT_INTERVAL_MS 1000

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

struct daemon {
    struct config *cfg;
    struct store *store;
    struct writer *writer;
    struct mqtt *mqtt;
    char *topic_base;
    uint32_t **point_ids;
    size_t n_meters;
    struct poller_env env;
    struct poller **pollers;
    size_t n_pollers;
};

struct config *cli_load_config(const char *cfg_path)
{
    char err[1024];
    struct config *cfg;
    int r = config_load(cfg_path, &cfg, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    if (cfg->timezone) {
        setenv("TZ", cfg->timezone, 1);
        tzset();
    }
    return cfg;
}

static int register_points(struct daemon *d)
{
    const struct config *cfg = d->cfg;
    d->n_meters = config_count_meters(cfg);
    d->point_ids = xcalloc(d->n_meters ? d->n_meters : 1, sizeof(uint32_t *));
    size_t idx = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++, idx++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            const struct cfg_profile *prof = &cfg->profiles[m->profile];
            d->point_ids[idx] = xcalloc(prof->n_points, sizeof(uint32_t));
            for (size_t p = 0; p < prof->n_points; p++) {
                int r = store_point_id(d->store, cfg->enterprises[e].id, m->id,
                                       prof->points[p].name, m->utility, prof->points[p].kind,
                                       &d->point_ids[idx][p]);
                if (r < 0)
                    return r;
            }
        }
    return 0;
}

static void stop_pollers(struct daemon *d)
{
    for (size_t i = 0; i < d->n_pollers; i++)
        poller_stop(d->pollers[i]);
    free(d->pollers);
    d->pollers = NULL;
    d->n_pollers = 0;
}

static int start_pollers(struct daemon *d)
{
    d->env.cfg = d->cfg;
    d->env.writer = d->writer;
    d->env.mqtt = d->mqtt;
    d->env.topic_base = d->topic_base;
    d->env.point_ids = d->point_ids;
    d->pollers = xcalloc(d->cfg->n_buses ? d->cfg->n_buses : 1, sizeof(struct poller *));
    for (size_t b = 0; b < d->cfg->n_buses; b++) {
        int r = poller_start(&d->env, (int)b, &d->pollers[b]);
        if (r < 0) {
            log_err("bus %s: cannot start: %s", d->cfg->buses[b].name, strerror(-r));
            return r;
        }
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
        if (now - poller_last_progress(d->pollers[i]) > limit_ms)
            return false;
    if (d->writer) {
        struct writer_stats ws;
        writer_get_stats(d->writer, &ws);
        if (now - ws.last_commit_mono_ms > limit_ms)
            return false;
    }
    return true;
}

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
    sd_notify(0, "RELOADING=1");
    stop_pollers(d);
    /* The writer may still hold queued samples of the old config: their
     * point ids stay valid because ids are never reused. */
    uint32_t **old_ids = d->point_ids;
    size_t old_n = d->n_meters;
    struct config *old = d->cfg;
    d->cfg = ncfg;
    /* The writer owns the store while it runs; stop it to register points. */
    writer_stop(d->writer);
    d->writer = NULL;
    int r = register_points(d);
    if (r == 0)
        r = writer_start(d->store, WRITER_MAX_QUEUED, &d->writer);
    if (r == 0)
        writer_set_commit_interval(d->writer, WRITER_COMMIT_INTERVAL_MS);
    if (r < 0) {
        log_err("reload failed: storage: %s", strerror(-r));
        got_stop = 1;
    } else if (start_pollers(d) < 0) {
        got_stop = 1;
    } else {
        log_notice("configuration reloaded: %zu meters on %zu buses", d->n_meters,
                   d->cfg->n_buses);
    }
    for (size_t i = 0; i < old_n; i++)
        free(old_ids[i]);
    free(old_ids);
    config_free(old);
    sd_notify(0, "READY=1");
}

int cmd_run(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    struct daemon d = {0};
    char err[1024];
    int c, r, rc = 2;
    uint64_t wd_usec = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: parkgw run [-c FILE] [-v|-q]\n");
            return 0;
        }
        return 1;
    }

    d.cfg = cli_load_config(cfg_path);
    if (!d.cfg)
        return 1;
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

    r = store_open(d.cfg->storage_path, false, &d.store, err, sizeof(err));
    if (r < 0) {
        log_err("storage: %s", err);
        goto out_free_cfg;
    }
    r = register_points(&d);
    if (r < 0) {
        log_err("storage: cannot register points in %s: %s", d.cfg->storage_path, strerror(-r));
        goto out_close_store;
    }
    r = writer_start(d.store, WRITER_MAX_QUEUED, &d.writer);
    if (r < 0) {
        log_err("storage: cannot start the writer: %s", strerror(-r));
        goto out_close_store;
    }
    writer_set_commit_interval(d.writer, WRITER_COMMIT_INTERVAL_MS);

    d.topic_base = topic_base(d.cfg->topic_prefix, d.cfg->gateway_id);
    char *online = payload_status_online(PARKGW_VERSION, now_real_ms(), d.n_meters);
    r = mqtt_new(d.cfg, online, &d.mqtt);
    free(online);
    if (r < 0) {
        log_err("mqtt: cannot create the client for %s: %s", d.cfg->mqtt_uri, strerror(-r));
        goto out_stop_writer;
    }
    mqtt_start(d.mqtt);

    if (start_pollers(&d) < 0)
        goto out_stop_pollers;

    log_info("parkgw %s running: gateway %s, %zu enterprises, %zu meters on %zu buses, store %s, "
             "broker %s",
             PARKGW_VERSION, d.cfg->gateway_id, d.cfg->n_enterprises, d.n_meters, d.cfg->n_buses,
             d.cfg->storage_path, d.cfg->mqtt_uri);
    sd_notifyf(0, "READY=1\nSTATUS=polling %zu meters on %zu buses", d.n_meters, d.cfg->n_buses);

    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
    int64_t wd_interval = watchdog ? (int64_t)(wd_usec / 1000 / 2) : 0;
    int64_t last_ping = now_mono_ms();
    while (!got_stop) {
        sleep_ms(200);
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
    log_info("stopping: flushing samples and publishing offline status");
    sd_notify(0, "STOPPING=1");
    rc = 0;

out_stop_pollers:
    stop_pollers(&d);
    if (d.mqtt) {
        mqtt_stop(d.mqtt, 2000);
        mqtt_free(d.mqtt);
    }
out_stop_writer:
    if (d.writer)
        writer_stop(d.writer);
out_close_store:
    store_close(d.store);
    for (size_t i = 0; d.point_ids && i < d.n_meters; i++)
        free(d.point_ids[i]);
    free(d.point_ids);
    free(d.topic_base);
out_free_cfg:
    config_free(d.cfg);
    return rc;
}
