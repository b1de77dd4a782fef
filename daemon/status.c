/*
 * status.c - the status document shared by `parkgw status` and the HTTP
 * listener (see status.h). The database gives what outlives the daemon
 * (last stored reading, open alarms, outbox, size); the daemon's counters
 * (runstate) give what only the running process knows (poll counters, the
 * alarm engine's current view, the last values) and win where both speak.
 */
#include "daemon/status.h"

#include <string.h>

#include "common/util.h"
#include "config/config.h"
#include "storage/alarmlog.h"
#include "storage/outbox.h"
#include "storage/store.h"
#include "version.h"

const char *status_age_state(int64_t age_s, int interval)
{
    if (age_s < 0)
        return "never";
    return age_s <= 3LL * interval + 5 ? "ok" : "stale";
}

static int table_alarm(void *ud, const struct alarmlog_open *o)
{
    json_array_append_new(ud, json_pack("{s:s,s:I}", "alarm", o->alarm, "since",
                                        (json_int_t)o->since));
    return 0;
}

/* Open alarms of meter m (its own and its bus's bus_down) from the alarm
 * history, as [{"alarm","since"}]; al NULL (no history) gives []. */
static json_t *table_alarms(struct alarmlog *al, const struct config *cfg,
                            const struct cfg_meter *m)
{
    json_t *a = json_array();
    if (al)
        alarmlog_each_open_of_meter(al, m->enterprise->id, m->id, cfg->buses[m->bus].name,
                                    table_alarm, a);
    return a;
}

/* The state the open alarms imply: comm_lost (comm_lost, bus_down) before
 * supply_lost (the supply rule only), with the deciding alarm's start in
 * *ret_since; NULL when neither is open. */
static const char *alarms_state(json_t *alarms, json_int_t *ret_since)
{
    const char *state = NULL;
    size_t i;
    json_t *a;
    json_array_foreach(alarms, i, a) {
        const char *name = json_string_value(json_object_get(a, "alarm"));
        if (!name)
            continue;
        if (strcmp(name, "comm_lost") == 0 || strcmp(name, "bus_down") == 0) {
            *ret_since = json_integer_value(json_object_get(a, "since"));
            return "comm_lost";
        }
        /* Only the supply rule makes a meter supply_lost (as the state topic
         * says); low_pressure or phase_loss alone leave it ok. */
        if (strcmp(name, "supply_lost") == 0) {
            *ret_since = json_integer_value(json_object_get(a, "since"));
            state = "supply_lost";
        }
    }
    return state;
}

/* The engine's view from the daemon (rs meter object): its alarm names,
 * each with its start from the table when it is there (the engine keeps one
 * "since" per meter), else the state's. */
static json_t *engine_alarms(json_t *rsm, json_t *table)
{
    json_t *a = json_array(), *name;
    size_t i, k;
    json_int_t since = json_integer_value(json_object_get(rsm, "since"));
    json_array_foreach(json_object_get(rsm, "alarms"), i, name) {
        json_int_t s = since;
        json_t *row;
        json_array_foreach(table, k, row)
            if (json_equal(json_object_get(row, "alarm"), name))
                s = json_integer_value(json_object_get(row, "since"));
        json_array_append_new(a, json_pack("{s:O,s:I}", "alarm", name, "since", s));
    }
    /* comm_lost and bus_down are states of the engine, not alarm names:
     * the table's rows say which and since when. */
    const char *st = json_string_value(json_object_get(rsm, "state"));
    if (st && strcmp(st, "comm_lost") == 0) {
        bool added = false;
        json_t *row;
        json_array_foreach(table, k, row) {
            const char *n = json_string_value(json_object_get(row, "alarm"));
            if (n && (strcmp(n, "comm_lost") == 0 || strcmp(n, "bus_down") == 0)) {
                json_array_append(a, row);
                added = true;
            }
        }
        if (!added)
            json_array_append_new(a, json_pack("{s:s,s:I}", "alarm", "comm_lost", "since", since));
    }
    return a;
}

struct recent_ctx {
    const struct config *cfg;
    json_t *list;
};

static int recent_row(void *ud, const struct alarmlog_row *r)
{
    struct recent_ctx *c = ud;
    const char *name = NULL;
    for (size_t e = 0; r->enterprise[0] && e < c->cfg->n_enterprises; e++)
        if (strcmp(c->cfg->enterprises[e].id, r->enterprise) == 0)
            name = c->cfg->enterprises[e].name;
    json_t *o = json_pack("{s:I,s:s?,s:s?,s:s?,s:s?,s:s,s:I,s:I}", "id", (json_int_t)r->id,
                          "enterprise", r->enterprise[0] ? r->enterprise : NULL,
                          "enterprise_name", name, "meter", r->meter[0] ? r->meter : NULL, "bus",
                          r->bus[0] ? r->bus : NULL, "alarm", r->alarm, "since",
                          (json_int_t)r->since, "raised_ts", (json_int_t)r->raised_ts);
    if (o) {
        json_object_set_new(o, "cleared_ts",
                            r->cleared_ts ? json_integer(r->cleared_ts) : json_null());
        json_array_append_new(c->list, o);
    }
    return 0;
}

/* The latest rows of the alarm history, newest first: the dashboard's
 * event list. */
static json_t *recent_alarms(const struct config *cfg, struct alarmlog *al)
{
    struct recent_ctx c = {cfg, json_array()};
    if (al)
        alarmlog_each_recent(al, STATUS_EVENTS, recent_row, &c);
    return c.list;
}

static json_t *meter_status(const struct config *cfg, const struct cfg_meter *m,
                            struct store *st, struct alarmlog *al, json_t *rs_meters, int64_t now)
{
    const struct cfg_profile *prof = &cfg->profiles[m->profile];
    int bp = profile_billing_point(prof);
    const char *bname = bp >= 0 ? prof->points[bp].name : NULL;
    char key[160];
    snprintf(key, sizeof(key), "%s/%s", m->enterprise->id, m->id);
    json_t *rsm = json_object_get(rs_meters, key);
    json_t *vals = json_object_get(rsm, "values");

    /* The last good reading of the billing counter: the daemon's last poll,
     * else the newest stored one however old (a meter down for days still
     * shows when it last answered). */
    int64_t ts = 0;
    double value = 0;
    bool have = false;
    if (bname && json_is_number(json_object_get(vals, bname))) {
        ts = json_integer_value(json_object_get(rsm, "values_ts"));
        value = json_number_value(json_object_get(vals, bname));
        have = ts > 0;
    }
    uint32_t id;
    int64_t dts;
    double dv;
    if (!have && st && bname &&
        store_find_point(st, m->enterprise->id, m->id, bname, &id) == 0 &&
        store_latest(st, id, &dts, &dv) == 0) {
        ts = dts;
        value = dv;
        have = true;
    }
    int64_t last_ok = json_integer_value(json_object_get(rsm, "last_ok_ts"));
    int64_t last = have && ts > last_ok ? ts : last_ok;
    int64_t age = last ? (now - last) / 1000 : -1;
    if (last && age < 0)
        age = 0;

    json_t *table = table_alarms(al, cfg, m);
    json_t *alarms;
    if (json_is_string(json_object_get(rsm, "state"))) {
        alarms = engine_alarms(rsm, table);
        json_decref(table);
    } else {
        alarms = table;
    }
    const char *state = status_age_state(last ? age : -1, m->interval);
    json_int_t since = 0;
    const char *astate = alarms_state(alarms, &since);
    if (astate) {
        state = astate;
        if (json_is_string(json_object_get(rsm, "state")) &&
            strcmp(json_string_value(json_object_get(rsm, "state")), "ok") != 0)
            since = json_integer_value(json_object_get(rsm, "since"));
    }

    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "id", m->id, "utility",
                          utility_name(m->utility), "unit", utility_unit(m->utility), "bus",
                          cfg->buses[m->bus].name, "interval", m->interval, "state", state);
    json_object_set_new(o, "since", since ? json_integer(since) : json_null());
    json_object_set_new(o, "last_read_ts", last ? json_integer(last) : json_null());
    json_object_set_new(o, "age_s", last ? json_integer(age) : json_null());
    if (have)
        json_object_set_new(o, "billing",
                            json_pack("{s:s,s:f,s:I}", "point", bname, "value", value, "ts",
                                      (json_int_t)ts));
    else
        json_object_set_new(o, "billing", json_null());
    json_object_set_new(o, "alarms", alarms);
    if (rsm) {
        json_t *polls = json_object();
        static const char *const keys[] = {"polls", "polls_ok", "timeouts", "exceptions",
                                           "bad_replies", "conn_errors", "bad_values",
                                           "consecutive_failures"};
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            json_object_set_new(polls, keys[k],
                                json_integer(json_integer_value(json_object_get(rsm, keys[k]))));
        json_t *le = json_object_get(rsm, "last_error");
        json_object_set_new(polls, "last_error", json_is_string(le) ? json_copy(le) : json_null());
        json_object_set_new(o, "polls", polls);
    } else {
        json_object_set_new(o, "polls", json_null());
    }
    if (json_is_object(vals))
        json_object_set_new(o, "values",
                            json_pack("{s:O?,s:O}", "ts", json_object_get(rsm, "values_ts"),
                                      "points", vals));
    else
        json_object_set_new(o, "values", json_null());
    return o;
}

static json_t *database_status(const struct config *cfg, struct store *st, unsigned flags)
{
    json_t *o = json_pack("{s:s}", "path", cfg->storage_path);
    if (flags & STATUS_SAMPLES) {
        struct store_stats ss;
        if (store_stats(st, &ss) == 0) {
            json_object_set_new(o, "bytes", json_integer(ss.db_bytes));
            json_object_set_new(o, "samples", json_integer(ss.samples));
            json_object_set_new(o, "oldest_ts", ss.oldest_ts ? json_integer(ss.oldest_ts)
                                                             : json_null());
        }
    } else {
        int64_t bytes = 0;
        store_size(st, &bytes);
        json_object_set_new(o, "bytes", json_integer(bytes));
    }
    return o;
}

static json_t *outbox_status(struct store *st)
{
    struct outbox *ob;
    struct outbox_stats os;
    json_t *o = json_null();
    if (outbox_attach(store_db(st), &ob) < 0)
        return o;
    if (outbox_stats(ob, &os) == 0)
        o = json_pack("{s:I,s:I,s:I,s:I}", "messages", (json_int_t)os.rows, "oldest_seq",
                      (json_int_t)os.oldest_seq, "last_seq", (json_int_t)os.last_seq, "dropped",
                      (json_int_t)os.dropped);
    outbox_free(ob);
    return o;
}

static json_t *daemon_status(json_t *rs, int64_t now)
{
    if (!rs)
        return json_null();
    json_int_t updated = json_integer_value(json_object_get(rs, "updated"));
    json_t *o = json_pack("{s:O?,s:O?,s:I,s:I}", "pid", json_object_get(rs, "pid"), "started",
                          json_object_get(rs, "started"), "updated", updated, "age_s",
                          (json_int_t)((now - updated) / 1000));
    json_t *w = json_object_get(rs, "writer"), *m = json_object_get(rs, "mqtt");
    json_object_set(o, "writer", w ? w : json_null());
    json_object_set(o, "mqtt", m ? m : json_null());
    return o;
}

json_t *status_build(const struct config *cfg, struct store *st, json_t *rs, int64_t now,
                     unsigned flags)
{
    json_t *root = json_pack("{s:s,s:s,s:s,s:I}", "gateway", cfg->gateway_id, "version",
                             PARKGW_VERSION, "timezone", cfg->timezone ? cfg->timezone : "UTC",
                             "ts", (json_int_t)now);
    struct alarmlog *al = NULL;
    if (st && alarmlog_attach(store_db(st), &al) < 0)
        al = NULL;
    json_t *rs_meters = json_object_get(rs, "meters");
    json_t *ents = json_array();
    size_t n = 0, n_ok = 0, n_down = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        const struct cfg_enterprise *ent = &cfg->enterprises[e];
        json_t *meters = json_array();
        for (size_t i = 0; i < ent->n_meters; i++) {
            json_t *ms = meter_status(cfg, &ent->meters[i], st, al, rs_meters, now);
            const char *s = json_string_value(json_object_get(ms, "state"));
            n++;
            if (strcmp(s, "ok") == 0)
                n_ok++;
            else if (strcmp(s, "comm_lost") == 0 || strcmp(s, "supply_lost") == 0)
                n_down++;
            json_array_append_new(meters, ms);
        }
        json_array_append_new(ents, json_pack("{s:s,s:s,s:o}", "id", ent->id, "name",
                                              ent->name ? ent->name : ent->id, "meters", meters));
    }
    json_object_set_new(root, "meters", json_pack("{s:I,s:I,s:I}", "total", (json_int_t)n, "ok",
                                                  (json_int_t)n_ok, "down", (json_int_t)n_down));
    json_object_set_new(root, "enterprises", ents);
    json_object_set_new(root, "events", recent_alarms(cfg, al));
    alarmlog_free(al);
    json_object_set_new(root, "database", st ? database_status(cfg, st, flags) : json_null());
    json_object_set_new(root, "outbox", st ? outbox_status(st) : json_null());
    json_object_set_new(root, "daemon", daemon_status(rs, now));
    return root;
}
