/*
 * it_http.c - the daemon's HTTP listener against real processes (mosquitto,
 * parkgw-sim, `parkgw run` with gateway.http on a free loopback port and a
 * password file): basic auth (none or a wrong password: 401 with a
 * challenge), read-only (POST/PUT/DELETE: 405 with Allow), GET /api/status
 * (the status document: every meter, Chinese names, live values), GET
 * /metrics (Prometheus text: every line well-formed, parkgw_meter_up for
 * every meter), the compiled-in page and assets, and the event stream: a
 * full document first, deltas after, a simulated supply loss arriving
 * within the alarm's `for` plus a few seconds, and a stream again after a
 * daemon restart.
 */
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tests/integration/harness.h"
#include "tests/integration/httpc.h"

#define SEED 11
#define AUTH "operator:s3cret-pw"
/* generic-electricity: supply_lost below 30 V held 5 s. */
#define SUPPLY_FOR_MS 5000

static int http_port;

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    /* The sim reads the same file, so the password file must exist first. */
    char *pass = xasprintf("%s/http.pass", dir);
    h_write_file(pass, "s3cret-pw\n");
    free(pass);
    return xasprintf(
        "gateway = { id = \"htgw\"; timezone = \"Asia/Shanghai\";\n"
        "  http = { listen = \"127.0.0.1:%d\"; password_file = \"%s/http.pass\"; }; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-htgw\"; };\n"
        "buses = ( { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; "
        "timeout_ms = 300; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"chengtong-plastics\"; name = \"湖南城通塑业有限公司\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 20.0; },\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"rmu-1\"; unit_id = 11;\n"
        "      profile = \"generic-water\"; interval = 1; } ); },\n"
        "  { id = \"hongfei-casting\"; name = \"长沙虹飞机床铸造有限公司\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 2;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 40.0; } ); }\n"
        ");\n",
        http_port, dir, dir, mqtt_port, sim_port);
}

static const char *const meters[][2] = {
    {"chengtong-plastics", "e1"}, {"chengtong-plastics", "w1"}, {"hongfei-casting", "e1"}};

static bool have_values(void *ud)
{
    UNUSED(ud);
    struct httpc_resp r = httpc_request(http_port, "GET", "/api/status", AUTH, 5000);
    json_t *doc = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    bool ok = true;
    for (size_t k = 0; k < ARRAY_SIZE(meters); k++)
        ok = ok && json_is_object(json_object_get(h_status_meter(doc, meters[k][0], meters[k][1]),
                                                  "values"));
    json_decref(doc);
    httpc_free(&r);
    return ok;
}

static void check_auth_and_methods(void)
{
    struct httpc_resp r = httpc_request(http_port, "GET", "/api/status", NULL, 5000);
    CHECK_INT(r.status, 401);
    CHECK(r.headers && strcasestr(r.headers, "WWW-Authenticate: Basic realm=\"parkgw\""));
    httpc_free(&r);
    r = httpc_request(http_port, "GET", "/metrics", "operator:wrong", 5000);
    CHECK_INT(r.status, 401);
    httpc_free(&r);
    r = httpc_request(http_port, "GET", "/", "operator:s3cret-p", 5000);
    CHECK_INT(r.status, 401);
    httpc_free(&r);
    static const char *const writes[] = {"POST", "PUT", "DELETE", "PATCH"};
    for (size_t k = 0; k < ARRAY_SIZE(writes); k++) {
        r = httpc_request(http_port, writes[k], "/api/status", AUTH, 5000);
        CHECK_INT(r.status, 405);
        CHECK(r.headers && strcasestr(r.headers, "Allow: GET, HEAD"));
        httpc_free(&r);
    }
    r = httpc_request(http_port, "GET", "/no/such/page", AUTH, 5000);
    CHECK_INT(r.status, 404);
    httpc_free(&r);
}

static void check_assets(void)
{
    static const char *const paths[][2] = {{"/", "text/html"},
                                           {"/index.html", "text/html"},
                                           {"/app.js", "text/javascript"},
                                           {"/app.css", "text/css"}};
    for (size_t k = 0; k < ARRAY_SIZE(paths); k++) {
        struct httpc_resp r = httpc_request(http_port, "GET", paths[k][0], AUTH, 5000);
        CHECK_INT(r.status, 200);
        CHECK(r.headers && strcasestr(r.headers, paths[k][1]));
        CHECK(r.body_len > 100);
        if (k == 0)
            CHECK_CONTAINS(r.body, "/app.js");
        httpc_free(&r);
    }
}

static void check_status(void)
{
    struct httpc_resp r = httpc_request(http_port, "GET", "/api/status", AUTH, 5000);
    CHECK_INT(r.status, 200);
    CHECK(r.headers && strcasestr(r.headers, "application/json"));
    json_error_t je;
    json_t *doc = r.status == 200 ? json_loads(r.body, 0, &je) : NULL;
    CHECK(doc != NULL);
    CHECK_STR(json_string_value(json_object_get(doc, "gateway")), "htgw");
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(doc, "enterprises"), 0), "name")),
              "湖南城通塑业有限公司");
    for (size_t k = 0; k < ARRAY_SIZE(meters); k++) {
        json_t *m = h_status_meter(doc, meters[k][0], meters[k][1]);
        CHECK(m != NULL);
        CHECK_STR(json_string_value(json_object_get(m, "state")), "ok");
        CHECK(json_is_object(json_object_get(json_object_get(m, "values"), "points")));
    }
    /* As `parkgw status --format json`: the sample count is there. */
    CHECK(json_integer_value(json_object_get(json_object_get(doc, "database"), "samples")) > 0);
    CHECK(json_is_true(json_object_get(json_object_get(json_object_get(doc, "daemon"), "mqtt"),
                                       "connected")));
    json_decref(doc);
    httpc_free(&r);
}

static void check_metrics(void)
{
    struct httpc_resp r = httpc_request(http_port, "GET", "/metrics", AUTH, 5000);
    CHECK_INT(r.status, 200);
    CHECK(r.headers && strcasestr(r.headers, "text/plain; version=0.0.4"));
    if (r.status != 200) {
        httpc_free(&r);
        return;
    }
    /* Every sample line: name{label="value",...} number. */
    regex_t re;
    CHECK(regcomp(&re,
                  "^[a-z_:][a-z0-9_:]*(\\{([a-z_]+=\"([^\"\\\\]|\\\\.)*\",?)*\\})? "
                  "-?[0-9.e+-]+$",
                  REG_EXTENDED | REG_NOSUB) == 0);
    size_t lines = 0, bad = 0;
    char *save = NULL;
    char *text = xstrdup(r.body);
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (l[0] == '#')
            continue;
        lines++;
        if (regexec(&re, l, 0, NULL, 0) != 0) {
            if (bad++ < 5)
                fprintf(stderr, "malformed metrics line: %s\n", l);
        }
    }
    regfree(&re);
    free(text);
    printf("/metrics: %zu samples, %zu malformed\n", lines, bad);
    CHECK(lines > 20);
    CHECK_INT(bad, 0);
    for (size_t k = 0; k < ARRAY_SIZE(meters); k++) {
        char *want = xasprintf("parkgw_meter_up{enterprise=\"%s\",meter=\"%s\",", meters[k][0],
                               meters[k][1]);
        const char *at = strstr(r.body, want);
        CHECK(at != NULL);
        if (at) {
            const char *eol = strchr(at, '\n');
            CHECK(eol && eol[-1] == '1' && eol[-2] == ' ');
        }
        free(want);
    }
    static const char *const names[] = {
        "parkgw_polls_total{", "parkgw_poll_failures_total{", "parkgw_bus_busy_seconds_total{",
        "parkgw_outbox_messages ", "parkgw_writer_queue_samples ", "parkgw_mqtt_connected 1",
        "parkgw_meter_state{", "parkgw_database_bytes "};
    for (size_t k = 0; k < ARRAY_SIZE(names); k++)
        CHECK_CONTAINS(r.body, names[k]);
    httpc_free(&r);
}

/* GET /api/bill: byte for byte what `parkgw bill` prints for the same
 * period (a closed one, so both read the same samples); bad requests 400. */
static void check_bill(struct h_park *pk, int64_t from_ms)
{
    /* Samples older than 2 s are committed (the writer commits every
     * second), so both computations read the same ones. */
    int64_t to_ms = now_real_ms() - 2000;
    static const char *const formats[] = {"csv", "json", "table"};
    for (size_t k = 0; k < ARRAY_SIZE(formats); k++) {
        char *path = xasprintf("/api/bill?from=%lld&to=%lld&format=%s", (long long)from_ms,
                               (long long)to_ms, formats[k]);
        struct httpc_resp r = httpc_request(http_port, "GET", path, AUTH, 10000);
        free(path);
        char from[32], to[32];
        snprintf(from, sizeof(from), "%lld", (long long)from_ms);
        snprintf(to, sizeof(to), "%lld", (long long)to_ms);
        char *argv[] = {(char *)pk->parkgw, "bill", "-c", pk->gw_cfg, "--from", from, "--to", to,
                        "--format", (char *)formats[k], NULL};
        char *out = NULL, *err = NULL;
        int st = h_run(argv, &out, &err, 20000);
        CHECK_INT(st, 0);
        CHECK_INT(r.status, 200);
        CHECK(out && r.body && strcmp(out, r.body) == 0);
        if (out && r.body && strcmp(out, r.body) != 0)
            fprintf(stderr, "bill %s differs:\n--- parkgw bill\n%s--- GET /api/bill\n%s",
                    formats[k], out, r.body);
        if (k == 0) {
            CHECK(r.headers && strcasestr(r.headers, "text/csv"));
            CHECK_CONTAINS(r.body, "enterprise,meter,utility,unit,from,to");
            CHECK_CONTAINS(r.body, "hongfei-casting,e1,electricity");
        }
        if (k == 1) {
            json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
            CHECK(j != NULL);
            json_decref(j);
        }
        free(out);
        free(err);
        httpc_free(&r);
    }
    /* format=html: an enterprise's printable page, and the index linking
     * back to this API for each page */
    char *path = xasprintf("/api/bill?from=%lld&to=%lld&format=html&enterprise=hongfei-casting",
                           (long long)from_ms, (long long)to_ms);
    struct httpc_resp hr = httpc_request(http_port, "GET", path, AUTH, 10000);
    free(path);
    CHECK_INT(hr.status, 200);
    CHECK(hr.headers && strcasestr(hr.headers, "text/html"));
    CHECK_CONTAINS(hr.body, "<h1>长沙虹飞机床铸造有限公司</h1>");
    CHECK_CONTAINS(hr.body, "<svg class=\"chart\"");
    httpc_free(&hr);
    path = xasprintf("/api/bill?from=%lld&to=%lld&format=html", (long long)from_ms,
                     (long long)to_ms);
    hr = httpc_request(http_port, "GET", path, AUTH, 10000);
    free(path);
    CHECK_INT(hr.status, 200);
    char *link = xasprintf("href=\"/api/bill?from=%lld&amp;to=%lld&amp;format=html&amp;"
                           "enterprise=hongfei-casting\"",
                           (long long)from_ms, (long long)to_ms);
    CHECK_CONTAINS(hr.body, link);
    free(link);
    httpc_free(&hr);
    static const char *const bad[] = {
        "/api/bill?from=2026-11-01", "/api/bill?from=2026-11-01&to=2026-10-01",
        "/api/bill?from=yesterday&to=2026-10-01", "/api/bill?from=2026-11-01&to=2026-12-01&format=xml",
        "/api/bill?from=2026-11-01&to=2026-12-01&enterprise=nobody",
        "/api/bill?from=2026-11-01&to=2026-12-01&utility=steam"};
    for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
        struct httpc_resp r = httpc_request(http_port, "GET", bad[k], AUTH, 5000);
        CHECK_INT(r.status, 400);
        httpc_free(&r);
    }
}

/* The state of ENT/ID after applying stream events until it is 'want'
 * (or the deadline); the events' shape is checked on the way. */
static bool stream_until(struct httpc_stream *s, json_t **doc, const char *ent, const char *id,
                         const char *want, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    while (h_left_ms(end) > 0) {
        char *data = httpc_stream_next(s, NULL, h_left_ms(end));
        if (!data)
            return false;
        json_t *j = json_loads(data, 0, NULL);
        free(data);
        CHECK(j != NULL);
        if (!j)
            return false;
        if (json_object_get(j, "enterprises")) {
            json_decref(*doc);
            *doc = j;
        } else {
            size_t i;
            json_t *c;
            CHECK(*doc != NULL);
            json_array_foreach(json_object_get(j, "changed"), i, c) {
                /* Only the changed members, at the meter's index. */
                json_t *m = NULL, *eo;
                size_t k;
                json_array_foreach(json_object_get(*doc, "enterprises"), k, eo)
                    if (json_equal(json_object_get(eo, "id"), json_object_get(c, "enterprise")))
                        m = json_array_get(json_object_get(eo, "meters"),
                                           (size_t)json_integer_value(json_object_get(c, "index")));
                CHECK(m != NULL);
                CHECK(json_object_get(json_object_get(c, "meter"), "age_s") == NULL);
                if (m)
                    json_object_update(m, json_object_get(c, "meter"));
            }
            json_decref(j);
        }
        const char *st = json_string_value(json_object_get(h_status_meter(*doc, ent, id), "state"));
        if (st && strcmp(st, want) == 0)
            return true;
    }
    return false;
}

static void check_stream(struct h_park *pk)
{
    struct httpc_stream *s = httpc_stream_open(http_port, "/api/stream", NULL, 5000);
    CHECK(s == NULL); /* no credentials */
    s = httpc_stream_open(http_port, "/api/stream", AUTH, 5000);
    CHECK(s != NULL);
    if (!s)
        return;
    char *first = httpc_stream_next(s, "status", 5000);
    CHECK(first != NULL);
    json_t *doc = first ? json_loads(first, 0, NULL) : NULL;
    free(first);
    CHECK(json_array_size(json_object_get(doc, "enterprises")) == 2);
    char *delta = httpc_stream_next(s, "delta", 5000);
    CHECK(delta != NULL);
    json_t *dj = delta ? json_loads(delta, 0, NULL) : NULL;
    CHECK(json_is_array(json_object_get(dj, "changed")));
    CHECK(json_object_get(dj, "enterprises") == NULL);
    json_decref(dj);
    free(delta);

    int64_t t0 = now_mono_ms();
    CHECK(h_sim_do(&pk->sim, "supply hongfei-casting/e1 off"));
    bool seen = stream_until(s, &doc, "hongfei-casting", "e1", "supply_lost",
                             SUPPLY_FOR_MS + 6000);
    int64_t took = now_mono_ms() - t0;
    printf("stream: supply_lost %lld ms after the supply went off (for = %d ms)\n",
           (long long)took, SUPPLY_FOR_MS);
    CHECK(seen);
    json_t *m = h_status_meter(doc, "hongfei-casting", "e1");
    CHECK(json_integer_value(json_object_get(m, "since")) > 0);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(m, "alarms"), 0),
                                                "alarm")),
              "supply_lost");
    CHECK(h_sim_do(&pk->sim, "supply hongfei-casting/e1 on"));
    CHECK(stream_until(s, &doc, "hongfei-casting", "e1", "ok", 10000));
    json_decref(doc);
    httpc_stream_close(s);
}

int main(void)
{
    struct h_park pk;
    int64_t start = now_real_ms();
    http_port = h_free_port();
    h_park_start(&pk, "it_http", make_config, SEED);
    h_park_run(&pk, false);
    CHECK(h_wait_port(http_port, 10000));
    CHECK(h_wait_until(have_values, NULL, 15000));
    if (check_failed)
        goto out;

    check_auth_and_methods();
    check_assets();
    check_status();
    check_metrics();
    check_bill(&pk, start - 3600 * 1000);
    check_stream(&pk);

    /* A restart: the listener is back with the daemon, streams work again. */
    CHECK(h_park_stop_gw(&pk));
    struct httpc_resp gone = httpc_request(http_port, "GET", "/api/status", AUTH, 2000);
    CHECK_INT(gone.status, -1);
    httpc_free(&gone);
    h_park_run(&pk, false);
    CHECK(h_wait_port(http_port, 10000));
    struct httpc_stream *s = httpc_stream_open(http_port, "/api/stream", AUTH, 5000);
    CHECK(s != NULL);
    char *again = s ? httpc_stream_next(s, "status", 5000) : NULL;
    CHECK(again != NULL);
    free(again);
    httpc_stream_close(s);
    CHECK(h_park_stop_gw(&pk));

out:
    h_park_free(&pk, check_failed > 0);
    return check_done();
}
