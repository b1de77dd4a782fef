/*
 * cnmeter.c - the configuration of DL/T 645-2007 and CJ/T 188 meters: a
 * bus's or profile's `protocol`, the data-item points of their profiles
 * (`di`, `format`, `signed`, `block`; CJ/T 188 `field` with the profile's
 * `meter_type`) and a meter's printed `address`. profiles.c and park.c call
 * these where a Modbus setting would be; docs/DLT645.md describes the keys.
 */
#include "config/config_private.h"

#include <string.h>

static const char *const protocol_names[] = {"modbus", "dlt645-2007", "cjt188", NULL};

/* Bytes of a read reply's data after the 4-byte identifier (DL/T 645
 * allows 200 data bytes). */
#define DLT645_ITEM_ROOM 196

const char *bus_protocol_name(enum bus_protocol p)
{
    return p <= PROTO_CJT188 ? protocol_names[p] : "?";
}

int cfg_get_protocol(struct ld *ld, const config_setting_t *g, enum bus_protocol *ret)
{
    const char *v;
    config_setting_t *s;
    int r = cfg_get_str(ld, g, "protocol", false, &v, &s);
    if (r)
        return r;
    for (int i = 0; protocol_names[i]; i++) {
        if (strcmp(v, protocol_names[i]) == 0) {
            *ret = (enum bus_protocol)i;
            return 0;
        }
    }
    return cfg_fail(ld, s, "protocol '%s' must be \"modbus\", \"dlt645-2007\" or \"cjt188\"", v);
}

/* A data identifier of exactly 'digits' hex digits. */
static int get_di(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                  int digits, uint32_t *ret, config_setting_t **ret_s)
{
    const char *v;
    int r = cfg_get_str(ld, g, key, required, &v, ret_s);
    if (r)
        return r;
    uint32_t di = 0;
    bool ok = strlen(v) == (size_t)digits;
    for (const char *c = v; ok && *c; c++) {
        int d = *c >= '0' && *c <= '9'   ? *c - '0'
                : *c >= 'A' && *c <= 'F' ? *c - 'A' + 10
                : *c >= 'a' && *c <= 'f' ? *c - 'a' + 10
                                         : -1;
        ok = d >= 0;
        di = di << 4 | (uint32_t)(d & 0xF);
    }
    if (!ok)
        return cfg_fail(ld, *ret_s,
                        "%s '%s' must be %d hexadecimal digits, as in the standard's "
                        "tables",
                        key, v, digits);
    *ret = di;
    return 0;
}

/*
 * The blocks parkgw reads (DI1 = FF): the values follow one another in the
 * order of DI1, starting at 00 (energy tables 00xxFFxx: total, tariff 1,
 * 2, ...; powers and power factors 0203FF00-0206FF00: total, A, B, C) or
 * at 01 (per-phase voltages, currents and angles 0201FF00, 0202FF00,
 * 0207FF00: A, B, C). -1 for any other block.
 */
static int block_first(uint32_t block)
{
    uint8_t di3 = (uint8_t)(block >> 24), di2 = (uint8_t)(block >> 16);
    if ((block >> 8 & 0xFF) != 0xFF)
        return -1;
    if (di3 == 0x00)
        return 0;
    if (di3 == 0x02 && (di2 == 0x01 || di2 == 0x02 || di2 == 0x07))
        return 1;
    if (di3 == 0x02 && di2 >= 0x03 && di2 <= 0x06)
        return 0;
    return -1;
}

static int dlt645_point(struct ld *ld, const config_setting_t *g, struct cfg_point *pt)
{
    config_setting_t *s_di, *s;
    const char *v;
    int r;

    if ((r = get_di(ld, g, "di", true, 8, &pt->di, &s_di)) ||
        (r = cfg_get_str(ld, g, "format", true, &v, &s)))
        return r;
    if (bcd_fmt_parse(v, &pt->fmt) < 0)
        return cfg_fail(ld, s,
                        "point '%s': format '%s' is not a DL/T 645 data format (e.g. "
                        "\"XXXXXX.XX\", \"XXX.X\", \"XX.XXXX\", \"NNNNNN\")",
                        pt->name, v);
    if (pt->fmt.time)
        return cfg_fail(ld, s, "point '%s': format '%s' is a date/time; a point needs a number",
                        pt->name, v);
    if ((r = cfg_get_bool(ld, g, "signed", &pt->is_signed, NULL)) < 0)
        return r;
    pt->req_di = pt->di;
    pt->data_offset = 0;
    pt->data_len = pt->fmt.bytes;
    pt->exact_len = true;
    uint32_t block;
    if ((r = get_di(ld, g, "block", false, 8, &block, &s)) < 0)
        return r;
    if (r == 0) {
        int first = block_first(block);
        if (first < 0)
            return cfg_fail(ld, s,
                            "point '%s': block %08X is not one parkgw reads (energies "
                            "00xxFFxx; 0201FF00 to 0207FF00)",
                            pt->name, block);
        int pos = (int)(pt->di >> 8 & 0xFF) - first;
        if ((pt->di & 0xFFFF00FF) != (block & 0xFFFF00FF) || pos < 0 || pos > 0x3F)
            return cfg_fail(ld, s, "point '%s': di %08X is not an item of block %08X", pt->name,
                            pt->di, block);
        pt->req_di = block;
        pt->data_offset = pos * pt->fmt.bytes;
        pt->exact_len = false;
    }
    if (pt->data_offset + pt->data_len > DLT645_ITEM_ROOM)
        return cfg_fail(ld, s_di, "point '%s': beyond the 196 data bytes of a DL/T 645 reply",
                        pt->name);
    return 0;
}

/* The quantities of CJ/T 188 metering data (901F) of water and gas
 * meters, by their byte offset after DI and SER. */
static const struct {
    const char *name;
    int offset;
} cjt188_fields[] = {{"flow", 0}, {"settlement_flow", 5}};

static int cjt188_point(struct ld *ld, const config_setting_t *g, struct cfg_point *pt)
{
    config_setting_t *s;
    const char *v;
    int r;

    if ((r = get_di(ld, g, "di", true, 4, &pt->di, &s)))
        return r;
    if (pt->di != 0x901F)
        return cfg_fail(ld, s,
                        "point '%s': parkgw reads the metering data di \"901F\" of CJ/T 188 "
                        "meters",
                        pt->name);
    if ((r = cfg_get_str(ld, g, "field", true, &v, &s)))
        return r;
    pt->data_offset = -1;
    for (size_t i = 0; i < sizeof(cjt188_fields) / sizeof(cjt188_fields[0]); i++)
        if (strcmp(v, cjt188_fields[i].name) == 0)
            pt->data_offset = cjt188_fields[i].offset;
    if (pt->data_offset < 0)
        return cfg_fail(ld, s, "point '%s': field '%s' must be \"flow\" or \"settlement_flow\"",
                        pt->name, v);
    pt->req_di = pt->di;
    pt->data_len = 5; /* 4 BCD bytes and the unit code */
    pt->exact_len = false;
    return 0;
}

int cfg_parse_cn_point(struct ld *ld, const config_setting_t *g, const struct cfg_profile *p,
                       struct cfg_point *pt)
{
    static const char *const modbus_only[] = {"fc",           "address",   "type",       "order",
                                              "frac_address", "frac_type", "frac_scale", NULL};
    static const char *const dlt645_only[] = {"format", "signed", "block", NULL};
    static const char *const cjt188_only[] = {"field", NULL};
    const char *const *lists[] = {modbus_only,
                                  p->protocol == PROTO_DLT645 ? cjt188_only : dlt645_only};
    for (size_t l = 0; l < 2; l++)
        for (const char *const *k = lists[l]; *k; k++) {
            config_setting_t *f = config_setting_get_member(g, *k);
            if (f)
                return cfg_fail(ld, f, "point '%s': '%s' is not valid in a %s profile", pt->name,
                                *k, bus_protocol_name(p->protocol));
        }
    pt->type = PT_FLOAT64;
    return p->protocol == PROTO_DLT645 ? dlt645_point(ld, g, pt) : cjt188_point(ld, g, pt);
}

int cfg_check_cn_profile(struct ld *ld, const config_setting_t *pts, const struct cfg_profile *p)
{
    /* The items of one block share its format: they lie at multiples of it. */
    for (size_t i = 0; i < p->n_points; i++) {
        const struct cfg_point *a = &p->points[i];
        for (size_t j = 0; j < i; j++) {
            const struct cfg_point *b = &p->points[j];
            if (a->req_di == b->req_di && a->data_len != b->data_len)
                return cfg_fail(ld, config_setting_get_elem(pts, (unsigned)i),
                                "point '%s': its format has %d bytes, point '%s' (line %d) of "
                                "the same data item %0*X has %d",
                                a->name, a->data_len, b->name, b->line,
                                p->protocol == PROTO_DLT645 ? 8 : 4, a->req_di, b->data_len);
        }
    }
    return 0;
}

int cfg_get_meter_type(struct ld *ld, const config_setting_t *g, struct cfg_profile *p)
{
    config_setting_t *s;
    int r =
        cfg_get_int(ld, g, "meter_type", p->protocol == PROTO_CJT188, 0, 255, &p->meter_type, &s);
    if (r)
        return r;
    if (p->protocol != PROTO_CJT188)
        return cfg_fail(ld, s, "meter_type applies only to cjt188 profiles");
    /* 1xH water meters, 3xH gas meters share the 901F layout read here;
     * heat meters (2xH) have another. */
    if ((p->meter_type & 0xF0) != 0x10 && (p->meter_type & 0xF0) != 0x30)
        return cfg_fail(ld, s,
                        "meter_type 0x%02X: parkgw reads CJ/T 188 water (0x10-0x1F) and gas "
                        "(0x30-0x3F) meters",
                        p->meter_type);
    return 0;
}

static bool same_address(const struct cfg_meter *a, const struct cfg_meter *b)
{
    return a->address && b->address && strcmp(a->address, b->address) == 0;
}

int cfg_parse_meter_address(struct ld *ld, const config_setting_t *g, const struct config *cfg,
                            struct cfg_meter *m)
{
    static const char *const modbus_only[] = {"unit_id", "max_registers_per_read", "no_gap_fill",
                                              "one_request_per_point", NULL};
    const struct cfg_bus *b = &cfg->buses[m->bus];
    config_setting_t *s;
    int r;

    for (const char *const *k = modbus_only; *k; k++) {
        config_setting_t *f = config_setting_get_member(g, *k);
        if (f)
            return cfg_fail(ld, f,
                            "'%s' is not valid for a meter on %s bus '%s' (it has an "
                            "address)",
                            *k, bus_protocol_name(b->protocol), b->name);
    }
    if ((r = cfg_dup_str(ld, g, "address", true, &m->address, &s)))
        return r;
    size_t n = b->protocol == PROTO_DLT645 ? 6 : 7;
    bool digits = strlen(m->address) == 2 * n;
    for (const char *c = m->address; digits && *c; c++)
        digits = *c >= '0' && *c <= '9';
    if (!digits || bcd_addr_parse(m->address, n, m->addr) < 0)
        return cfg_fail(ld, s, "address '%s' must be the meter's number as printed: %zu digits",
                        m->address, 2 * n);
    const struct cfg_meter *o = cfg_meter_clash(cfg, m, same_address);
    if (o)
        return cfg_fail(ld, s, "address %s on bus '%s' is already used by meter '%s/%s' (line %d)",
                        m->address, b->name, o->enterprise->id, o->id, o->line);
    return 0;
}

int cfg_get_settlement(struct ld *ld, const config_setting_t *g, struct cfg_profile *p)
{
    config_setting_t *s;
    int r = cfg_get_bool(ld, g, "settlement", &p->settlement, &s);
    if (r || !p->settlement)
        return r < 0 ? r : 0;
    if (p->protocol != PROTO_DLT645)
        return cfg_fail(ld, s, "settlement applies only to dlt645-2007 profiles");
    int b = profile_billing_point(p);
    /* The settlement-day items are the current ones with DI0 = 01..0C. */
    if (b < 0 || (p->points[b].di & 0xFF) != 0)
        return cfg_fail(ld, s,
                        "settlement needs a billing point whose di ends in 00 (a current "
                        "value, e.g. 00010000, whose settlement-day reading is 00010001)");
    return 0;
}

int cfg_get_daily_frozen(struct ld *ld, const config_setting_t *g, struct cfg_profile *p)
{
    config_setting_t *s;
    /* A meter keeps at most 62 daily freezes (DI0 01..3E, Table A.6). */
    int r = cfg_get_int(ld, g, "daily_frozen", false, 0, 62, &p->daily_frozen, &s);
    if (r < 0 || p->daily_frozen == 0)
        return r < 0 ? r : 0;
    if (p->protocol != PROTO_DLT645)
        return cfg_fail(ld, s, "daily_frozen applies only to dlt645-2007 profiles");
    int b = profile_billing_point(p);
    /* Frozen daily: the totals 00010000..00080000 (as 050601NN..050608NN). */
    uint32_t di = b < 0 ? 0 : p->points[b].di;
    if (b < 0 || (di & 0xFF00FFFFu) != 0 || ((di >> 16) & 0xFF) < 1 || ((di >> 16) & 0xFF) > 8)
        return cfg_fail(ld, s,
                        "daily_frozen needs a billing point that is a total energy the meter "
                        "freezes daily (di 00010000 .. 00080000, e.g. 00010000: 05060101)");
    return 0;
}
