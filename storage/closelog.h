/*
 * closelog.h - closed billing periods (tables closed_statement, closed_row;
 * docs/STORAGE.md "Closed periods"): `bill --close` stores the statement of
 * [from, to) as printed in each format, and per row the figures it billed
 * (a meter's consumption and amount for a period, adjustment rows for an
 * earlier closed period included). A later bill of that period prints the
 * stored text; the statement of the period that follows a closed one adds
 * adjustment rows for whatever changed since (engine/statement.c). Takes
 * the store's connection (store_db()).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;

/* The migration step (schema 6 -> 7). Never edit it. */
#define CLOSELOG_SCHEMA_V7                                                                       \
    "CREATE TABLE closed_statement("                                                            \
    "  id INTEGER PRIMARY KEY,"                                                                 \
    "  from_ts INTEGER NOT NULL,"                                                               \
    "  to_ts INTEGER NOT NULL,"                                                                 \
    "  closed_at INTEGER NOT NULL,"                                                             \
    "  out_table TEXT NOT NULL,"                                                                \
    "  out_csv TEXT NOT NULL,"                                                                  \
    "  out_json TEXT NOT NULL,"                                                                 \
    "  UNIQUE(from_ts, to_ts)) STRICT;"                                                         \
    "CREATE TABLE closed_row("                                                                  \
    "  close_id INTEGER NOT NULL,"                                                              \
    "  enterprise TEXT NOT NULL,"                                                               \
    "  meter TEXT NOT NULL,"                                                                    \
    "  ref_from INTEGER NOT NULL,"                                                              \
    "  ref_to INTEGER NOT NULL,"                                                                \
    "  consumption REAL NOT NULL,"                                                              \
    "  amount REAL NOT NULL) STRICT;"                                                           \
    "CREATE INDEX closed_row_ref ON closed_row(enterprise, meter, ref_from, ref_to);"

/* The stored texts of a closed statement, in the order of enum
 * statement_format (engine/statement_out.h): table, csv, json. */
#define CLOSELOG_FORMATS 3

/* A figure a closed statement billed: ENT/METER's consumption and amount
 * (rounded to cents) for the period [ref_from, ref_to). */
struct closelog_row {
    const char *enterprise, *meter;
    int64_t ref_from, ref_to;
    double consumption, amount;
};

/* The closed period exactly [from, to): 0 (*ret_text, when not NULL, gets
 * a malloc'd copy of the text of format f), -ENOENT, or -EIO. */
int closelog_find(sqlite3 *db, int64_t from, int64_t to, int f, char **ret_text);
/* A closed period overlapping [from, to) other than exactly it: 0 and its
 * bounds, -ENOENT, -EIO. */
int closelog_overlap(sqlite3 *db, int64_t from, int64_t to, int64_t *ret_from, int64_t *ret_to);
/* The closed period ending at ts: 0 and its start, -ENOENT, -EIO. */
int closelog_ending_at(sqlite3 *db, int64_t ts, int64_t *ret_from);
/* What closed statements billed for ENT/METER over [ref_from, ref_to) (its
 * own row and every adjustment closed since): 0 and the sums (0 when
 * none), or -EIO. */
int closelog_booked(sqlite3 *db, const char *enterprise, const char *meter, int64_t ref_from,
                    int64_t ref_to, double *ret_consumption, double *ret_amount);
/* Stores a closed statement in one transaction: the texts and the rows.
 * 0, -EEXIST (already closed), -ENOSPC, -EBUSY, -EIO. */
int closelog_add(sqlite3 *db, int64_t from, int64_t to, const char *const text[CLOSELOG_FORMATS],
                 const struct closelog_row *rows, size_t n);
