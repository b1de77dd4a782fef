/*
 * alerter.c - webhook delivery of outage alerts (see alerter.h).
 */
#include "daemon/alerter.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "protocols/webhook.h"
#include "storage/alertq.h"

/* Events read per target and turn. */
#define ALERTER_BATCH 20
/* Retry delays while a target fails: doubling from the first to the cap. */
#define ALERTER_BACKOFF_MIN_MS 1000
#define ALERTER_BACKOFF_MAX_MS 300000
/* How often the queue is looked at when idle, and pruned. */
#define ALERTER_TICK_MS 500
#define ALERTER_PRUNE_MS 60000

/* When a target last sent a message about a meter (in memory: after a
 * restart the first message of each meter goes at once). */
struct sent {
    char *key;
    int64_t at;     /* monotonic ms */
};

struct target {
    const struct cfg_webhook *w;
    int64_t cursor;
    int64_t next_try;     /* monotonic ms */
    int64_t backoff_ms;
    bool failing;
    struct sent *sent;
    size_t n_sent, cap_sent;
};

struct alerter {
    const struct config *cfg;
    struct alertq *q;
    struct target *t;
    size_t n;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

static struct sent *sent_of(struct target *t, const char *key)
{
    for (size_t i = 0; i < t->n_sent; i++)
        if (strcmp(t->sent[i].key, key) == 0)
            return &t->sent[i];
    t->sent = xgrow(t->sent, &t->cap_sent, t->n_sent + 1, sizeof(*t->sent));
    t->sent[t->n_sent] = (struct sent){.key = xstrdup(key), .at = INT64_MIN / 2};
    return &t->sent[t->n_sent++];
}

/* The rate limit's key of an event: "ENT/METER", or "bus:NAME". */
static void event_key(json_t *ev, char *buf, size_t len)
{
    const char *ent = json_string_value(json_object_get(ev, "enterprise"));
    const char *met = json_string_value(json_object_get(ev, "meter"));
    if (ent && met)
        snprintf(buf, len, "%s/%s", ent, met);
    else
        snprintf(buf, len, "bus:%s", json_string_value(json_object_get(ev, "bus"))
                                         ? json_string_value(json_object_get(ev, "bus"))
                                         : "-");
}

static bool wants(const struct cfg_webhook *w, const char *kind)
{
    for (size_t i = 0; kind && i < w->n_events; i++)
        if (strcmp(w->events[i], kind) == 0)
            return true;
    return false;
}

static const char *enterprise_name(const struct config *cfg, const char *id)
{
    for (size_t e = 0; id && e < cfg->n_enterprises; e++)
        if (strcmp(cfg->enterprises[e].id, id) == 0)
            return cfg->enterprises[e].name;
    return NULL;
}

/* POSTs event ev (id) to t. 0 or -errno (logged once per failing spell;
 * the target then waits its backoff). */
static int deliver(struct alerter *a, struct target *t, const struct alertq_event *ev,
                   int suppressed)
{
    json_t *j = json_loads(ev->payload, 0, NULL);
    char id[128], err[512];
    snprintf(id, sizeof(id), "%s-%lld", a->cfg->gateway_id, (long long)ev->id);
    struct webhook_alert al = {
        .id = id,
        .gateway = a->cfg->gateway_id,
        .event = ev->payload,
        .enterprise_name = enterprise_name(a->cfg, json_string_value(json_object_get(j, "enterprise"))),
        .suppressed = suppressed,
    };
    json_decref(j);
    char *body = webhook_body(t->w->format, &al);
    if (!body)
        return 0; /* not an event object: nothing anyone could be sent */
    /* A signed DingTalk URL is valid for an hour: signed again per try. */
    char *url = t->w->secret ? webhook_dingtalk_sign(t->w->url, t->w->secret, now_real_ms())
                             : xstrdup(t->w->url);
    int r = webhook_post(url, t->w->format, body, id, t->w->timeout_ms, err, sizeof(err));
    free(url);
    free(body);
    int64_t now = now_mono_ms();
    if (r < 0) {
        if (!t->failing)
            log_warn("alerts: webhook %s: %s; retrying with backoff (events are kept)", t->w->name,
                     err);
        t->failing = true;
        t->next_try = now + t->backoff_ms;
        t->backoff_ms = t->backoff_ms * 2 > ALERTER_BACKOFF_MAX_MS ? ALERTER_BACKOFF_MAX_MS
                                                                   : t->backoff_ms * 2;
        return r;
    }
    if (t->failing)
        log_notice("alerts: webhook %s reachable again", t->w->name);
    else
        log_info("alerts: webhook %s: sent %s", t->w->name, id);
    t->failing = false;
    t->backoff_ms = ALERTER_BACKOFF_MIN_MS;
    return 0;
}

/* Held messages whose meter's interval has passed go out. */
static int flush_held(struct alerter *a, struct target *t)
{
    struct alertq_held *h;
    size_t n;
    if (alertq_held_list(a->q, t->w->name, &h, &n) < 0)
        return -EIO;
    int r = 0;
    int64_t now = now_mono_ms();
    for (size_t i = 0; i < n && r == 0; i++) {
        struct sent *s = sent_of(t, h[i].key);
        if (now - s->at < (int64_t)t->w->min_interval * 1000)
            continue;
        r = deliver(a, t, &h[i].ev, h[i].suppressed);
        if (r == 0) {
            s->at = now;
            alertq_release(a->q, t->w->name, h[i].key);
        }
    }
    alertq_held_free(h, n);
    return r;
}

/* One turn for a target: held messages, then the events after its cursor.
 * Returns whether it did something (the caller loops without waiting). */
static bool turn(struct alerter *a, struct target *t)
{
    if (now_mono_ms() < t->next_try || flush_held(a, t) < 0)
        return false;
    struct alertq_event *ev;
    size_t n;
    if (alertq_fetch(a->q, t->cursor, ALERTER_BATCH, &ev, &n) < 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_loads(ev[i].payload, 0, NULL);
        const char *kind = webhook_event_kind(json_string_value(json_object_get(j, "type")),
                                              json_string_value(json_object_get(j, "alarm")));
        char key[300];
        event_key(j, key, sizeof(key));
        int r = 0;
        log_debug("alerts: webhook %s: event %lld (%s, %s)%s", t->w->name, (long long)ev[i].id,
                  kind ? kind : "-", key, wants(t->w, kind) ? "" : ": not wanted");
        if (wants(t->w, kind)) {
            struct sent *s = sent_of(t, key);
            int64_t now = now_mono_ms();
            if (now - s->at < (int64_t)t->w->min_interval * 1000) {
                /* Within the meter's interval: keep only the latest. */
                struct alertq_held *h;
                size_t nh;
                int supp = 0;
                if (alertq_held_list(a->q, t->w->name, &h, &nh) == 0) {
                    for (size_t k = 0; k < nh; k++)
                        if (strcmp(h[k].key, key) == 0)
                            supp = h[k].suppressed + 1;
                    alertq_held_free(h, nh);
                }
                r = alertq_hold(a->q, t->w->name, key, ev[i].id, supp);
            } else if ((r = deliver(a, t, &ev[i], 0)) == 0) {
                s->at = now;
            }
        }
        json_decref(j); /* kind pointed into it */
        if (r < 0 || alertq_set_cursor(a->q, t->w->name, ev[i].id) < 0)
            break;
        t->cursor = ev[i].id;
    }
    alertq_events_free(ev, n);
    return n > 0 && !t->failing;
}

static void *alerter_thread(void *arg)
{
    struct alerter *a = arg;
    int64_t last_prune = 0;
    const char **names = xcalloc(a->n, sizeof(char *));
    for (size_t i = 0; i < a->n; i++)
        names[i] = a->t[i].w->name;
    pthread_mutex_lock(&a->lock);
    while (!a->stop) {
        pthread_mutex_unlock(&a->lock);
        bool busy = false;
        for (size_t i = 0; i < a->n; i++)
            busy |= turn(a, &a->t[i]);
        if (now_mono_ms() - last_prune >= ALERTER_PRUNE_MS) {
            last_prune = now_mono_ms();
            alertq_prune(a->q, names, a->n);
        }
        pthread_mutex_lock(&a->lock);
        if (!busy && !a->stop) {
            struct timespec ts = mono_deadline(ALERTER_TICK_MS);
            pthread_cond_timedwait(&a->wake, &a->lock, &ts);
        }
    }
    pthread_mutex_unlock(&a->lock);
    free(names);
    return NULL;
}

int alerter_start(const struct config *cfg, struct alerter **ret)
{
    char err[512];
    *ret = NULL;
    if (!cfg->n_webhooks)
        return 0;
    struct alerter *a = xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    int r = alertq_open(cfg->storage_path, &a->q, err, sizeof(err));
    if (r < 0) {
        log_err("alerts: %s", err);
        free(a);
        return r;
    }
    a->n = cfg->n_webhooks;
    a->t = xcalloc(a->n, sizeof(*a->t));
    for (size_t i = 0; i < a->n; i++) {
        struct target *t = &a->t[i];
        t->w = &cfg->webhooks[i];
        t->backoff_ms = ALERTER_BACKOFF_MIN_MS;
        if ((r = alertq_cursor(a->q, t->w->name, &t->cursor)) < 0) {
            log_err("alerts: cannot read the cursor of webhook %s", t->w->name);
            alertq_free(a->q);
            free(a->t);
            free(a);
            return r;
        }
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->wake, &ca);
    pthread_condattr_destroy(&ca);
    r = -pthread_create(&a->thread, NULL, alerter_thread, a);
    if (r < 0) {
        log_err("alerts: cannot start the thread: %s", strerror(-r));
        pthread_cond_destroy(&a->wake);
        pthread_mutex_destroy(&a->lock);
        alertq_free(a->q);
        free(a->t);
        free(a);
        return r;
    }
    log_info("alerts: %zu webhook(s)", a->n);
    *ret = a;
    return 0;
}

void alerter_stop(struct alerter *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    for (size_t i = 0; i < a->n; i++) {
        for (size_t k = 0; k < a->t[i].n_sent; k++)
            free(a->t[i].sent[k].key);
        free(a->t[i].sent);
    }
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    alertq_free(a->q);
    free(a->t);
    free(a);
}
