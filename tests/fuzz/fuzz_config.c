/*
 * fuzz_config.c - libFuzzer target for the config loader: the input is a
 * whole config file (libconfig text with @include lines), written to a file
 * next to a "profiles" link to the real profile directory so includes of
 * the shipped profiles resolve. Invariant: config_load either fails with a
 * message or returns a config whose indices all point inside their arrays.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "config/config.h"
#include "common/log.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char cfg_path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char link[128];
    snprintf(link, sizeof(link), "%s/profiles", fz_tmpdir());
    if (symlink(PARKGW_SOURCE_DIR "/config/profiles", link) < 0 && errno != EEXIST)
        abort();
    setenv("PARKGW_PROFILE_DIR", PARKGW_SOURCE_DIR "/config", 1);
    snprintf(cfg_path, sizeof(cfg_path), "%s/fuzz.cfg", fz_tmpdir());
    log_set_level(LOG_LVL_ERR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *cfg = NULL;
    char err[1024];
    fz_write(cfg_path, data, size);
    err[0] = 0;
    int r = config_load(cfg_path, &cfg, err, sizeof(err));
    if (r < 0) {
        /* Every refusal says why. */
        if (!err[0] || cfg)
            abort();
        return 0;
    }
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            if (m->bus < 0 || (size_t)m->bus >= cfg->n_buses || m->profile < 0 ||
                (size_t)m->profile >= cfg->n_profiles || m->interval < 1 ||
                m->enterprise != &cfg->enterprises[e])
                abort();
            char key[512];
            snprintf(key, sizeof(key), "%s/%s", cfg->enterprises[e].id, m->id);
            if (strlen(key) < sizeof(key) - 1 && config_find_meter(cfg, key) != m)
                abort();
        }
    for (size_t p = 0; p < cfg->n_profiles; p++) {
        const struct cfg_profile *prof = &cfg->profiles[p];
        for (size_t a = 0; a < prof->n_alarms; a++)
            if (prof->alarms[a].point < 0 || (size_t)prof->alarms[a].point >= prof->n_points)
                abort();
        for (size_t i = 0; i < prof->n_points; i++) {
            const struct cfg_point *pt = &prof->points[i];
            /* A Modbus point has a function code; a DL/T 645 / CJ/T 188
             * point a place in its data item's reply. */
            if (prof->protocol == PROTO_MODBUS ? pt->fc < 1 || pt->fc > 4 || pt->data_len
                                               : pt->data_len < 1 || pt->data_offset < 0 ||
                                                     pt->data_offset + pt->data_len > 255)
                abort();
        }
    }
    config_free(cfg);
    return 0;
}
