/*
 * it_readonly.c - `parkgw status` for a user who may read the database but
 * not write its directory (issue 14), as a member of the service's group
 * would be, or on a read-only mount: the test runs status as nobody
 * (setpriv; skipped when the test is not root). While the daemon writes the
 * database (its -wal and -shm exist, private to it as under the service's
 * UMask) status says why it cannot read it; after a clean stop (no -wal, no
 * -shm, and none may be created) it reads the file as it is.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 1414

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itro\"; };\n"
        "storage = { path = \"%s/data/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itro\"; };\n"
        "buses = ( { name = \"line\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d;\n"
        "            timeout_ms = 500; } );\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = ( { id = \"ent0\"; meters = (\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"line\"; unit_id = 2;\n"
        "      profile = \"generic-water\"; interval = 1; } ); } );\n",
        dir, mqtt_port, sim_port);
}

int main(void)
{
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
        printf("SKIP: needs root and setpriv to run status as another user\n");
        return 77;
    }
    struct h_park pk;
    h_park_start(&pk, "it_readonly", make_config, SEED);
    char *data = xasprintf("%s/data", pk.dir);
    CHECK_INT(mkdir(data, 0755), 0);
    /* nobody reaches the config and the profiles, and may read the
     * database, but may not create files beside it. */
    chmod(pk.dir, 0755);
    chmod(pk.gw_cfg, 0644);
    h_park_run(&pk, true);
    CHECK(h_wait_log(&pk.gw, "storage: committed", 2, 20000));
    char *db = xasprintf("%s/parkgw.db", data);
    char *wal = xasprintf("%s-wal", db), *shm = xasprintf("%s-shm", db);
    /* As under the service's UMask=0077: the daemon's -wal and -shm are
     * its own; the database was made readable for the group by hand. */
    chmod(db, 0644);
    CHECK_INT(chmod(wal, 0600), 0);
    CHECK_INT(chmod(shm, 0600), 0);

    char *argv[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    (char *)pk.parkgw, "status", "-c", pk.gw_cfg, NULL};
    char *out = NULL, *err = NULL;
    int rc = h_run(argv, &out, &err, 15000);
    printf("as nobody, daemon running: exit %d: %s", rc, err ? err : "");
    CHECK_INT(rc, 2);
    CHECK_CONTAINS(err, "-shm");
    CHECK_CONTAINS(err, "this user cannot");
    free(out);
    free(err);

    CHECK(h_park_stop_gw(&pk));
    CHECK(access(wal, F_OK) != 0);   /* a clean stop removes it */
    CHECK(access(shm, F_OK) != 0);
    out = err = NULL;
    rc = h_run(argv, &out, &err, 15000);
    printf("as nobody, daemon stopped: exit %d\n%s%s", rc, out ? out : "", err ? err : "");
    CHECK_INT(rc, 0);
    CHECK_CONTAINS(out, "ent0/w1");
    CHECK(out && !strstr(out, "never"));
    free(out);
    free(err);

    free(wal);
    free(shm);
    free(db);
    free(data);
    h_park_free(&pk, check_failed);
    return check_done();
}
