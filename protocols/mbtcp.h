/*
 * mbtcp.h - Modbus TCP framing of the four read functions (fc 1-4): builds a
 * request ADU and parses its reply. Pure functions on byte buffers, no I/O:
 * bus.c sends and receives on the socket libmodbus connected and calls
 * these; tests/unit/test_mbtcp.c and tests/fuzz/fuzz_mbtcp.c drive them
 * directly. See docs/MODBUS.md, "Modbus TCP transport".
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "protocols/plan.h"

/* MBAP header: transaction id, protocol id (0), length, unit id. */
#define MBTCP_MBAP_LEN 7
/* A read request: MBAP + fc, address, quantity. */
#define MBTCP_REQ_LEN 12
/* The MBAP length field counts the unit id and the PDU (at most 253 bytes):
 * 3 (an exception: fc | 0x80 and a code) to 254. */
#define MBTCP_LEN_MIN 3
#define MBTCP_LEN_MAX 254
/* Longest ADU: the 6 bytes before the length's count plus 254. */
#define MBTCP_MAX_ADU 260
/* Shortest ADU (an exception reply). */
#define MBTCP_MIN_ADU (6 + MBTCP_LEN_MIN)

/* True for a request mbtcp_* can frame: fc 1-4, 1..125 registers or
 * 1..2000 bits, not past address 65535. */
bool mbtcp_req_valid(const struct plan_req *req);

/* Writes the 12-byte request ADU for req (mbtcp_req_valid) with transaction
 * id tid and unit id unit (0..255) into buf. Returns MBTCP_REQ_LEN. */
size_t mbtcp_build_request(uint8_t buf[MBTCP_REQ_LEN], uint16_t tid, int unit,
                           const struct plan_req *req);

/*
 * Parses the len bytes received so far as the reply to request req sent with
 * transaction id tid to unit. Returns
 *   0            a whole, valid reply of exactly len bytes: out holds
 *                req->count registers (big-endian on the wire, host order
 *                here) or req->count bits as 0/1 values (LSB first);
 *   1            valid so far, more bytes needed: *need (> len) is the whole
 *                frame's length once the MBAP length is in, else the
 *                shortest possible frame;
 *   -EBADMSG     a field contradicts the request: transaction id, protocol
 *                id, unit id (any unit is accepted when unit is 0 or 255:
 *                "not significant" in Modbus TCP, and devices answer with
 *                their own), function, byte count, a length field outside
 *                3..254 or fitting neither this reply nor an exception, an
 *                exception code 0, or bytes after the frame;
 *   -(BUS_EXC_BASE + code)  an exception reply (fc | 0x80) with that code;
 *   -EINVAL      req is not valid (mbtcp_req_valid).
 * Fields are checked as soon as they are in, so a wrong reply fails on its
 * first bytes. Reads buf[0..len) only; writes out only when returning 0 and
 * *need only when returning 1.
 */
int mbtcp_parse(const uint8_t *buf, size_t len, uint16_t tid, int unit,
                const struct plan_req *req, uint16_t *out, size_t *need);
