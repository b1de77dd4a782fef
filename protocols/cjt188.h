/*
 * cjt188.h - CJ/T 188-2004 framing (Chinese water, heat and gas meters on
 * RS-485 or M-Bus): builds a read request and parses its reply, and decodes
 * the metering data (DI 901F) of water and gas meters. Pure functions on
 * byte buffers, no I/O, like dlt645.h; bus.c does the exchange. See
 * docs/DLT645.md, "CJ/T 188".
 *
 * A frame: 0xFE x4 (preamble, skipped in replies), 0x68, meter type T,
 * address A0..A6 (14 BCD digits, lowest pair first), control code, data
 * length L, data (DI0 DI1 SER ... for reads; no offset), checksum (sum from
 * 0x68 to the last data byte, mod 256), 0x16.
 */
#pragma once
#include "common/bcd.h"
#include "protocols/cnframe.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CJT188_ADDR_LEN 7
#define CJT188_ADDR_TEXT 15
#define CJT188_PREAMBLE_LEN CNFRAME_PREAMBLE_LEN
#define CJT188_MAX_SKIP CNFRAME_MAX_SKIP
/* 0x68, T, 7 address bytes, control, length, checksum, 0x16. */
#define CJT188_OVERHEAD 13
#define CJT188_MAX_DATA 255
#define CJT188_MAX_FRAME (CJT188_MAX_SKIP + CJT188_OVERHEAD + CJT188_MAX_DATA)
/* A read request: preamble, overhead, DI0 DI1 SER. */
#define CJT188_READ_REQ_LEN (CJT188_PREAMBLE_LEN + CJT188_OVERHEAD + 3)

/* Meter types T (a few of the standard's table). */
#define CJT188_T_COLD_WATER 0x10
#define CJT188_T_HOT_WATER 0x11
#define CJT188_T_HEAT 0x20
#define CJT188_T_GAS 0x30
#define CJT188_WILDCARD BCD_ADDR_WILDCARD

#define CJT188_C_READ 0x01
#define CJT188_C_READ_ADDR 0x03
#define CJT188_C_REPLY 0x80
#define CJT188_C_ABNORMAL 0x40

/* The metering data item of water, heat and gas meters. */
#define CJT188_DI_METERING 0x901F

/* An abnormal reply (data SER ST0 ST1) is -(CJT188_ERR_BASE + ST0). */
#define CJT188_ERR_BASE 3000

/* Offsets in the 901F data of a water or gas meter (after DI and SER):
 * current cumulative flow (4 BCD bytes XXXXXX.XX + unit code), the
 * settlement-day cumulative flow (the same), the meter's clock (7 bytes,
 * ss mm hh DD MM YY CC), status ST0 ST1. */
#define CJT188_W_FLOW 0
#define CJT188_W_SETTLE_FLOW 5
#define CJT188_W_TIME 10
#define CJT188_W_STATUS 17
#define CJT188_W_LEN 19

/* Unit codes of the standard's unit table. */
enum cjt188_quantity { CJT188_Q_VOLUME, CJT188_Q_FLOW_RATE, CJT188_Q_ENERGY, CJT188_Q_POWER };

struct cjt188_frame {
    uint8_t type;
    uint8_t addr[CJT188_ADDR_LEN];
    uint8_t ctrl;
    uint8_t len;
    uint8_t data[CJT188_MAX_DATA];
};

/* Writes a frame of meter type 'type' (with the preamble when 'preamble')
 * into buf (CJT188_PREAMBLE_LEN + CJT188_OVERHEAD + n bytes, n <= 255).
 * Returns its length. */
size_t cjt188_build(uint8_t *buf, bool preamble, uint8_t type, const uint8_t addr[CJT188_ADDR_LEN],
                    uint8_t ctrl, const uint8_t *data, size_t n);

/* The read-data request (0x01) for identifier di (0x901F is sent 1F 90)
 * with sequence number ser. Returns CJT188_READ_REQ_LEN. */
size_t cjt188_build_read(uint8_t buf[CJT188_READ_REQ_LEN], uint8_t type,
                         const uint8_t addr[CJT188_ADDR_LEN], uint16_t di, uint8_t ser);

/*
 * Parses the len bytes received so far as the reply to a request with
 * control code req_ctrl sent to meter type 'type' at addr (0xAA in either
 * matches any byte). Returns 0 (*ret filled), 1 (*need as dlt645_parse),
 * -EBADMSG (too many 0xFE, start byte, another type or address, a control
 * code that is not the reply to req_ctrl, an abnormal reply shorter than 3
 * bytes, checksum, end byte, trailing bytes), or -(CJT188_ERR_BASE + ST0)
 * for a valid abnormal reply. Writes *ret only on 0, *need only on 1.
 */
int cjt188_parse(const uint8_t *buf, size_t len, uint8_t type, const uint8_t addr[CJT188_ADDR_LEN],
                 uint8_t req_ctrl, struct cjt188_frame *ret, size_t *need);

/*
 * cjt188_parse for the reply to cjt188_build_read(type, addr, di, ...): the
 * reply must start with di (its SER is not checked: meters differ in
 * whether they echo it). On 0 the data after DI and SER goes to out (room
 * for CJT188_MAX_DATA - 3 bytes), its length to *ret_n.
 */
int cjt188_parse_read(const uint8_t *buf, size_t len, uint8_t type,
                      const uint8_t addr[CJT188_ADDR_LEN], uint16_t di, uint8_t *out, size_t *ret_n,
                      size_t *need);

/*
 * Decodes a 5-byte quantity: 4 BCD bytes XXXXXX.XX (lowest first) and a
 * unit code. The value is converted to the quantity's base unit (m3, m3/h,
 * kWh, kW) and its kind is written to *ret_q. 0, or -EBADMSG (not BCD, or
 * a unit code the standard does not define).
 */
int cjt188_decode_quantity(const uint8_t p[5], double *ret, enum cjt188_quantity *ret_q);

/* The inverse for volumes: v in m3 as XXXXXX.XX m3 (unit code 0x2C).
 * 0, or -ERANGE. */
int cjt188_encode_volume(double v, uint8_t out[5]);
