/*
 * test_sim_server.c - smoke test of the parkgw-sim program: starts the
 * binary (PARKGW_SIM_BIN) on a free loopback port with a generated park
 * config, reads meters with a libmodbus client and compares every decoded
 * value with the model, then drives every control command and fault.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "common/util.h"
#include "protocols/decode.h"
#include "tests/unit/check.h"
#include "tools/sim/sim_model.h"

#define SEED 2016

extern char **environ;

struct simproc {
    pid_t pid;
    int in_fd;      /* its stdin: control commands */
    int out_fd;     /* its stdout: answers */
    char buf[65536];
    size_t len;
};

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

/* Two TCP buses like two RMU gateways; the water line shares rmu-1's
 * endpoint, so --port serves them all on one port. Shirong's gas meter is on
 * an RS-485 line, served on a pty linked at DIR/ttyS-park. */
static char *park_config(const char *dir, const char *host)
{
    return xasprintf(
        "gateway = { id = \"simtest\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/x.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:1883\"; };\n"
        "buses = (\n"
        "  { name = \"rmu-1\"; type = \"tcp\"; host = \"%s\"; port = 502; },\n"
        "  { name = \"line-a\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 502; },\n"
        "  { name = \"rs485-a\"; type = \"rtu\"; device = \"%s/ttyS-park\"; baud = 9600;\n"
        "    parity = \"E\"; timeout_ms = 300; }\n"
        ");\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "@include \"profiles/generic-gas.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"chengtong-plastics\"; name = \"湖南城通塑业有限公司\"; meters = (\n"
        "      { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "        profile = \"generic-electricity\"; interval = 5; pt_ratio = 100.0; ct_ratio = 40.0; },\n"
        "      { id = \"w1\"; utility = \"water\"; bus = \"line-a\"; unit_id = 11;\n"
        "        profile = \"generic-water\"; interval = 10; },\n"
        "      { id = \"g1\"; utility = \"gas\"; bus = \"line-a\"; unit_id = 21;\n"
        "        profile = \"generic-gas\"; interval = 10; } ); },\n"
        "  { id = \"shirong-packaging\"; name = \"湖南世容纸塑包装有限公司\"; meters = (\n"
        "      { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 2;\n"
        "        profile = \"generic-electricity\"; interval = 5; pt_ratio = 100.0; ct_ratio = 50.0; },\n"
        "      { id = \"g1\"; utility = \"gas\"; bus = \"rs485-a\"; unit_id = 21;\n"
        "        profile = \"generic-gas\"; interval = 10; } ); }\n"
        ");\n",
        dir, host, dir);
}

static void sim_start(struct simproc *p, char *const argv[], const char *log_path)
{
    int in[2], out[2];
    posix_spawn_file_actions_t fa;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        perror("pipe");
        exit(2);
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int r = posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) {
        fprintf(stderr, "cannot start %s: %s\n", argv[0], strerror(r));
        exit(2);
    }
    close(in[0]);
    close(out[1]);
    p->in_fd = in[1];
    p->out_fd = out[0];
    p->len = 0;
}

/* Next stdout line of the sim (without newline) into line; false on timeout/EOF. */
static bool sim_line(struct simproc *p, char *line, size_t cap, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl) {
            size_t n = (size_t)(nl - p->buf);
            snprintf(line, cap, "%.*s", (int)n, p->buf);
            memmove(p->buf, nl + 1, p->len - n - 1);
            p->len -= n + 1;
            return true;
        }
        int64_t left = end - now_mono_ms();
        struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0 || p->len + 1 >= sizeof(p->buf))
            return false;
        ssize_t r = read(p->out_fd, p->buf + p->len, sizeof(p->buf) - p->len - 1);
        if (r <= 0)
            return false;
        p->len += (size_t)r;
    }
}

/* Sends one control command and returns its answer line (static buffer),
 * skipping the startup lines ("parkgw-sim: ..."). */
static const char *ctl(struct simproc *p, const char *cmd)
{
    static char line[8192];
    char *text = xasprintf("%s\n", cmd);
    if (write_all(p->in_fd, text, strlen(text)) < 0) {
        line[0] = 0;
    } else {
        do {
            if (!sim_line(p, line, sizeof(line), 5000)) {
                snprintf(line, sizeof(line), "(no answer)");
                break;
            }
        } while (strncmp(line, "parkgw-sim:", 11) == 0);
    }
    free(text);
    return line;
}

/* Waits for the process to exit; returns its exit code, -1 on timeout (killed). */
static int sim_wait(struct simproc *p, int timeout_ms)
{
    int status;
    int64_t end = now_mono_ms() + timeout_ms;
    while (waitpid(p->pid, &status, WNOHANG) == 0) {
        if (now_mono_ms() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            return -1;
        }
        sleep_ms(10);
    }
    close(p->in_fd);
    close(p->out_fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static modbus_t *client(int port, int timeout_ms)
{
    modbus_t *c = modbus_new_tcp("127.0.0.1", port);
    modbus_set_response_timeout(c, (uint32_t)timeout_ms / 1000, (uint32_t)(timeout_ms % 1000) * 1000);
    if (modbus_connect(c) < 0) {
        fprintf(stderr, "connect to sim port %d: %s\n", port, modbus_strerror(errno));
        exit(2);
    }
    return c;
}

/* Reads every point of meter m in one request per register block and checks
 * the decoded values are exactly what the model says for one second between
 * the request and the reply. Returns the number of points that matched. */
static int read_and_compare(modbus_t *c, const struct config *cfg, const struct cfg_meter *m,
                            const struct sim_meter_state *st)
{
    const struct cfg_profile *p = &cfg->profiles[m->profile];
    uint16_t r3[128] = {0}, r4[128] = {0};
    uint8_t b2[8] = {0};
    size_t nregs = sim_profile_nregs(p);
    int64_t t0 = now_real_ms() / 1000;
    bool has3 = false, has4 = false, has2 = false;
    for (size_t i = 0; i < p->n_points; i++) {
        has3 |= p->points[i].fc == 3;
        has4 |= p->points[i].fc == 4;
        has2 |= p->points[i].fc == 2;
    }
    modbus_set_slave(c, m->unit_id);
    if ((has3 && modbus_read_registers(c, 0, (int)nregs, r3) != (int)nregs) ||
        (has4 && modbus_read_input_registers(c, 0, (int)nregs, r4) != (int)nregs) ||
        (has2 && modbus_read_input_bits(c, 0, 1, b2) != 1)) {
        fprintf(stderr, "%s: read failed: %s\n", m->id, modbus_strerror(errno));
        return -1;
    }
    int64_t t1 = now_real_ms() / 1000;
    int best = 0;
    for (int64_t t = t0; t <= t1; t++) {
        int ok = 0;
        for (size_t i = 0; i < p->n_points; i++) {
            const struct cfg_point *pt = &p->points[i];
            uint16_t bit = b2[pt->address < 8 ? pt->address : 0];
            const uint16_t *regs = pt->fc == 2 ? &bit : (pt->fc == 3 ? r3 : r4) + pt->address;
            double got, want = sim_expected_decoded(SEED, cfg, m, i, t, st);
            if (decode_point(pt, m->pt_ratio, m->ct_ratio, regs, &got) == 0 && got == want)
                ok++;
            else if (t == t1)
                fprintf(stderr, "%s %s at %lld: read %.10g, model %.10g\n", m->id, pt->name,
                        (long long)t, got, want);
        }
        if (ok > best)
            best = ok;
    }
    return best;
}

static double read_point(modbus_t *c, const struct config *cfg, const struct cfg_meter *m,
                         const char *name)
{
    const struct cfg_profile *p = &cfg->profiles[m->profile];
    for (size_t i = 0; i < p->n_points; i++) {
        const struct cfg_point *pt = &p->points[i];
        if (strcmp(pt->name, name) != 0)
            continue;
        uint16_t regs[4];
        int n = point_type_regs(pt->type);
        double v;
        modbus_set_slave(c, m->unit_id);
        int r = pt->fc == 3 ? modbus_read_registers(c, pt->address, n, regs)
                            : modbus_read_input_registers(c, pt->address, n, regs);
        if (r != n || decode_point(pt, m->pt_ratio, m->ct_ratio, regs, &v) < 0)
            return NAN;
        return v;
    }
    return NAN;
}

/* A read of 2 holding registers of unit 'unit'; 0 or the errno it failed with. */
static int read_errno(modbus_t *c, int unit, int addr, int n)
{
    uint16_t regs[128];
    modbus_set_slave(c, unit);
    return modbus_read_registers(c, addr, n, regs) == n ? 0 : errno;
}

static void test_refusals(const char *bin, const char *dir)
{
    /* a bus on a real network address is refused without --port */
    char *cfg_path = xasprintf("%s/far.cfg", dir);
    char *text = park_config(dir, "10.0.0.21");
    write_text(cfg_path, text);
    char *log = xasprintf("%s/refuse.log", dir);
    struct simproc p;
    char *argv1[] = {(char *)bin, "--config", cfg_path, NULL};
    sim_start(&p, argv1, log);
    CHECK_INT(sim_wait(&p, 10000), 1);
    /* ... but with --port the same config is served on the loopback port */
    char *argv1b[] = {(char *)bin, "--config", cfg_path, "--port", "0", "--control", "-", NULL};
    char line[256];
    sim_start(&p, argv1b, log);
    CHECK(sim_line(&p, line, sizeof(line), 10000));
    CHECK_CONTAINS(line, "(4 meters)");
    CHECK_STR(ctl(&p, "quit"), "ok");
    CHECK_INT(sim_wait(&p, 5000), 0);
    /* two meters with unit id 1 cannot share one --port */
    free(text);
    text = park_config(dir, "127.0.0.1");
    char *dup = strstr(text, "unit_id = 11");
    memcpy(dup, "unit_id =  1", 12);
    write_text(cfg_path, text);
    char *argv2[] = {(char *)bin, "--config", cfg_path, "--port", "0", NULL};
    sim_start(&p, argv2, log);
    CHECK_INT(sim_wait(&p, 10000), 1);
    char *out = NULL;
    FILE *f = fopen(log, "re");
    size_t cap = 0;
    if (f) {
        ssize_t n = getdelim(&out, &cap, 0, f);
        (void)n;
        fclose(f);
    }
    CHECK_CONTAINS(out, "not a loopback address");
    CHECK_CONTAINS(out, "both have unit id 1");
    free(out);
    free(text);
    free(cfg_path);
    free(log);
}

int main(void)
{
    const char *bin = env_or("PARKGW_SIM_BIN", "parkgw-sim");
    const char *src = env_or("PARKGW_SOURCE_DIR", ".");
    const char *tmp = env_or("PARKGW_TEST_TMP", "/tmp");
    mkdir(tmp, 0755);
    char *dir = xasprintf("%s/sim_server.%d.XXXXXX", tmp, (int)getpid());
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    char *profiles = xasprintf("%s/config/profiles", src);
    char *link = xasprintf("%s/profiles", dir);
    if (symlink(profiles, link) < 0) {
        perror("symlink");
        return 2;
    }
    char *cfg_path = xasprintf("%s/park.cfg", dir);
    char *text = park_config(dir, "127.0.0.1");
    write_text(cfg_path, text);
    struct config *cfg;
    char err[512];
    if (config_load(cfg_path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    const struct cfg_meter *e1 = config_find_meter(cfg, "chengtong-plastics/e1");
    const struct cfg_meter *w1 = config_find_meter(cfg, "chengtong-plastics/w1");
    const struct cfg_meter *g1 = config_find_meter(cfg, "chengtong-plastics/g1");
    const struct cfg_meter *s1 = config_find_meter(cfg, "shirong-packaging/e1");

    char *port_file = xasprintf("%s/sim.port", dir);
    char *log = xasprintf("%s/sim.log", dir);
    struct simproc sim;
    char *argv[] = {(char *)bin, "--config", cfg_path, "--seed", "2016", "--port", "0",
                    "--port-file", port_file, "--control", "-", NULL};
    sim_start(&sim, argv, log);

    /* readiness: the listening line on stdout, then the port file */
    char line[512];
    CHECK(sim_line(&sim, line, sizeof(line), 10000));
    CHECK_CONTAINS(line, "parkgw-sim: listening on 127.0.0.1:");
    CHECK_CONTAINS(line, "(4 meters)");
    struct stat stt;
    int64_t end = now_mono_ms() + 5000;
    while (stat(port_file, &stt) < 0 && now_mono_ms() < end)
        sleep_ms(10);
    FILE *pf = fopen(port_file, "re");
    int port = 0;
    if (!pf || fscanf(pf, "%d", &port) != 1 || port <= 0) {
        fprintf(stderr, "no port in %s\n", port_file);
        kill(sim.pid, SIGKILL);
        return 2;
    }
    fclose(pf);
    char want_line[128];
    snprintf(want_line, sizeof(want_line), "127.0.0.1:%d (4 meters)", port);
    CHECK_CONTAINS(line, want_line);

    modbus_t *c = client(port, 1000);
    modbus_t *c2 = client(port, 1000);

    /* every point of every meter, exactly as the model computes */
    const struct cfg_meter *all[] = {e1, w1, g1, s1};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        CHECK_INT(read_and_compare(i % 2 ? c2 : c, cfg, all[i], NULL),
                  cfg->profiles[all[i]->profile].n_points);
    /* electricity at 10 kV through PT 100: the register holds the PT's
     * secondary phase voltage near 57.7 V, decoded (ratio pt) near 5774 V */
    CHECK_NEAR(read_point(c, cfg, e1, "voltage_a_v"), 5774.0, 200.0);

    /* a unit id nobody has: gateway-target exception (0x0B) */
    CHECK_INT(read_errno(c, 99, 0, 2), EMBXGTAR);
    /* beyond the meter's register map (48 registers): illegal address */
    CHECK_INT(read_errno(c, 1, 46, 4), EMBXILADD);

    /* control: errors are answered, not fatal */
    CHECK_CONTAINS(ctl(&sim, "fault nosuch/e1 none"), "error: ");
    CHECK_CONTAINS(ctl(&sim, "fault chengtong-plastics/e1 exception 99"), "error: ");
    CHECK_CONTAINS(ctl(&sim, "frobnicate"), "error: ");

    /* exception 4 (server device failure) */
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 exception 4"), "ok");
    CHECK_INT(read_errno(c, 1, 0, 2), EMBXSFAIL);
    /* other meters are untouched */
    CHECK_INT(read_errno(c, 2, 0, 2), 0);

    /* maxregs: a 48-register read is refused with exception 3, 20 pass */
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 none"), "ok");
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 maxregs 20"), "ok");
    CHECK_INT(read_errno(c, 1, 0, 48), EMBXILVAL);
    CHECK_INT(read_errno(c, 1, 0, 20), 0);
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/* none"), "ok");
    CHECK_INT(read_errno(c, 1, 0, 48), 0);

    /* noreply: the client times out (1 s) */
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 noreply"), "ok");
    int64_t t0 = now_mono_ms();
    CHECK_INT(read_errno(c, 1, 0, 2), ETIMEDOUT);
    CHECK(now_mono_ms() - t0 >= 900);
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 none"), "ok");
    CHECK_INT(read_errno(c, 1, 0, 2), 0);

    /* delay: the reply comes 1000 ms late while other clients are served at
     * once (request sent by hand on a raw socket, another meter read
     * meanwhile on the second connection) */
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 delay 1000"), "ok");
    int raw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_INT(connect(raw, (struct sockaddr *)&a, sizeof(a)), 0);
    /* TID 0x1234, protocol 0, length 6, unit 1, fc 3, address 0, 2 registers */
    const uint8_t req[12] = {0x12, 0x34, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2};
    t0 = now_mono_ms();
    CHECK_INT(write(raw, req, sizeof(req)), 12);
    CHECK_INT(read_errno(c2, 2, 0, 2), 0);
    CHECK(now_mono_ms() - t0 < 800);
    uint8_t rsp[64];
    struct pollfd rp = {.fd = raw, .events = POLLIN};
    CHECK_INT(poll(&rp, 1, 3000), 1);
    /* 7-byte MBAP + fc + byte count + 4 data bytes, same TID */
    CHECK_INT(read(raw, rsp, sizeof(rsp)), 13);
    CHECK(now_mono_ms() - t0 >= 990);
    CHECK_INT(rsp[0], 0x12);
    CHECK_INT(rsp[1], 0x34);
    CHECK_INT(rsp[7], 3);
    CHECK_INT(rsp[8], 4);
    close(raw);
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 none"), "ok");

    /* corrupt: the reply carries another transaction id */
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 corrupt"), "ok");
    CHECK(read_errno(c, 1, 0, 2) != 0);
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 none"), "ok");
    modbus_flush(c);

    /* drop: the connection is closed; a new one works */
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 drop"), "ok");
    CHECK(read_errno(c, 1, 0, 2) != 0);
    CHECK_STR(ctl(&sim, "fault chengtong-plastics/e1 none"), "ok");
    modbus_close(c);
    CHECK_INT(modbus_connect(c), 0);
    CHECK_INT(read_errno(c, 1, 0, 2), 0);

    /* offset on the billing counter: what the model gives with the offset */
    CHECK_STR(ctl(&sim, "offset shirong-packaging/e1 1000000"), "ok");
    struct sim_meter_state st = {.counter_offset = 1000000};
    CHECK_INT(read_and_compare(c, cfg, s1, &st), cfg->profiles[s1->profile].n_points);

    /* supply off: voltages 0, the counter stands still; back on: it resumes */
    CHECK_STR(ctl(&sim, "supply chengtong-plastics/e1 off"), "ok");
    CHECK_NEAR(read_point(c, cfg, e1, "voltage_a_v"), 0, 0);
    CHECK_NEAR(read_point(c, cfg, e1, "power_kw"), 0, 0);
    double kwh1 = read_point(c, cfg, e1, "energy_import_kwh");
    sleep_ms(1100);
    CHECK_NEAR(read_point(c, cfg, e1, "energy_import_kwh"), kwh1, 0);
    CHECK_STR(ctl(&sim, "supply chengtong-plastics/e1 on"), "ok");
    CHECK(read_point(c, cfg, e1, "voltage_a_v") > 50);
    CHECK(read_point(c, cfg, e1, "energy_import_kwh") >= kwh1);

    /* values: one JSON line after "ok" */
    const char *v = ctl(&sim, "values chengtong-plastics/w1");
    CHECK(strncmp(v, "ok {\"meter\":\"chengtong-plastics/w1\"", 35) == 0);
    CHECK_CONTAINS(v, "\"total_m3\":");

    /* the RS-485 line on a pty: same values, silence for unknown units,
     * faults as on TCP, corrupt = bad CRC */
    char *tty = xasprintf("%s/ttyS-park", dir);
    modbus_t *rtu = modbus_new_rtu(tty, 9600, 'E', 8, 1);
    CHECK(rtu != NULL);
    modbus_set_response_timeout(rtu, 0, 400000);
    CHECK_INT(modbus_connect(rtu), 0);
    const struct cfg_meter *sg = config_find_meter(cfg, "shirong-packaging/g1");
    CHECK_INT(read_and_compare(rtu, cfg, sg, NULL), cfg->profiles[sg->profile].n_points);
    CHECK_INT(read_errno(rtu, 22, 0, 2), ETIMEDOUT);
    CHECK_STR(ctl(&sim, "fault shirong-packaging/g1 exception 2"), "ok");
    CHECK_INT(read_errno(rtu, 21, 0, 2), EMBXILADD);
    CHECK_STR(ctl(&sim, "fault shirong-packaging/g1 corrupt"), "ok");
    CHECK_INT(read_errno(rtu, 21, 0, 2), EMBBADCRC);
    CHECK_STR(ctl(&sim, "fault shirong-packaging/g1 none"), "ok");
    modbus_flush(rtu);
    CHECK_INT(read_errno(rtu, 21, 0, 2), 0);
    modbus_close(rtu);
    modbus_free(rtu);

    /* quit: answered, then a clean exit */
    CHECK_STR(ctl(&sim, "quit"), "ok");
    CHECK_INT(sim_wait(&sim, 5000), 0);
    /* the pty link is removed on exit */
    struct stat lst;
    CHECK(lstat(tty, &lst) < 0 && errno == ENOENT);
    free(tty);
    modbus_close(c);
    modbus_free(c);
    modbus_close(c2);
    modbus_free(c2);

    /* SIGTERM stops it cleanly too */
    unlink(port_file);
    sim_start(&sim, argv, log);
    CHECK(sim_line(&sim, line, sizeof(line), 10000));
    kill(sim.pid, SIGTERM);
    CHECK_INT(sim_wait(&sim, 5000), 0);

    test_refusals(bin, dir);

    config_free(cfg);
    free(text);
    free(cfg_path);
    free(port_file);
    free(log);
    free(profiles);
    free(link);
    free(dir);
    return check_done();
}
