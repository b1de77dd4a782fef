/*
 * it_dashboard.c - the dashboard in a real browser: headless Chromium
 * (Debian's chromium, driven over the DevTools pipe, tests/integration/cdp.c)
 * opens GET / of `parkgw run` polling the demo park (config/demo.cfg with
 * free ports) served by parkgw-sim, with a real mosquitto. The page must
 * list every demo enterprise by its Chinese name, show a live value that
 * changes between two reads, show a simulated supply loss (parkgw-sim's
 * `supply ENT/METER off`) with its start within the alarm's `for` plus one
 * poll interval plus a few seconds, and come back live by itself after the
 * daemon restarts. Screenshots (desktop and phone) are left in the test's
 * directory. Skipped (exit 77) when chromium is not installed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "config/config.h"
#include "tests/integration/cdp.h"
#include "tests/integration/harness.h"

#define SEED 5
#define ENT "chengtong-plastics"
#define ENT_NAME "湖南城通塑业有限公司"
/* generic-electricity's supply_lost: below 30 V for 5 s; demo e1 polls
 * every 5 s; the page gets the change within a second. */
#define SUPPLY_FOR_MS 5000
#define E1_INTERVAL_MS 5000
#define SLACK_MS 4000

static struct cdp *page;

/* demo.cfg with every fixed port replaced: buses on free ports, the
 * harness's broker, the store in dir, the listener on http_port. */
static char *demo_config(const char *dir, int mqtt_port, int http_port)
{
    char *path = xasprintf("%s/config/demo.cfg", h_env("PARKGW_SOURCE_DIR", "."));
    char *src = h_read_file(path);
    free(path);
    if (!src)
        return NULL;
    size_t cap = strlen(src) + 4096, len = 0;
    char *out = xmalloc(cap);
    for (const char *p = src; *p;) {
        if (strncmp(p, "port = 150", 10) == 0) {
            len += (size_t)snprintf(out + len, cap - len, "port = %d", h_free_port());
            p += 12;   /* "port = 15021" */
        } else if (strncmp(p, "tcp://127.0.0.1:18830", 21) == 0) {
            len += (size_t)snprintf(out + len, cap - len, "tcp://127.0.0.1:%d", mqtt_port);
            p += 21;
        } else if (strncmp(p, "path = \"parkgw-demo.db\"", 23) == 0) {
            len += (size_t)snprintf(out + len, cap - len, "path = \"%s/parkgw.db\"", dir);
            p += 23;
        } else if (strncmp(p, "gateway = {", 11) == 0) {
            len += (size_t)snprintf(out + len, cap - len,
                                    "gateway = { http = { listen = \"127.0.0.1:%d\"; };",
                                    http_port);
            p += 11;
        } else {
            out[len++] = *p++;
        }
        if (len + 256 > cap)
            out = xgrow(out, &cap, len + 4096, 1);
    }
    out[len] = '\0';
    free(src);
    return out;
}

/* The expression's value equals want (re-evaluated until the deadline). */
struct dom_want {
    const char *expr, *want, *differs_from;
    char *got;
};

static bool dom_is(void *ud)
{
    struct dom_want *w = ud;
    free(w->got);
    w->got = cdp_eval(page, w->expr);
    if (!w->got)
        return false;
    if (w->differs_from)
        return strcmp(w->got, w->differs_from) != 0;
    return strcmp(w->got, w->want) == 0;
}

static bool wait_dom(const char *expr, const char *want, int timeout_ms)
{
    struct dom_want w = {.expr = expr, .want = want};
    bool ok = h_wait_until(dom_is, &w, timeout_ms);
    if (!ok)
        fprintf(stderr, "page: %s is \"%s\", want \"%s\"\n", expr, w.got ? w.got : "(null)",
                want);
    free(w.got);
    return ok;
}

static void check_every_enterprise(const struct config *cfg)
{
    char *n = xasprintf("%zu", cfg->n_enterprises);
    CHECK(wait_dom("String(document.querySelectorAll('section.ent').length)", n, 15000));
    free(n);
    char *names = cdp_eval(page, "Array.from(document.querySelectorAll('section.ent h2'))"
                                 ".map(h => h.firstChild.textContent).join('\\n')");
    CHECK(names != NULL);
    size_t missing = 0;
    for (size_t e = 0; names && e < cfg->n_enterprises; e++)
        if (!strstr(names, cfg->enterprises[e].name)) {
            fprintf(stderr, "page lacks enterprise %s\n", cfg->enterprises[e].name);
            missing++;
        }
    CHECK_INT(missing, 0);
    free(names);
    /* Every meter of the config is on the page. */
    char *m = xasprintf("%zu", config_count_meters(cfg));
    CHECK(wait_dom("String(document.querySelectorAll('.meter[data-meter]').length)", m, 5000));
    free(m);
}

static void check_live_value(void)
{
    static const char expr[] =
        "document.querySelector('.meter[data-meter=\"" ENT "/e1\"] .vals').textContent";
    /* Wait until the meter shows values, then until they change. */
    CHECK(wait_dom("String(!!document.querySelector('.meter[data-meter=\"" ENT
                   "/e1\"] [data-point=\"power_kw\"]'))",
                   "true", 15000));
    char *first = cdp_eval(page, expr);
    CHECK(first != NULL && strstr(first, "kW"));
    struct dom_want w = {.expr = expr, .differs_from = first ? first : ""};
    bool changed = h_wait_until(dom_is, &w, 3 * E1_INTERVAL_MS);
    printf("page: %s/e1 read 1: %s\npage: %s/e1 read 2: %s\n", ENT, first ? first : "-", ENT,
           w.got ? w.got : "-");
    CHECK(changed);
    free(w.got);
    free(first);
}

static void check_supply_loss(struct proc *sim, const char *dir)
{
    int64_t t0 = now_mono_ms();
    CHECK(h_sim_do(sim, "supply " ENT "/e1 off"));
    bool seen = wait_dom("document.querySelector('.meter[data-meter=\"" ENT "/e1\"]').dataset.state",
                         "supply_lost", SUPPLY_FOR_MS + E1_INTERVAL_MS + SLACK_MS + 5000);
    int64_t took = now_mono_ms() - t0;
    printf("page: supply_lost shown %lld ms after the supply went off (limit %d)\n",
           (long long)took, SUPPLY_FOR_MS + E1_INTERVAL_MS + SLACK_MS);
    CHECK(seen && took <= SUPPLY_FOR_MS + E1_INTERVAL_MS + SLACK_MS);
    /* It stands out: an alert naming the enterprise, with its start. */
    char *alert = cdp_eval(page, "document.getElementById('alerts').textContent");
    CHECK(alert != NULL);
    if (alert) {
        CHECK_CONTAINS(alert, ENT_NAME);
        CHECK_CONTAINS(alert, "since");
    }
    free(alert);
    char *shot = xasprintf("%s/dashboard-outage.png", dir);
    CHECK(cdp_viewport(page, 1366, 900, 1, false));
    CHECK(cdp_screenshot(page, shot, false));
    printf("screenshot: %s\n", shot);
    free(shot);
    shot = xasprintf("%s/dashboard-full.png", dir);
    CHECK(cdp_screenshot(page, shot, true));
    printf("screenshot: %s\n", shot);
    free(shot);
    shot = xasprintf("%s/dashboard-phone.png", dir);
    CHECK(cdp_viewport(page, 390, 844, 2, true));
    CHECK(cdp_screenshot(page, shot, false));
    printf("screenshot: %s\n", shot);
    free(shot);
    CHECK(cdp_viewport(page, 1366, 900, 1, false));
    CHECK(h_sim_do(sim, "supply " ENT "/e1 on"));
    CHECK(wait_dom("document.querySelector('.meter[data-meter=\"" ENT "/e1\"]').dataset.state", "ok",
                   3 * E1_INTERVAL_MS));
}

/* A daemon restart: the page says so, then is live again by itself and
 * names the new daemon's pid. */
static void check_daemon_restart(struct proc *gw, char *const run_argv[], const char *gwlog)
{
    CHECK(h_stop(gw, SIGTERM, 15000) == 0);
    CHECK(wait_dom("document.getElementById('conn').className === 'conn live' ? 'live' : 'not'",
                   "not", 10000));
    h_spawn(gw, run_argv, gwlog, false);
    CHECK(wait_dom("document.getElementById('conn').className", "conn live", 20000));
    char *pid = cdp_eval(page, "document.getElementById('foot').textContent");
    char *want = xasprintf("pid %d ", (int)gw->pid);
    CHECK(pid && strstr(pid, want));
    free(want);
    free(pid);
}

int main(void)
{
    const char *browser = cdp_browser();
    if (!browser) {
        printf("SKIP: chromium not installed (scripts/deps.sh --test)\n");
        return 77;
    }
    char *dir = h_park_dir("it_dashboard");
    struct proc mosq = {.stdin_fd = -1}, sim = {.stdin_fd = -1}, gw = {.stdin_fd = -1};
    int mport = h_start_mosquitto(&mosq, dir);
    int http_port = h_free_port();
    char *text = demo_config(dir, mport, http_port);
    CHECK(text != NULL);
    char *cfg_path = xasprintf("%s/demo.cfg", dir);
    h_write_file(cfg_path, text ? text : "");
    free(text);
    char err[1024];
    struct config *cfg = NULL;
    CHECK(config_load(cfg_path, &cfg, err, sizeof(err)) == 0);
    char *portfile = xasprintf("%s/sim.port", dir), *simlog = xasprintf("%s/sim.log", dir);
    char *gwlog = xasprintf("%s/parkgw.log", dir);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }

    /* The sim serves every bus on the port its config names. */
    char *sim_argv[] = {(char *)h_env("PARKGW_SIM_BIN", "parkgw-sim"), "--config", cfg_path,
                        "--seed", "5", "--port-file", portfile, "--control", "-", NULL};
    h_spawn(&sim, sim_argv, simlog, true);
    CHECK(h_wait_file(portfile, 10000));
    for (size_t b = 0; b < cfg->n_buses; b++)
        CHECK(h_wait_port(cfg->buses[b].port, 10000));
    char *run_argv[] = {(char *)h_env("PARKGW_BIN", "parkgw"), "run", "-c", cfg_path, NULL};
    h_spawn(&gw, run_argv, gwlog, false);
    CHECK(h_wait_port(http_port, 15000));
    if (check_failed)
        goto out;

    char *url = xasprintf("http://127.0.0.1:%d/", http_port);
    page = cdp_open(browser, dir, url);
    free(url);
    CHECK(page != NULL);
    if (!page)
        goto out;
    CHECK(cdp_viewport(page, 1366, 900, 1, false));
    CHECK(wait_dom("document.getElementById('conn').className", "conn live", 15000));
    check_every_enterprise(cfg);
    check_live_value();
    char *shot = xasprintf("%s/dashboard.png", dir);
    CHECK(cdp_screenshot(page, shot, false));
    printf("screenshot: %s\n", shot);
    free(shot);
    check_supply_loss(&sim, dir);

    check_daemon_restart(&gw, run_argv, gwlog);

out:
    cdp_close(page);
    if (check_failed) {
        h_dump_log(&gw, "parkgw");
        h_dump_log(&sim, "parkgw-sim");
    }
    h_stop(&gw, SIGTERM, 15000);
    h_stop(&sim, SIGTERM, 5000);
    h_stop(&mosq, SIGTERM, 5000);
    h_proc_release(&gw);
    h_proc_release(&sim);
    h_proc_release(&mosq);
    config_free(cfg);
    free(cfg_path);
    free(portfile);
    free(simlog);
    free(gwlog);
    free(dir);
    return check_done();
}
