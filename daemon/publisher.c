/*
 * publisher.c - the outbox publisher behind publisher.h. One thread, its own
 * SQLite connection (WAL: it reads and deletes beside the writer), a fixed
 * table of in-flight slots that Paho's callbacks fill in, a token bucket for
 * the rate and a batch of acknowledged seqs deleted in one transaction. No
 * lock of this module is held across an MQTT call: Paho calls back into it
 * with its own mutex held.
 */
#include "daemon/publisher.h"
#include "common/log.h"
#include "common/util.h"
#include "protocols/mqtt.h"
#include "storage/outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Without a kick the outbox is looked at this often. */
#define PUB_IDLE_MS 1000
/* Acknowledged rows are deleted in batches: at this many, or this long
 * after the first one waiting. */
#define PUB_DELETE_BATCH 256
#define PUB_DELETE_MS 200
/* After a lost publish, wait this long before sending again (a failing
 * Paho must not turn into a hot loop). */
#define PUB_RESEND_DELAY_MS 1000
/* At a clean stop, how long to wait for PUBACKs of messages in flight, so
 * rows the broker already has are not sent again by the next run. */
#define PUB_STOP_DRAIN_MS 2000
/* A message the broker refused (MQTT 5 PUBACK reason code >= 0x80, e.g. an
 * ACL's "not authorized") is sent again alone after this delay, doubling up
 * to the maximum, until the broker takes it; the stream waits behind it so
 * consumers still see seq in order. */
#define PUB_REFUSE_MIN_MS 1000
#define PUB_REFUSE_MAX_MS 60000
/* Topics whose refusal was logged (once each, until accepted again). */
#define PUB_REFUSED_TOPICS 64

struct slot {
    struct publisher *p;
    bool used;
    int result;        /* 0 pending, 1 delivered, -1 lost, 2 refused (set by the callback) */
    int reason;        /* the refusal's MQTT 5 reason code */
    int64_t seq;
    uint64_t gen;      /* pass it was sent in */
    char *topic;       /* owned while used */
};

struct publisher {
    struct mqtt *m;
    struct outbox *ob;
    int window;
    double rate;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;

    /* Under mu: */
    bool stop;
    bool draining;             /* stopping: send nothing new, collect acks */
    bool kicked;
    bool link_up;
    bool link_new;             /* a (re)connect since the thread last looked */
    struct slot *slots;        /* [window]; result written by callbacks */
    struct publisher_stats stats;
    int64_t blocked_seq;       /* a refused message: sent alone until taken (0: none) */
    int64_t refuse_backoff_ms;
    char *refused_topics[PUB_REFUSED_TOPICS];   /* refusal logged, not yet accepted */
    size_t n_refused_topics;

    /* Thread only: */
    int64_t cursor;            /* rows up to here were handed to MQTT in this pass */
    uint64_t gen;
    double tokens;
    int64_t tokens_at;         /* monotonic ms of the last refill */
    int64_t *dels;
    size_t n_dels, cap_dels;
    int64_t dels_since;        /* monotonic ms of the oldest waiting delete */
    int64_t resend_at;         /* no publish before this (after a loss) */
    bool delete_failing;
    bool backlog_logged;
    int64_t drain_started;
};

static void pub_done(void *ctx, int outcome)
{
    struct slot *s = ctx;
    struct publisher *p = s->p;
    pthread_mutex_lock(&p->mu);
    s->result = outcome == MQTT_DELIVERED ? 1 : outcome == MQTT_LOST ? -1 : 2;
    s->reason = outcome > 0 ? outcome : 0;
    p->kicked = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

static void pub_link(void *ctx, bool up)
{
    struct publisher *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->link_up = up;
    p->stats.link_up = up;
    if (up)
        p->link_new = true;
    p->kicked = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

void publisher_kick(void *arg)
{
    struct publisher *p = arg;
    pthread_mutex_lock(&p->mu);
    p->kicked = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

static void pub_wait(struct publisher *p, int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = mono_deadline(ms);
    pthread_cond_timedwait(&p->wake, &p->mu, &ts);
}

/* Deletes the acknowledged rows waiting; kept for the next try on failure
 * (they would only be sent once more after a restart). Without mu. */
static void pub_flush_deletes(struct publisher *p)
{
    if (p->n_dels == 0)
        return;
    int r = outbox_delete(p->ob, p->dels, p->n_dels);
    if (r < 0) {
        if (!p->delete_failing)
            log_err("outbox: cannot delete %zu acknowledged messages: %s; retrying", p->n_dels,
                    strerror(-r));
        p->delete_failing = true;
        p->dels_since = now_mono_ms();
        return;
    }
    if (p->delete_failing)
        log_notice("outbox: deleting acknowledged messages works again");
    p->delete_failing = false;
    pthread_mutex_lock(&p->mu);
    p->stats.deleted += p->n_dels;
    pthread_mutex_unlock(&p->mu);
    p->n_dels = 0;
}

/* Index of topic among the topics whose refusal was logged, or -1. */
static int pub_refused_find(const struct publisher *p, const char *topic)
{
    for (size_t i = 0; i < p->n_refused_topics; i++)
        if (strcmp(p->refused_topics[i], topic) == 0)
            return (int)i;
    return -1;
}

/* A refusal: logged once per topic (until the topic is accepted again), at
 * debug after that. Called with mu. */
static void pub_note_refused(struct publisher *p, const struct slot *s)
{
    if (pub_refused_find(p, s->topic) >= 0) {
        log_debug("outbox: seq %" PRId64 " on %s refused again: %s (0x%02X)", s->seq, s->topic,
                  mqtt_reason_str(s->reason), s->reason);
        return;
    }
    log_err("outbox: the broker refused the message on %s (seq %" PRId64 "): %s (MQTT 5 reason "
            "code 0x%02X); it stays in the outbox and is sent again with backoff up to %d s, "
            "the messages after it wait; check the broker's ACL for this client",
            s->topic, s->seq, mqtt_reason_str(s->reason), s->reason, PUB_REFUSE_MAX_MS / 1000);
    if (p->n_refused_topics < PUB_REFUSED_TOPICS)
        p->refused_topics[p->n_refused_topics++] = xstrdup(s->topic);
}

/* A topic that was refused is accepted again. Called with mu. */
static void pub_note_accepted(struct publisher *p, const char *topic)
{
    int i = pub_refused_find(p, topic);
    if (i < 0)
        return;
    log_notice("outbox: the broker accepts messages on %s again (%" PRIu64
               " refusals so far in this run)",
               topic, p->stats.refused);
    free(p->refused_topics[i]);
    p->refused_topics[i] = p->refused_topics[--p->n_refused_topics];
}

/* Collects the callbacks' results: delivered rows to delete; a loss in the
 * current pass restarts the stream at the lowest lost seq; a refusal does
 * too, and blocks the stream behind it (sent alone, with backoff) until the
 * broker takes it. Called with mu. */
static void pub_collect(struct publisher *p)
{
    int64_t rewind_to = 0, refused = 0;
    for (int i = 0; i < p->window; i++) {
        struct slot *s = &p->slots[i];
        if (!s->used || s->result == 0)
            continue;
        if (s->result == 1) {
            if (p->n_dels == 0)
                p->dels_since = now_mono_ms();
            p->dels = xgrow(p->dels, &p->cap_dels, p->n_dels + 1, sizeof(*p->dels));
            p->dels[p->n_dels++] = s->seq;
            p->stats.acked++;
            if (s->seq > p->stats.last_acked_seq)
                p->stats.last_acked_seq = s->seq;
            if (s->seq == p->blocked_seq) {
                p->blocked_seq = 0;
                p->refuse_backoff_ms = 0;
            }
            if (p->n_refused_topics)
                pub_note_accepted(p, s->topic);
        } else {
            if (s->result == 2) {
                p->stats.refused++;
                pub_note_refused(p, s);
                if (refused == 0 || s->seq < refused)
                    refused = s->seq;
            } else {
                p->stats.failed++;
            }
            /* A loss from an earlier pass was already resent from lower. */
            if (s->gen == p->gen && (rewind_to == 0 || s->seq < rewind_to))
                rewind_to = s->seq;
        }
        free(s->topic);
        s->topic = NULL;
        s->used = false;
        s->result = 0;
    }
    int64_t delay = PUB_RESEND_DELAY_MS;
    if (refused > 0) {
        if (p->blocked_seq == 0 || refused < p->blocked_seq)
            p->blocked_seq = refused;
        p->refuse_backoff_ms = p->refuse_backoff_ms == 0 ? PUB_REFUSE_MIN_MS
                               : p->refuse_backoff_ms * 2 > PUB_REFUSE_MAX_MS
                                   ? PUB_REFUSE_MAX_MS
                                   : p->refuse_backoff_ms * 2;
        delay = p->refuse_backoff_ms;
        p->resend_at = now_mono_ms() + delay;
    }
    if (rewind_to > 0 && rewind_to <= p->cursor) {
        p->cursor = rewind_to - 1;
        p->gen++;
        p->stats.rewinds++;
        p->resend_at = now_mono_ms() + delay;
    }
    p->stats.cursor = p->cursor;
    p->stats.blocked_seq = p->blocked_seq;
}

static int pub_free_slots(const struct publisher *p)
{
    int n = 0;
    for (int i = 0; i < p->window; i++)
        n += !p->slots[i].used;
    return n;
}

/* Messages handed to MQTT whose PUBACK (or loss) has not come yet. Under mu. */
static int pub_in_flight(const struct publisher *p)
{
    int n = 0;
    for (int i = 0; i < p->window; i++)
        n += p->slots[i].used && p->slots[i].result == 0;
    return n;
}

static struct slot *pub_take_slot(struct publisher *p)
{
    for (int i = 0; i < p->window; i++)
        if (!p->slots[i].used)
            return &p->slots[i];
    return NULL;
}

static void pub_refill(struct publisher *p, int64_t now)
{
    if (p->rate <= 0) {
        p->tokens = p->window;
        return;
    }
    p->tokens += (double)(now - p->tokens_at) * p->rate / 1000.0;
    if (p->tokens > p->window)
        p->tokens = p->window;
    p->tokens_at = now;
}

/* Logs the backlog at the start of a drain and when it is gone. Without mu. */
static void pub_log_backlog(struct publisher *p, size_t fetched, size_t asked)
{
    if (!p->backlog_logged && fetched == asked && asked >= (size_t)p->window / 2) {
        struct outbox_stats st;
        if (outbox_stats(p->ob, &st) == 0 && st.rows > p->window) {
            log_info("outbox: draining a backlog of %" PRId64 " messages (window %d, %.0f/s)",
                     st.rows, p->window, p->rate);
            p->backlog_logged = true;
            p->drain_started = now_mono_ms();
        }
    } else if (p->backlog_logged && fetched < asked) {
        log_info("outbox: backlog drained in %.1f s",
                 (double)(now_mono_ms() - p->drain_started) / 1000.0);
        p->backlog_logged = false;
    }
}

/* One round of publishing: fetch what the window and the rate allow after
 * the cursor and hand it to MQTT. Returns ms until the next round is useful
 * (0: at once). Without mu. */
static int64_t pub_send_round(struct publisher *p, int free_slots)
{
    int64_t now = now_mono_ms();
    pub_refill(p, now);
    int allowed = (int)p->tokens;
    if (allowed > free_slots)
        allowed = free_slots;
    pthread_mutex_lock(&p->mu);
    bool blocked = p->blocked_seq != 0;
    pthread_mutex_unlock(&p->mu);
    if (blocked) {
        /* Behind a refusal: its message alone, nothing after it in flight. */
        if (free_slots < p->window)
            return PUB_IDLE_MS;
        if (allowed > 1)
            allowed = 1;
    }
    if (allowed <= 0)
        return free_slots <= 0 ? PUB_IDLE_MS
                               : (int64_t)((1.0 - (p->tokens - (int)p->tokens)) * 1000.0 / p->rate) + 1;

    struct outbox_msg *msgs = NULL;
    size_t n = 0;
    int r = outbox_fetch(p->ob, p->cursor, (size_t)allowed, &msgs, &n);
    if (r < 0) {
        log_err("outbox: cannot read the outbox: %s; retrying", strerror(-r));
        return PUB_IDLE_MS;
    }
    pub_log_backlog(p, n, (size_t)allowed);
    int64_t next = n == (size_t)allowed ? 0 : PUB_IDLE_MS;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&p->mu);
        struct slot *s = pub_take_slot(p);
        s->used = true;
        s->result = 0;
        s->seq = msgs[i].seq;
        s->gen = p->gen;
        s->topic = xstrdup(msgs[i].topic);
        pthread_mutex_unlock(&p->mu);

        char *payload = outbox_payload_with_seq(msgs[i].payload, msgs[i].seq);
        r = mqtt_publish_acked(p->m, msgs[i].topic, payload, strlen(payload), msgs[i].qos,
                               msgs[i].retain, pub_done, s);
        free(payload);
        pthread_mutex_lock(&p->mu);
        if (r < 0) {
            /* Not accepted (link down, Paho's queue full): no callback will
             * come; the row is fetched again from the cursor later. */
            s->used = false;
            free(s->topic);
            s->topic = NULL;
            pthread_mutex_unlock(&p->mu);
            next = PUB_IDLE_MS / 10;
            break;
        }
        p->cursor = msgs[i].seq;
        p->stats.sent++;
        p->stats.cursor = p->cursor;
        p->tokens -= 1;
        pthread_mutex_unlock(&p->mu);
    }
    outbox_msgs_free(msgs, n);
    return next;
}

static void *pub_thread(void *arg)
{
    struct publisher *p = arg;
    int64_t next_round = 0;

    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pub_collect(p);
        int64_t now = now_mono_ms();
        bool link = p->link_up && !p->draining;
        int free_slots = pub_free_slots(p);
        bool kicked = p->kicked;
        p->kicked = false;
        if (p->link_new) {
            /* A new connection (a broker restarted with a new ACL, say):
             * what waits behind a refusal is tried at once. */
            p->link_new = false;
            p->refuse_backoff_ms = 0;
            p->resend_at = 0;
        }
        pthread_mutex_unlock(&p->mu);

        if (p->n_dels >= PUB_DELETE_BATCH ||
            (p->n_dels && now - p->dels_since >= PUB_DELETE_MS))
            pub_flush_deletes(p);

        int64_t wait = PUB_IDLE_MS;
        if (link && now >= p->resend_at && (kicked || now >= next_round)) {
            wait = pub_send_round(p, free_slots);
            next_round = now_mono_ms() + wait;
        } else if (link && now < p->resend_at) {
            wait = p->resend_at - now;
        } else if (link) {
            wait = next_round - now;
        }
        if (p->n_dels) {
            int64_t del_due = p->dels_since + PUB_DELETE_MS - now_mono_ms();
            if (del_due < wait)
                wait = del_due;
        }

        pthread_mutex_lock(&p->mu);
        if (!p->stop && !p->kicked && wait > 0)
            pub_wait(p, wait);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int publisher_start(const char *db_path, struct mqtt *m, const struct publisher_opts *opts,
                    struct publisher **ret)
{
    struct publisher *p;
    pthread_condattr_t ca;
    sigset_t all, old;
    char err[512] = "";
    int r;

    p = xcalloc(1, sizeof(*p));
    p->m = m;
    p->window = opts && opts->window > 0 ? opts->window : PUBLISHER_WINDOW;
    p->rate = opts ? opts->rate : PUBLISHER_RATE;
    p->slots = xcalloc((size_t)p->window, sizeof(*p->slots));
    for (int i = 0; i < p->window; i++)
        p->slots[i].p = p;
    p->tokens = p->window;
    p->tokens_at = now_mono_ms();
    r = outbox_open(db_path, &p->ob, err, sizeof(err));
    if (r < 0) {
        log_err("outbox: %s", err);
        free(p->slots);
        free(p);
        return r;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);

    struct mqtt_stats ms;
    mqtt_get_stats(m, &ms);
    p->link_up = ms.connected;
    p->stats.link_up = ms.connected;
    mqtt_set_link_callback(m, pub_link, p);
    /* A connect between the stats read and the callback being set would
     * be missed: read again. */
    mqtt_get_stats(m, &ms);
    if (ms.connected)
        pub_link(p, true);

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = -pthread_create(&p->thread, NULL, pub_thread, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) {
        log_err("outbox: cannot start the publisher thread: %s", strerror(-r));
        mqtt_set_link_callback(m, NULL, NULL);
        outbox_free(p->ob);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
        free(p->slots);
        free(p);
        return r;
    }
    *ret = p;
    return 0;
}

void publisher_stop(struct publisher *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->draining = true;
    int64_t end = now_mono_ms() + PUB_STOP_DRAIN_MS;
    while (p->link_up && pub_in_flight(p) > 0 && now_mono_ms() < end)
        pub_wait(p, 50);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);

    /* From here on Paho calls nothing of ours; what was acknowledged up to
     * now is deleted, the rest is sent again by the next run. */
    mqtt_set_link_callback(p->m, NULL, NULL);
    mqtt_cancel_acked(p->m, pub_done);
    pthread_mutex_lock(&p->mu);
    pub_collect(p);
    pthread_mutex_unlock(&p->mu);
    pub_flush_deletes(p);

    outbox_free(p->ob);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->dels);
    for (int i = 0; i < p->window; i++)
        free(p->slots[i].topic);
    for (size_t i = 0; i < p->n_refused_topics; i++)
        free(p->refused_topics[i]);
    free(p->slots);
    free(p);
}

void publisher_get_stats(struct publisher *p, struct publisher_stats *ret)
{
    pthread_mutex_lock(&p->mu);
    *ret = p->stats;
    pthread_mutex_unlock(&p->mu);
}
