/*
 * meterlog.h - a meter's life in the database (table meter_history,
 * docs/STORAGE.md "Meter history"): the PT/CT ratios in force from an
 * instant on and the replacements of the meter (the old meter's final dial
 * reading, the new one's initial). Bills split a meter's period at these
 * records (engine/statement.c); nothing done later (a reload, a config edit)
 * rewrites what was in force before. Written by `parkgw meter` and by the
 * daemon at a (re)load whose ratios differ from the last record; read by
 * bill, check and `meter history`. Takes the store's connection (store_db()).
 *
 * Also here: the instant from which the billing counters' samples are dial
 * readings (before PT x CT). Databases from before schema 6 stored them
 * multiplied; the migration notes when it ran (meta.dial_since), and a
 * reader divides the older samples by the multiplier then in force.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;

/* The migration step (schema 5 -> 6): the table, its index, and
 * meta.dial_since = now when the database holds points already. Never edit
 * it: databases in the field ran it. */
#define METERLOG_SCHEMA_V6                                                                       \
    "CREATE TABLE meter_history("                                                               \
    "  id INTEGER PRIMARY KEY,"                                                                 \
    "  enterprise TEXT NOT NULL,"                                                               \
    "  meter TEXT NOT NULL,"                                                                    \
    "  ts INTEGER NOT NULL,"                                                                    \
    "  kind TEXT NOT NULL,"                                                                     \
    "  pt_ratio REAL NOT NULL,"                                                                 \
    "  ct_ratio REAL NOT NULL,"                                                                 \
    "  final REAL,"                                                                             \
    "  initial REAL,"                                                                           \
    "  source TEXT NOT NULL,"                                                                   \
    "  recorded INTEGER NOT NULL) STRICT;"                                                      \
    "CREATE INDEX meter_history_meter ON meter_history(enterprise, meter, ts);"                  \
    "INSERT INTO meta(key, value) SELECT 'dial_since',"                                         \
    "  CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"                            \
    "  WHERE EXISTS (SELECT 1 FROM points);"

enum meterlog_kind {
    METERLOG_INITIAL, /* the ratios found in the config when the history began */
    METERLOG_RATIO,   /* a ratio change from ts on */
    METERLOG_REPLACE  /* the meter replaced at ts */
};

/* One record. For every kind pt/ct are the ratios in force from ts on (a
 * replacement keeps those before it). final/initial: replacements only. */
struct meterlog_rec {
    int64_t id;
    int64_t ts;             /* Unix ms */
    enum meterlog_kind kind;
    double pt, ct;
    double final_dial, initial_dial;
    int64_t recorded;       /* when it was written (Unix ms) */
    char source[16];        /* "config" (first start), "reload", "meter" (the command) */
};

/* A meter's records, oldest first (by ts, then id). */
struct meterlog_list {
    struct meterlog_rec *v;
    size_t n;
};

/* The kind's name in the table and in output ("initial", "ratio",
 * "replace"). */
const char *meterlog_kind_name(enum meterlog_kind k);

/* Reads the records of ENT/METER into *ret (free with meterlog_list_free;
 * n = 0 when none). 0 or -EIO. */
int meterlog_read(sqlite3 *db, const char *enterprise, const char *meter,
                  struct meterlog_list *ret);
void meterlog_list_free(struct meterlog_list *l);

/* Appends a record for ENT/METER (rec->id and rec->recorded ignored: the
 * row's own, and now). 0 and *ret_id when not NULL, or -ENOSPC/-EBUSY/-EIO.
 * Inside the caller's transaction if one is open. */
int meterlog_add(sqlite3 *db, const char *enterprise, const char *meter,
                 const struct meterlog_rec *rec, int64_t *ret_id);

/* The record in force at ts: the last with rec.ts <= ts, NULL when none. */
const struct meterlog_rec *meterlog_at(const struct meterlog_list *l, int64_t ts);
/* The last record (NULL when none). */
const struct meterlog_rec *meterlog_last(const struct meterlog_list *l);

/* The instant from which billing samples are dial readings: 0 and *ret
 * (INT64_MIN when the database was created dial-first), or -EIO. */
int meterlog_dial_since(sqlite3 *db, int64_t *ret);
