/*
 * alertq.h - the durable queue of alert deliveries (docs/OPERATOR.md
 * "Alerts"): the meter and bus events of P/events (alarm raised/cleared,
 * comm lost/restored, bus down/restored), copied by an SQL trigger from the
 * outbox row that carries them to MQTT, so they commit in the same
 * transaction as the event and survive a restart or a broker outage. Each
 * webhook target keeps its own cursor (the last event id it delivered);
 * events every cursor has passed are pruned. The table and trigger exist
 * only while alerts are configured (alertq_install).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;
struct alertq;

/* With on: creates the table, the cursor table and the trigger when absent;
 * without: drops the trigger and forgets queued events (no target left to
 * deliver them). On the store's connection, before the writer starts.
 * 0 or -EIO. */
int alertq_install(sqlite3 *db, bool on);

/* A connection of its own to the store at path (installed first). 0 and
 * *ret, or -errno with the reason in err. */
int alertq_open(const char *path, struct alertq **ret, char *err, size_t errlen);
void alertq_free(struct alertq *q);

struct alertq_event {
    int64_t id;       /* increasing */
    char *payload;    /* the event's JSON as in the outbox (no seq) */
    int64_t created;  /* Unix ms */
};

/* Up to max events with id > after, oldest first, into *ret (free with
 * alertq_events_free). 0 and *ret_n, or -EIO/-EBUSY. */
int alertq_fetch(struct alertq *q, int64_t after, size_t max, struct alertq_event **ret,
                 size_t *ret_n);
void alertq_events_free(struct alertq_event *ev, size_t n);

/* Target's cursor; a target seen for the first time starts at the newest
 * event (it is not sent the history from before it was configured). */
int alertq_cursor(struct alertq *q, const char *target, int64_t *ret);
/* Moves target's cursor to id. 0 or -EIO/-EBUSY. */
int alertq_set_cursor(struct alertq *q, const char *target, int64_t id);
/* Deletes the events every listed target has passed, and the cursors of
 * targets no longer listed. 0 or -errno. */
int alertq_prune(struct alertq *q, const char *const *targets, size_t n);
/* Events waiting for target (after its cursor). */
int alertq_backlog(struct alertq *q, const char *target, int64_t *ret);

/*
 * Held messages: the rate limit keeps the latest event of a meter ('key')
 * for a target until the meter's interval has passed, and counts the ones
 * it replaced. Kept in the database so a restart sends it too.
 */
struct alertq_held {
    char *key;
    struct alertq_event ev;
    int suppressed;
};
/* Holds event id for (target, key), replacing an earlier one. */
int alertq_hold(struct alertq *q, const char *target, const char *key, int64_t event_id,
                int suppressed);
/* The held messages of target, with their events (free with alertq_held_free). */
int alertq_held_list(struct alertq *q, const char *target, struct alertq_held **ret,
                     size_t *ret_n);
void alertq_held_free(struct alertq_held *h, size_t n);
/* Forgets the held message of (target, key). */
int alertq_release(struct alertq *q, const char *target, const char *key);
