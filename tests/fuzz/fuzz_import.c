/*
 * fuzz_import.c - libFuzzer target for `parkgw import --csv`: the input is
 * the CSV file, imported through the public command (cmd_import) against a
 * small generated config (two enterprises, an electricity and a water
 * meter) and a scratch SQLite store, so the parser, the validation and the
 * all-or-nothing insert are exercised exactly as the command runs them.
 * Invariant: no crash, no leak, and the exit code is 0, 1 or 2. Run it with
 * -close_fd_mask=3: the command reports every rejected row on stderr.
 */
#include <stdlib.h>

#include "cli/cli.h"
#include "common/log.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char cfg_path[128], csv_path[128], db_path[128];

static const char config_fmt[] =
    "gateway = { id = \"fuzz\"; timezone = \"Asia/Shanghai\"; };\n"
    "storage = { path = \"%s\"; };\n"
    "mqtt = { uri = \"tcp://127.0.0.1:1\"; };\n"
    "buses = ( { name = \"b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 1502; } );\n"
    "@include \"profiles/generic-electricity.cfg\"\n"
    "@include \"profiles/generic-water.cfg\"\n"
    "enterprises = (\n"
    "  { id = \"acme\"; name = \"Acme\"; meters = (\n"
    "      { id = \"e1\"; utility = \"electricity\"; bus = \"b\"; unit_id = 1;\n"
    "        profile = \"generic-electricity\"; interval = 60; } ); },\n"
    "  { id = \"beta\"; name = \"Beta\"; meters = (\n"
    "      { id = \"w1\"; utility = \"water\"; bus = \"b\"; unit_id = 2;\n"
    "        profile = \"generic-water\"; interval = 60; } ); }\n"
    ");\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = fz_tmpdir();
    char text[2048];
    snprintf(db_path, sizeof(db_path), "%s/import.db", dir);
    snprintf(cfg_path, sizeof(cfg_path), "%s/import.cfg", dir);
    snprintf(csv_path, sizeof(csv_path), "%s/input.csv", dir);
    int n = snprintf(text, sizeof(text), config_fmt, db_path);
    if (n < 0 || (size_t)n >= sizeof(text))
        abort();
    setenv("PARKGW_PROFILE_DIR", PARKGW_SOURCE_DIR "/config", 1);
    fz_write(cfg_path, (const uint8_t *)text, (size_t)n);
    log_set_level(LOG_LVL_ERR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    /* A fresh store now and then, so successful imports do not pile up. */
    if (runs++ % 500 == 0) {
        unlink(db_path);
        char side[160];
        snprintf(side, sizeof(side), "%s-wal", db_path);
        unlink(side);
        snprintf(side, sizeof(side), "%s-shm", db_path);
        unlink(side);
    }
    fz_write(csv_path, data, size);
    char *argv[] = {"import", "--csv", csv_path, NULL};
    int rc = cmd_import(3, argv, cfg_path);
    if (rc < 0 || rc > 2)
        abort();
    return 0;
}
