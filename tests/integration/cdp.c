/*
 * cdp.c - a headless Chromium over the DevTools protocol (see cdp.h).
 */
#include "tests/integration/cdp.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/integration/harness.h"

extern char **environ;

#define CDP_TIMEOUT_MS 20000

struct cdp {
    pid_t pid;
    int to, from;        /* our ends: the browser reads fd 3, writes fd 4 */
    char *buf;           /* received, not yet parsed */
    size_t len, cap;
    int next_id;
    char *session;
};

const char *cdp_browser(void)
{
    const char *b = getenv("PARKGW_CHROMIUM_BIN");
    if (b && *b)
        return access(b, X_OK) == 0 ? b : NULL;
    static const char *const paths[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};
    for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* A pipe with both ends at fd >= 10 and close-on-exec, so that dup2 onto 3
 * and 4 in the child never meets an end already sitting there. */
static int high_pipe(int fds[2])
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fds[i] = fcntl(p[i], F_DUPFD_CLOEXEC, 10);
        close(p[i]);
    }
    return fds[0] >= 0 && fds[1] >= 0 ? 0 : -1;
}

/* Sends method(params) (params taken over; NULL = {}) and waits for its
 * answer, skipping events. Returns "result" (caller json_decref) or NULL. */
static json_t *call(struct cdp *c, const char *method, json_t *params, bool in_session)
{
    int id = ++c->next_id;
    json_t *msg = json_pack("{s:i,s:s,s:o}", "id", id, "method", method, "params",
                            params ? params : json_object());
    if (in_session && c->session)
        json_object_set_new(msg, "sessionId", json_string(c->session));
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    int w = write_all(c->to, text, strlen(text) + 1); /* with its NUL */
    free(text);
    if (w < 0)
        return NULL;
    int64_t end = now_mono_ms() + CDP_TIMEOUT_MS;
    for (;;) {
        char *nul;
        while (c->buf && (nul = memchr(c->buf, '\0', c->len))) {
            json_t *j = json_loads(c->buf, 0, NULL);
            size_t used = (size_t)(nul + 1 - c->buf);
            memmove(c->buf, nul + 1, c->len - used);
            c->len -= used;
            if (j && json_integer_value(json_object_get(j, "id")) == id) {
                json_t *err = json_object_get(j, "error");
                if (err) {
                    char *e = json_dumps(err, JSON_COMPACT);
                    fprintf(stderr, "cdp: %s: %s\n", method, e ? e : "?");
                    free(e);
                }
                json_t *res = json_incref(json_object_get(j, "result"));
                json_decref(j);
                return res;
            }
            json_decref(j);
        }
        int left = h_left_ms(end);
        struct pollfd p = {.fd = c->from, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0) {
            fprintf(stderr, "cdp: no answer to %s\n", method);
            return NULL;
        }
        c->buf = xgrow(c->buf, &c->cap, c->len + 65536, 1);
        ssize_t n = read(c->from, c->buf + c->len, 65536);
        if (n <= 0) {
            fprintf(stderr, "cdp: browser closed the pipe (%s)\n", method);
            return NULL;
        }
        c->len += (size_t)n;
    }
}

struct cdp *cdp_open(const char *browser, const char *dir, const char *url)
{
    int in[2], out[2];
    if (high_pipe(in) < 0 || high_pipe(out) < 0)
        return NULL;
    char *profile = xasprintf("--user-data-dir=%s/chromium-profile", dir);
    char *log = xasprintf("%s/chromium.log", dir);
    char *argv[] = {(char *)browser, "--headless", "--no-sandbox", "--disable-gpu",
                    "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                    "--remote-debugging-pipe", profile, "about:blank", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_adddup2(&fa, in[0], 3);
    posix_spawn_file_actions_adddup2(&fa, out[1], 4);
    struct cdp *c = xcalloc(1, sizeof(*c));
    int r = posix_spawn(&c->pid, browser, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(profile);
    free(log);
    close(in[0]);
    close(out[1]);
    c->to = in[1];
    c->from = out[0];
    if (r != 0) {
        fprintf(stderr, "cdp: cannot start %s: %s\n", browser, strerror(r));
        c->pid = 0;
        cdp_close(c);
        return NULL;
    }
    json_t *t = call(c, "Target.createTarget", json_pack("{s:s}", "url", url), false);
    const char *tid = json_string_value(json_object_get(t, "targetId"));
    json_t *s = tid ? call(c, "Target.attachToTarget",
                           json_pack("{s:s,s:b}", "targetId", tid, "flatten", 1), false)
                    : NULL;
    const char *sid = json_string_value(json_object_get(s, "sessionId"));
    if (sid)
        c->session = xstrdup(sid);
    json_decref(t);
    json_decref(s);
    if (!c->session) {
        cdp_close(c);
        return NULL;
    }
    return c;
}

char *cdp_eval(struct cdp *c, const char *expr)
{
    json_t *r = call(c, "Runtime.evaluate",
                     json_pack("{s:s,s:b}", "expression", expr, "returnByValue", 1), true);
    json_t *v = json_object_get(json_object_get(r, "result"), "value");
    char *out = NULL;
    if (json_object_get(r, "exceptionDetails") || !v)
        out = NULL;
    else if (json_is_string(v))
        out = xstrdup(json_string_value(v));
    else
        out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(r);
    return out;
}

bool cdp_viewport(struct cdp *c, int width, int height, double scale, bool mobile)
{
    json_t *r = call(c, "Emulation.setDeviceMetricsOverride",
                     json_pack("{s:i,s:i,s:f,s:b}", "width", width, "height", height,
                               "deviceScaleFactor", scale, "mobile", mobile),
                     true);
    bool ok = r != NULL;
    json_decref(r);
    return ok;
}

static int b64val(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

bool cdp_screenshot(struct cdp *c, const char *path, bool full)
{
    json_t *r = call(c, "Page.captureScreenshot",
                     json_pack("{s:s,s:b}", "format", "png", "captureBeyondViewport", full),
                     true);
    const char *data = json_string_value(json_object_get(r, "data"));
    bool ok = false;
    if (data) {
        size_t n = strlen(data), k = 0;
        unsigned char *png = xmalloc(n);
        unsigned acc = 0;
        int bits = 0;
        for (size_t i = 0; i < n; i++) {
            int v = b64val((unsigned char)data[i]);
            if (v < 0)
                continue;
            acc = (acc << 6) | (unsigned)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                png[k++] = (unsigned char)(acc >> bits);
            }
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ok = fd >= 0 && write_all(fd, png, k) == 0;
        if (fd >= 0)
            close(fd);
        free(png);
    }
    json_decref(r);
    return ok;
}

void cdp_close(struct cdp *c)
{
    if (!c)
        return;
    if (c->pid > 0) {
        json_decref(call(c, "Browser.close", NULL, false));
        struct proc p = {.pid = c->pid, .stdin_fd = -1};
        h_stop(&p, SIGTERM, 5000);
    }
    close(c->to);
    close(c->from);
    free(c->buf);
    free(c->session);
    free(c);
}
