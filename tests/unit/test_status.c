/*
 * test_status.c - the status document's meter state (daemon/status.c):
 * which open alarms make a meter comm_lost or supply_lost and which start
 * time it shows, from the daemon's counters (no database).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "daemon/status.h"
#include "tests/unit/check.h"

static const char *cfg_text =
    "gateway = { id = \"t\"; };\n"
    "storage = { path = \"unused.db\"; };\n"
    "mqtt = { uri = \"tcp://127.0.0.1:1883\"; };\n"
    "buses = ( { name = \"b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 502; } );\n"
    "profiles = (\n"
    "  { name = \"elec\"; utility = \"electricity\"; points = (\n"
    "      { name = \"energy_import_kwh\"; fc = 3; address = 0; type = \"float32\";\n"
    "        kind = \"counter\"; billing = true; },\n"
    "      { name = \"voltage_a_v\"; fc = 3; address = 10; type = \"float32\"; kind = \"gauge\"; } );\n"
    "    alarms = ( { name = \"supply_lost\"; point = \"voltage_a_v\"; below = 30.0; for = 5; },\n"
    "               { name = \"low_voltage\"; point = \"voltage_a_v\"; below = 200.0; for = 5; } ); }\n"
    ");\n"
    "enterprises = ( { id = \"acme\"; name = \"Acme\"; meters = (\n"
    "  { id = \"e1\"; utility = \"electricity\"; bus = \"b\"; unit_id = 1; profile = \"elec\"; interval = 1; } ); } );\n";

#define NOW 1800000000000LL

/* The state and since of acme/e1 when the daemon's engine reports 'alarms'
 * (a JSON array text) open since 'since' in state 'engine_state'. */
static void state_of(const struct config *cfg, const char *alarms, const char *engine_state,
                     long long since, char *ret_state, size_t n, long long *ret_since)
{
    json_error_t jerr;
    json_t *names = json_loads(alarms, 0, &jerr);
    json_t *rs = json_pack("{s:{s:{s:s,s:I,s:o,s:I,s:I,s:{s:f,s:f}}}}", "meters", "acme/e1",
                           "state", engine_state, "since", (json_int_t)since, "alarms", names,
                           "values_ts", (json_int_t)(NOW - 500), "last_ok_ts",
                           (json_int_t)(NOW - 500), "values", "energy_import_kwh", 12.5,
                           "voltage_a_v", 180.0);
    json_t *doc = status_build(cfg, NULL, rs, NOW, 0);
    json_t *m = json_array_get(
        json_object_get(json_array_get(json_object_get(doc, "enterprises"), 0), "meters"), 0);
    snprintf(ret_state, n, "%s", json_string_value(json_object_get(m, "state")));
    *ret_since = json_integer_value(json_object_get(m, "since"));
    json_decref(doc);
    json_decref(rs);
}

int main(void)
{
    const char *tmp = getenv("PARKGW_TEST_TMP");
    char dir[512], path[600], err[512], st[32];
    long long since;
    struct config *cfg;
    if (tmp)
        mkdir(tmp, 0755);
    snprintf(dir, sizeof(dir), "%s/statusXXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return 2;
    snprintf(path, sizeof(path), "%s/t.cfg", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(cfg_text, f) < 0 || fclose(f) != 0)
        return 2;
    if (config_load(path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }

    /* Nothing open: the reading's age decides (0.5 s old at 1 s: ok). */
    state_of(cfg, "[]", "ok", 0, st, sizeof(st), &since);
    CHECK_STR(st, "ok");
    /* An alarm that is not the supply rule leaves the meter ok, as on the
     * state topic (it was reported as supply_lost and counted down). */
    state_of(cfg, "[\"low_voltage\"]", "ok", NOW - 60000, st, sizeof(st), &since);
    CHECK_STR(st, "ok");
    state_of(cfg, "[\"phase_loss\"]", "ok", NOW - 60000, st, sizeof(st), &since);
    CHECK_STR(st, "ok");
    /* The supply rule, also behind another alarm: supply_lost, its start. */
    state_of(cfg, "[\"low_voltage\",\"supply_lost\"]", "supply_lost", NOW - 30000, st,
             sizeof(st), &since);
    CHECK_STR(st, "supply_lost");
    CHECK_INT(since, NOW - 30000);
    /* comm_lost wins over supply_lost. */
    state_of(cfg, "[\"supply_lost\",\"comm_lost\"]", "comm_lost", NOW - 90000, st, sizeof(st),
             &since);
    CHECK_STR(st, "comm_lost");
    CHECK_INT(since, NOW - 90000);

    config_free(cfg);
    return check_done();
}
