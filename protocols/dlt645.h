/*
 * dlt645.h - DL/T 645-2007 framing (Chinese multi-function electricity
 * meters on RS-485): builds a request frame and parses its reply. Pure
 * functions on byte buffers, no I/O: bus.c sends and receives on the serial
 * line and calls these; the values inside a reply are decoded with
 * common/bcd.h. tests/unit/test_dlt645.c and tests/fuzz/fuzz_dlt645.c drive
 * them directly. See docs/DLT645.md.
 *
 * A frame: 0xFE x4 (wake-up preamble, sent by us, skipped in replies),
 * 0x68, address A0..A5 (12 BCD digits, lowest pair first), 0x68, control
 * code, data length L, L data bytes each sent as byte + 0x33, checksum (sum
 * of the bytes from the first 0x68 to the last data byte, mod 256), 0x16.
 */
#pragma once
#include "common/bcd.h"
#include "protocols/cnframe.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DLT645_ADDR_LEN 6
/* Text form of an address: 12 digits, the most significant pair first. */
#define DLT645_ADDR_TEXT 13
/* Wake-up bytes sent before each request. */
#define DLT645_PREAMBLE_LEN CNFRAME_PREAMBLE_LEN
/* Most 0xFE bytes accepted before a reply's first 0x68. */
#define DLT645_MAX_SKIP CNFRAME_MAX_SKIP
/* 0x68, 6 address bytes, 0x68, control, length, checksum, 0x16. */
#define DLT645_OVERHEAD 12
/* A read reply's data (identifier included) is at most 200 bytes (4.3). */
#define DLT645_MAX_DATA 200
#define DLT645_MAX_FRAME (DLT645_MAX_SKIP + DLT645_OVERHEAD + DLT645_MAX_DATA)
/* A read request: preamble, overhead and the 4-byte data identifier. */
#define DLT645_READ_REQ_LEN (DLT645_PREAMBLE_LEN + DLT645_OVERHEAD + 4)

/* Control codes (function in bits 0-4) and the reply flags. */
#define DLT645_C_READ 0x11
#define DLT645_C_READ_ADDR 0x13
#define DLT645_C_REPLY 0x80    /* bit 7: sent by the meter */
#define DLT645_C_ABNORMAL 0x40 /* bit 6: abnormal reply, data = error byte */
#define DLT645_C_FOLLOW 0x20   /* bit 5: more data follows */

/* The broadcast/wildcard address byte; a request to AAAAAAAAAAAA is
 * answered by the only meter on the line (read-address, 0x13). */
#define DLT645_WILDCARD BCD_ADDR_WILDCARD

/* An abnormal reply is returned as -(DLT645_ERR_BASE + error byte). */
#define DLT645_ERR_BASE 2000
/* Bits of the error byte (the standard's "error information word"). */
#define DLT645_ERR_OTHER 0x01
#define DLT645_ERR_NO_DATA 0x02
#define DLT645_ERR_PASSWORD 0x04
#define DLT645_ERR_BAUD 0x08
#define DLT645_ERR_YEAR_ZONES 0x10
#define DLT645_ERR_DAY_PERIODS 0x20
#define DLT645_ERR_TARIFFS 0x40

/* A parsed reply: data already has the 0x33 offset taken off. */
struct dlt645_frame {
    uint8_t addr[DLT645_ADDR_LEN]; /* as on the wire, A0 first */
    uint8_t ctrl;
    uint8_t len;
    uint8_t data[DLT645_MAX_DATA];
};

/*
 * Writes a frame (with the preamble when 'preamble') to addr with control
 * code ctrl and data[0..n) (n <= DLT645_MAX_DATA; the 0x33 offset is added
 * here) into buf, which holds DLT645_PREAMBLE_LEN + DLT645_OVERHEAD + n
 * bytes. Returns the frame's length.
 */
size_t dlt645_build(uint8_t *buf, bool preamble, const uint8_t addr[DLT645_ADDR_LEN], uint8_t ctrl,
                    const uint8_t *data, size_t n);

/* The read-data request (0x11) for identifier di (e.g. 0x00010000, sent
 * DI0 first). Returns DLT645_READ_REQ_LEN. */
size_t dlt645_build_read(uint8_t buf[DLT645_READ_REQ_LEN], const uint8_t addr[DLT645_ADDR_LEN],
                         uint32_t di);

/*
 * Parses the len bytes received so far as the reply to a request with
 * control code req_ctrl sent to addr (0xAA bytes of addr match any byte).
 * Returns
 *   0          a whole, valid reply of exactly len bytes (after 0..16
 *              0xFE): *ret holds it;
 *   1          valid so far: *need (> len) is the whole frame's length
 *              once L is in, else the shortest frame possible;
 *   -EBADMSG   not this reply: too many 0xFE, a start byte, a different
 *              address, a control code that is not the meter's reply to
 *              req_ctrl, L above 200 (or not 1 in an abnormal reply), the
 *              checksum, the end byte, or bytes after the frame;
 *   -(DLT645_ERR_BASE + e)  a valid abnormal reply with error byte e.
 * Fields are checked as soon as they are in. Reads buf[0..len) only;
 * writes *ret only on 0 and *need only on 1.
 */
int dlt645_parse(const uint8_t *buf, size_t len, const uint8_t addr[DLT645_ADDR_LEN],
                 uint8_t req_ctrl, struct dlt645_frame *ret, size_t *need);

/*
 * dlt645_parse for the reply to dlt645_build_read(addr, di), which must
 * also start with di: on 0 the data after the identifier is copied to out
 * (room for DLT645_MAX_DATA - 4 bytes) and its length to *ret_n. A reply
 * with another identifier or shorter than 4 bytes is -EBADMSG.
 */
int dlt645_parse_read(const uint8_t *buf, size_t len, const uint8_t addr[DLT645_ADDR_LEN],
                      uint32_t di, uint8_t *out, size_t *ret_n, size_t *need);

/* Daily frozen data (Table A.6, DI3 DI2 = 05 06): DI1 00 is the freeze's
 * time (YYMMDDhhmm), 01..08 the energies of 00010000..00080000 (total
 * first, then the tariffs), DI0 = NN the NN-th last freeze, 1..62. */
#define DLT645_DAILY_FROZEN_MAX 62
#define DLT645_DI_DAILY_TIME(nn) (0x05060000u | (uint32_t)(nn))
/* The daily freeze item with DI0 = 00 of a current total energy di
 * (00xx0000, xx 01..08 -> 0506xx00; add NN for the NN-th last freeze), 0
 * for any other di. */
uint32_t dlt645_daily_item(uint32_t di);
/* The parameter "1st settlement day" (Table A.5): day and hour, DDhh. */
#define DLT645_DI_SETTLEMENT_DAY 0x04000B01

/*
 * The k-th last settlement instant (k = 1 the latest) at or before now_ms
 * for a meter settling on day 'day' (1..28) at hour 'hour' (0..23) of each
 * month, in local time (the process's TZ, the gateway's time zone): the
 * instant its settlement-day readings (DI0 = k, e.g. 00010001) belong to.
 * Unix ms, or -1 for a day or hour out of range.
 */
int64_t dlt645_settlement_instant(int day, int hour, int64_t now_ms, int k);

/* The standard's meaning of the lowest set bit of an error byte, e.g.
 * "no data requested" (static text). */
const char *dlt645_err_text(uint8_t err);
