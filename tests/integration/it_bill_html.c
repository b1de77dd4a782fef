/*
 * it_bill_html.c - the printable statements of `parkgw bill --format html`
 * read back through a real browser: a month of imported readings for an
 * enterprise with a Chinese name, the HTML pages and the `--excel` CSV
 * written by the real binary (summer critical peak, maximum demand, power
 * factor, surcharge and water blocks, hand-computed below), each page printed to PDF and screenshot by
 * headless Debian chromium, the PDF's text (pdftotext) holding the
 * enterprise's name and the same total as the CSV. Skipped (exit 77)
 * without chromium or pdftotext (scripts/deps.sh --test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/integration/cdp.h"
#include "tests/integration/harness.h"

#define ENT "chengtong-plastics"
#define ENT_NAME "湖南城通塑业有限公司"

static char *config_text(const char *dir)
{
    return xasprintf(
        "gateway = { id = \"gw1\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/park.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:1\"; };\n"
        "buses = ( { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 1502; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"" ENT "\"; name = \"" ENT_NAME "\";\n"
        "    meters = (\n"
        "      { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "        profile = \"generic-electricity\"; interval = 3600; max_demand = true;\n"
        "        pt_ratio = 10.0; ct_ratio = 40.0; },\n"
        "      { id = \"w1\"; utility = \"water\"; bus = \"rmu-1\"; unit_id = 2;\n"
        "        profile = \"generic-water\"; interval = 3600; } ); },\n"
        "  { id = \"runyu-plastics\"; name = \"湖南润宇塑业有限公司\";\n"
        "    meters = ( { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 3;\n"
        "        profile = \"generic-electricity\"; interval = 3600;\n"
        "        pt_ratio = 10.0; ct_ratio = 40.0; } ); }\n"
        ");\n"
        "tariffs = (\n"
        "  { utility = \"electricity\"; currency = \"CNY\";\n"
        "    surcharge = 0.0295; demand_price = 38.0;\n"
        "    @include \"tariffs/pf-0.90.cfg\"\n"
        "    seasons = (\n"
        "      { months = [ 7, 8 ];\n"
        "        bands = ( { name = \"critical\"; price = 1.35; hours = [ \"20:00-22:00\" ]; },\n"
        "                  { name = \"peak\"; price = 1.05;\n"
        "                    hours = [ \"08:00-11:00\", \"18:00-20:00\", \"22:00-23:00\" ]; },\n"
        "                  { name = \"flat\"; price = 0.68; hours = [ \"07:00-08:00\", "
        "\"11:00-18:00\" ]; },\n"
        "                  { name = \"valley\"; price = 0.32; hours = [ \"23:00-07:00\" ]; } ); },\n"
        "      { months = [ 1, 2, 3, 4, 5, 6, 9, 10, 11, 12 ];\n"
        "        bands = ( { name = \"peak\"; price = 1.05; hours = [ \"08:00-11:00\", "
        "\"18:00-23:00\" ]; },\n"
        "                  { name = \"flat\"; price = 0.68; hours = [ \"07:00-08:00\", "
        "\"11:00-18:00\" ]; },\n"
        "                  { name = \"valley\"; price = 0.32; hours = [ \"23:00-07:00\" ]; } ); }\n"
        "    ); },\n"
        "  { utility = \"water\"; currency = \"CNY\"; blocks = ( (0.0, 3.90), (1000.0, 4.90) ); }\n"
        ");\n",
        dir);
}

/* July 2026, hourly: e1 100 kWh an hour with 300 in the day shift, w1 40 m3
 * a day spread over the hours, the second enterprise a steady 50 kWh. The
 * meters' dials read 1/400 of that (PT 10 x CT 40): 0.25 and 0.75 kWh/h,
 * 0.125 kWh/h, within generic-electricity's max_rate of 1.25 kWh/h (dial). */
static void write_readings(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs("enterprise,meter,point,ts,value\n", f);
    /* 2026-06-30T23:00:00+08:00 .. 2026-08-01T01:00:00+08:00 */
    const long long t0 = 1782831600000LL;
    double e = 12.5, w = 200, r = 0.25; /* e, r: dial readings */
    for (int h = 0; h <= 31 * 24 + 2; h++) {
        long long ts = t0 + (long long)h * 3600000LL;
        int hod = (h + 23) % 24;
        fprintf(f, ENT ",e1,energy_import_kwh,%lld,%.3f\n", ts, e);
        /* only the billing counter is stored as the dial: kvarh primary */
        fprintf(f, ENT ",e1,reactive_energy_kvarh,%lld,%.3f\n", ts, e * 400 / 2);
        fprintf(f, ENT ",w1,total_m3,%lld,%.3f\n", ts, w);
        fprintf(f, "runyu-plastics,e1,energy_import_kwh,%lld,%.3f\n", ts, r);
        e += hod >= 8 && hod < 18 ? 0.75 : 0.25;
        w += 40.0 / 24.0;
        r += 0.125;
    }
    fclose(f);
}

/* The sum of the CSV's amounts for enterprise ent (column 14). */
static double csv_amount(const char *csv, const char *ent)
{
    double sum = 0;
    size_t elen = strlen(ent);
    for (const char *l = csv; l && *l;) {
        const char *nl = strchr(l, '\n');
        if (strncmp(l, ent, elen) == 0 && l[elen] == ',') {
            const char *p = l;
            for (int c = 0; c < 13 && p; c++) {
                p = strchr(p, ',');
                if (p)
                    p++;
            }
            if (p)
                sum += strtod(p, NULL);
        }
        l = nl ? nl + 1 : NULL;
    }
    return sum;
}

/* "123,456.78" */
static void grouped(double v, char *buf, size_t len)
{
    char raw[64];
    snprintf(raw, sizeof(raw), "%.2f", v);
    size_t intlen = strcspn(raw, "."), o = 0;
    for (size_t i = 0; raw[i] && o + 2 < len; i++) {
        buf[o++] = raw[i];
        if (i + 1 < intlen && (intlen - i - 1) % 3 == 0)
            buf[o++] = ',';
    }
    buf[o] = 0;
}

/* Prints page to PDF and PNG with chromium; the PDF's text, or NULL. */
static char *print_page(const char *browser, const char *dir, const char *page, const char *stem)
{
    char *url = xasprintf("file://%s/%s", dir, page);
    char *pdf = xasprintf("--print-to-pdf=%s/%s.pdf", dir, stem);
    char *png = xasprintf("--screenshot=%s/%s.png", dir, stem);
    char *prof = xasprintf("--user-data-dir=%s/chromium-%s", dir, stem);
    char *pdf_path = xasprintf("%s/%s.pdf", dir, stem);
    char *out = NULL, *err = NULL, *text = NULL;
    char *a1[] = {(char *)browser, "--headless", "--no-sandbox", "--disable-gpu",
                  "--no-pdf-header-footer", prof, pdf, url, NULL};
    int st = h_run(a1, &out, &err, 60000);
    CHECK_INT(st, 0);
    if (st != 0)
        fprintf(stderr, "chromium: %s\n", err ? err : "");
    free(out);
    free(err);
    /* A4 at 96 dpi is 794 x 1123 CSS px: the screen view of the page */
    char *a2[] = {(char *)browser, "--headless", "--no-sandbox", "--disable-gpu",
                  "--hide-scrollbars", "--window-size=794,1400", prof, png, url, NULL};
    st = h_run(a2, &out, &err, 60000);
    CHECK_INT(st, 0);
    free(out);
    free(err);
    printf("printed: %s/%s.pdf, %s/%s.png\n", dir, stem, dir, stem);
    char *a3[] = {"/usr/bin/pdftotext", "-layout", pdf_path, "-", NULL};
    st = h_run(a3, &text, &err, 30000);
    CHECK_INT(st, 0);
    free(err);
    free(url);
    free(pdf);
    free(png);
    free(prof);
    free(pdf_path);
    return text;
}

int main(void)
{
    const char *browser = cdp_browser();
    if (!browser || access("/usr/bin/pdftotext", X_OK) != 0) {
        printf("SKIP: chromium or pdftotext not installed (scripts/deps.sh --test)\n");
        return 77;
    }
    char *dir = h_park_dir("it_bill_html");
    char *cfg_path = xasprintf("%s/park.cfg", dir), *csv_path = xasprintf("%s/july.csv", dir);
    char *out_dir = xasprintf("%s/statements", dir);
    char *text = config_text(dir);
    h_write_file(cfg_path, text);
    free(text);
    write_readings(csv_path);
    const char *parkgw = h_env("PARKGW_BIN", "parkgw");
    char *out = NULL, *err = NULL;

    char *imp[] = {(char *)parkgw, "import", "-c", cfg_path, "--csv", csv_path, NULL};
    CHECK_INT(h_run(imp, &out, &err, 30000), 0);
    free(out);
    free(err);

    char *html[] = {(char *)parkgw, "bill", "-c", cfg_path, "--from", "2026-07-01", "--to",
                    "2026-08-01", "--format", "html", "--out", out_dir, NULL};
    CHECK_INT(h_run(html, &out, &err, 30000), 0);
    if (err && *err)
        fprintf(stderr, "bill html: %s\n", err);
    free(out);
    free(err);
    char *csv_argv[] = {(char *)parkgw, "bill", "-c", cfg_path, "--from", "2026-07-01", "--to",
                        "2026-08-01", "--format", "csv", "--excel", NULL};
    char *csv = NULL;
    CHECK_INT(h_run(csv_argv, &csv, &err, 30000), 0);
    free(err);
    /* the byte-order mark, then the contract's header */
    CHECK(csv && strncmp(csv, "\xEF\xBB\xBF" "enterprise,meter,", 20) == 0);

    char *index_path = xasprintf("%s/index.html", out_dir);
    char *page_path = xasprintf("%s/" ENT ".html", out_dir);
    char *index = h_read_file(index_path), *page = h_read_file(page_path);
    CHECK(index && page);
    if (index && page) {
        CHECK_CONTAINS(index, ENT_NAME);
        CHECK_CONTAINS(index, "href=\"" ENT ".html\"");
        CHECK_CONTAINS(index, "湖南润宇塑业有限公司");
        CHECK_CONTAINS(page, "<h1>" ENT_NAME "</h1>");
        CHECK_CONTAINS(page, "@page{size:A4");
        CHECK_CONTAINS(page, "<svg class=\"chart\"");
        CHECK(strstr(page, "<script") == NULL);
    }

    /*
     * e1 on the summer season: a day is critical 20-22 (2 x 100 = 200 kWh),
     * peak 8-11 (3 x 300) + 18-20 (200) + 22-23 (100) = 1,200, flat 7-8
     * (100) + 11-18 (7 x 300) = 2,200, valley 23-7 (800): 4,400 kWh, and
     * 31 x 4,400 = 136,400 kWh. Energy: 31 x (200 x 1.35 + 1,200 x 1.05 +
     * 2,200 x 0.68 + 800 x 0.32) = 31 x (270 + 1,260 + 1,496 + 256) =
     * 31 x 3,282 = 101,742.00. Demand: hourly readings spread evenly, so a
     * day-shift quarter hour holds 75 kWh = 300 kW, first at July 1 08:00;
     * basic 300 x 38 = 11,400.00. Reactive half the active: PF 1 /
     * sqrt(1.25) = 0.894 -> 0.89 on the 0.90 table: +0.5 % of 113,142.00 =
     * 565.71. Surcharge 136,400 x 0.0295 = 4,023.80. e1 117,731.51.
     * w1: 1,240 m3 on blocks: 1,000 x 3.90 + 240 x 4.90 = 5,076.00.
     * In all 122,807.51 CNY.
     */
    double total = csv ? csv_amount(csv, ENT) : 0;
    CHECK_NEAR(total, 122807.51, 0.005);
    CHECK_CONTAINS(csv, ",101742.00,300.000,11400.00,0.89,565.71,4023.80,0.00\n");
    CHECK_CONTAINS(csv, ",117731.51,CNY,");
    CHECK_CONTAINS(csv, ",5076.00,CNY,");
    char want[64];
    grouped(total, want, sizeof(want));

    char *pdf_text = print_page(browser, out_dir, ENT ".html", ENT);
    CHECK(pdf_text != NULL);
    if (pdf_text) {
        CHECK_CONTAINS(pdf_text, ENT_NAME);
        CHECK_CONTAINS(pdf_text, want);
        CHECK_CONTAINS(pdf_text, "101,742.00");
        CHECK_CONTAINS(pdf_text, "2026-07-01 08:00");
        CHECK_CONTAINS(pdf_text, "565.71");
    }
    free(pdf_text);
    char *idx_text = print_page(browser, out_dir, "index.html", "index");
    CHECK(idx_text != NULL);
    if (idx_text) {
        CHECK_CONTAINS(idx_text, ENT_NAME);
        CHECK_CONTAINS(idx_text, want);
    }
    free(idx_text);

    free(csv);
    free(index);
    free(page);
    free(index_path);
    free(page_path);
    free(cfg_path);
    free(csv_path);
    free(out_dir);
    free(dir);
    return check_done();
}
