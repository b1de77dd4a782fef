/*
 * config.c - loads the gateway's libconfig file into the plain structs of
 * config.h and validates every setting; the first problem is reported as
 * "FILE:LINE: message" naming the file (main or included) the setting is in.
 * cli/main.c (check, run, reload) calls config_load; every other module
 * reads the structs. The files in profiles/ are the register maps it includes.
 *
 * The loader is split by concern, sharing config_private.h: include.c reads
 * the file and resolves @include, getters.c holds the FILE:LINE-reporting
 * typed getters, profiles.c the register maps, park.c the other sections.
 * This file runs them in order and owns the structs' lifetime and lookups.
 */
#include "config/config.h"
#include "config/config_private.h"

#include <libconfig.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static int check_top_keys(struct ld *ld, const config_setting_t *root)
{
    static const char *const keys[] = {"gateway",     "storage", "mqtt",    "buses",
                                       "profiles",    "enterprises", "tariffs", "alerts", NULL};
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        if (strncmp(config_setting_name(s), "profiles_", 9) == 0)
            continue;
        const char *name = config_setting_name(s);
        if (cfg_in_list(name, keys))
            continue;
        const char *best = cfg_closest(name, keys);
        if (best)
            return cfg_fail(ld, s, "unknown setting '%s' (did you mean '%s'?)", name, best);
        return cfg_fail(ld, s,
                        "unknown setting '%s' (top-level settings: gateway, storage, mqtt, "
                        "buses, profiles, profiles_*, enterprises, tariffs)",
                        name);
    }
    return 0;
}

int config_load(const char *path, struct config **ret, char *err, size_t errlen)
{
    struct ld ld = {.path = path, .err = err, .errlen = errlen};
    struct config *cfg = NULL;
    char *text = NULL;
    config_t lc;
    int r;

    if (err && errlen)
        err[0] = '\0';
    r = cfg_preprocess(&ld, &text);
    if (r < 0)
        return r;

    config_init(&lc);
    if (!config_read_string(&lc, text)) {
        const char *f = config_error_file(&lc);
        r = cfg_fail_at(&ld, f ? f : path, config_error_line(&lc) > 0 ? config_error_line(&lc) : 1,
                        "%s", config_error_text(&lc));
        goto out_destroy;
    }

    cfg = xcalloc(1, sizeof *cfg);
    cfg->path = xstrdup(path);
    const config_setting_t *root = config_root_setting(&lc);
    if ((r = check_top_keys(&ld, root)) || (r = cfg_parse_gateway(&ld, root, cfg)) ||
        (r = cfg_parse_storage(&ld, root, cfg)) || (r = cfg_parse_mqtt(&ld, root, cfg)) ||
        (r = cfg_parse_buses(&ld, root, cfg)) || (r = cfg_parse_profiles(&ld, root, cfg)) ||
        (r = cfg_parse_enterprises(&ld, root, cfg)) || (r = cfg_parse_tariffs(&ld, root, cfg)) ||
        (r = cfg_parse_alerts(&ld, root, cfg)))
        goto out_free_cfg;

    *ret = cfg;
    cfg = NULL;
    r = 0;
out_free_cfg:
    config_free(cfg);
out_destroy:
    config_destroy(&lc);
    free(text);
    return r;
}

static void free_profile(struct cfg_profile *p)
{
    for (size_t i = 0; i < p->n_points; i++)
        free(p->points[i].name);
    free(p->points);
    for (size_t i = 0; i < p->n_alarms; i++) {
        free(p->alarms[i].name);
        free(p->alarms[i].hours);
    }
    free(p->alarms);
    free(p->name);
    free(p->file);
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_buses; i++) {
        free(cfg->buses[i].name);
        free(cfg->buses[i].host);
        free(cfg->buses[i].device);
    }
    free(cfg->buses);
    for (size_t i = 0; i < cfg->n_profiles; i++)
        free_profile(&cfg->profiles[i]);
    free(cfg->profiles);
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        struct cfg_enterprise *ent = &cfg->enterprises[e];
        for (size_t i = 0; i < ent->n_meters; i++) {
            free(ent->meters[i].id);
            free(ent->meters[i].address);
            for (size_t k = 0; k < ent->meters[i].n_alarm_overrides; k++)
                free(ent->meters[i].alarm_overrides[k].hours);
            free(ent->meters[i].alarm_overrides);
        }
        free(ent->meters);
        free(ent->id);
        free(ent->name);
    }
    free(cfg->enterprises);
    for (size_t t = 0; t < cfg->n_tariffs; t++) {
        struct cfg_tariff *tf = &cfg->tariffs[t];
        for (size_t b = 0; b < tf->n_bands; b++) {
            free(tf->bands[b].name);
            free(tf->bands[b].hours);
        }
        free(tf->bands);
        free(tf->currency);
        free(tf->valid_from);
        cfg_free_tariff_charges(tf);
    }
    free(cfg->tariffs);
    free(cfg->tls.ca_file);
    free(cfg->tls.cert_file);
    free(cfg->tls.key_file);
    free(cfg->mqtt_uri);
    free(cfg->mqtt_client_id);
    free(cfg->mqtt_username);
    free(cfg->mqtt_password_file);
    cfg_free_http(cfg);
    free(cfg->ha_prefix);
    cfg_free_alerts(cfg);
    if (cfg->mqtt_password) {
        /* Do not leave the broker password in freed heap memory. */
        explicit_bzero(cfg->mqtt_password, strlen(cfg->mqtt_password));
        free(cfg->mqtt_password);
    }
    free(cfg->topic_prefix);
    free(cfg->storage_path);
    free(cfg->gateway_id);
    free(cfg->timezone);
    free(cfg->log_level);
    free(cfg->path);
    free(cfg);
}

const struct cfg_enterprise *config_find_enterprise(const struct config *cfg, const char *s)
{
    /* Ids first: an id never matches another enterprise's name by accident. */
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        if (strcmp(cfg->enterprises[e].id, s) == 0)
            return &cfg->enterprises[e];
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        if (cfg->enterprises[e].name && strcmp(cfg->enterprises[e].name, s) == 0)
            return &cfg->enterprises[e];
    return NULL;
}

struct cfg_meter *config_find_meter(const struct config *cfg, const char *ent_slash_meter)
{
    const char *slash = strchr(ent_slash_meter, '/');
    if (!slash)
        return NULL;
    size_t elen = (size_t)(slash - ent_slash_meter);
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        struct cfg_enterprise *ent = &cfg->enterprises[e];
        if (strlen(ent->id) != elen || strncmp(ent->id, ent_slash_meter, elen) != 0)
            continue;
        for (size_t i = 0; i < ent->n_meters; i++)
            if (strcmp(ent->meters[i].id, slash + 1) == 0)
                return &ent->meters[i];
        return NULL;
    }
    return NULL;
}

double config_points_per_second(const struct config *cfg)
{
    double pps = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            pps += (double)cfg->profiles[m->profile].n_points / (m->interval > 0 ? m->interval : 1);
        }
    return pps;
}

size_t config_count_meters(const struct config *cfg)
{
    size_t n = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        n += cfg->enterprises[e].n_meters;
    return n;
}
