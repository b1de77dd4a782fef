/*
 * sim_model.h - the simulated park's physics: a deterministic value for every
 * point of every meter at every whole second, given a seed. parkgw-sim serves
 * it; tests link it to compute what the simulator served. Stateless: the only
 * memory is the small sim_meter_state a caller keeps per meter.
 */
#pragma once
#include <stdint.h>
#include "config/config.h"

/* Overrides a test or the sim's control channel can set on one meter.
 * Zero-initialised means "normal supply, no offset". */
struct sim_meter_state {
    bool supply_off;         /* voltages/currents/flows drop to zero */
    double counter_offset;   /* added to the billing counter (replacement, wrap tests) */
    int64_t off_since;       /* second the supply went off: counters freeze there (0 = not frozen) */
    double lost;             /* consumption missed during earlier outages, in the meter's
                              * main unit (kWh, m3, Nm3); keeps counters continuous after
                              * the supply comes back */
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

/* The data bytes a DL/T 645 or CJ/T 188 meter sends for point pi at second
 * t (its BCD format, or a CJ/T 188 volume in m3 with unit code), lowest
 * first, without the 0x33 offset. Returns p->data_len, or -EINVAL for a
 * Modbus point. */
int sim_item_bytes(uint64_t seed, const struct config *cfg, const struct cfg_meter *m, size_t pi,
                   int64_t t, const struct sim_meter_state *st, uint8_t *out);

/*
 * Switches the meter's supply off or on at second t, keeping counters
 * consistent: off freezes every counter at its value at t; on resumes growth
 * from the frozen value (st->lost grows by what the outage missed). Switching
 * to the state it already has changes nothing.
 */
void sim_set_supply(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                    struct sim_meter_state *st, bool off, int64_t t);

/*
 * The meter's main rate (kW for electricity, m3/h water and wastewater, Nm3/h
 * gas) at second t with normal supply, and its exact integral from the
 * counters' epoch to t in the matching unit (kWh, m3, Nm3). The billing
 * counter is a per-meter base reading + this integral.
 */
double sim_main_rate(uint64_t seed, const struct config *cfg, const struct cfg_meter *m, int64_t t);
double sim_main_integral(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                         int64_t t);

/* Register-image sizes a profile needs: highest fc3/fc4 address + width, and
 * highest fc1/fc2 address + 1 (0 when the profile has none). */
size_t sim_profile_nregs(const struct cfg_profile *p);
size_t sim_profile_nbits(const struct cfg_profile *p);
