/*
 * meterhist.c - the config's ratios against the meter history
 * (meterhist.h).
 */
#include "engine/meterhist.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "storage/meterlog.h"

bool meterhist_scaled(const struct config *cfg, const struct cfg_meter *m)
{
    int bp = profile_billing_point(&cfg->profiles[m->profile]);
    return bp >= 0 && cfg->profiles[m->profile].points[bp].ratio != RATIO_NONE;
}

static double mult_of(const struct config *cfg, const struct cfg_meter *m, double pt, double ct)
{
    const struct cfg_profile *prof = &cfg->profiles[m->profile];
    return point_ratio_factor(&prof->points[profile_billing_point(prof)], pt, ct);
}

static int add_initial(sqlite3 *db, const struct cfg_enterprise *ent, const struct cfg_meter *m,
                       const char *source)
{
    struct meterlog_rec rec = {.ts = 0, .kind = METERLOG_INITIAL, .pt = m->pt_ratio,
                               .ct = m->ct_ratio};
    snprintf(rec.source, sizeof(rec.source), "%s", source);
    return meterlog_add(db, ent->id, m->id, &rec, NULL);
}

int meterhist_ensure_initial(sqlite3 *db, const struct cfg_enterprise *ent,
                             const struct cfg_meter *m)
{
    struct meterlog_list h;
    int r = meterlog_read(db, ent->id, m->id, &h);
    if (r < 0)
        return r;
    if (h.n == 0)
        r = add_initial(db, ent, m, "config");
    meterlog_list_free(&h);
    return r;
}

int meterhist_sync(sqlite3 *db, const struct config *cfg, int64_t now, const char *source,
                   bool dry_run, struct meterhist_change **ret, size_t *ret_n)
{
    struct meterhist_change *v = NULL;
    size_t n = 0, cap = 0;
    int r = 0;

    if (!dry_run && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return -EBUSY;
    for (size_t e = 0; e < cfg->n_enterprises && r == 0; e++) {
        const struct cfg_enterprise *ent = &cfg->enterprises[e];
        for (size_t i = 0; i < ent->n_meters && r == 0; i++) {
            const struct cfg_meter *m = &ent->meters[i];
            if (!meterhist_scaled(cfg, m))
                continue;
            struct meterlog_list h;
            if ((r = meterlog_read(db, ent->id, m->id, &h)) < 0)
                break;
            const struct meterlog_rec *last = meterlog_last(&h);
            if (!last) {
                if (!dry_run)
                    r = add_initial(db, ent, m, "config");
            } else if (last->pt != m->pt_ratio || last->ct != m->ct_ratio) {
                v = xgrow(v, &cap, n + 1, sizeof(*v));
                v[n++] = (struct meterhist_change){
                    .ent = ent, .m = m,
                    .old_pt = last->pt, .old_ct = last->ct,
                    .old_mult = mult_of(cfg, m, last->pt, last->ct),
                    .pt = m->pt_ratio, .ct = m->ct_ratio,
                    .mult = mult_of(cfg, m, m->pt_ratio, m->ct_ratio)};
                if (!dry_run) {
                    /* never before the last record: history stays in order */
                    struct meterlog_rec rec = {.ts = now > last->ts ? now : last->ts + 1,
                                               .kind = METERLOG_RATIO,
                                               .pt = m->pt_ratio, .ct = m->ct_ratio};
                    snprintf(rec.source, sizeof(rec.source), "%s", source);
                    r = meterlog_add(db, ent->id, m->id, &rec, NULL);
                }
            }
            meterlog_list_free(&h);
        }
    }
    if (!dry_run) {
        if (r == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            r = -EIO;
        if (r < 0)
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (r < 0) {
        free(v);
        return r;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}
