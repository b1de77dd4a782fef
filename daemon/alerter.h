/*
 * alerter.h - delivers outage alerts to the configured webhooks
 * (docs/OPERATOR.md "Alerts"): one thread reads the durable alert queue
 * (storage/alertq.h, filled in the writer's transactions from the events of
 * P/events), POSTs each event a target wants (protocols/webhook.h), retries
 * with exponential backoff while a target is unreachable, keeps one cursor
 * per target in the database (at-least-once: a message may come twice
 * after a crash, never not at all; its id tells), and rate-limits each
 * meter per target (the latest state is sent when its interval has passed).
 */
#pragma once

struct config;
struct alerter;

/* Starts delivering for cfg's webhooks (cfg must outlive the alerter; none
 * configured: *ret = NULL and 0). The queue must be installed
 * (alertq_install) on the database. 0 or -errno (logged). */
int alerter_start(const struct config *cfg, struct alerter **ret);

/* Stops the thread (a POST in flight ends within its timeout). NULL is a
 * no-op. */
void alerter_stop(struct alerter *a);
