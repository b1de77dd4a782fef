/*
 * query_out.c - writes `parkgw query`'s rows as CSV or JSON (query_out.h):
 *   raw:   enterprise,meter,point,ts,value (ts local ISO 8601 with
 *          milliseconds and offset: the `parkgw import` format)
 *   steps: bucket_start,enterprise,meter,point,count,min,max,avg,consumption,last
 *          (empty statistics for an empty bucket, empty consumption for a
 *          gauge)
 * JSON: an array of objects with the same fields (numbers as numbers, empty
 * fields null) plus "ts" in Unix ms (the sample's or the bucket start's)
 * and for raw rows "time" (the ISO text).
 */
#include "cli/query_out.h"

#include <math.h>
#include <stdlib.h>

#include "common/csv.h"
#include "common/timeparse.h"

/* Shortest text that reads back as the same double; NULL for inf and NaN
 * (printed as null or an empty field: JSON has no such numbers). */
static const char *fmt_num(double v, char *buf, size_t len)
{
    if (!isfinite(v))
        return NULL;
    snprintf(buf, len, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, len, "%.17g", v);
    return buf;
}

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static void json_begin_row(struct query_out *o, const char *ent, const char *meter,
                           const char *point)
{
    fputs(o->first_row ? "\n  {" : ",\n  {", o->out);
    o->first_row = false;
    fputs("\"enterprise\":", o->out);
    json_str(o->out, ent);
    fputs(",\"meter\":", o->out);
    json_str(o->out, meter);
    fputs(",\"point\":", o->out);
    json_str(o->out, point);
}

static void csv_ids(FILE *out, const char *ent, const char *meter, const char *point)
{
    csv_field(out, ent);
    fputc(',', out);
    csv_field(out, meter);
    fputc(',', out);
    csv_field(out, point);
}

void query_out_begin(struct query_out *o, FILE *out, bool json, bool steps)
{
    o->out = out;
    o->json = json;
    o->first_row = true;
    if (json)
        fputc('[', out);
    else if (steps)
        fputs("bucket_start,enterprise,meter,point,count,min,max,avg,consumption,last\n", out);
    else
        fputs("enterprise,meter,point,ts,value\n", out);
}

void query_out_raw(struct query_out *o, const char *ent, const char *meter, const char *point,
                   int64_t ts, double value)
{
    char tbuf[64], nbuf[40];
    timeparse_format(ts, true, tbuf, sizeof(tbuf));
    const char *v = fmt_num(value, nbuf, sizeof(nbuf));
    if (o->json) {
        json_begin_row(o, ent, meter, point);
        fprintf(o->out, ",\"ts\":%lld,\"time\":\"%s\",\"value\":%s}", (long long)ts, tbuf,
                v ? v : "null");
    } else {
        csv_ids(o->out, ent, meter, point);
        fprintf(o->out, ",%s,%s\n", tbuf, v ? v : "");
    }
}

void query_out_bucket(struct query_out *o, const char *ent, const char *meter, const char *point,
                      int64_t start, const struct query_bucket *b, bool counter)
{
    char tbuf[64], n1[40], n2[40], n3[40], n4[40], n5[40];
    bool has = b->count > 0;
    timeparse_format(start, false, tbuf, sizeof(tbuf));
    const char *mn = has ? fmt_num(b->min, n1, sizeof(n1)) : NULL;
    const char *mx = has ? fmt_num(b->max, n2, sizeof(n2)) : NULL;
    const char *avg = has ? fmt_num(b->sum / (double)b->count, n3, sizeof(n3)) : NULL;
    const char *last = has ? fmt_num(b->last, n4, sizeof(n4)) : NULL;
    const char *cons = counter ? fmt_num(b->consumption, n5, sizeof(n5)) : NULL;
    if (o->json) {
        json_begin_row(o, ent, meter, point);
        fprintf(o->out,
                ",\"bucket_start\":\"%s\",\"ts\":%lld,\"count\":%lld,\"min\":%s,\"max\":%s,"
                "\"avg\":%s,\"consumption\":%s,\"last\":%s}",
                tbuf, (long long)start, (long long)b->count, mn ? mn : "null", mx ? mx : "null",
                avg ? avg : "null", cons ? cons : "null", last ? last : "null");
    } else {
        fprintf(o->out, "%s,", tbuf);
        csv_ids(o->out, ent, meter, point);
        fprintf(o->out, ",%lld,%s,%s,%s,%s,%s\n", (long long)b->count, mn ? mn : "",
                mx ? mx : "", avg ? avg : "", cons ? cons : "", last ? last : "");
    }
}

void query_out_end(struct query_out *o)
{
    if (o->json)
        fputs(o->first_row ? "]\n" : "\n]\n", o->out);
}
