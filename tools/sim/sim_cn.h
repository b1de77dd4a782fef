/*
 * sim_cn.h - the simulated DL/T 645-2007 and CJ/T 188 meters: request
 * frames cut from a line's bytes, and each meter's reply built from the
 * value model (sim_model.h). No I/O: sim_main.c reads the pty, applies the
 * faults and writes what these return.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "tools/sim/sim_model.h"

/* Longest reply: a preamble and the longest frame of either protocol. */
#define SIM_CN_MAX_REPLY 300

/* The simulated DL/T 645 meters settle on day 1 at 00:00 local time
 * (04000B01 = 0100) and keep their settlement-day energies (DI0 = 01..0C)
 * for the profile's items with DI0 = 00. */
#define SIM_SETTLE_DAY 1
#define SIM_SETTLE_HOUR 0
/* ... and freeze daily at local midnight, keeping the last 62 (050600NN
 * the freeze's time, 0506xxNN the energies of 00xx0000, total first). */
#define SIM_DAILY_FROZEN 62

/* Ways a reply goes wrong (fault injection). */
#define SIM_CN_WRONG_ADDR 0x01 /* from another address, otherwise correct */
#define SIM_CN_BAD_SUM 0x02    /* the checksum off by one */

/* Length of the request frame at the start of b[0..n): > 0 when a whole
 * frame length is known (it may be more than n), 0 when more bytes are
 * needed to tell, -1 when b does not start with a frame (a caller drops
 * bytes until a 0x68). */
int sim_cn_frame_len(enum bus_protocol proto, const uint8_t *b, size_t n);

/* True when the whole request frame f (checksum and end byte checked)
 * addresses meter m: its address, or 0xAA wildcards, and for CJ/T 188 its
 * profile's meter type (or 0xAA). */
bool sim_cn_addressed(enum bus_protocol proto, const struct config *cfg, const struct cfg_meter *m,
                      const uint8_t *f, size_t len);

/*
 * The reply of meter m at second t to request f: read data (the profile's
 * items of that identifier, a block in full; an unknown identifier gets the
 * abnormal reply "no data requested") and read address. abnormal >= 0
 * answers every read with that error byte (DL/T 645) or ST0 (CJ/T 188).
 * flags: SIM_CN_*. Writes at most SIM_CN_MAX_REPLY bytes to out; returns
 * their count, 0 for a request the meter does not answer.
 */
size_t sim_cn_reply(enum bus_protocol proto, uint64_t seed, const struct config *cfg,
                    const struct cfg_meter *m, const struct sim_meter_state *st, int64_t t,
                    const uint8_t *f, size_t len, int abnormal, int flags, uint8_t *out);
