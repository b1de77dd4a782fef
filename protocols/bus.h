/*
 * bus.h - one Modbus bus (a TCP gateway or an RS-485 line) owned by exactly
 * one thread: a libmodbus context, connect/reconnect, reads with flush after
 * errors so a late reply is never taken for the next request's answer.
 */
#pragma once
#include <stdint.h>
#include "config/config.h"
#include "protocols/plan.h"

struct bus;

/* Creates the bus (not connected yet). 0 and *ret, or -errno. */
int bus_new(const struct cfg_bus *cfg, struct bus **ret);
void bus_free(struct bus *b);

/* Bounds of the wait between failed connect attempts (doubles each time). */
#define BUS_BACKOFF_MIN_MS 500
#define BUS_BACKOFF_MAX_MS 30000

/* Connects if not connected. 0 or -errno. After a failed attempt the next
 * one waits BUS_BACKOFF_MIN_MS, doubling up to BUS_BACKOFF_MAX_MS; calls in
 * between return -ENOTCONN at once without touching the network. An RTU bus
 * with rs485 set asks for RS-485 mode here (refusal: one warning). */
int bus_connect(struct bus *b);
/* Milliseconds until bus_connect will try again (0 = now or connected). */
int64_t bus_connect_wait_ms(const struct bus *b);
void bus_close(struct bus *b);
bool bus_is_connected(const struct bus *b);

/*
 * Executes one request for 'unit_id'. out receives req->count
 * registers, or req->count bits as 0/1 values for fc 1/2. Returns 0, or a
 * negative error: -ETIMEDOUT (no reply), -EBADMSG (malformed reply/CRC),
 * -(BUS_EXC_BASE + code) for a Modbus exception response; any other error
 * (-ECONNRESET, -EIO of a vanished serial device, a connect error such as
 * -ECONNREFUSED or -ENOENT, -ENOTCONN while the reconnect backs off) means
 * the link is down: the bus is closed and reopens on a later read. An RTU
 * bus with frame_delay_ms waits that long after the previous exchange.
 */
#define BUS_EXC_BASE 1000
int bus_read(struct bus *b, int unit_id, const struct plan_req *req, uint16_t *out);

/* Human text for a bus_read error, e.g. "exception 2 (illegal data address)". */
const char *bus_strerror(int err);
