/*
 * payload.c - the MQTT topic strings and JSON payloads of DESIGN.md ("MQTT
 * topics and payloads"), built with jansson, but for the live payload: one
 * per meter and poll, it is written straight into a reused buffer from text
 * prepared once (a quarter of the daemon's CPU went into jansson and printf
 * for it). The poller uses the live payload, the daemon the status one, alarm
 * detection the state and event ones; mqtt.c only moves the bytes.
 */
#include "protocols/payload.h"
#include "common/log.h"
#include "common/util.h"
#include "protocols/numfmt.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 15 significant digits: a float32 reading (7 digits) or a scaled double round
 * trips far inside 1e-6 relative, and 230.1 stays "230.1" instead of the
 * 17-digit "230.10000000000002". */
#define PAYLOAD_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one:
 * overlong forms, surrogates and code points above U+10FFFF are invalid, as
 * jansson would refuse them. */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0)
            return 0; /* overlong */
        if (c == 0xed && s[1] >= 0xa0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xf4 && s[1] >= 0x90)
            return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* A JSON string for s. jansson refuses invalid UTF-8 (json_string returns
 * NULL); a name from a badly encoded config file must not make a payload
 * vanish, so invalid bytes become U+FFFD. NULL becomes "". */
static json_t *jstr(const char *s)
{
    if (!s)
        s = "";
    json_t *j = json_string(s);
    if (j)
        return j;

    size_t n = strlen(s);
    char *fixed = xmalloc(3 * n + 1); /* each bad byte grows to 3 */
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t l = utf8_seq_len(p);
        if (l) {
            memcpy(fixed + o, p, l);
            o += l;
            p += l;
        } else {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
        }
    }
    fixed[o] = '\0';
    j = json_string(fixed);
    free(fixed);
    if (!j) {
        log_err("payload: cannot build a JSON string");
        abort();
    }
    return j;
}

/* Sets obj[key] = val, taking the reference; aborts like xmalloc when jansson
 * runs out of memory (the only way these calls fail with valid keys). */
static void jset(json_t *obj, const char *key, json_t *val)
{
    if (!val || json_object_set_new(obj, key, val) != 0) {
        log_err("payload: out of memory building JSON");
        abort();
    }
}

static json_t *jobj(void)
{
    json_t *o = json_object();
    if (!o) {
        log_err("payload: out of memory building JSON");
        abort();
    }
    return o;
}

/* Serialises and releases obj. */
static char *dump(json_t *obj)
{
    char *s = json_dumps(obj, PAYLOAD_DUMP_FLAGS);
    json_decref(obj);
    if (!s) {
        log_err("payload: out of memory serialising JSON");
        abort();
    }
    return s;
}

char *topic_base(const char *prefix, const char *gateway_id)
{
    return xasprintf("%s/%s", prefix, gateway_id);
}

char *topic_meter(const char *base, const char *ent, const char *utility, const char *meter,
                  const char *leaf)
{
    return xasprintf("%s/%s/%s/%s/%s", base, ent, utility, meter, leaf);
}

char *topic_status(const char *base)
{
    return xasprintf("%s/status", base);
}

char *topic_events(const char *base)
{
    return xasprintf("%s/events", base);
}

char *topic_summary(const char *base, const char *ent)
{
    if (!ent)
        return xasprintf("%s/summary", base);
    return xasprintf("%s/%s/summary", base, ent);
}

/* A growing text buffer for the one-off parts of a live payload. */
struct sbuf {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = 2 * (b->len + n + 1);
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

/* s (NULL: "") as a JSON string with its quotes, escaped as jansson escapes
 * it: '"' and '\\', control characters as \b \f \n \r \t or \u00XX; other
 * characters, '/' and DEL included, as they are. Invalid UTF-8 bytes become
 * U+FFFD, as in jstr(). */
static void sb_add_jstr(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    sb_add(b, "\"", 1);
    while (*p) {
        size_t l = utf8_seq_len(p);
        if (!l) {
            sb_add(b, "\xef\xbf\xbd", 3);
            p++;
            continue;
        }
        unsigned char c = *p;
        char esc[6] = {'\\', 0, '0', '0', 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            if (c >= 0x20) {
                sb_add(b, (const char *)p, l);
                p += l;
                continue;
            }
            esc[1] = 'u';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        sb_add(b, esc, el);
        p++;
    }
    sb_add(b, "\"", 1);
}

#define LIVE_HEAD "{\"ts\":"
#define LIVE_TAIL "}}"

struct live_payload {
    char *mid;        /* ,"enterprise":"..","meter":"..","utility":"..","values":{ */
    size_t mid_len;
    char *keys;       /* "name": of every point, one after the other */
    size_t *key_off;  /* point i's key at keys + key_off[i], key_len[i] long */
    size_t *key_len;  /* 0: the point has no name and is never written */
    unsigned char *digits;
    size_t n;
    char *buf;        /* the payload of the last build */
    size_t cap;
};

int payload_point_digits(const struct cfg_point *pt)
{
    if (pt->type == PT_FLOAT32 && !pt->has_frac && pt->offset == 0)
        return 7;
    return 15;
}

double payload_live_tolerance(const struct cfg_point *pt, double v)
{
    return (0.5 * pow(10, 1 - payload_point_digits(pt)) + 2 * DBL_EPSILON) * fabs(v);
}

struct live_payload *live_payload_new(const char *ent, const char *meter, const char *utility,
                                      const char *const *names, const int *digits, size_t n)
{
    struct live_payload *lp = xcalloc(1, sizeof(*lp));
    struct sbuf b = {0};
    sb_add(&b, ",\"enterprise\":", 14);
    sb_add_jstr(&b, ent);
    sb_add(&b, ",\"meter\":", 9);
    sb_add_jstr(&b, meter);
    sb_add(&b, ",\"utility\":", 11);
    sb_add_jstr(&b, utility);
    sb_add(&b, ",\"values\":{", 11);
    lp->mid = b.s;
    lp->mid_len = b.len;

    lp->n = n;
    lp->key_off = xcalloc(n + 1, sizeof(size_t));
    lp->key_len = xcalloc(n + 1, sizeof(size_t));
    lp->digits = xcalloc(n + 1, 1);
    struct sbuf k = {0};
    sb_add(&k, "", 0);
    /* The longest payload: every point written with the longest number. */
    size_t cap = sizeof(LIVE_HEAD) + NUMFMT_INT64_SIZE + lp->mid_len + sizeof(LIVE_TAIL);
    for (size_t i = 0; i < n; i++) {
        int d = digits ? digits[i] : 15;
        lp->digits[i] = (unsigned char)(d < 1 ? 1 : d > 17 ? 17 : d);
        if (!names[i])
            continue;
        lp->key_off[i] = k.len;
        sb_add_jstr(&k, names[i]);
        sb_add(&k, ":", 1);
        lp->key_len[i] = k.len - lp->key_off[i];
        cap += 1 + lp->key_len[i] + NUMFMT_DOUBLE_SIZE;
    }
    lp->keys = k.s;
    lp->cap = cap;
    lp->buf = xmalloc(cap);
    return lp;
}

void live_payload_free(struct live_payload *lp)
{
    if (!lp)
        return;
    free(lp->mid);
    free(lp->keys);
    free(lp->key_off);
    free(lp->key_len);
    free(lp->digits);
    free(lp->buf);
    free(lp);
}

/* The digits to print v with: the point's (payload_point_digits), raised to
 * the number of digits before the decimal point when that is more, so a big
 * counter from a float32 register reads "15243883.0", not "1.524388e7" (its
 * units digit is still within the register's resolution there). */
static int live_digits(int digits, double v)
{
    static const double pow10[] = {1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14};
    double a = fabs(v);
    for (size_t k = 0; k < ARRAY_SIZE(pow10) && a >= pow10[k] && digits < 15; k++)
        if (digits < (int)k + 8)
            digits = (int)k + 8;
    return digits;
}

const char *live_payload_build(struct live_payload *lp, int64_t ts, const double *values,
                               const bool *valid, size_t *ret_len)
{
    char *o = lp->buf;
    memcpy(o, LIVE_HEAD, sizeof(LIVE_HEAD) - 1);
    o += sizeof(LIVE_HEAD) - 1;
    o += numfmt_int64(o, ts);
    memcpy(o, lp->mid, lp->mid_len);
    o += lp->mid_len;
    bool first = true;
    for (size_t i = 0; i < lp->n; i++) {
        /* A decoder that let NaN/Inf through is an invalid reading rather
         * than a broken payload. */
        if ((valid && !valid[i]) || !lp->key_len[i] || !isfinite(values[i]))
            continue;
        if (!first)
            *o++ = ',';
        first = false;
        memcpy(o, lp->keys + lp->key_off[i], lp->key_len[i]);
        o += lp->key_len[i];
        o += numfmt_double(o, values[i], live_digits(lp->digits[i], values[i]));
    }
    memcpy(o, LIVE_TAIL, sizeof(LIVE_TAIL)); /* with its NUL */
    o += sizeof(LIVE_TAIL) - 1;
    *ret_len = (size_t)(o - lp->buf);
    return lp->buf;
}

char *payload_live(int64_t ts, const char *ent, const char *meter, const char *utility,
                   const char *const *names, const double *values, const bool *valid, size_t n)
{
    struct live_payload *lp = live_payload_new(ent, meter, utility, names, NULL, n);
    size_t len;
    const char *s = live_payload_build(lp, ts, values, valid, &len);
    char *copy = xmalloc(len + 1);
    memcpy(copy, s, len + 1);
    live_payload_free(lp);
    return copy;
}

char *payload_status_online(const char *version, int64_t started, size_t meters)
{
    json_t *root = jobj();
    jset(root, "state", json_string("online"));
    jset(root, "version", jstr(version));
    jset(root, "started", json_integer((json_int_t)started));
    jset(root, "meters", json_integer((json_int_t)meters));
    return dump(root);
}

char *payload_status_offline(void)
{
    json_t *root = jobj();
    jset(root, "state", json_string("offline"));
    return dump(root);
}

char *payload_state(int64_t ts, const char *state, int64_t since, const char *const *alarms,
                    size_t n_alarms)
{
    json_t *root = jobj();
    jset(root, "ts", json_integer((json_int_t)ts));
    jset(root, "state", jstr(state));
    jset(root, "since", json_integer((json_int_t)since));

    json_t *arr = json_array();
    if (!arr) {
        log_err("payload: out of memory building JSON");
        abort();
    }
    for (size_t i = 0; i < n_alarms; i++) {
        if (!alarms[i])
            continue;
        if (json_array_append_new(arr, jstr(alarms[i])) != 0) {
            log_err("payload: out of memory building JSON");
            abort();
        }
    }
    jset(root, "alarms", arr);
    return dump(root);
}

char *payload_event(int64_t seq, int64_t ts, const char *type, const struct payload_field *extra,
                    size_t n_extra)
{
    json_t *root = jobj();
    if (seq >= 0)
        jset(root, "seq", json_integer((json_int_t)seq));
    jset(root, "ts", json_integer((json_int_t)ts));
    jset(root, "type", jstr(type));

    for (size_t i = 0; i < n_extra; i++) {
        const struct payload_field *f = &extra[i];
        if (!f->key || strcmp(f->key, "seq") == 0 || strcmp(f->key, "ts") == 0 ||
            strcmp(f->key, "type") == 0)
            continue;
        json_t *val = NULL;
        switch (f->type) {
        case PF_STR:
            if (f->s)
                val = jstr(f->s);
            break;
        case PF_INT:
            val = json_integer((json_int_t)f->i);
            break;
        case PF_REAL:
            if (isfinite(f->d))
                val = json_real(f->d);
            break;
        case PF_BOOL:
            val = json_boolean(f->b);
            break;
        }
        if (!val)
            continue;
        json_t *key = jstr(f->key);
        jset(root, json_string_value(key), val);
        json_decref(key);
    }
    return dump(root);
}
