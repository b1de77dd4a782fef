/*
 * bus.h - one Modbus bus (a TCP gateway or an RS-485 line) owned by exactly
 * one thread: a libmodbus context for connect/reconnect and the RTU
 * exchange, our own exchange on the TCP socket (mbtcp.h), and recovery after
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
 * Executes one request for 'unit_id' on a Modbus bus (-EINVAL on another
 * protocol's). out receives req->count
 * registers, or req->count bits as 0/1 values for fc 1/2. Returns 0, or a
 * negative error:
 *   -EINVAL      a request or unit id out of range (nothing sent);
 *   -ETIMEDOUT   no whole reply within the response timeout: TCP closes
 *                the connection (the late reply goes to the old socket),
 *                RTU lets the line settle;
 *   -EBADMSG     a malformed reply (CRC, length, unit, function, byte
 *                count; on TCP also transaction or protocol id, e.g. a late
 *                reply to an earlier request, and bytes after the reply):
 *                TCP closes the connection too, as where the next reply
 *                would start is lost; RTU flushes;
 *   -(BUS_EXC_BASE + code)  a Modbus exception response: the link stays;
 *   anything else (-ECONNRESET for a peer that closed or reset, -EIO of a
 *   vanished serial device, a connect error such as -ECONNREFUSED or
 *   -ENOENT, -ENOTCONN while the reconnect backs off): the link is down,
 *   the bus is closed and reopens on a later read.
 * On TCP the timeout is one deadline for the whole reply. An RTU bus with
 * frame_delay_ms waits that long after the previous exchange.
 */
#define BUS_EXC_BASE 1000
int bus_read(struct bus *b, int unit_id, const struct plan_req *req, uint16_t *out);

/*
 * bus_read for meter m, on a bus of any protocol: Modbus by its unit id,
 * DL/T 645 and CJ/T 188 by its address (a request of the plan of its
 * profile). For these out receives req->count data bytes, one per element.
 * Besides bus_read's errors: an abnormal reply is
 * -(DLT645_ERR_BASE + error byte) or -(CJT188_ERR_BASE + ST0) (both below
 * -BUS_EXC_BASE, so counted and recovered like exceptions); a reply from
 * another address, for another data item, or with less data than asked
 * (or, for a single item, other than asked) is -EBADMSG.
 */
int bus_read_meter(struct bus *b, const struct cfg_meter *m, const struct plan_req *req,
                   uint16_t *out);
/* The same for the meter at the wire address addr (AA bytes: wildcards),
 * DL/T 645 and CJ/T 188 buses only (-EINVAL on Modbus). */
int bus_read_addr(struct bus *b, const uint8_t *addr, const struct plan_req *req, uint16_t *out);

/* DL/T 645 buses: the broadcast read-address (AAAAAAAAAAAA, control code
 * 13H), which the only meter on a line answers with its address. 0 and
 * ret_addr[0..6) in wire order (bcd_addr_format prints it), or a bus_read
 * error: -ETIMEDOUT when no meter answered, -EBADMSG for a garbled reply
 * (several meters answering at once collide); -EINVAL on another protocol. */
int bus_read_address(struct bus *b, uint8_t ret_addr[BCD_MAX_ADDR]);

/* Human text for a bus_read error, e.g. "exception 2 (illegal data address)". */
const char *bus_strerror(int err);
