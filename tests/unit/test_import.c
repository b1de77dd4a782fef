/*
 * test_import.c - `parkgw import` through cmd_import on a generated config
 * and a temporary store: every timestamp form of common/timeparse.h, a
 * spreadsheet's byte-order mark, imported vs already-present rows (in the
 * store and repeated in the file), and the refusals with their FILE:LINE
 * (bad offsets, hex, Unix time 0 and negative, a NUL byte, second 60,
 * trailing garbage, non-finite and out-of-range values), each leaving the
 * store as it was; then `query` reads the rows back with --from/--to typed
 * in other forms, the same instants.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/util.h"
#include "storage/store.h"
#include "tests/unit/check.h"

static char tmpdir[256], cfg_path[300], db_path[300], csv_path[300], out_path[300];

static void write_bytes(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        abort();
    }
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = xcalloc(1 << 16, 1);
    if (f) {
        size_t n = fread(buf, 1, (1 << 16) - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    return buf;
}

/* Runs cmd with stdout and stderr into one file; returns the exit code and
 * in *ret_out what it printed (caller frees). */
static int run(int (*cmd)(int, char **, const char *), char **argv, char **ret_out)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    int rc = cmd(argc, argv, cfg_path);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    *ret_out = read_text(out_path);
    return rc;
}

/* Imports 'len' bytes of CSV; returns the exit code and the output. */
static int import_csv(const char *csv, size_t len, char **ret_out)
{
    write_bytes(csv_path, csv, len);
    char *argv[] = {"import", "--csv", csv_path, NULL};
    return run(cmd_import, argv, ret_out);
}

static int count_cb(void *ud, int64_t ts, double value)
{
    (void)ts;
    (void)value;
    (*(int *)ud)++;
    return 0;
}

/* The stored readings of acme/e1/energy_import_kwh. */
static int stored(void)
{
    struct store *st;
    char err[256];
    uint32_t id;
    int n = 0;
    if (store_open(db_path, true, &st, err, sizeof(err)) < 0)
        return -1;
    if (store_find_point(st, "acme", "e1", "energy_import_kwh", &id) == 0)
        store_scan(st, id, 0, INT64_MAX, count_cb, &n);
    store_close(st);
    return n;
}

static void setup(void)
{
    const char *tmp = getenv("PARKGW_TEST_TMP"), *src = getenv("PARKGW_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "PARKGW_SOURCE_DIR not set: run through ctest\n");
        exit(1);
    }
    if (tmp)
        mkdir(tmp, 0755);
    snprintf(tmpdir, sizeof(tmpdir), "%s/importXXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir))
        abort();
    char *pdir = xasprintf("%s/config/profiles", src);
    setenv("PARKGW_PROFILE_DIR", pdir, 1);
    free(pdir);
    snprintf(cfg_path, sizeof(cfg_path), "%s/parkgw.cfg", tmpdir);
    snprintf(db_path, sizeof(db_path), "%s/parkgw.db", tmpdir);
    snprintf(csv_path, sizeof(csv_path), "%s/in.csv", tmpdir);
    snprintf(out_path, sizeof(out_path), "%s/out.txt", tmpdir);
    char *text = xasprintf(
        "gateway = { id = \"t1\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:1883\"; };\n"
        "buses = ( { name = \"b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 502; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "profiles = ( { name = \"plain-elec\"; utility = \"electricity\";\n"
        "  points = ( { name = \"energy_kwh\"; fc = 3; address = 0; type = \"float64\";\n"
        "               kind = \"counter\"; billing = true; } ); } );\n"
        "enterprises = ( { id = \"acme\"; name = \"Acme\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"b\"; unit_id = 1;\n"
        "      profile = \"generic-electricity\"; interval = 3600; pt_ratio = 10.0; },\n"
        "    { id = \"e2\"; utility = \"electricity\"; bus = \"b\"; unit_id = 2;\n"
        "      profile = \"plain-elec\"; interval = 3600; } ); } );\n"
        "tariffs = ( { utility = \"electricity\"; currency = \"CNY\"; price = 1.0525; } );\n",
        db_path);
    write_bytes(cfg_path, text, strlen(text));
    free(text);
}

static void test_forms_and_counts(void)
{
    /* The same day in four forms: 08:00, 09:00, 10:00 and 11:00 local. */
    static const char csv[] = "\xef\xbb\xbf"
                              "enterprise,meter,point,ts,value\r\n"
                              "acme,e1,energy_import_kwh,2026-11-01T08:00,10\r\n"
                              "acme,e1,energy_import_kwh,2026-11-01T01:00:00Z,11.05\r\n"
                              "# a comment\r\n"
                              "acme,e1,energy_import_kwh,2026-11-01T10:00:00+0800,12\r\n"
                              "acme,e1,energy_import_kwh,1793502000000,1.3e1\r\n";
    char *out;
    CHECK_INT(import_csv(csv, sizeof(csv) - 1, &out), 0);
    CHECK_CONTAINS(out, "imported 4 readings from ");
    CHECK_CONTAINS(out, ", 0 already present");
    free(out);
    CHECK_INT(stored(), 4);

    /* The same file again: nothing new. */
    CHECK_INT(import_csv(csv, sizeof(csv) - 1, &out), 0);
    CHECK_CONTAINS(out, "imported 0 readings from ");
    CHECK_CONTAINS(out, ", 4 already present");
    free(out);

    /* One stored reading typed in another form, one new reading twice in
     * the file (the first of the two wins), one new reading. */
    static const char more[] = "acme,e1,energy_import_kwh,2026-11-01T00:00:00Z,99.9\n"
                               "acme,e1,energy_import_kwh,2026-11-01 12:00,14\n"
                               "acme,e1,energy_import_kwh,2026-11-01T12:00:00+08:00,14.1\n"
                               "acme,e1,energy_import_kwh,2026-11-01T13:00,15\n";
    CHECK_INT(import_csv(more, sizeof(more) - 1, &out), 0);
    CHECK_CONTAINS(out, "imported 2 readings from ");
    CHECK_CONTAINS(out, ", 2 already present");
    free(out);
    CHECK_INT(stored(), 6);

    /* query reads them back: --from in Unix ms, --to with an offset; every
     * reading keeps its value (the already-present 99.9 did not replace 10). */
    char *q[] = {"query", "acme/e1/energy_import_kwh", "--from", "1793491200000", "--to",
                 "2026-11-01T14:00+08:00", NULL};
    CHECK_INT(run(cmd_query, q, &out), 0);
    CHECK_STR(out, "enterprise,meter,point,ts,value\n"
                   "acme,e1,energy_import_kwh,2026-11-01T08:00:00.000+08:00,10\n"
                   "acme,e1,energy_import_kwh,2026-11-01T09:00:00.000+08:00,11.05\n"
                   "acme,e1,energy_import_kwh,2026-11-01T10:00:00.000+08:00,12\n"
                   "acme,e1,energy_import_kwh,2026-11-01T11:00:00.000+08:00,13\n"
                   "acme,e1,energy_import_kwh,2026-11-01T12:00:00.000+08:00,14\n"
                   "acme,e1,energy_import_kwh,2026-11-01T13:00:00.000+08:00,15\n");
    free(out);
    /* bill takes the same forms (it accepted local dates only before); the
     * dial rises about 1 kWh/h (generic-electricity's max_rate is 1.25), x PT 10
     * = 100 -> 150 kWh primary. */
    char *b[] = {"bill", "--from", "2026-11-01T00:00:00Z", "--to", "1793548800000", "--format",
                 "csv", NULL};
    CHECK_INT(run(cmd_bill, b, &out), 0);
    CHECK_CONTAINS(out, "acme,e1,electricity,kWh,2026-11-01T08:00:00+08:00,"
                        "2026-11-02T00:00:00+08:00,100.000,150.000,50.000,");
    free(out);
    char *bad[] = {"bill", "--from", "2026-11-01T00:00:00+25:00", "--to", "2026-11-02", NULL};
    CHECK_INT(run(cmd_bill, bad, &out), 1);
    CHECK_CONTAINS(out, "parkgw bill: bad --from '2026-11-01T00:00:00+25:00': a field, the "
                        "offset or the time out of range");
    free(out);
}

/* Each file has one bad row (its third line); nothing of it is imported. */
static void test_refusals(void)
{
    static const struct {
        const char *ts, *value, *why;
    } bad[] = {
        {"2026-11-02T00:00:00+99:99", "1", "bad timestamp"},
        {"2026-11-02T00:00:00+25:00", "1", "out of range"},
        {"2026-11-02T00:00:00+14:30", "1", "out of range"},
        {"0x10", "1", "not a timestamp"},
        {"0", "1", "out of range"},
        {"-1793491200000", "1", "not a timestamp"},
        {"2026-11-02T00:00:60+08:00", "1", "out of range"},
        {"2026-11-02T00:00:00+08:00x", "1", "not a timestamp"},
        {"2026-02-30", "1", "out of range"},
        {" 2026-11-02", "1", "not a timestamp"},
        {"2026-11-02", "1.7e308", "bad value"},
        {"2026-11-02", "1e400", "bad value"},
        {"2026-11-02", "inf", "bad value"},
        {"2026-11-02", "-infinity", "bad value"},
        {"2026-11-02", "nan", "bad value"},
        {"2026-11-02", "0x10", "bad value"},
        {"2026-11-02", "1e16", "bad value"},
        {"2026-11-02", " 5", "bad value"},
        {"2026-11-02", "5 ", "bad value"},
        {"2026-11-02", "", "bad value"},
        {"2026-11-02", ".", "bad value"},
        {"2026-11-02", "1e", "bad value"},
    };
    int before = stored();
    char *want_line = xasprintf("%s:3: ", csv_path), *out;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *csv = xasprintf("acme,e1,energy_import_kwh,2026-11-03,1\n"
                              "acme,e1,energy_import_kwh,2026-11-04,2\n"
                              "acme,e1,energy_import_kwh,%s,%s\n",
                              bad[i].ts, bad[i].value);
        int rc = import_csv(csv, strlen(csv), &out);
        if (rc != 1 || !strstr(out, want_line) || !strstr(out, bad[i].why))
            fprintf(stderr, "row ts '%s' value '%s': rc %d, output: %s", bad[i].ts,
                    bad[i].value, rc, out);
        CHECK_INT(rc, 1);
        CHECK_CONTAINS(out, want_line);
        CHECK_CONTAINS(out, bad[i].why);
        free(out);
        free(csv);
    }
    /* A NUL byte: the rest of the row is not silently dropped. */
    static const char nul[] = "acme,e1,energy_import_kwh,2026-11-03,1\n"
                              "acme,e1,energy_import_kwh,2026-11-04,2\n"
                              "acme,e1,energy_import_kwh,2026-11-05\0garbage,3\n";
    CHECK_INT(import_csv(nul, sizeof(nul) - 1, &out), 1);
    CHECK_CONTAINS(out, want_line);
    CHECK_CONTAINS(out, "NUL");
    free(out);
    /* A byte-order mark is skipped on the first row only. */
    static const char bom2[] = "acme,e1,energy_import_kwh,2026-11-03,1\n"
                               "\xef\xbb\xbf"
                               "acme,e1,energy_import_kwh,2026-11-04,2\n";
    CHECK_INT(import_csv(bom2, sizeof(bom2) - 1, &out), 1);
    CHECK_CONTAINS(out, "in.csv:2: ");
    free(out);
    free(want_line);
    CHECK_INT(stored(), before);
}

/* Readings import refuses but the daemon may have stored (a float64
 * register near its maximum): bill and query JSON print null, never inf. On
 * e2, whose counter has no max_rate (e1's generic-electricity would take the
 * jump for a spike), so the overflowing consumption is billed. */
static void test_json_finite(void)
{
    struct store *st;
    char err[256];
    uint32_t id;
    CHECK_INT(store_open(db_path, false, &st, err, sizeof(err)), 0);
    CHECK_INT(store_point_id(st, "acme", "e2", "energy_kwh", UTIL_ELECTRICITY, KIND_COUNTER,
                             &id), 0);
    int64_t t0 = 1796140800000LL; /* 2026-12-02T00:00+08:00 */
    struct sample smp[] = {{id, t0, 0}, {id, t0 + 60000, 1.7e308}, {id, t0 + 120000, 1.7e308}};
    CHECK_INT(store_insert(st, smp, 3), 0);
    store_close(st);

    char *out;
    char *b[] = {"bill", "--from", "2026-12-02", "--to", "2026-12-03", "--format", "json", NULL};
    CHECK_INT(run(cmd_bill, b, &out), 0);
    CHECK(!strstr(out, "inf") && !strstr(out, "nan"));
    CHECK_CONTAINS(out, "\"amount\": null");
    free(out);
    char *q[] = {"query", "acme/e2/energy_kwh", "--from", "2026-12-02", "--to",
                 "2026-12-02T01:00", "--step", "1h", "--format", "json", NULL};
    CHECK_INT(run(cmd_query, q, &out), 0);
    CHECK(!strstr(out, "inf") && !strstr(out, "nan"));
    CHECK_CONTAINS(out, "\"avg\":null");
    free(out);
}

int main(void)
{
    setup();
    test_forms_and_counts();
    test_refusals();
    test_json_finite();
    return check_done();
}
