/*
 * harness.c - process harness for the integration tests (see harness.h).
 */
#include "tests/integration/harness.h"

#include <MQTTAsync.h>
#include <jansson.h>
#include <sqlite3.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

extern char **environ;

static void die(const char *what)
{
    fprintf(stderr, "harness: %s: %s\n", what, strerror(errno));
    exit(2);
}

const char *h_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

char *h_tmpdir(const char *name)
{
    const char *base = h_env("PARKGW_TEST_TMP", "/tmp");
    mkdir(base, 0755);
    char *dir = xasprintf("%s/%s.%d.XXXXXX", base, name, (int)getpid());
    if (!mkdtemp(dir))
        die("mkdtemp");
    return dir;
}

char *h_park_dir(const char *name)
{
    char *dir = h_tmpdir(name);
    char *profiles = xasprintf("%s/config/profiles", h_env("PARKGW_SOURCE_DIR", "."));
    char *link = xasprintf("%s/profiles", dir);
    if (symlink(profiles, link) < 0)
        die("symlink to the profiles");
    setenv("PARKGW_PROFILE_DIR", profiles, 1);
    free(link);
    free(profiles);
    /* the power-factor tables, for `@include "tariffs/pf-0.90.cfg"` */
    char *tariffs = xasprintf("%s/config/tariffs", h_env("PARKGW_SOURCE_DIR", "."));
    link = xasprintf("%s/tariffs", dir);
    if (symlink(tariffs, link) < 0)
        die("symlink to the tariffs");
    free(link);
    free(tariffs);
    return dir;
}

int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        die("free port");
    close(fd);
    return ntohs(a.sin_port);
}

void h_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die(path);
}

char *h_read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2)
            buf = xrealloc(buf, cap *= 2);
    }
    buf[n] = 0;
    fclose(f);
    return buf;
}

void h_spawn(struct proc *p, char *const argv[], const char *log_path, bool with_stdin)
{
    posix_spawn_file_actions_t fa;
    int pipefd[2] = {-1, -1};
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (with_stdin) {
        if (pipe2(pipefd, O_CLOEXEC) < 0)
            die("pipe");
        posix_spawn_file_actions_adddup2(&fa, pipefd[0], 0);
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    int r = posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) {
        errno = r;
        die(argv[0]);
    }
    if (with_stdin)
        close(pipefd[0]);
    p->stdin_fd = pipefd[1];
    free(p->log_path);
    p->log_path = xstrdup(log_path);
}

int h_stop(struct proc *p, int sig, int timeout_ms)
{
    int status;
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    int64_t end = now_mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            break;
        if (now_mono_ms() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            status = -1;
            break;
        }
        sleep_ms(10);
    }
    p->pid = 0;
    if (p->stdin_fd >= 0)
        close(p->stdin_fd);
    p->stdin_fd = -1;
    return status;
}

void h_proc_release(struct proc *p)
{
    free(p->log_path);
    p->log_path = NULL;
}

bool h_alive(struct proc *p)
{
    int status;
    return p->pid > 0 && waitpid(p->pid, &status, WNOHANG) == 0;
}

void h_dump_log(const struct proc *p, const char *what)
{
    char *log = p->log_path ? h_read_file(p->log_path) : NULL;
    if (!log)
        return;
    size_t n = strlen(log);
    const char *start = n > 6000 ? log + n - 6000 : log;
    fprintf(stderr, "---- last output of %s (%s) ----\n%s\n---- end ----\n", what, p->log_path,
            start);
    free(log);
}

bool h_wait_port(int port, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    while (now_mono_ms() < end) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (r == 0)
            return true;
        sleep_ms(20);
    }
    return false;
}

bool h_wait_file(const char *path, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    struct stat st;
    while (now_mono_ms() < end) {
        if (stat(path, &st) == 0 && st.st_size > 0)
            return true;
        sleep_ms(20);
    }
    return false;
}

void h_restart_mosquitto(struct proc *p, const char *dir, int port)
{
    char *conf = xasprintf("%s/mosquitto.conf", dir);
    /* Started as root, mosquitto switches to the user "mosquitto", which
     * cannot write its persistence file into our private test directory:
     * sessions would not survive a restart. It stays the user we are. */
    const struct passwd *pw = getpwuid(geteuid());
    char *text = xasprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
                           "persistence_location %s/\nautosave_interval 1\nuser %s\n",
                           port, dir, pw && pw->pw_name ? pw->pw_name : "mosquitto");
    h_write_file(conf, text);
    char *log = xasprintf("%s/mosquitto.log", dir);
    const char *bin = h_env("MOSQUITTO_BIN", "/usr/sbin/mosquitto");
    char *argv[] = {(char *)bin, "-c", conf, NULL};
    h_spawn(p, argv, log, false);
    if (!h_wait_port(port, 10000)) {
        h_dump_log(p, "mosquitto");
        fprintf(stderr, "harness: mosquitto did not listen on %d\n", port);
        exit(2);
    }
    free(conf);
    free(text);
    free(log);
}

int h_start_mosquitto(struct proc *p, const char *dir)
{
    int port = h_free_port();
    h_restart_mosquitto(p, dir, port);
    return port;
}

int h_start_sim(struct proc *p, const char *dir, const char *cfg_path, uint64_t seed)
{
    char *portfile = xasprintf("%s/sim.port", dir);
    char *log = xasprintf("%s/sim.log", dir);
    char seedbuf[32];
    snprintf(seedbuf, sizeof(seedbuf), "%llu", (unsigned long long)seed);
    const char *bin = h_env("PARKGW_SIM_BIN", "parkgw-sim");
    char *argv[] = {(char *)bin, "--config", (char *)cfg_path, "--seed", seedbuf, "--port", "0",
                    "--port-file", portfile, "--control", "-", NULL};
    unlink(portfile);
    h_spawn(p, argv, log, true);
    if (!h_wait_file(portfile, 10000)) {
        h_dump_log(p, "parkgw-sim");
        fprintf(stderr, "harness: parkgw-sim wrote no port file\n");
        exit(2);
    }
    char *text = h_read_file(portfile);
    int port = atoi(text);
    free(text);
    if (port <= 0 || !h_wait_port(port, 10000)) {
        h_dump_log(p, "parkgw-sim");
        fprintf(stderr, "harness: parkgw-sim not listening\n");
        exit(2);
    }
    free(portfile);
    free(log);
    return port;
}

bool h_sim_command(struct proc *sim, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 1 || sim->stdin_fd < 0)
        return false;
    line[n++] = '\n';
    return write(sim->stdin_fd, line, (size_t)n) == n;
}

bool h_wait_path(const char *path, int timeout_ms)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    struct stat st;
    while (stat(path, &st) != 0) {
        if (now_mono_ms() >= deadline)
            return false;
        sleep_ms(20);
    }
    return true;
}

struct h_sub {
    MQTTAsync client;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct h_msg *msgs;
    size_t n, cap;
    char *filter;
    volatile int subscribed;
    volatile int disconnected;
};

static int on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    struct h_sub *s = ctx;
    struct h_msg msg;
    msg.topic = tlen ? strndup(topic, (size_t)tlen) : xstrdup(topic);
    msg.payload = strndup(m->payload, (size_t)m->payloadlen);
    msg.retained = m->retained;
    msg.rx_ms = now_real_ms();
    pthread_mutex_lock(&s->lock);
    s->msgs = xgrow(s->msgs, &s->cap, s->n + 1, sizeof(*s->msgs));
    s->msgs[s->n++] = msg;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_subscribed(void *ctx, MQTTAsync_successData *d)
{
    (void)d;
    ((struct h_sub *)ctx)->subscribed = 1;
}

static void on_connected(void *ctx, char *cause)
{
    (void)cause;
    struct h_sub *s = ctx;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_subscribed;
    ro.context = s;
    MQTTAsync_subscribe(s->client, s->filter, 1, &ro);
}

static struct h_sub *h_sub_create(int port, const char *client_id, const char *filter,
                                  bool clean)
{
    struct h_sub *s = xcalloc(1, sizeof(*s));
    char *uri = xasprintf("tcp://127.0.0.1:%d", port);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->filter = xstrdup(filter);
    if (MQTTAsync_create(&s->client, uri, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
        MQTTASYNC_SUCCESS) {
        fprintf(stderr, "harness: MQTTAsync_create failed\n");
        exit(2);
    }
    MQTTAsync_setCallbacks(s->client, s, NULL, on_message, NULL);
    MQTTAsync_setConnected(s->client, s, on_connected);
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.cleansession = clean ? 1 : 0;
    co.keepAliveInterval = 10;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 2;
    if (MQTTAsync_connect(s->client, &co) != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "harness: MQTTAsync_connect failed\n");
        exit(2);
    }
    int64_t end = now_mono_ms() + 10000;
    while (!s->subscribed && now_mono_ms() < end)
        sleep_ms(10);
    if (!s->subscribed) {
        fprintf(stderr, "harness: subscriber could not subscribe on port %d\n", port);
        exit(2);
    }
    free(uri);
    return s;
}

struct h_sub *h_sub_new(int port, const char *client_id, const char *filter)
{
    return h_sub_create(port, client_id, filter, true);
}

struct h_sub *h_sub_new_persistent(int port, const char *client_id, const char *filter)
{
    return h_sub_create(port, client_id, filter, false);
}

static void on_disconnected(void *ctx, MQTTAsync_successData *d)
{
    (void)d;
    ((struct h_sub *)ctx)->disconnected = 1;
}

static void on_disconnect_failed(void *ctx, MQTTAsync_failureData *d)
{
    (void)d;
    ((struct h_sub *)ctx)->disconnected = 1;
}

void h_sub_free(struct h_sub *s)
{
    if (!s)
        return;
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 1000;
    d.onSuccess = on_disconnected;
    d.onFailure = on_disconnect_failed;
    d.context = s;
    /* Destroying the client while the DISCONNECT is in flight races Paho's
     * threads: wait for its answer (bounded). */
    if (MQTTAsync_disconnect(s->client, &d) == MQTTASYNC_SUCCESS) {
        int64_t end = now_mono_ms() + 2000;
        while (!s->disconnected && now_mono_ms() < end)
            sleep_ms(5);
    }
    MQTTAsync_destroy(&s->client);
    for (size_t i = 0; i < s->n; i++) {
        free(s->msgs[i].topic);
        free(s->msgs[i].payload);
    }
    free(s->msgs);
    free(s->filter);
    free(s);
}

size_t h_sub_count(struct h_sub *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

bool h_sub_get(struct h_sub *s, size_t i, struct h_msg *ret)
{
    bool ok = false;
    pthread_mutex_lock(&s->lock);
    if (i < s->n) {
        ret->topic = xstrdup(s->msgs[i].topic);
        ret->payload = xstrdup(s->msgs[i].payload);
        ret->retained = s->msgs[i].retained;
        ret->rx_ms = s->msgs[i].rx_ms;
        ok = true;
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void h_msg_free(struct h_msg *m)
{
    free(m->topic);
    free(m->payload);
}

long h_sub_wait(struct h_sub *s, size_t from, const char *topic, const char *needle,
                int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    size_t i = from;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        for (; i < s->n; i++)
            if (strcmp(s->msgs[i].topic, topic) == 0 &&
                (!needle || strstr(s->msgs[i].payload, needle))) {
                pthread_mutex_unlock(&s->lock);
                return (long)i;
            }
        int64_t left = end - now_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t step = left < 100 ? left : 100;
        ts.tv_nsec += step * 1000000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return -1;
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)r;
        if (cap - n < 2)
            buf = xrealloc(buf, cap *= 2);
    }
    buf[n] = 0;
    return buf;
}

int h_run(char *const argv[], char **ret_out, char **ret_err, int timeout_ms)
{
    char outp[] = "/tmp/parkgw-h-out.XXXXXX", errp[] = "/tmp/parkgw-h-err.XXXXXX";
    int ofd = mkstemp(outp), efd = mkstemp(errp);
    if (ofd < 0 || efd < 0)
        die("mkstemp");
    unlink(outp);
    unlink(errp);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, ofd, 1);
    posix_spawn_file_actions_adddup2(&fa, efd, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    struct proc p = {.stdin_fd = -1};
    int r = posix_spawn(&p.pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) {
        errno = r;
        die(argv[0]);
    }
    int status = -1;
    int64_t end = now_mono_ms() + timeout_ms;
    for (;;) {
        if (waitpid(p.pid, &status, WNOHANG) == p.pid)
            break;
        if (now_mono_ms() > end) {
            kill(p.pid, SIGKILL);
            waitpid(p.pid, &status, 0);
            status = -1;
            break;
        }
        sleep_ms(5);
    }
    lseek(ofd, 0, SEEK_SET);
    lseek(efd, 0, SEEK_SET);
    char *o = slurp_fd(ofd), *e = slurp_fd(efd);
    close(ofd);
    close(efd);
    if (ret_out)
        *ret_out = o;
    else
        free(o);
    if (ret_err)
        *ret_err = e;
    else
        free(e);
    if (status < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

size_t h_log_count(const struct proc *p, const char *needle)
{
    char *text = h_read_file(p->log_path);
    size_t n = 0;
    for (const char *s = text; s && (s = strstr(s, needle)) != NULL; s += strlen(needle))
        n++;
    free(text);
    return n;
}

bool h_wait_log(const struct proc *p, const char *needle, size_t n, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    do {
        if (h_log_count(p, needle) >= n)
            return true;
        sleep_ms(50);
    } while (now_mono_ms() < end);
    return h_log_count(p, needle) >= n;
}

int h_notify_socket(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path)) {
        errno = ENAMETOOLONG;
        die("notify socket path");
    }
    strcpy(a.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("notify socket");
    return fd;
}

int h_notify_recv(int fd, char *buf, size_t len, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (len == 0 || poll(&pfd, 1, timeout_ms) <= 0)
        return -1;
    ssize_t n = recv(fd, buf, len - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

/* ---- TLS and authenticated brokers ---- */

/* The full path of an executable 'name' in $PATH, /usr/sbin or /sbin
 * (malloc'd), or NULL. */
static char *find_program(const char *name)
{
    char *dirs = xasprintf("%s:/usr/sbin:/sbin", h_env("PATH", "/usr/bin:/bin"));
    char *save = NULL, *found = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *path = xasprintf("%s/%s", *d ? d : ".", name);
        if (access(path, X_OK) == 0)
            found = path;
        else
            free(path);
    }
    free(dirs);
    return found;
}

bool h_have_program(const char *name)
{
    char *path = find_program(name);
    free(path);
    return path != NULL;
}

/* Runs 'program' with args (NULL-terminated, without argv[0]); true when it
 * exits 0. Its output is dropped unless it fails. */
static bool run_quiet(const char *program, const char *const *args)
{
    char *path = find_program(program);
    if (!path)
        return false;
    const char *argv[32];
    size_t n = 0;
    argv[n++] = path;
    for (; args[n - 1] && n < ARRAY_SIZE(argv) - 1; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = h_run((char *const *)argv, &out, &err, 30000);
    if (rc != 0)
        fprintf(stderr, "harness: %s failed (%d): %s%s\n", program, rc, out, err);
    free(out);
    free(err);
    free(path);
    return rc == 0;
}

bool h_make_test_certs(const char *dir)
{
    enum { CA_KEY, CA_CRT, SRV_KEY, SRV_CSR, SRV_CRT, SRV_EXT, BAD_KEY, BAD_CSR, BAD_CRT,
           BAD_EXT, OTHER_KEY, OTHER_CRT, N_FILES };
    static const char *const names[N_FILES] = {
        "ca.key",        "ca.crt",        "srv.key",       "srv.csr",
        "srv.crt",       "srv.ext",       "wrongname.key", "wrongname.csr",
        "wrongname.crt", "wrongname.ext", "other-ca.key",  "other-ca.crt"};
    char *p[N_FILES];
    for (size_t i = 0; i < N_FILES; i++)
        p[i] = xasprintf("%s/%s", dir, names[i]);
    h_write_file(p[SRV_EXT], "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    h_write_file(p[BAD_EXT], "subjectAltName=DNS:other.example\n");

    /* P-256 keys: fast to generate, accepted by every OpenSSL 3 default. */
#define EC_KEY "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"
    const char *ca[] = {"req", "-x509", EC_KEY, "-keyout", p[CA_KEY], "-out", p[CA_CRT],
                        "-days", "2", "-subj", "/CN=parkgw-it-ca", NULL};
    const char *other[] = {"req", "-x509", EC_KEY, "-keyout", p[OTHER_KEY], "-out",
                           p[OTHER_CRT], "-days", "2", "-subj", "/CN=unrelated-ca", NULL};
    const char *srv_req[] = {"req", EC_KEY, "-keyout", p[SRV_KEY], "-out", p[SRV_CSR],
                             "-subj", "/CN=localhost", NULL};
    const char *srv_sign[] = {"x509", "-req", "-in", p[SRV_CSR], "-CA", p[CA_CRT], "-CAkey",
                              p[CA_KEY], "-CAcreateserial", "-out", p[SRV_CRT], "-days", "2",
                              "-extfile", p[SRV_EXT], NULL};
    const char *bad_req[] = {"req", EC_KEY, "-keyout", p[BAD_KEY], "-out", p[BAD_CSR],
                             "-subj", "/CN=other.example", NULL};
    const char *bad_sign[] = {"x509", "-req", "-in", p[BAD_CSR], "-CA", p[CA_CRT], "-CAkey",
                              p[CA_KEY], "-CAcreateserial", "-out", p[BAD_CRT], "-days", "2",
                              "-extfile", p[BAD_EXT], NULL};
#undef EC_KEY
    bool ok = run_quiet("openssl", ca) && run_quiet("openssl", other) &&
              run_quiet("openssl", srv_req) && run_quiet("openssl", srv_sign) &&
              run_quiet("openssl", bad_req) && run_quiet("openssl", bad_sign);
    /* A broker started as root may read them as another user; these keys
     * protect nothing. */
    if (ok)
        ok = chmod(p[SRV_KEY], 0644) == 0 && chmod(p[BAD_KEY], 0644) == 0;
    for (size_t i = 0; i < N_FILES; i++)
        free(p[i]);
    return ok;
}

bool h_mosquitto_passwd(const char *file, bool create, const char *user, const char *password)
{
    const char *with_c[] = {"-b", "-c", file, user, password, NULL};
    const char *without[] = {"-b", file, user, password, NULL};
    return run_quiet("mosquitto_passwd", create ? with_c : without);
}

void h_restart_mosquitto_conf(struct proc *p, const char *dir, int port,
                              const char *listener_conf)
{
    char *conf = xasprintf("%s/mosquitto-%d.conf", dir, port);
    /* As h_restart_mosquitto: a broker started as root stays our user. */
    const struct passwd *pw = getpwuid(geteuid());
    char *text = xasprintf("listener %d 127.0.0.1\n%s\npersistence false\nuser %s\n", port,
                           listener_conf ? listener_conf : "",
                           pw && pw->pw_name ? pw->pw_name : "mosquitto");
    h_write_file(conf, text);
    char *log = xasprintf("%s/mosquitto-%d.log", dir, port);
    const char *bin = h_env("MOSQUITTO_BIN", "/usr/sbin/mosquitto");
    char *argv[] = {(char *)bin, "-c", conf, NULL};
    h_spawn(p, argv, log, false);
    if (!h_wait_port(port, 10000)) {
        h_dump_log(p, "mosquitto");
        fprintf(stderr, "harness: mosquitto did not listen on %d\n", port);
        exit(2);
    }
    free(conf);
    free(text);
    free(log);
}

int h_start_mosquitto_conf(struct proc *p, const char *dir, const char *listener_conf)
{
    int port = h_free_port();
    h_restart_mosquitto_conf(p, dir, port, listener_conf);
    return port;
}

struct h_sub *h_sub_new_auth(int port, const char *client_id, const char *filter,
                             const char *ca_file, const char *user, const char *password)
{
    struct h_sub *s = xcalloc(1, sizeof(*s));
    char *uri = xasprintf("%s://127.0.0.1:%d", ca_file ? "ssl" : "tcp", port);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->filter = xstrdup(filter);
    if (MQTTAsync_create(&s->client, uri, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
        MQTTASYNC_SUCCESS) {
        fprintf(stderr, "harness: MQTTAsync_create failed for %s\n", uri);
        exit(2);
    }
    MQTTAsync_setCallbacks(s->client, s, NULL, on_message, NULL);
    MQTTAsync_setConnected(s->client, s, on_connected);
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    co.cleansession = 1;
    co.keepAliveInterval = 10;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 2;
    co.username = user;
    co.password = password;
    if (ca_file) {
        ssl.trustStore = ca_file;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        co.ssl = &ssl;
    }
    if (MQTTAsync_connect(s->client, &co) != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "harness: MQTTAsync_connect failed for %s\n", uri);
        exit(2);
    }
    int64_t end = now_mono_ms() + 10000;
    while (!s->subscribed && now_mono_ms() < end)
        sleep_ms(10);
    if (!s->subscribed) {
        fprintf(stderr, "harness: subscriber %s could not subscribe on %s\n", client_id, uri);
        exit(2);
    }
    free(uri);
    return s;
}

/* ---- waiting on conditions with a deadline ---- */

bool h_wait_until(bool (*cond)(void *ud), void *ud, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    /* Conditions may run a command each time: poll often at first, then
     * every 250 ms, so a long wait does not keep a core busy. */
    for (int step = 10; now_mono_ms() < end; step = step < 125 ? step * 2 : 250) {
        if (cond(ud))
            return true;
        int left = h_left_ms(end);
        sleep_ms(step < left ? step : left);
    }
    return cond(ud);
}

int h_left_ms(int64_t end_ms)
{
    int64_t left = end_ms - now_mono_ms();
    return left > 0 ? (int)left : 0;
}

int64_t h_db_int(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out_close;
    /* The daemon writes meanwhile: wait for its lock rather than fail. */
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
out_close:
    sqlite3_close(db);
    return v;
}

bool h_wait_rows(const char *db_path, const char *sql, int64_t n, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    for (;;) {
        if (h_db_int(db_path, sql) >= n)
            return true;
        if (now_mono_ms() >= end)
            return false;
        sleep_ms(50);
    }
}

size_t h_sub_count_topic(struct h_sub *s, size_t from, const char *topic, const char *needle)
{
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = from; i < s->n; i++)
        n += strcmp(s->msgs[i].topic, topic) == 0 && (!needle || strstr(s->msgs[i].payload, needle));
    pthread_mutex_unlock(&s->lock);
    return n;
}

bool h_sub_wait_count(struct h_sub *s, size_t from, const char *topic, const char *needle,
                      size_t n, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    size_t seen = 0;
    for (size_t i = from; seen < n; i++) {
        long k = h_sub_wait(s, i, topic, needle, h_left_ms(end));
        if (k < 0)
            return false;
        i = (size_t)k;
        seen++;
    }
    return true;
}

/* Lines of the log that are exactly "ok" (the sim's answer to a command). */
static size_t ok_lines(const struct proc *p)
{
    char *text = h_read_file(p->log_path);
    size_t n = 0;
    for (const char *s = text; s && *s;) {
        const char *eol = strchr(s, '\n');
        if (!eol)
            break;
        n += eol - s == 2 && s[0] == 'o' && s[1] == 'k';
        s = eol + 1;
    }
    free(text);
    return n;
}

bool h_sim_do(struct proc *sim, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        return false;
    size_t before = ok_lines(sim);
    if (!h_sim_command(sim, "%s", line))
        return false;
    int64_t end = now_mono_ms() + 5000;
    while (ok_lines(sim) <= before) {
        if (now_mono_ms() >= end) {
            fprintf(stderr, "harness: the sim did not answer \"%s\"\n", line);
            return false;
        }
        sleep_ms(5);
    }
    return true;
}

/* ---- a park under test ---- */

void h_park_start(struct h_park *pk, const char *name, h_config_fn make_config, uint64_t seed)
{
    *pk = (struct h_park){.mosq.stdin_fd = -1, .sim.stdin_fd = -1, .gw.stdin_fd = -1};
    pk->dir = h_park_dir(name);
    pk->parkgw = h_env("PARKGW_BIN", "parkgw");
    pk->mport = h_start_mosquitto(&pk->mosq, pk->dir);
    pk->sim_cfg = xasprintf("%s/sim.cfg", pk->dir);
    pk->gw_cfg = xasprintf("%s/gw.cfg", pk->dir);
    pk->gw_log = xasprintf("%s/parkgw.log", pk->dir);
    /* The sim serves every TCP bus on one port of its choosing: the config
     * it reads names 502 (any port), the gateway's the sim's real one. */
    char *text = make_config(pk->dir, pk->mport, 502);
    h_write_file(pk->sim_cfg, text);
    free(text);
    pk->sport = h_start_sim(&pk->sim, pk->dir, pk->sim_cfg, seed);
    text = make_config(pk->dir, pk->mport, pk->sport);
    h_write_file(pk->gw_cfg, text);
    free(text);
}

void h_park_run(struct h_park *pk, bool verbose)
{
    char *argv[] = {(char *)pk->parkgw, "run", "-c", pk->gw_cfg, verbose ? "-v" : NULL, NULL};
    h_spawn(&pk->gw, argv, pk->gw_log, false);
}

bool h_park_stop_gw(struct h_park *pk)
{
    int status = h_stop(&pk->gw, SIGTERM, 15000);
    return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void h_park_free(struct h_park *pk, bool failed)
{
    if (failed) {
        h_dump_log(&pk->gw, "parkgw");
        h_dump_log(&pk->sim, "parkgw-sim");
    }
    if (pk->gw.pid > 0)
        h_stop(&pk->gw, SIGTERM, 10000);
    h_stop(&pk->sim, SIGTERM, 5000);
    h_stop(&pk->mosq, SIGTERM, 5000);
    h_proc_release(&pk->gw);
    h_proc_release(&pk->sim);
    h_proc_release(&pk->mosq);
    free(pk->sim_cfg);
    free(pk->gw_cfg);
    free(pk->gw_log);
    free(pk->dir);
}

json_t *h_status_meter(json_t *doc, const char *ent, const char *id)
{
    size_t e, i;
    json_t *eo, *m;
    json_array_foreach(json_object_get(doc, "enterprises"), e, eo) {
        const char *eid = json_string_value(json_object_get(eo, "id"));
        if (!eid || strcmp(eid, ent) != 0)
            continue;
        json_array_foreach(json_object_get(eo, "meters"), i, m) {
            const char *mid = json_string_value(json_object_get(m, "id"));
            if (mid && strcmp(mid, id) == 0)
                return m;
        }
    }
    return NULL;
}
