/*
 * harness.h - process harness for integration tests: temp dirs, free
 * loopback ports, spawning and stopping real processes (mosquitto,
 * parkgw-sim, parkgw) with readiness by connecting, an MQTT subscriber that
 * records every message, and waits on conditions with a deadline (a log
 * line, a message count, a row count in SQLite, a file). No fixed ports, no
 * fixed sleeps.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/unit/check.h"

struct proc {
    pid_t pid;
    int stdin_fd;     /* -1 unless spawned with a stdin pipe */
    char *log_path;
};

/* A fresh directory under $PARKGW_TEST_TMP named after the test; exits on failure. */
char *h_tmpdir(const char *name);
/* h_tmpdir plus what every park test needs: "profiles" and "tariffs" links
 * to the source tree's config/profiles and config/tariffs (so `@include
 * "profiles/x.cfg"` and `@include "tariffs/pf-0.90.cfg"` resolve next to the
 * generated config) and PARKGW_PROFILE_DIR for the processes it spawns. */
char *h_park_dir(const char *name);
/* A loopback TCP port that was free a moment ago. */
int h_free_port(void);
/* Writes a whole file; exits on failure. */
void h_write_file(const char *path, const char *text);
/* Reads a whole file (malloc'd, NUL-terminated) or NULL. */
char *h_read_file(const char *path);
/* Environment variable or a default. */
const char *h_env(const char *name, const char *def);

/* Spawns argv (NULL-terminated) with stdout+stderr appended to log_path.
 * with_stdin: a pipe to its stdin is kept in p->stdin_fd. Exits on failure. */
void h_spawn(struct proc *p, char *const argv[], const char *log_path, bool with_stdin);
/* Sends sig; waits up to timeout_ms. Returns the wait status, or -1 on
 * timeout (then the process is SIGKILLed and reaped). */
int h_stop(struct proc *p, int sig, int timeout_ms);
bool h_alive(struct proc *p);
/* Frees what h_spawn allocated (the process must have been stopped). */
void h_proc_release(struct proc *p);
/* Prints the last lines of the process's log to stderr (on failure). */
void h_dump_log(const struct proc *p, const char *what);

/* Waits until a TCP connect to 127.0.0.1:port succeeds. */
bool h_wait_port(int port, int timeout_ms);
/* Waits until path exists and is non-empty. */
bool h_wait_file(const char *path, int timeout_ms);

/* Starts mosquitto on a free port (config in dir); returns the port. */
int h_start_mosquitto(struct proc *p, const char *dir);
/* Restarts mosquitto on a given port (after h_stop). */
void h_restart_mosquitto(struct proc *p, const char *dir, int port);

/* Starts parkgw-sim for cfg_path on a free port chosen by the sim; returns the port. */
int h_start_sim(struct proc *p, const char *dir, const char *cfg_path, uint64_t seed);
/* Sends one control command line (printf-style, no newline needed) to a sim
 * started with h_start_sim; false when the pipe is gone. The answer goes to
 * the sim's log. */
bool h_sim_command(struct proc *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Waits until path resolves (a symlink to an existing target counts). */
bool h_wait_path(const char *path, int timeout_ms);

/* A recording subscriber (Paho async). */
struct h_msg {
    char *topic;
    char *payload;
    bool retained;
    int64_t rx_ms;  /* wall clock at reception */
};
struct h_sub;
struct h_sub *h_sub_new(int port, const char *client_id, const char *filter);
/* The same with a persistent session (cleansession=0, QoS 1 subscription):
 * with a broker that keeps sessions (the harness's mosquitto has
 * persistence on), QoS 1 messages published while it is disconnected, or
 * while the broker restarts, are delivered when it reconnects. */
struct h_sub *h_sub_new_persistent(int port, const char *client_id, const char *filter);
void h_sub_free(struct h_sub *s);
/* Number of messages so far (thread-safe). */
size_t h_sub_count(struct h_sub *s);
/* Copy of message i (caller frees topic/payload with h_msg_free). */
bool h_sub_get(struct h_sub *s, size_t i, struct h_msg *ret);
void h_msg_free(struct h_msg *m);
/* Waits for a message whose topic equals 'topic' (and whose payload contains
 * 'needle' if non-NULL) at index >= from; returns its index or -1. */
long h_sub_wait(struct h_sub *s, size_t from, const char *topic, const char *needle,
                int timeout_ms);

/* Runs a command (argv) to completion, capturing stdout/stderr into
 * malloc'd strings; returns the exit status or -1. */
int h_run(char *const argv[], char **ret_out, char **ret_err, int timeout_ms);

/* Log helpers (the process's log file, as written so far). */
/* Occurrences of needle in the log. */
size_t h_log_count(const struct proc *p, const char *needle);
/* Waits until the log holds at least 'n' occurrences of needle. */
bool h_wait_log(const struct proc *p, const char *needle, size_t n, int timeout_ms);

/* ---- waiting on conditions with a deadline ---- */

/* Calls cond(ud) until it returns true or timeout_ms passed (every 10 ms
 * at first, backing off to every 250 ms); returns its last answer (it is
 * asked once more at the deadline). */
bool h_wait_until(bool (*cond)(void *ud), void *ud, int timeout_ms);
/* Milliseconds left until the monotonic deadline end_ms (0 when past). */
int h_left_ms(int64_t end_ms);
/* The first column of the first row of sql on the SQLite database at
 * db_path (opened read-only, so beside a running parkgw), or -1 when the
 * database or the query fails or gives no row. */
int64_t h_db_int(const char *db_path, const char *sql);
/* Waits until h_db_int(db_path, sql) >= n. */
bool h_wait_rows(const char *db_path, const char *sql, int64_t n, int timeout_ms);
/* Messages at index >= from on topic (payload containing needle if
 * non-NULL). */
size_t h_sub_count_topic(struct h_sub *s, size_t from, const char *topic, const char *needle);
/* Waits until h_sub_count_topic(s, from, topic, needle) >= n. */
bool h_sub_wait_count(struct h_sub *s, size_t from, const char *topic, const char *needle,
                      size_t n, int timeout_ms);
/* Sends a control command to a sim (as h_sim_command) and waits until the
 * sim answered it (one more "ok" line in its log): the fault, supply or
 * offset is in force when this returns true. */
bool h_sim_do(struct proc *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- a park under test: mosquitto + parkgw-sim + parkgw in one temp dir ---- */

/* Config text for the gateway (sim_port > 0) or for the sim (sim_port is
 * 502, the sim picks its own port). */
typedef char *(*h_config_fn)(const char *dir, int mqtt_port, int sim_port);
struct h_park {
    char *dir;          /* h_park_dir(name) */
    struct proc mosq, sim, gw;
    int mport, sport;   /* broker and simulator ports */
    char *sim_cfg, *gw_cfg, *gw_log;
    const char *parkgw; /* $PARKGW_BIN */
};
/* Makes the park dir, starts mosquitto and parkgw-sim (seed) with the config
 * make_config gives, and writes the gateway's config to pk->gw_cfg. Exits
 * on failure. parkgw itself is started by h_park_run. */
void h_park_start(struct h_park *pk, const char *name, h_config_fn make_config, uint64_t seed);
/* Starts `parkgw run -c gw_cfg` (with -v when verbose), output appended
 * to pk->gw_log. */
void h_park_run(struct h_park *pk, bool verbose);
/* SIGTERMs parkgw; true when it exited 0 within 15 s. */
bool h_park_stop_gw(struct h_park *pk);
/* Stops whatever still runs (dumping the logs of parkgw and the sim first
 * when failed) and frees the park. */
void h_park_free(struct h_park *pk, bool failed);

/* A fake systemd notification socket (AF_UNIX datagram bound at path) for
 * NOTIFY_SOCKET. Returns the fd; exits on failure. */
int h_notify_socket(const char *path);
/* Receives one notification into buf (NUL-terminated); returns its length,
 * or -1 when nothing arrived within timeout_ms. */
int h_notify_recv(int fd, char *buf, size_t len, int timeout_ms);

/* ---- TLS and authenticated brokers (it_mqtt_auth) ---- */

/* True when 'name' is an executable in $PATH, /usr/sbin or /sbin. */
bool h_have_program(const char *name);
/* Makes a throwaway PKI in dir with the openssl command: ca.crt/ca.key (the
 * test CA), srv.crt/srv.key (signed by it for IP 127.0.0.1 and DNS
 * localhost), wrongname.crt/wrongname.key (signed by it for DNS
 * other.example only) and other-ca.crt (an unrelated CA). Keys are
 * world-readable (mosquitto may drop privileges). False when openssl
 * failed. */
bool h_make_test_certs(const char *dir);
/* Adds user:password to a mosquitto password file with mosquitto_passwd -b
 * (create: -c, a new file). False when it failed. */
bool h_mosquitto_passwd(const char *file, bool create, const char *user, const char *password);
/* Starts mosquitto on a free port like h_start_mosquitto, but the listener's
 * settings come from 'listener_conf' (placed right after the "listener"
 * line: cafile/certfile/keyfile make it TLS) and nothing is implied about
 * anonymous access: say "allow_anonymous true|false" there. Config and log
 * are dir/mosquitto-PORT.{conf,log}. Ready when the port accepts TCP. */
int h_start_mosquitto_conf(struct proc *p, const char *dir, const char *listener_conf);
/* The same on a given port (after h_stop). */
void h_restart_mosquitto_conf(struct proc *p, const char *dir, int port,
                              const char *listener_conf);
/* A recording subscriber like h_sub_new that can authenticate: ca_file set
 * connects ssl://127.0.0.1:port verifying the server against it; user and
 * password (either may be NULL) are sent in CONNECT. Exits when it cannot
 * subscribe within 10 s. */
struct h_sub *h_sub_new_auth(int port, const char *client_id, const char *filter,
                             const char *ca_file, const char *user, const char *password);

/* ---- the status document (docs/OPERATOR.md) ---- */

/* The meter object ENT/ID of a status document (`parkgw status --format
 * json`, GET /api/status), borrowed from doc; NULL when absent. */
struct json_t;
struct json_t *h_status_meter(struct json_t *doc, const char *ent, const char *id);
