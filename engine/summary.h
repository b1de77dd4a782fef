/*
 * summary.h - per-enterprise and park summaries (P/ENT/summary, P/summary)
 * every summary_interval, computed in the writer thread from the samples it
 * commits, so the summary rows go into the outbox in the same transaction as
 * the data they summarise. Pure computation: the store (storage/store.h)
 * gives the state at start (store_latest: the last billing reading of every
 * meter; store_summary_next_from: the next interval to publish) and keeps
 * the next interval with each batch of summaries.
 *
 * The rules (docs/MQTT.md repeats them for operators):
 *  - Intervals [from, to) are aligned to multiples of summary_interval since
 *    the Unix epoch (for 60 s: every minute at :00), like the polls.
 *  - Consumption: each billing counter delta (billing.h's rules: wrap-around
 *    added back, a reset or a spike above max_rate counts 0) is spread
 *    uniformly over the time between its two readings and split across the
 *    intervals it covers. A share that arrives after its interval was
 *    published counts in the oldest interval not yet published, so the
 *    summaries add up to the counters' total. On a new database the first
 *    interval is the current one, from each meter's first reading.
 *  - Electricity kw_avg: per meter, the mean of its `power_kw` gauge samples
 *    in the interval; a meter whose profile has no such gauge (or that sent
 *    none in the interval) counts kWh / interval hours. The enterprise's and
 *    the park's kw_avg are the sums over their meters.
 *  - kw_max: the largest total of every meter's latest `power_kw` reading
 *    taken after each power reading inside the interval (coincident demand,
 *    sample and hold; the total held when the interval opened if no reading
 *    lands in it), plus the kw_avg of meters without the gauge; never below
 *    kw_avg.
 *  - An interval is published once every meter sent a billing reading at or
 *    after its end, or when a meter's own poll interval plus the grace
 *    (2.5 s) has passed since the end without one (down or slow meters do
 *    not hold the others back for longer).
 *  - meters_ok / meters_down (park summary): a meter is ok when its last
 *    billing reading is at most two of its poll intervals (at least two
 *    summary intervals) older than the interval's end.
 *  - After a restart the saved state (summary_save_state) is restored and
 *    the readings stored after it are counted again, so nothing counted
 *    before a stop or a kill -9 is lost; the downtime's intervals are
 *    published with the consumption across the gap spread over them. More
 *    than SUMMARY_MAX_CATCHUP intervals behind, publishing resumes
 *    SUMMARY_MAX_CATCHUP - 1 intervals back and the first of them takes the
 *    older consumption.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "storage/store.h"

#define SUMMARY_GRACE_MS 2500
#define SUMMARY_MAX_CATCHUP 1440

struct summary;

/* One message to queue: topic and payload (JSON object without "seq"),
 * both malloc'd; free with summary_msgs_free. */
struct summary_msg {
    char *topic;
    char *payload;
};

/*
 * A summary engine for cfg (only read here: it may be freed after). point_ids[meter][point]
 * are the store ids of every meter's points in config order (as the daemon
 * registers them); topic_base is "<prefix>/<gw>" (copied). 0 and *ret, or
 * -EINVAL (summary_interval < 1).
 */
int summary_new(const struct config *cfg, uint32_t *const *point_ids, const char *topic_base,
                struct summary **ret);
void summary_free(struct summary *s);

/*
 * Picks up exactly where the last run stopped: the saved state (open
 * intervals, each counter's last accounted reading), then every billing
 * reading stored after it, fed again (st is used by the calling thread
 * only). now: Unix ms. Without a saved state the current interval is the
 * first, counted from each meter's first reading in it. More than
 * SUMMARY_MAX_CATCHUP intervals behind, the oldest kept interval takes the
 * consumption of the older ones. 0 or -errno.
 */
int summary_load(struct summary *s, struct store *st, int64_t now);

/* Feeds committed samples (any order within a batch; points that are not a
 * billing counter or a power gauge are ignored). */
void summary_add(struct summary *s, const struct sample *samples, size_t n);

/* The counter_reset events (P/events, payload without "seq") that
 * summary_add found since the last call: a billing counter that dropped
 * without wrapping. *ret is malloc'd (summary_msgs_free). Returns the count. */
size_t summary_take_events(struct summary *s, struct summary_msg **ret);

/*
 * The clocks now: wall (Unix ms) and monotonic (ms). Called before every
 * summary_add and summary_due. A change of their difference by
 * SUMMARY_CLOCK_STEP_MS or more is a step of the wall clock (NTP's first
 * sync, an operator's date -s): it is logged, and the open intervals move
 * with it by whole intervals (each counter's last reading by the step), so
 * a step forward publishes no empty intervals for the time skipped and a
 * step back neither holds summaries back nor lumps consumption.
 */
#define SUMMARY_CLOCK_STEP_MS 1000
void summary_set_clock(struct summary *s, int64_t real_ms, int64_t mono_ms);

/* True when at least one interval is ready to publish at now (Unix ms). */
bool summary_due(const struct summary *s, int64_t now);

/*
 * Closes every interval ready at now: for each, one message per enterprise
 * in config order, then the park's. *ret is a malloc'd array (NULL when
 * none) the caller frees with summary_msgs_free. Returns the count.
 */
size_t summary_flush(struct summary *s, int64_t now, struct summary_msg **ret);
void summary_msgs_free(struct summary_msg *msgs, size_t n);

/* Stores the state (the open intervals' consumption, each counter's last
 * reading, the next interval to publish) inside the caller's write
 * transaction on st. The writer calls it with every batch of published
 * intervals, when summary_save_wanted (after a load) and at a clean stop;
 * what is committed between two saves is replayed from the stored readings
 * by summary_load. 0 or -errno. */
int summary_save_state(struct summary *s, struct store *st);
bool summary_save_wanted(const struct summary *s);

/* The start of the oldest interval not yet published (Unix ms). */
int64_t summary_next_from(const struct summary *s);

/*
 * Transaction support: summary_checkpoint remembers the state before a batch
 * is fed; summary_rollback returns to it when the batch's transaction failed
 * (it will be fed again on the retry).
 */
void summary_checkpoint(struct summary *s);
void summary_rollback(struct summary *s);

/* Test hook: the grace after an interval's end (default SUMMARY_GRACE_MS). */
void summary_set_grace_for_test(struct summary *s, int64_t ms);
