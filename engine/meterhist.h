/*
 * meterhist.h - the configuration's PT/CT ratios against each meter's
 * history (storage/meterlog.h): what a (re)load records. A meter whose
 * billing counter is scaled by PT/CT and has no history gets an "initial"
 * record (the config's ratios, in force since ever: what the samples
 * stored before were multiplied by); one whose config ratios differ from
 * the last record gets a "ratio" record at the load's instant, never
 * backdated. Used by the daemon (start and SIGHUP), by `check` (what a
 * reload would record) and by `meter` (the initial record before its own).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct sqlite3 sqlite3;

/* A ratio change a load records (or would record). Strings point into cfg. */
struct meterhist_change {
    const struct cfg_enterprise *ent;
    const struct cfg_meter *m;
    double old_pt, old_ct, old_mult;
    double pt, ct, mult;
};

/* Whether meter m's billing counter is scaled by its PT/CT ratios. */
bool meterhist_scaled(const struct config *cfg, const struct cfg_meter *m);

/* Compares cfg with the history in db (read-only is enough with dry_run)
 * and, unless dry_run, writes the records described above (one transaction;
 * source names the writer: "start", "reload"). The changes (not the initial
 * records) go to *ret (free()), *ret_n of them. 0; -ENOSPC, -EBUSY, -EIO. */
int meterhist_sync(sqlite3 *db, const struct config *cfg, int64_t now, const char *source,
                   bool dry_run, struct meterhist_change **ret, size_t *ret_n);

/* Writes the initial record of meter m of enterprise ent when it has no
 * history (the config's ratios since ever). 0 or -ENOSPC/-EBUSY/-EIO. */
int meterhist_ensure_initial(sqlite3 *db, const struct cfg_enterprise *ent,
                             const struct cfg_meter *m);
