/*
 * sim_model.h - the simulated park's physics: a deterministic value for every
 * point of every meter at every whole second, given a seed. parkgw-sim serves
 * it; tests link it to compute what the simulator served.
 */
#pragma once
#include <stdint.h>
#include "config/config.h"

/* Overrides a test or the sim's control channel can set on one meter. */
struct sim_meter_state {
    bool supply_off;         /* voltages/currents/flows drop to zero */
    double counter_offset;   /* added to the billing counter (replacement, wrap tests) */
};

/*
 * The physical value (after scale/offset/PT x CT, as the gateway should decode
 * it) of point 'pi' of meter 'm' at Unix second t. Counters only grow;
 * load curves differ by enterprise and hour; gauges carry deterministic noise.
 * st may be NULL.
 */
double sim_value(uint64_t seed, const struct config *cfg, const struct cfg_meter *m, size_t pi,
                 int64_t t, const struct sim_meter_state *st);

/*
 * Fills the meter's register image for second t: regs (holding/input
 * registers, indexed by address) and bits (coils/discrete, as 0/1), each
 * sized for the highest address of the profile + its width.
 */
void sim_fill_registers(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                        int64_t t, const struct sim_meter_state *st, uint16_t *regs4, uint16_t *regs3,
                        uint8_t *bits1, uint8_t *bits2, size_t nregs, size_t nbits);

/* The value the gateway decodes from what sim_fill_registers wrote for point
 * pi (sim_value passed through encoding; float32 rounding included). */
double sim_expected_decoded(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                            size_t pi, int64_t t, const struct sim_meter_state *st);
