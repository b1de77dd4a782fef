/*
 * it_commission.c - the commissioning commands against parkgw-sim (no
 * daemon): `parkgw scan BUS --units 1-6` lists exactly the unit ids that
 * answer, one line each beginning with the id and naming the configured
 * meter, and not the silent ones; `parkgw probe` explains a timeout (the
 * bus's timeout_ms and the measured time) and gives the workaround for
 * exception 2 (no_gap_fill) and exception 3 (max_registers_per_read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 5

/* Meters at units 1, 2 and 4; 3, 5 and 6 have nobody. */
static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"cmgw\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; };\n"
        "buses = ( { name = \"line-a\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d;\n"
        "            timeout_ms = 300; } );\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = ( { id = \"runyu\"; name = \"湖南润宇塑业有限公司\"; meters = (\n"
        "  { id = \"w1\"; utility = \"water\"; bus = \"line-a\"; unit_id = 1;"
        " profile = \"generic-water\"; interval = 10; },\n"
        "  { id = \"w2\"; utility = \"water\"; bus = \"line-a\"; unit_id = 2;"
        " profile = \"generic-water\"; interval = 10; },\n"
        "  { id = \"w4\"; utility = \"water\"; bus = \"line-a\"; unit_id = 4;"
        " profile = \"generic-water\"; interval = 10; } ); } );\n",
        dir, mqtt_port, sim_port);
}

static struct h_park pk;

/* Runs parkgw with args after "-c gw_cfg"; stdout and stderr into *out and
 * *err (caller frees); the exit status. */
static int run(const char *a1, const char *a2, const char *a3, const char *a4, char **out,
               char **err)
{
    char *argv[] = {(char *)pk.parkgw, "-c", pk.gw_cfg, (char *)a1, (char *)a2, (char *)a3,
                    (char *)a4, NULL};
    *out = *err = NULL;
    return h_run(argv, out, err, 60000);
}

/* The lines of out that begin with "N " for N in 1..9. */
static void scenario_scan(void)
{
    char *out, *err;
    CHECK_INT(run("scan", "line-a", "--units", "1-6", &out, &err), 0);
    printf("%s%s", out ? out : "", err ? err : "");
    const char *s = out ? out : "";
    CHECK(strncmp(s, "1 answers", 9) == 0);
    CHECK_CONTAINS(s, "\n2 answers");
    CHECK_CONTAINS(s, "\n4 answers");
    CHECK_CONTAINS(s, ": meter runyu/w1, profile generic-water\n");
    CHECK_CONTAINS(s, ": meter runyu/w4, profile generic-water\n");
    CHECK(strstr(s, "\n3 ") == NULL && strstr(s, "\n5 ") == NULL && strstr(s, "\n6 ") == NULL);
    int lines = 0;
    for (const char *p = s; *p; p++)
        lines += *p == '\n';
    CHECK_INT(lines, 3);
    CHECK_CONTAINS(err ? err : "", "3 of 6 unit ids answered");
    free(out);
    free(err);

    CHECK_INT(run("scan", "line-a", "--units", "300", &out, &err), 1);
    CHECK_CONTAINS(err ? err : "", "--units '300'");
    free(out);
    free(err);
}

static void scenario_probe_hints(void)
{
    char *out, *err;
    /* exception 2 on every request: the gap workaround */
    CHECK(h_sim_do(&pk.sim, "fault runyu/w1 exception 2"));
    CHECK_INT(run("probe", "runyu/w1", NULL, NULL, &out, &err), 2);
    CHECK_CONTAINS(out ? out : "", "exception 2 (illegal data address)");
    CHECK_CONTAINS(out ? out : "", "set no_gap_fill = true on meter runyu/w1");
    free(out);
    free(err);

    /* at most 4 registers per read: generic-water's 9-register request
     * gets exception 3, the hint names max_registers_per_read */
    CHECK(h_sim_do(&pk.sim, "fault runyu/w1 none"));
    CHECK(h_sim_do(&pk.sim, "fault runyu/w1 maxregs 4"));
    CHECK_INT(run("probe", "runyu/w1", NULL, NULL, &out, &err), 2);
    CHECK_CONTAINS(out ? out : "", "exception 3 (illegal data value)");
    CHECK_CONTAINS(out ? out : "", "Set max_registers_per_read = 4 on meter runyu/w1");
    free(out);
    free(err);

    /* silence: the configured timeout against the measured time */
    CHECK(h_sim_do(&pk.sim, "fault runyu/w1 none"));
    CHECK(h_sim_do(&pk.sim, "fault runyu/w1 noreply"));
    CHECK_INT(run("probe", "runyu/w1", NULL, NULL, &out, &err), 2);
    printf("%s", out ? out : "");
    CHECK_CONTAINS(out ? out : "", "timeout");
    CHECK_CONTAINS(out ? out : "", "no reply within the bus's timeout_ms = 300 ms (measured ");
    CHECK_CONTAINS(out ? out : "", "Check unit_id 1");
    free(out);
    free(err);

    /* healthy again: every point decoded, no hint */
    CHECK(h_sim_do(&pk.sim, "fault runyu/w1 none"));
    CHECK_INT(run("probe", "runyu/w1", NULL, NULL, &out, &err), 0);
    CHECK_CONTAINS(out ? out : "", "pressure_kpa");
    CHECK(out && !strstr(out, "hint:"));
    free(out);
    free(err);
}

int main(void)
{
    h_park_start(&pk, "it_commission", make_config, SEED);
    scenario_scan();
    scenario_probe_hints();
    h_park_free(&pk, check_failed);
    return check_done();
}
