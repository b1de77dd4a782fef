/*
 * writer.h - the writer thread: pollers hand it batches of samples and
 * durable messages through a bounded queue (never blocking), it commits one
 * SQLite transaction per drained group: the samples, the outbox rows of the
 * messages, and the summaries those samples close (engine/summary.h). On a
 * full disk or I/O error it logs, counts, keeps a bounded backlog in memory
 * and retries.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "storage/store.h"

struct writer;

struct writer_stats {
    uint64_t batches_committed;
    uint64_t samples_committed;
    uint64_t batches_dropped;   /* queue full */
    uint64_t commit_errors;     /* ENOSPC/EIO */
    uint64_t queue_len;         /* samples (and messages, 1 each) not yet committed */
    int64_t last_commit_mono_ms; /* progress marker for the watchdog */
    uint64_t msgs_committed;    /* outbox rows written: messages and summaries */
    uint64_t msgs_dropped;      /* writer_submit_msg refused (queue full) */
    uint64_t outbox_dropped;    /* oldest outbox rows dropped by the bound */
    int64_t outbox_last_seq;    /* seq of the last outbox row written, 0 = none yet */
    int64_t lock_wait_max_ms;   /* longest wait for the write lock (another process) */
};

/* Starts the thread on an open store (the writer uses it exclusively until
 * writer_stop). max_queued: bound on queued samples. 0 and *ret, or -errno. */
int writer_start(struct store *st, size_t max_queued, struct writer **ret);

/* Queues a copy of samples[0..n). Never blocks on SQLite. 0 or -EAGAIN when
 * the queue is full (the batch is dropped and counted). Thread-safe. */
int writer_submit(struct writer *w, const struct sample *samples, size_t n);

/*
 * Queues a durable message (a summary or an event) for the outbox: it is
 * written in the same transaction as the samples queued before it, and the
 * publisher sends it with the "seq" the outbox assigned. payload is a JSON
 * object without "seq"; topic and payload are copied. 0 or -EAGAIN.
 */
int writer_submit_msg(struct writer *w, const char *topic, const char *payload, int qos,
                      bool retain);

/*
 * Hands the writer a summary engine (ownership passes; a previous one is
 * freed). The thread loads its state from the store, feeds it every
 * committed sample and writes the summaries it closes, with the samples,
 * into the outbox. NULL: no summaries. Thread-safe.
 */
struct summary;
void writer_set_summary(struct writer *w, struct summary *sum);

/* The outbox bound (outbox_max_messages; <= 0: none; default 1000000):
 * past it each commit drops the oldest rows, counted and logged. */
void writer_set_outbox_max(struct writer *w, long max);

/* Called from the writer thread, without locks held, after each commit
 * that wrote outbox rows (the publisher wakes up). NULL: none. Set it before
 * messages flow. */
void writer_set_outbox_notify(struct writer *w, void (*fn)(void *ctx), void *ctx);

/* Commits everything queued (and the summaries then due), stops the thread
 * and frees w (and its summary engine). 0, or -EIO when queued samples or
 * messages could not be written (the store refused them at the stop, or its
 * file was gone): the daemon then exits with a failure. */
int writer_stop(struct writer *w);

void writer_get_stats(struct writer *w, struct writer_stats *ret);

/* 0 while the database file is in place; -ENOENT (unlinked or renamed
 * away) or -ESTALE (replaced) once the writer noticed it was not (before
 * each commit and every second, store_check_file): the thread has then
 * stopped without writing into it, and the daemon must stop with a
 * failure. Thread-safe. */
int writer_file_lost(struct writer *w);

/* Changes the bound on queued samples (a reload with more meters); samples
 * already queued stay. */
void writer_set_max_queued(struct writer *w, size_t max_queued);

/* Commit window: at most one transaction per 'ms' (0, the default: commit
 * as soon as anything is queued), unless 10000 samples are waiting or the
 * writer is stopping. Every commit writes WAL frames of its own for the
 * pages it touches (the right edge of the staged table, the outbox), so
 * gathering the polls of a window into one commit divides the bytes written
 * to disk (bench_ingest -s -c: 494 -> 97 bytes per sample at 100 meters x
 * 15 points with a 1 s window). max_queued must hold a window's worth of
 * samples. */
void writer_set_commit_interval(struct writer *w, int64_t ms);

/* Test hook: while paused the thread takes nothing from the queue (it still
 * updates last_commit_mono_ms), so a test can fill the queue to its bound.
 * writer_stop unpauses. */
void writer_pause_for_test(struct writer *w, bool paused);
