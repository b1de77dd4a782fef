/*
 * it_prometheus.c - Debian's Prometheus scrapes the daemon: `parkgw run`
 * with its HTTP listener behind basic auth (mosquitto, parkgw-sim), a real
 * `prometheus` scraping GET /metrics every second with the same password
 * file; its query API must return parkgw_meter_up = 1 for every configured
 * meter, up{job="parkgw"} = 1, and a parkgw_polls_total that grows. Skipped
 * (exit 77) when prometheus is not installed.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/integration/harness.h"
#include "tests/integration/httpc.h"

#define SEED 31

static int http_port, prom_port;

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    char *pass = xasprintf("%s/http.pass", dir);
    h_write_file(pass, "scrape-pw\n");
    free(pass);
    return xasprintf(
        "gateway = { id = \"prgw\"; timezone = \"Asia/Shanghai\";\n"
        "  http = { listen = \"127.0.0.1:%d\"; password_file = \"%s/http.pass\"; }; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-prgw\"; };\n"
        "buses = ( { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; "
        "timeout_ms = 300; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "@include \"profiles/generic-gas.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"chengtong-plastics\"; name = \"湖南城通塑业有限公司\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 20.0; },\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"rmu-1\"; unit_id = 11;\n"
        "      profile = \"generic-water\"; interval = 1; } ); },\n"
        "  { id = \"hongfei-casting\"; name = \"长沙虹飞机床铸造有限公司\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 2;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 40.0; },\n"
        "    { id = \"g1\"; utility = \"gas\"; bus = \"rmu-1\"; unit_id = 21;\n"
        "      profile = \"generic-gas\"; interval = 2; } ); }\n"
        ");\n",
        http_port, dir, dir, mqtt_port, sim_port);
}

static const char *const meters[][2] = {{"chengtong-plastics", "e1"},
                                        {"chengtong-plastics", "w1"},
                                        {"hongfei-casting", "e1"},
                                        {"hongfei-casting", "g1"}};

/* The result vector of an instant query, or NULL. */
static json_t *query(const char *promql)
{
    char enc[512];
    size_t j = 0;
    for (const char *p = promql; *p && j + 4 < sizeof(enc); p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '_')
            enc[j++] = *p;
        else
            j += (size_t)snprintf(enc + j, sizeof(enc) - j, "%%%02X", (unsigned char)*p);
    }
    enc[j] = '\0';
    char *path = xasprintf("/api/v1/query?query=%s", enc);
    struct httpc_resp r = httpc_request(prom_port, "GET", path, NULL, 5000);
    free(path);
    json_t *doc = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    httpc_free(&r);
    json_t *res = json_incref(json_object_get(json_object_get(doc, "data"), "result"));
    json_decref(doc);
    return res;
}

/* Every meter has parkgw_meter_up 1 in Prometheus. */
static bool all_up(void *ud)
{
    UNUSED(ud);
    json_t *res = query("parkgw_meter_up");
    size_t found = 0, i;
    json_t *s;
    json_array_foreach(res, i, s) {
        json_t *m = json_object_get(s, "metric");
        const char *v = json_string_value(json_array_get(json_object_get(s, "value"), 1));
        for (size_t k = 0; k < ARRAY_SIZE(meters); k++)
            if (json_is_string(json_object_get(m, "enterprise")) &&
                !strcmp(json_string_value(json_object_get(m, "enterprise")), meters[k][0]) &&
                !strcmp(json_string_value(json_object_get(m, "meter")), meters[k][1]) && v &&
                !strcmp(v, "1"))
                found++;
    }
    json_decref(res);
    return found == ARRAY_SIZE(meters);
}

static double first_value(const char *promql)
{
    json_t *res = query(promql);
    const char *v = json_string_value(json_array_get(json_object_get(json_array_get(res, 0),
                                                                     "value"),
                                                     1));
    double d = v ? strtod(v, NULL) : -1;
    json_decref(res);
    return d;
}

static bool polls_grew(void *ud)
{
    double *before = ud;
    return first_value("sum(parkgw_polls_total)") > *before;
}

int main(void)
{
    const char *prom = "/usr/bin/prometheus";
    if (access(prom, X_OK) != 0) {
        printf("SKIP: prometheus not installed (scripts/deps.sh --test)\n");
        return 77;
    }
    struct h_park pk;
    http_port = h_free_port();
    h_park_start(&pk, "it_prometheus", make_config, SEED);
    h_park_run(&pk, false);
    CHECK(h_wait_port(http_port, 10000));

    prom_port = h_free_port();
    char *yml = xasprintf("%s/prometheus.yml", pk.dir);
    char *text = xasprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                           "scrape_configs:\n  - job_name: parkgw\n"
                           "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                           "    basic_auth:\n      username: prometheus\n"
                           "      password_file: %s/http.pass\n",
                           http_port, pk.dir);
    h_write_file(yml, text);
    free(text);
    char *cfg_arg = xasprintf("--config.file=%s", yml);
    char *tsdb_arg = xasprintf("--storage.tsdb.path=%s/tsdb", pk.dir);
    char *listen_arg = xasprintf("--web.listen-address=127.0.0.1:%d", prom_port);
    char *log = xasprintf("%s/prometheus.log", pk.dir);
    char *argv[] = {(char *)prom, cfg_arg, tsdb_arg, listen_arg, NULL};
    struct proc p = {.stdin_fd = -1};
    h_spawn(&p, argv, log, false);
    CHECK(h_wait_port(prom_port, 30000));

    int64_t t0 = now_mono_ms();
    CHECK(h_wait_until(all_up, NULL, 60000));
    printf("prometheus: parkgw_meter_up = 1 for all %zu meters after %lld ms\n",
           ARRAY_SIZE(meters), (long long)(now_mono_ms() - t0));
    CHECK(first_value("up{job=\"parkgw\"}") == 1.0);
    double before = first_value("sum(parkgw_polls_total)");
    CHECK(before > 0);
    CHECK(h_wait_until(polls_grew, &before, 10000));
    CHECK(first_value("parkgw_mqtt_connected") == 1.0);
    if (check_failed)
        h_dump_log(&p, "prometheus");

    h_stop(&p, SIGTERM, 10000);
    h_proc_release(&p);
    CHECK(h_park_stop_gw(&pk));
    h_park_free(&pk, check_failed > 0);
    free(yml);
    free(cfg_arg);
    free(tsdb_arg);
    free(listen_arg);
    free(log);
    return check_done();
}
