/*
 * config.h - the gateway's configuration as plain structs, loaded from a
 * libconfig file (with @include) and validated. Every other module reads
 * these structs; nothing else touches libconfig.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* enum utility and its names; enum point_type, enum word_order and their
 * names and widths: shared tables in common/, part of this API. */
#include "common/bcd.h"
#include "common/regtype.h"
#include "common/utility.h"

enum point_kind { KIND_GAUGE, KIND_COUNTER };

/* Which of the meter's instrument-transformer ratios multiply a point (key
 * `ratio`), so that it is published as a primary value: a voltage measured
 * on a PT's secondary side (pt), a current on a CT's (ct), an energy or a
 * power on both (pt_ct; the old spelling `ct_pt = true`). */
enum point_ratio { RATIO_NONE, RATIO_PT, RATIO_CT, RATIO_PT_CT };
enum bus_type { BUS_TCP, BUS_RTU };
/* What a serial bus speaks (docs/DLT645.md); TCP buses are Modbus. A bus has
 * one protocol, and so does a profile: a meter's must match its bus's. */
enum bus_protocol { PROTO_MODBUS, PROTO_DLT645, PROTO_CJT188 };

/* The config name of p ("modbus", "dlt645-2007", "cjt188"). */
const char *bus_protocol_name(enum bus_protocol p);

struct cfg_point {
    char *name;
    int fc;               /* 1 coils, 2 discrete inputs, 3 holding, 4 input registers */
    int address;          /* 0-based */
    enum point_type type;
    enum word_order order;
    double scale;         /* default 1 */
    double offset;        /* default 0 */
    enum point_kind kind;
    bool billing;
    enum point_ratio ratio; /* default RATIO_NONE: the meter reports primary values */
    double max_rate;      /* per hour, after scaling; 0 = not set */
    /* Integer + fraction totaliser (keys frac_address/frac_type/frac_scale):
     * the value is raw * scale + frac_raw * frac_scale + offset, where
     * frac_raw is frac_type at frac_address (same fc, same word order). The
     * planner reads both parts in one request so they are consistent. */
    bool has_frac;
    int frac_address;
    enum point_type frac_type;  /* default float32 */
    double frac_scale;          /* default = scale */
    /* DL/T 645 and CJ/T 188 points (profile protocol not Modbus; fc,
     * address and type are unused, type is PT_FLOAT64): the data item di,
     * read through the request for req_di (di itself, or the DL/T 645 block
     * holding it), at data_offset in the reply data after the identifier
     * (and SER), data_len bytes. exact_len: the reply data must be exactly
     * data_len bytes (a single DL/T 645 item); else at least its end. */
    uint32_t di;
    uint32_t req_di;
    int data_offset;
    int data_len;
    bool exact_len;
    struct bcd_fmt fmt;   /* DL/T 645 `format` */
    bool is_signed;       /* DL/T 645 `signed`: sign in the top bit */
    int line;
};

/* A span of minutes of the day in the gateway's time zone: from 0..1439,
 * to 1..1440 ("24:00"); to < from crosses midnight. */
struct cfg_minutes {
    int from_min, to_min;
};

struct cfg_alarm {
    char *name;
    int point;            /* index into the profile's points */
    bool has_below, has_above;
    double below, above;
    double for_s;         /* seconds the condition must hold */
    double hysteresis;    /* clear only when back by this much; default 0 */
    /* Schedule (key `hours`): the condition only raises the alarm while the
     * local time is inside one of these spans (a plant idle at night is not
     * an outage); none = always. Outside, a raised alarm still clears. */
    struct cfg_minutes *hours;
    size_t n_hours;
    int line;
};

/* A meter's changes to one of its profile's alarms (meter key `alarms`):
 * the window, thresholds or schedule of that plant, or the alarm off. */
struct cfg_alarm_override {
    int alarm;            /* index into the profile's alarms */
    bool disabled;        /* enabled = false */
    bool has_for, has_below, has_above, has_hysteresis;
    double for_s, below, above, hysteresis;
    struct cfg_minutes *hours; /* replaces the profile's schedule when has_hours */
    size_t n_hours;
    bool has_hours;
    int line;
};

struct cfg_profile {
    char *name;
    enum utility utility;       /* the first utility it suits (its kind: electricity or a fluid) */
    unsigned utilities;         /* bit 1u << u for each utility the meter model suits (key
                                 * `utility` or `utilities`); a meter's `utility` must be one */
    enum bus_protocol protocol; /* default Modbus */
    int meter_type;       /* CJ/T 188 meter type T (0x10 cold water, 0x30 gas) */
    /* DL/T 645: after an outage across the meter's settlement instant, its
     * settlement-day reading of the billing item is stored at that instant
     * (docs/DLT645.md, "Settlement-day readings"). */
    bool settlement;
    /* DL/T 645: how many of the meter's last daily frozen readings of the
     * billing item (0506xxNN) are read back after an outage (0: none). */
    int daily_frozen;
    struct cfg_point *points;
    size_t n_points;
    struct cfg_alarm *alarms;
    size_t n_alarms;
    char *file;
    int line;
};

struct cfg_bus {
    char *name;
    enum bus_type type;
    char *host;           /* tcp */
    int port;             /* tcp, default 502 */
    char *device;         /* rtu */
    int baud;             /* rtu, default 9600 */
    char parity;          /* 'N', 'E', 'O'; default 'E' */
    int data_bits;        /* default 8 */
    int stop_bits;        /* default 1 */
    int timeout_ms;       /* response timeout; default 500 */
    int byte_timeout_ms;  /* default 0 = libmodbus default */
    bool rs485;           /* rtu: ask the kernel for RS-485 mode (TIOCSRS485); default false */
    int frame_delay_ms;   /* rtu: extra silence before each request; default 0 */
    enum bus_protocol protocol; /* rtu: default Modbus */
    int line;
};

struct cfg_enterprise;

struct cfg_meter {
    char *id;
    enum utility utility;
    int bus;              /* index into config.buses */
    int unit_id;          /* Modbus buses */
    /* DL/T 645 (12 digits) and CJ/T 188 (14 digits) buses: the meter's
     * number as printed, and its wire form (lowest pair first). */
    char *address;
    uint8_t addr[BCD_MAX_ADDR];
    int profile;          /* index into config.profiles */
    int interval;         /* seconds, >= 1 */
    /* The basic charge (docs/CONFIG.md "Tariffs"): capacity_kva > 0 bills the
     * contracted capacity, max_demand the month's maximum demand. */
    double capacity_kva;
    bool max_demand;
    int reactive;         /* the reactive energy counter (point index) for the power
                           * factor, -1 = none */
    int comm_timeout;     /* seconds without a good reading (and >= 2 failed polls in a row)
                           * before comm_lost; 0 = not set: the third failed poll in a row */
    double pt_ratio;      /* default 1 */
    double ct_ratio;      /* default 1 */
    int max_registers_per_read; /* default 125 */
    bool no_gap_fill;
    bool one_request_per_point;
    struct cfg_alarm_override *alarm_overrides;
    size_t n_alarm_overrides;
    struct cfg_enterprise *enterprise; /* back pointer */
    int line;
};

struct cfg_enterprise {
    char *id;
    char *name;
    struct cfg_meter *meters;
    size_t n_meters;
    int line;
};

struct cfg_band {
    char *name;           /* critical, peak, flat, valley or deep_valley (engine/tariff.h) */
    int season;           /* index into the tariff's seasons (0 without seasons) */
    double price;
    struct { int from_min, to_min; } *hours; /* minutes of the day, from 0..1439, to 1..1440
                                              * ("24:00"); to < from crosses midnight. The
                                              * bands of a tariff cover each minute once. */
    size_t n_hours;
};

/* A season of a time-of-use tariff: the months its bands apply to. */
struct cfg_season {
    unsigned months;      /* bit m set for month m, 1..12 */
    int line;
};

/* (pf, percent) of pf_adjust: from this PF up, percent of energy + basic. */
struct cfg_pf_step {
    double pf, pct;
};

/* (threshold, price) of blocks: the unit price above the threshold. */
struct cfg_block {
    double threshold, price;
};

/* One version of a utility's tariff: in force from valid_from on (NULL:
 * since ever) until the next version's valid_from. */
struct cfg_tariff {
    enum utility utility;
    char *valid_from;     /* as written (a date or time, common/timeparse.h), or NULL */
    char *currency;
    double price;         /* flat price when there are no bands */
    struct cfg_band *bands; /* with seasons: every season's bands, season by season */
    size_t n_bands;
    struct cfg_season *seasons; /* NULL: `bands` directly, one season of every month */
    size_t n_seasons;
    /* The two-part tariff's other charges (docs/CONFIG.md "Tariffs"); 0 = none. */
    double surcharge;       /* per unit consumed, outside the PF adjustment */
    double fixed_monthly;   /* per meter and month */
    double demand_price;    /* per kW-month of maximum 15-minute demand */
    double capacity_price;  /* per kVA-month of contracted capacity */
    double pf_standard;     /* 0: no power-factor adjustment */
    struct cfg_pf_step *pf_adjust; /* highest PF first */
    size_t n_pf_adjust;
    struct cfg_block *blocks; /* ascending thresholds; replaces price/bands */
    size_t n_blocks;
    int line;
};

struct cfg_tls {
    char *ca_file;
    char *cert_file;
    char *key_file;
};

enum webhook_format { WEBHOOK_JSON, WEBHOOK_WECOM, WEBHOOK_DINGTALK };

/* One alert target (alerts.webhooks): events of the listed kinds are POSTed
 * to url in its format. */
struct cfg_webhook {
    char *name;           /* [a-z0-9_-]+, unique: keys its delivery cursor */
    char *url;            /* http:// or https:// */
    enum webhook_format format;
    char **events;        /* alarm names, "comm_lost", "bus_down"; default the three */
    size_t n_events;
    int timeout_ms;       /* per request; default 5000 */
    int min_interval;     /* s; default alerts.min_interval */
    char *secret;         /* dingtalk: the robot's signing secret ("SEC..."), or NULL */
    int line;
};

struct config {
    char *path;
    char *gateway_id;
    char *timezone;       /* default "UTC" */
    char *log_level;      /* optional: err warning notice info debug */

    char *storage_path;         /* a relative path is relative to the working directory
                                 * (like any command-line path), not to the config file */
    int raw_retention_days;     /* default 400; 0 = keep forever */

    char *mqtt_uri;
    char *mqtt_client_id;       /* default "parkgw-<id>" */
    char *mqtt_username;
    char *mqtt_password_file;   /* relative: to the working directory, as storage_path */
    char *mqtt_password;        /* read from password_file at load */
    char *topic_prefix;         /* default "park" */
    int summary_interval;       /* default 60 */
    long outbox_max_messages;   /* default 1000000 */
    bool tls_set;
    struct cfg_tls tls;
    bool ha_discovery;          /* publish Home Assistant MQTT discovery configs */
    char *ha_prefix;            /* their topic prefix; default "homeassistant" */

    /* alerts (docs/OPERATOR.md "Alerts"): webhook targets. */
    struct cfg_webhook *webhooks;
    size_t n_webhooks;
    int alerts_min_interval;    /* s between two messages about one meter to a target */

    /* gateway.http (docs/OPERATOR.md): NULL listen = no listener. */
    char *http_listen;          /* "HOST:PORT" */
    char *http_password_file;   /* relative: to the working directory */
    char *http_password;        /* read from http_password_file at load */

    struct cfg_bus *buses;
    size_t n_buses;
    struct cfg_profile *profiles;
    size_t n_profiles;
    struct cfg_enterprise *enterprises;
    size_t n_enterprises;
    struct cfg_tariff *tariffs;
    size_t n_tariffs;
};

/*
 * Loads and validates 'path'. On success *ret owns a new config (config_free).
 * On failure returns -EINVAL (or -errno for I/O) and writes "FILE:LINE: message"
 * into err; *ret is untouched. @include paths (main file only; an included
 * file may not @include) are resolved relative to the config file's directory,
 * then to $PARKGW_PROFILE_DIR (environment) or else PARKGW_PROFILE_DIR (build).
 * Profiles come from a top-level list `profiles` and any `profiles_*` lists.
 */
int config_load(const char *path, struct config **ret, char *err, size_t errlen);
void config_free(struct config *cfg);

/* The instant tariff version t comes into force (Unix ms; valid_from read
 * in the process's TZ, which the callers set to the gateway's zone), or
 * INT64_MIN without valid_from. */
int64_t config_tariff_from(const struct cfg_tariff *t);
/* The version of utility u's tariff in force at ts: the one with the latest
 * valid_from at or before ts; before every version, the earliest one; NULL
 * when u has no tariff. */
const struct cfg_tariff *config_tariff_at(const struct config *cfg, enum utility u, int64_t ts);

/* Index of the profile named 'name' in cfg->profiles, or -1. */
int config_find_profile(const struct config *cfg, const char *name);
/* The enterprise whose id or name (the registered name, as written in the
 * config) is s; NULL when none. */
const struct cfg_enterprise *config_find_enterprise(const struct config *cfg, const char *s);
/* Looks up "ENTERPRISE/METER"; NULL when not found. */
struct cfg_meter *config_find_meter(const struct config *cfg, const char *ent_slash_meter);
size_t config_count_meters(const struct config *cfg);
/* Points read per second by all meters (each meter's profile points over
 * its interval): the load the writer's queue has to absorb. */
double config_points_per_second(const struct config *cfg);

/* What point p's value is multiplied by on a meter with these ratios: 1,
 * pt_ratio, ct_ratio or their product (p->ratio). */
double point_ratio_factor(const struct cfg_point *p, double pt_ratio, double ct_ratio);
/* "pt", "ct", "pt_ct", or "" for RATIO_NONE. */
const char *point_ratio_name(enum point_ratio r);

/* The billing counter of a profile, or -1. */
int profile_billing_point(const struct cfg_profile *p);
/*
 * The alarm k of meter m's profile as it applies to m (the meter's
 * overrides applied) into *ret, a shallow copy pointing into cfg; false when
 * the meter turned it off.
 */
bool config_meter_alarm(const struct config *cfg, const struct cfg_meter *m, size_t k,
                        struct cfg_alarm *ret);
/* Whether minute of the day 'minute' (0..1439) lies in a's schedule (always
 * true without one). */
bool alarm_in_schedule(const struct cfg_alarm *a, int minute);

/* Whether a meter of utility u may use profile p (p->utilities). */
bool profile_suits(const struct cfg_profile *p, enum utility u);
/* Index of the point named 'name' in p->points, or -1. */
int profile_find_point(const struct cfg_profile *p, const char *name);
