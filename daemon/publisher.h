/*
 * publisher.h - the outbox publisher: a thread that drains the SQLite
 * outbox (storage/outbox.h) through MQTT in seq order, QoS as stored, with
 * "seq" put into each payload. A row is deleted only after the broker
 * acknowledged it; a publish that failed or was in flight when the link
 * dropped is sent again (from the lowest such seq, so the stream stays in
 * order; consumers drop duplicates by seq). At most 'window' messages are in
 * flight and at most 'rate' per second leave, so a backlog after an outage
 * drains at a bounded pace beside the live values the pollers publish.
 * A message an MQTT 5 broker refuses (PUBACK reason code >= 0x80) keeps its
 * row, is logged once per topic and sent again alone with backoff (1 s
 * doubling to 60 s); the messages after it wait, so seq stays in order.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct mqtt;
struct publisher;

#define PUBLISHER_WINDOW 100
#define PUBLISHER_RATE 500.0

struct publisher_opts {
    int window;     /* messages in flight (awaiting PUBACK); default PUBLISHER_WINDOW */
    double rate;    /* messages per second; <= 0: no limit; default PUBLISHER_RATE */
};

struct publisher_stats {
    uint64_t sent;        /* publishes handed to MQTT, resends included */
    uint64_t acked;       /* acknowledged by the broker */
    uint64_t failed;      /* reported lost (link dropped or Paho gave up) */
    uint64_t rewinds;     /* times the stream restarted from a lost seq */
    uint64_t deleted;     /* rows deleted after their acknowledgement */
    int64_t last_acked_seq;
    int64_t cursor;       /* highest seq handed to MQTT in the current pass */
    uint64_t refused;     /* refused by the broker (MQTT 5 PUBACK reason code >= 0x80) */
    int64_t blocked_seq;  /* the refused message the stream waits behind, 0: none */
    bool link_up;
};

/*
 * Opens its own connection to the store at db_path (created by the daemon's
 * store_open before) and starts the thread, which publishes through m while
 * m is connected. opts may be NULL (defaults). m must outlive the publisher.
 * 0 and *ret, or -errno with a log line.
 */
int publisher_start(const char *db_path, struct mqtt *m, const struct publisher_opts *opts,
                    struct publisher **ret);

/* New rows were committed: look now instead of at the next poll. Safe from
 * any thread; the signature fits writer_set_outbox_notify. */
void publisher_kick(void *p);

/* Stops the thread (rows not yet acknowledged stay in the outbox for the
 * next run), deletes the rows acknowledged so far, frees p. NULL: no-op. */
void publisher_stop(struct publisher *p);

void publisher_get_stats(struct publisher *p, struct publisher_stats *ret);
