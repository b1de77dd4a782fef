/*
 * writer.c - the writer thread behind writer.h. Pollers queue copies of
 * their sample batches and durable messages (a mutex-protected list, bounded
 * in samples); the thread owns the store and commits whatever is queued as
 * one transaction (group commit) together with the outbox rows of the
 * messages and of the summaries the samples close. A failed group stays in
 * memory and is retried with backoff, so a full disk costs memory up to the
 * bound, never data already queued.
 */
#include "daemon/writer.h"
#include "common/log.h"
#include "engine/summary.h"
#include "common/util.h"
#include "storage/outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Bound on one transaction: keeps a commit (and the WAL growth between
 * checkpoints) short even after a long backlog. */
#define WRITER_MAX_GROUP 10000
#define WRITER_BACKOFF_MIN_MS 1000
#define WRITER_BACKOFF_MAX_MS 30000
/* The thread wakes at least this often, to refresh the progress marker. */
#define WRITER_TICK_MS 1000
#define WRITER_DROP_LOG_MS 10000
#define WRITER_OUTBOX_LOG_MS 60000
#define WRITER_OUTBOX_MAX_DEFAULT 1000000

/* A queued batch of samples (n > 0) or one durable message (msg_topic set;
 * it counts as one sample against the bound). */
struct batch {
    struct batch *next;
    size_t n;
    char *msg_topic;
    char *msg_payload;
    int msg_qos;
    bool msg_retain;
    struct sample s[];
};

static size_t batch_weight(const struct batch *b)
{
    return b->msg_topic ? 1 : b->n;
}

struct writer {
    struct store *st;
    size_t max_queued;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;

    /* Under mu: */
    struct batch *head, *tail;
    size_t queued;              /* samples in the queue plus the group in flight */
    bool stopping;
    bool paused;
    int64_t commit_interval_ms; /* writer_set_commit_interval */
    struct writer_stats stats;
    uint64_t drops_unlogged;    /* batches dropped since the last warning */
    int64_t last_drop_log_ms;   /* 0: never warned */
    struct summary *sum_new;    /* handed over by writer_set_summary, not yet taken */
    bool sum_replace;
    long outbox_max;
    void (*notify)(void *ctx);
    void *notify_ctx;
    int file_lost;              /* store_check_file's error once the file went: writing stopped */
    size_t lost_at_stop;        /* samples and messages a stop could not write */

    /* Thread only: */
    struct sample *buf;
    size_t buf_cap;
    struct outbox *ob;
    struct summary *sum;
    bool sum_loaded;
    uint64_t outbox_drops_unlogged;
    int64_t outbox_drop_log_ms;
};

static void writer_free_list(struct batch *b)
{
    while (b) {
        struct batch *next = b->next;
        free(b->msg_topic);
        free(b->msg_payload);
        free(b);
        b = next;
    }
}

/* Waits on the condvar until woken or 'ms' passed. Called with mu held. */
static void writer_wait(struct writer *w, int64_t ms)
{
    struct timespec ts = mono_deadline(ms);
    pthread_cond_timedwait(&w->wake, &w->mu, &ts);
}

/* Detaches whole batches from the queue head, up to WRITER_MAX_GROUP
 * samples (a larger single batch goes alone). Called with mu held. */
static struct batch *writer_take_group(struct writer *w, size_t *ret_n)
{
    struct batch *first = w->head, *last = NULL, *b = w->head;
    size_t n = 0;

    while (b && (n == 0 || n + batch_weight(b) <= WRITER_MAX_GROUP)) {
        n += batch_weight(b);
        last = b;
        b = b->next;
    }
    w->head = b;
    if (!b)
        w->tail = NULL;
    if (last)
        last->next = NULL;
    *ret_n = n;
    return first;
}

/* Copies a group's samples into the thread's contiguous buffer; returns
 * how many. */
static size_t writer_flatten(struct writer *w, const struct batch *group, size_t n)
{
    size_t off = 0;
    w->buf = xgrow(w->buf, &w->buf_cap, n ? n : 1, sizeof(*w->buf));
    for (const struct batch *b = group; b; b = b->next) {
        if (b->msg_topic)
            continue;
        memcpy(w->buf + off, b->s, b->n * sizeof(*b->s));
        off += b->n;
    }
    return off;
}

/* Result of one commit, for the stats. */
struct commit_out {
    uint64_t msgs;
    int64_t dropped;
    int64_t last_seq;
    int64_t lock_wait_ms;   /* BEGIN IMMEDIATE waiting for another process's write lock */
};

/* Tells the summary engine both clocks, read together: a thread preempted
 * between the two reads (the writer runs at nice 5) must not look like a
 * step of the wall clock, so a pair read more than 50 ms apart is skipped. */
static void writer_summary_clock(struct writer *w)
{
    int64_t m0 = now_mono_ms();
    int64_t real = now_real_ms();
    int64_t m1 = now_mono_ms();
    if (m1 - m0 <= 50)
        summary_set_clock(w->sum, real, m0 + (m1 - m0) / 2);
}

/*
 * One transaction: the group's samples, its messages in queue order, then
 * the summaries that are due, then the outbox bound. On failure everything,
 * the summary engine's state included, is as before the call.
 */
static int writer_commit(struct writer *w, const struct batch *group, size_t n_samples,
                         long outbox_max, struct commit_out *out)
{
    sqlite3 *db = store_db(w->st);
    struct summary_msg *sm = NULL;
    size_t n_sm = 0;
    int r;

    memset(out, 0, sizeof(*out));
    if (!w->ob) {
        r = outbox_attach(db, &w->ob);
        if (r < 0)
            return r;
    }
    int64_t t_begin = now_mono_ms();
    r = store_begin(w->st);
    out->lock_wait_ms = now_mono_ms() - t_begin;
    if (r < 0)
        return r;
    if (w->sum && w->sum_loaded)
        summary_checkpoint(w->sum);
    r = store_add_samples(w->st, w->buf, n_samples);
    if (r < 0)
        goto out_rollback;
    int64_t now = now_real_ms();
    for (const struct batch *b = group; b; b = b->next) {
        if (!b->msg_topic)
            continue;
        r = outbox_add(w->ob, b->msg_topic, b->msg_payload, b->msg_qos, b->msg_retain, now,
                       &out->last_seq);
        if (r < 0)
            goto out_rollback;
        out->msgs++;
    }
    if (w->sum && w->sum_loaded) {
        writer_summary_clock(w);
        summary_add(w->sum, w->buf, n_samples);
        struct summary_msg *ev = NULL;
        size_t n_ev = summary_take_events(w->sum, &ev);
        for (size_t i = 0; i < n_ev && r == 0; i++) {
            r = outbox_add(w->ob, ev[i].topic, ev[i].payload, 1, false, now, &out->last_seq);
            out->msgs += r == 0;
        }
        summary_msgs_free(ev, n_ev);
        if (r < 0)
            goto out_rollback;
        n_sm = summary_flush(w->sum, now, &sm);
        for (size_t i = 0; i < n_sm; i++) {
            r = outbox_add(w->ob, sm[i].topic, sm[i].payload, 1, false, now, &out->last_seq);
            if (r < 0)
                goto out_rollback;
            out->msgs++;
        }
        if (n_sm || summary_save_wanted(w->sum)) {
            r = summary_save_state(w->sum, w->st);
            if (r < 0)
                goto out_rollback;
        }
    }
    if (out->msgs) {
        r = outbox_trim(w->ob, outbox_max, &out->dropped);
        if (r < 0)
            goto out_rollback;
    }
    r = store_commit(w->st);
    if (r < 0)
        goto out_restore;
    summary_msgs_free(sm, n_sm);
    return 0;

out_rollback:
    store_rollback(w->st);
out_restore:
    if (w->sum && w->sum_loaded)
        summary_rollback(w->sum);
    summary_msgs_free(sm, n_sm);
    int64_t waited = out->lock_wait_ms;
    memset(out, 0, sizeof(*out));
    out->lock_wait_ms = waited;
    return r;
}

/* Takes a summary engine handed over by writer_set_summary and loads its
 * state (called by the thread without mu). */
static void writer_load_summary(struct writer *w)
{
    /* A new summary engine (start, reload) starts from a store with nothing
     * staged: the staged rows go into their chunks and the rollups now, in
     * bounded transactions. summary_load's readings (store_latest) come
     * from both tables either way. */
    int r = store_flush_staged(w->st);
    if (r < 0) {
        log_err("storage: cannot move the staged samples of %s before loading the summary "
                "state: %s", store_path(w->st), r == -ENOSPC ? "disk full" : store_errmsg(w->st));
        return;
    }
    r = summary_load(w->sum, w->st, now_real_ms());
    if (r < 0) {
        /* Retried at the next tick; samples committed meanwhile still reach
         * it through the last stored readings. */
        log_err("storage: cannot load the summary state from %s: %s", store_path(w->st),
                strerror(-r));
        return;
    }
    w->sum_loaded = true;
}

static void writer_log_outbox_drops(struct writer *w, long outbox_max, int64_t dropped, bool force)
{
    int64_t now = now_mono_ms();
    w->outbox_drops_unlogged += (uint64_t)dropped;
    if (w->outbox_drops_unlogged == 0)
        return;
    if (!force && w->outbox_drop_log_ms != 0 && now - w->outbox_drop_log_ms < WRITER_OUTBOX_LOG_MS)
        return;
    log_warn("outbox: bound of %ld messages reached (broker unreachable?); dropped the %" PRIu64
             " oldest since the last warning",
             outbox_max, w->outbox_drops_unlogged);
    w->outbox_drops_unlogged = 0;
    w->outbox_drop_log_ms = now;
}

/* Logs the rate-limited queue-full warning if one is due. Called with mu
 * held; returns the count to log (0: nothing due) and resets it. */
static uint64_t writer_drop_log_due(struct writer *w, int64_t now, size_t *ret_bound)
{
    uint64_t n = w->drops_unlogged;
    *ret_bound = w->max_queued;
    if (n == 0 || (w->last_drop_log_ms != 0 && now - w->last_drop_log_ms < WRITER_DROP_LOG_MS))
        return 0;
    w->drops_unlogged = 0;
    w->last_drop_log_ms = now;
    return n;
}

static void writer_log_drops(size_t bound, uint64_t n)
{
    log_warn("storage: write queue full (bound %zu samples); dropped %" PRIu64
             " batch%s since the last warning",
             bound, n, n == 1 ? "" : "es");
}

static void writer_log_failure(const struct writer *w, int r, size_t n)
{
    const char *path = store_path(w->st);
    const char *msg = store_errmsg(w->st);

    if (r == -ENOSPC)
        log_err("storage: disk full writing %zu samples to %s; keeping them in memory and retrying",
                n, path);
    else if (r == -EBUSY)
        log_err("storage: database %s busy (locked by another process) writing %zu samples; "
                "keeping them in memory and retrying",
                path, n);
    else
        log_err("storage: I/O error writing %zu samples to %s (%s); keeping them in memory and "
                "retrying",
                n, path, msg);
}

/* After a commit returned: the debug line tests use to know what is durable
 * (tests/integration/it_crash.c), then the store's housekeeping (raw
 * retention, one small batch when due) between two write transactions. */
static void writer_after_commit(struct writer *w, size_t n_samples)
{
    if (n_samples) {
        int64_t max_ts = w->buf[0].ts;
        for (size_t i = 1; i < n_samples; i++)
            if (w->buf[i].ts > max_ts)
                max_ts = w->buf[i].ts;
        log_debug("storage: committed %zu samples up to ts %" PRId64, n_samples, max_ts);
    }
    int r = store_maintain(w->st, now_real_ms());
    if (r < 0)
        log_warn("storage: housekeeping step (staged move or raw retention) on %s failed (%s); "
                 "retrying later",
                 store_path(w->st), r == -ENOSPC ? "disk full" : store_errmsg(w->st));
}

/* The summary engine's state in a transaction of its own (at a clean stop;
 * a failure only costs the replay at the next start). */
static void writer_save_summary(struct writer *w)
{
    int r = store_begin(w->st);
    if (r == 0) {
        r = summary_save_state(w->sum, w->st);
        if (r == 0)
            r = store_commit(w->st);
        else
            store_rollback(w->st);
    }
    if (r < 0)
        log_warn("storage: cannot save the summary state in %s at stop (%s); the next start "
                 "replays it from the stored readings",
                 store_path(w->st), r == -ENOSPC ? "disk full" : store_errmsg(w->st));
}

/* True (logged once) when the database file was unlinked or replaced under
 * the store: its data would vanish with the last descriptor, so nothing
 * more may be committed into it. *ret_err: store_check_file's error. */
static bool writer_file_gone(struct writer *w, int *ret_err)
{
    int r = store_check_file(w->st);
    if (r != -ENOENT && r != -ESTALE)
        return false;
    log_err("storage: the database file %s was %s while the daemon was running; stopping "
            "without writing into it (a restart opens a fresh database at that path)",
            store_path(w->st),
            r == -ENOENT ? "deleted (or renamed away)" : "replaced by another file");
    *ret_err = r;
    return true;
}

/* The writer's work comes in bursts (a move of a period's staged samples
 * takes seconds of CPU at 100,000 points/s); on a small box the pollers,
 * whose timing is the meters' schedule, should win the CPU meanwhile. The
 * queue absorbs the delay. Linux applies a nice value per thread. */
#define WRITER_NICE 5

static void *writer_thread(void *arg)
{
    struct writer *w = arg;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WRITER_NICE) < 0)
        log_debug("storage: cannot lower the writer thread's priority: %s", strerror(errno));
    struct batch *group = NULL;   /* in flight: taken from the queue, not yet committed */
    size_t group_n = 0;
    int64_t retry_at = 0, backoff = WRITER_BACKOFF_MIN_MS;
    int episode_err = 0;          /* error of the current failure episode, 0: none */
    uint64_t episode_failures = 0;
    int64_t last_take = 0;        /* when the last group was taken */
    bool inflight = false;        /* a group (or a summary-only commit) awaits success */
    int64_t sum_load_at = 0;      /* next attempt to load the summary state */
    int64_t file_check_at = 0;    /* next idle check that the database file is still there */
    int gone = 0;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        int64_t now = now_mono_ms();
        uint64_t drops;
        size_t bound;

        if (w->sum_replace && !inflight) {
            struct summary *old = w->sum;
            w->sum = w->sum_new;
            w->sum_new = NULL;
            w->sum_replace = false;
            w->sum_loaded = false;
            pthread_mutex_unlock(&w->mu);
            summary_free(old);
            pthread_mutex_lock(&w->mu);
        }
        if (w->sum && !w->sum_loaded && !inflight && now >= sum_load_at) {
            pthread_mutex_unlock(&w->mu);
            writer_load_summary(w);
            sum_load_at = now + WRITER_BACKOFF_MIN_MS;
            pthread_mutex_lock(&w->mu);
        }

        if (now >= file_check_at) {
            /* Also while idle, so a deleted file is noticed without a commit. */
            file_check_at = now + WRITER_TICK_MS;
            pthread_mutex_unlock(&w->mu);
            bool lost = writer_file_gone(w, &gone);
            pthread_mutex_lock(&w->mu);
            if (lost)
                break;
        }
        /* Progress marker for the watchdog: the thread is alive and not
         * stuck in SQLite, whether or not there was anything to commit. */
        w->stats.last_commit_mono_ms = now;
        drops = writer_drop_log_due(w, now, &bound);
        if (drops) {
            pthread_mutex_unlock(&w->mu);
            writer_log_drops(bound, drops);
            pthread_mutex_lock(&w->mu);
            continue;
        }

        if (!inflight) {
            int64_t due = last_take + w->commit_interval_ms;
            bool sum_due = false;
            if (w->sum && w->sum_loaded && !w->paused) {
                writer_summary_clock(w);
                sum_due = summary_due(w->sum, now_real_ms());
            }
            if (w->head && !w->paused && !w->stopping && now < due &&
                w->queued < WRITER_MAX_GROUP) {
                /* Inside the commit window: let more batches gather. */
                writer_wait(w, due - now < WRITER_TICK_MS ? due - now : WRITER_TICK_MS);
                continue;
            } else if (w->head && !w->paused) {
                group = writer_take_group(w, &group_n);
                last_take = now;
                inflight = true;
            } else if (sum_due) {
                /* Summaries close on time even when no sample comes. */
                group = NULL;
                group_n = 0;
                inflight = true;
            } else if (w->stopping && !w->head) {
                break;
            } else {
                writer_wait(w, WRITER_TICK_MS);
                continue;
            }
        } else if (!w->stopping && now < retry_at) {
            writer_wait(w, retry_at - now < WRITER_TICK_MS ? retry_at - now : WRITER_TICK_MS);
            continue;
        }
        bool stopping = w->stopping;
        long outbox_max = w->outbox_max;
        void (*notify)(void *ctx) = w->notify;
        void *notify_ctx = w->notify_ctx;
        pthread_mutex_unlock(&w->mu);

        /* Checked before every commit too (a stat per commit). */
        if (writer_file_gone(w, &gone)) {
            pthread_mutex_lock(&w->mu);
            break;
        }
        size_t n_samples = writer_flatten(w, group, group_n);
        struct commit_out co;
        int r = writer_commit(w, group, n_samples, outbox_max, &co);
        if (co.lock_wait_ms > 500)
            log_debug("storage: waited %" PRId64 " ms for the write lock of %s (another process "
                      "writing: an import?)",
                      co.lock_wait_ms, store_path(w->st));
        pthread_mutex_lock(&w->mu);
        if (co.lock_wait_ms > w->stats.lock_wait_max_ms)
            w->stats.lock_wait_max_ms = co.lock_wait_ms;
        pthread_mutex_unlock(&w->mu);

        if (r == 0) {
            size_t nb = 0;
            for (struct batch *b = group; b; b = b->next)
                if (!b->msg_topic)
                    nb++;
            writer_after_commit(w, n_samples);
            writer_free_list(group);
            group = NULL;
            inflight = false;
            if (co.dropped)
                writer_log_outbox_drops(w, outbox_max, co.dropped, false);
            if (co.msgs && notify)
                notify(notify_ctx);
            if (episode_err) {
                log_notice("storage: writing to %s resumed after %" PRIu64 " failed attempt%s",
                           store_path(w->st), episode_failures, episode_failures == 1 ? "" : "s");
                episode_err = 0;
                episode_failures = 0;
            }
            backoff = WRITER_BACKOFF_MIN_MS;
            pthread_mutex_lock(&w->mu);
            w->queued -= group_n;
            w->stats.batches_committed += nb;
            w->stats.samples_committed += n_samples;
            w->stats.msgs_committed += co.msgs;
            w->stats.outbox_dropped += (uint64_t)co.dropped;
            if (co.last_seq)
                w->stats.outbox_last_seq = co.last_seq;
            w->stats.last_commit_mono_ms = now_mono_ms();
            continue;
        }

        /* One log line per episode (or when the kind of error changes);
         * commit_errors counts every failed attempt. */
        if (r != episode_err)
            writer_log_failure(w, r, group_n);
        episode_err = r;
        episode_failures++;
        retry_at = now_mono_ms() + backoff;
        backoff = backoff * 2 > WRITER_BACKOFF_MAX_MS ? WRITER_BACKOFF_MAX_MS : backoff * 2;

        pthread_mutex_lock(&w->mu);
        w->stats.commit_errors++;
        if (stopping) {
            /* Stopping and the store still refuses: waiting forever would
             * hang shutdown (systemd would kill us and lose them anyway). */
            size_t lost = w->queued;
            writer_free_list(group);
            writer_free_list(w->head);
            group = NULL;
            inflight = false;
            w->head = w->tail = NULL;
            w->queued = 0;
            pthread_mutex_unlock(&w->mu);
            log_err("storage: stopping with %zu samples not written to %s (%s)", lost,
                    store_path(w->st), r == -ENOSPC ? "disk full" : store_errmsg(w->st));
            pthread_mutex_lock(&w->mu);
            w->lost_at_stop = lost;
            break;
        }
    }
    if (!gone && w->sum && w->sum_loaded) {
        /* A clean stop: the open intervals and where each counter stands,
         * so the next run publishes them with nothing lost. */
        pthread_mutex_unlock(&w->mu);
        writer_save_summary(w);
        pthread_mutex_lock(&w->mu);
    }
    if (gone) {
        /* What is queued (and the group in flight) cannot be written. */
        w->file_lost = gone;
        size_t lost = w->queued;
        writer_free_list(group);
        writer_free_list(w->head);
        w->head = w->tail = NULL;
        w->queued = 0;
        if (lost)
            log_err("storage: %zu queued samples and messages not written", lost);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void writer_set_max_queued(struct writer *w, size_t max_queued)
{
    pthread_mutex_lock(&w->mu);
    w->max_queued = max_queued;
    pthread_mutex_unlock(&w->mu);
}

int writer_start(struct store *st, size_t max_queued, struct writer **ret)
{
    struct writer *w;
    pthread_condattr_t ca;
    sigset_t all, old;
    int r;

    w = xcalloc(1, sizeof(*w));
    w->st = st;
    /* The daemon's write path: samples are staged (storage/store.h). */
    store_set_staging(st, true);
    w->max_queued = max_queued;
    w->outbox_max = WRITER_OUTBOX_MAX_DEFAULT;
    w->stats.last_commit_mono_ms = now_mono_ms();
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);

    /* Signals belong to the main thread (its handlers set flags its loop
     * reads); the writer thread starts with all of them blocked. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = -pthread_create(&w->thread, NULL, writer_thread, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0)
        goto out_free;
    *ret = w;
    return 0;

out_free:
    store_set_staging(st, false);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return r;
}

int writer_submit(struct writer *w, const struct sample *samples, size_t n)
{
    struct batch *b;
    uint64_t drops = 0;
    size_t bound = 0;
    bool full;

    if (n == 0)
        return 0;
    /* Copy outside the lock: the lock is held only to link the batch. */
    b = xcalloc(1, sizeof(*b) + n * sizeof(*samples));
    b->n = n;
    memcpy(b->s, samples, n * sizeof(*samples));

    pthread_mutex_lock(&w->mu);
    full = n > w->max_queued || w->queued > w->max_queued - n;
    if (full) {
        w->stats.batches_dropped++;
        w->drops_unlogged++;
        drops = writer_drop_log_due(w, now_mono_ms(), &bound);
    } else {
        bool was_empty = !w->head;
        if (w->tail)
            w->tail->next = b;
        else
            w->head = b;
        w->tail = b;
        w->queued += n;
        /* Samples are committed at the end of the commit window, which the
         * writer times itself: wake it only when the queue was empty (it
         * may be idle, waiting a whole tick) or a group is full, not for
         * every meter poll (a futex wake each, ~1.5 % of the CPU at 1,000
         * meters). */
        if (was_empty || w->queued >= WRITER_MAX_GROUP)
            pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);

    if (full) {
        free(b);
        if (drops)
            writer_log_drops(bound, drops);
        return -EAGAIN;
    }
    return 0;
}

int writer_submit_msg(struct writer *w, const char *topic, const char *payload, int qos,
                      bool retain)
{
    struct batch *b;
    bool full;

    if (!topic || !payload || qos < 0 || qos > 2)
        return -EINVAL;
    b = xcalloc(1, sizeof(*b));
    b->msg_topic = xstrdup(topic);
    b->msg_payload = xstrdup(payload);
    b->msg_qos = qos;
    b->msg_retain = retain;

    pthread_mutex_lock(&w->mu);
    full = w->queued >= w->max_queued;
    if (full) {
        w->stats.msgs_dropped++;
    } else {
        if (w->tail)
            w->tail->next = b;
        else
            w->head = b;
        w->tail = b;
        w->queued++;
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);

    if (full) {
        log_err("storage: write queue full; durable message for %s dropped", topic);
        writer_free_list(b);
        return -EAGAIN;
    }
    return 0;
}

void writer_set_summary(struct writer *w, struct summary *sum)
{
    pthread_mutex_lock(&w->mu);
    summary_free(w->sum_new);
    w->sum_new = sum;
    w->sum_replace = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
}

void writer_set_outbox_max(struct writer *w, long max)
{
    pthread_mutex_lock(&w->mu);
    w->outbox_max = max;
    pthread_mutex_unlock(&w->mu);
}

void writer_set_outbox_notify(struct writer *w, void (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&w->mu);
    w->notify = fn;
    w->notify_ctx = ctx;
    pthread_mutex_unlock(&w->mu);
}

int writer_stop(struct writer *w)
{
    uint64_t drops;
    size_t bound;

    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    w->paused = false;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);

    /* The store goes back to its caller complete: what is staged moves
     * into its chunks and the rollups (at most one chunk period of readings),
     * unless its file is gone. */
    int fr = w->file_lost ? 0 : store_flush_staged(w->st);
    if (fr < 0)
        log_warn("storage: cannot move the staged samples of %s at stop (%s); the next start "
                 "moves them", store_path(w->st), fr == -ENOSPC ? "disk full" : store_errmsg(w->st));
    store_set_staging(w->st, false);

    /* Report drops that came after the last warning. */
    w->last_drop_log_ms = 0;
    drops = writer_drop_log_due(w, now_mono_ms(), &bound);
    if (drops)
        writer_log_drops(bound, drops);

    writer_log_outbox_drops(w, w->outbox_max, 0, true);
    writer_free_list(w->head);
    summary_free(w->sum);
    summary_free(w->sum_new);
    outbox_free(w->ob);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w->buf);
    int r = w->lost_at_stop || w->file_lost ? -EIO : 0;
    free(w);
    return r;
}

int writer_file_lost(struct writer *w)
{
    pthread_mutex_lock(&w->mu);
    int r = w->file_lost;
    pthread_mutex_unlock(&w->mu);
    return r;
}

void writer_get_stats(struct writer *w, struct writer_stats *ret)
{
    pthread_mutex_lock(&w->mu);
    *ret = w->stats;
    ret->queue_len = w->queued;
    pthread_mutex_unlock(&w->mu);
}

void writer_set_commit_interval(struct writer *w, int64_t ms)
{
    pthread_mutex_lock(&w->mu);
    w->commit_interval_ms = ms > 0 ? ms : 0;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
}

void writer_pause_for_test(struct writer *w, bool paused)
{
    pthread_mutex_lock(&w->mu);
    w->paused = paused;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
}
