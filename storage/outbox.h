/*
 * outbox.h - the durable outbox: MQTT messages (summaries, events) kept in
 * the SQLite table `outbox` until the broker acknowledged them. The writer
 * adds rows inside its own transaction (outbox_attach on the store's
 * connection); the publisher opens a second connection (outbox_open) to
 * fetch rows in seq order and delete them on PUBACK. seq is per gateway,
 * strictly increasing and never reused, even after the table emptied.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;
struct outbox;

struct outbox_msg {
    int64_t seq;
    char *topic;
    char *payload;    /* JSON object as stored, without "seq" */
    int qos;
    bool retain;
    int64_t created;  /* Unix ms */
};

/* Prepares the outbox statements on an open connection whose schema is
 * already migrated (store_db()). The connection stays the caller's. 0 and
 * *ret, or -EIO. */
int outbox_attach(sqlite3 *db, struct outbox **ret);

/* Opens a connection of its own to the store at path (created and migrated
 * by the daemon's store_open first). 0 and *ret, or -errno (-ENOENT, -EIO);
 * the reason goes to err. */
int outbox_open(const char *path, struct outbox **ret, char *err, size_t errlen);

/* Finalizes the statements and, for outbox_open handles, closes the
 * connection. NULL is a no-op. */
void outbox_free(struct outbox *ob);

/*
 * Appends a message; the caller holds a write transaction (store_begin) on
 * the connection, so the row commits or rolls back with it. seq is one above
 * the highest ever assigned (kept in meta.outbox_seq). 0 and *ret_seq, or
 * -ENOSPC/-EBUSY/-EIO.
 */
int outbox_add(struct outbox *ob, const char *topic, const char *payload, int qos, bool retain,
               int64_t created, int64_t *ret_seq);

/*
 * Deletes the oldest rows until at most max remain (max <= 0: no bound), in
 * the caller's transaction. Also adds the count to meta.outbox_dropped.
 * 0 and *ret_dropped (rows deleted now), or -errno.
 */
int outbox_trim(struct outbox *ob, int64_t max, int64_t *ret_dropped);

/* Up to max rows with seq > after, in seq order, into *ret (caller frees
 * with outbox_msgs_free). 0 and *ret_n, or -EIO/-EBUSY. */
int outbox_fetch(struct outbox *ob, int64_t after, size_t max, struct outbox_msg **ret,
                 size_t *ret_n);
void outbox_msgs_free(struct outbox_msg *msgs, size_t n);

/* Deletes the rows with the given seqs in one transaction of its own
 * (missing rows are fine: trimmed or deleted before). 0 or -errno. */
int outbox_delete(struct outbox *ob, const int64_t *seqs, size_t n);

struct outbox_stats {
    int64_t rows;        /* messages waiting */
    int64_t oldest_seq;  /* 0 when empty */
    int64_t last_seq;    /* highest seq ever assigned, 0 = none */
    int64_t dropped;     /* dropped by outbox_trim over the database's life */
};
/* 0 and *ret, or -errno. Read-only; any handle. */
int outbox_stats(struct outbox *ob, struct outbox_stats *ret);

/*
 * Gives a message its seq for the wire: payload is a JSON object; returns a
 * malloc'd copy with "seq":N as its first member ("{}" becomes
 * {"seq":N}). A payload that is not an object is returned as a copy.
 */
char *outbox_payload_with_seq(const char *payload, int64_t seq);
