/*
 * statement_html.c - printable statements (statement_html.h): plain HTML
 * with the CSS for screen and A4 paper inline, numbers as the CSV rounds
 * them, the daily consumption chart drawn as SVG bars so that it prints
 * without any script. Names are escaped; everything is UTF-8.
 */
#include "engine/statement_html.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeparse.h"
#include "common/util.h"
#include "common/utility.h"
#include "version.h"

static const char *const util_zh[UTIL__COUNT] = {"电", "水", "天然气", "污水"};

static const char *utility_zh(enum utility u)
{
    return (unsigned)u < UTIL__COUNT ? util_zh[u] : "?";
}

static void esc(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

/* v with 'dec' decimals and thousands separated by commas, into buf. */
static const char *grouped(double v, int dec, char *buf, size_t len)
{
    char raw[64];
    if (!isfinite(v)) {
        snprintf(buf, len, "–");
        return buf;
    }
    snprintf(raw, sizeof(raw), "%.*f", dec, v);
    const char *p = raw;
    size_t o = 0;
    if (*p == '-')
        buf[o++] = *p++;
    size_t intlen = strcspn(p, ".");
    for (size_t i = 0; p[i] && o + 2 < len; i++) {
        buf[o++] = p[i];
        if (i + 1 < intlen && (intlen - i - 1) % 3 == 0)
            buf[o++] = ',';
    }
    buf[o] = 0;
    return buf;
}

/* "2026-07-01 00:00" in the gateway's zone. */
static const char *local_min(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

static const char css[] =
    "@page{size:A4;margin:14mm 12mm}\n"
    "*{box-sizing:border-box}\n"
    "body{font-family:\"WenQuanYi Zen Hei\",\"Noto Sans CJK SC\",\"Microsoft YaHei\",sans-serif;"
    "font-size:10pt;color:#111;margin:0 auto;max-width:190mm;padding:8mm 0;"
    "-webkit-print-color-adjust:exact;print-color-adjust:exact}\n"
    "@media print{body{padding:0;max-width:none}}\n"
    "h1{font-size:17pt;margin:0 0 2mm}\n"
    "h2{font-size:11.5pt;margin:0 0 2mm;padding:1mm 2mm;background:#e8eef5;border-left:3px solid "
    "#35648f}\n"
    "h3{font-size:10pt;margin:3mm 0 1mm;color:#333}\n"
    ".sub{color:#444;margin-bottom:3mm}\n"
    "table{border-collapse:collapse;width:100%;margin:0 0 2mm}\n"
    "th,td{padding:1.2mm 2mm;border-bottom:1px solid #cfd6de;text-align:left;vertical-align:top}\n"
    "th{font-weight:600;background:#f4f6f8}\n"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "td.t{white-space:nowrap}\n"
    "table.meta th{width:22%}\n"
    "tr.total td{font-weight:700;border-top:1.5px solid #333;border-bottom:none}\n"
    "tr.sub td{font-weight:600;background:#fafbfc}\n"
    "small{color:#555;font-size:8.5pt;white-space:nowrap}\n"
    "section.meter{margin:5mm 0}\n"
    "table,svg.chart{break-inside:avoid;page-break-inside:avoid}\n"
    "h2,h3{break-after:avoid;page-break-after:avoid}\n"
    "section.sum{margin:4mm 0}\n"
    ".two{display:flex;gap:4mm}.two>div{flex:1}\n"
    ".note{color:#7a4b00;font-size:9pt}\n"
    ".chart{width:100%;height:auto;display:block}\n"
    "footer{margin-top:6mm;color:#666;font-size:8pt;border-top:1px solid #ccc;padding-top:2mm}\n"
    "a{color:#1d4f80;text-decoration:none}\n";

static void head(FILE *out, const char *title_a, const char *title_b)
{
    fputs("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          out);
    esc(out, title_a);
    fputs(" ", out);
    esc(out, title_b);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", css);
}

static void period_text(FILE *out, const struct config *cfg, const struct statement *s)
{
    char a[32], b[32];
    fprintf(out, "%s – %s (%s)", local_min(s->from, a, sizeof(a)), local_min(s->to, b, sizeof(b)),
            cfg->timezone ? cfg->timezone : "UTC");
}

static void foot(FILE *out, const struct config *cfg)
{
    char now[32];
    fputs("<footer>parkgw " PARKGW_VERSION " · ", out);
    esc(out, cfg->gateway_id);
    fprintf(out, " · 生成于 generated %s · 读数为表盘读数 × 倍率 (dial reading × multiplier)"
                 "</footer>\n</body>\n</html>\n",
            local_min((int64_t)time(NULL) * 1000, now, sizeof(now)));
}

/* ---- chart ---- */

/* A round axis maximum at or above v: 1, 2 or 5 x 10^k. */
static double nice_max(double v)
{
    if (!(v > 0))
        return 1;
    double p = pow(10, floor(log10(v)));
    for (int k = 0; k < 3; k++) {
        static const double f[] = {1, 2, 5};
        if (f[k] * p >= v)
            return f[k] * p;
    }
    return 10 * p;
}

static void chart(FILE *out, const struct tariff_series *d, const char *unit)
{
    const double W = 680, H = 160, L = 52, R = 8, T = 18, B = 22;
    if (d->n == 0)
        return;
    double max = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i] > max)
            max = d->v[i];
    double top = nice_max(max);
    double pw = W - L - R, ph = H - T - B, bw = pw / (double)d->n;
    char b1[48];
    fprintf(out, "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" xmlns=\"http://www.w3.org/2000/svg\" "
                 "role=\"img\" aria-label=\"daily consumption\">\n",
            W, H);
    for (int k = 0; k <= 2; k++) {
        double y = T + ph - ph * k / 2.0;
        fprintf(out,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ccc\" "
                "stroke-width=\"0.6\"/>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"8\" "
                "text-anchor=\"end\" fill=\"#555\">%s</text>\n",
                L, W - R, y, y, L - 4, y + 3, grouped(top * k / 2.0, 0, b1, sizeof(b1)));
    }
    fprintf(out, "<text x=\"%.1f\" y=\"9\" font-size=\"8\" text-anchor=\"end\" fill=\"#555\">"
                 "%s/日 per day</text>\n",
            W - R, unit);
    size_t every = d->n > 20 ? (d->n + 14) / 15 : 1;
    for (size_t i = 0; i < d->n; i++) {
        double h = d->v[i] > 0 ? ph * d->v[i] / top : 0;
        double x = L + bw * (double)i;
        fprintf(out,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#35648f\"/>\n",
                x + bw * 0.12, T + ph - h, bw * 0.76, h);
        if (i % every == 0) {
            time_t t = (time_t)(d->edge[i] / 1000);
            struct tm tm;
            localtime_r(&t, &tm);
            fprintf(out,
                    "<text x=\"%.1f\" y=\"%.1f\" font-size=\"8\" text-anchor=\"middle\" "
                    "fill=\"#555\">%d/%d</text>\n",
                    x + bw / 2, H - 8, tm.tm_mon + 1, tm.tm_mday);
        }
    }
    fputs("</svg>\n", out);
}

/* ---- one meter ---- */

static void meter_section(FILE *out, const struct config *cfg, const struct statement_row *w)
{
    char b1[48], b2[48], b3[48], b4[48];
    const char *unit = utility_unit(w->m->utility);
    const struct cfg_tariff *t = w->tariff;

    fputs("<section class=\"meter\">\n<h2>", out);
    esc(out, w->m->id);
    fprintf(out, " · %s %s · ", utility_zh(w->m->utility), utility_name(w->m->utility));
    esc(out, cfg->profiles[w->m->profile].name);
    fputs("</h2>\n", out);

    /* readings: each segment's dial readings x its multiplier */
    fputs("<h3>读数 Readings</h3>\n<table>\n<tr><th>起 From</th><th>止 To</th>"
          "<th class=\"n\">起码 Start dial</th><th class=\"n\">止码 End dial</th>"
          "<th class=\"n\">倍率 Multiplier</th><th class=\"n\">用量 Consumption</th></tr>\n",
          out);
    for (size_t k = 0; k < w->n_seg; k++) {
        const struct statement_segment *sg = &w->seg[k];
        char f1[32], f2[32];
        fprintf(out, "<tr><td class=\"t\">%s</td><td class=\"t\">%s</td>",
                local_min(sg->from, f1, sizeof(f1)),
                local_min(sg->to, f2, sizeof(f2)));
        if (sg->has_readings)
            fprintf(out, "<td class=\"n\">%s</td><td class=\"n\">%s</td>",
                    grouped(sg->start_dial, 3, b1, sizeof(b1)),
                    grouped(sg->end_dial, 3, b2, sizeof(b2)));
        else
            fputs("<td class=\"n\">–</td><td class=\"n\">–</td>", out);
        fprintf(out, "<td class=\"n\">%s</td><td class=\"n\">%s %s</td></tr>\n",
                grouped(sg->multiplier, sg->multiplier == floor(sg->multiplier) ? 0 : 3, b3,
                        sizeof(b3)),
                grouped(sg->consumption, 3, b4, sizeof(b4)), unit);
    }
    if (w->n_seg > 1)
        fprintf(out,
                "<tr class=\"total\"><td colspan=\"5\">合计 Total</td><td class=\"n\">%s "
                "%s</td></tr>\n",
                grouped(w->r.consumption, 3, b4, sizeof(b4)), unit);
    fputs("</table>\n", out);

    /* charges: energy by band (or flat, or ladder), then the two-part lines */
    if (t) {
        fputs("<h3>电费/用量费 Charges</h3>\n<table>\n<tr><th>项目 Item</th>"
              "<th class=\"n\">用量 Quantity</th><th class=\"n\">单价 Unit price</th>"
              "<th class=\"n\">金额 Charge</th></tr>\n",
              out);
        if (w->r.n_bands > 0) {
            for (size_t b = 0; b < w->r.n_bands; b++) {
                const struct statement_band *bl = &w->bands[b];
                enum tariff_band tb;
                const char *zh =
                    tariff_band_parse(bl->name, &tb) == 0 ? tariff_band_name_zh(tb) : "未分时段";
                fprintf(out,
                        "<tr><td>%s %s</td><td class=\"n\">%s %s</td><td class=\"n\">%.4f</td>"
                        "<td class=\"n\">%s</td></tr>\n",
                        zh, bl->name, grouped(bl->consumption, 3, b1, sizeof(b1)), unit,
                        bl->price,
                        grouped(statement_round(bl->consumption * bl->price, 0.01), 2, b2,
                                sizeof(b2)));
            }
        } else if (t->n_blocks > 0) {
            fprintf(out,
                    "<tr><td>阶梯价 block prices</td><td class=\"n\">%s %s</td>"
                    "<td class=\"n\">",
                    grouped(w->r.consumption, 3, b1, sizeof(b1)), unit);
            for (size_t k = 0; k < t->n_blocks; k++)
                fprintf(out, "%s&gt;%s: %.4f", k ? "<br>" : "",
                        grouped(t->blocks[k].threshold, 0, b2, sizeof(b2)), t->blocks[k].price);
            fprintf(out, "</td><td class=\"n\">%s</td></tr>\n",
                    grouped(w->ch.energy_charge, 2, b3, sizeof(b3)));
        } else {
            fprintf(out,
                    "<tr><td>单一价 flat price</td><td class=\"n\">%s %s</td>"
                    "<td class=\"n\">%.4f</td><td class=\"n\">%s</td></tr>\n",
                    grouped(w->r.consumption, 3, b1, sizeof(b1)), unit, t->price,
                    grouped(w->ch.energy_charge, 2, b2, sizeof(b2)));
        }
        fprintf(out,
                "<tr class=\"sub\"><td>电度/用量费 Energy charge</td><td></td><td></td>"
                "<td class=\"n\">%s</td></tr>\n",
                grouped(w->ch.energy_charge, 2, b1, sizeof(b1)));
        if (w->basic_kva > 0)
            fprintf(out,
                    "<tr><td>基本电费 Basic charge<br><small>容量 contracted capacity</small></td><td class=\"n\">%s kVA</td>"
                    "<td class=\"n\">%.4f</td><td class=\"n\">%s</td></tr>\n",
                    grouped(w->basic_kva, 0, b1, sizeof(b1)), t->capacity_price,
                    grouped(w->ch.basic_charge, 2, b2, sizeof(b2)));
        else if (w->demand_ts >= 0) {
            char at[32];
            fprintf(out,
                    "<tr><td>基本电费 Basic charge<br><small>最大需量 max demand at %s</small></td>"
                    "<td class=\"n\">%s kW</td><td class=\"n\">%.4f</td>"
                    "<td class=\"n\">%s</td></tr>\n",
                    local_min(w->demand_ts, at, sizeof(at)),
                    grouped(w->demand_kw, 1, b1, sizeof(b1)), t->demand_price,
                    grouped(w->ch.basic_charge, 2, b2, sizeof(b2)));
        }
        if (!isnan(w->pf))
            fprintf(out,
                    "<tr><td>力调电费 PF adjustment<br><small>功率因数 PF %.2f · 标准 standard "
                    "%.2f · %s kvarh</small></td><td class=\"n\">%+.2f %%</td><td></td>"
                    "<td class=\"n\">%s</td></tr>\n",
                    w->pf, t->pf_standard, grouped(w->kvarh, 0, b3, sizeof(b3)), w->ch.pf_pct,
                    grouped(w->ch.pf_adjustment, 2, b1, sizeof(b1)));
        if (w->ch.surcharge != 0)
            fprintf(out,
                    "<tr><td>代征基金及附加 Surcharges</td><td class=\"n\">%s %s</td>"
                    "<td class=\"n\">%.4f</td><td class=\"n\">%s</td></tr>\n",
                    grouped(w->r.consumption, 3, b1, sizeof(b1)), unit, t->surcharge,
                    grouped(w->ch.surcharge, 2, b2, sizeof(b2)));
        if (w->ch.fixed_charge != 0)
            fprintf(out,
                    "<tr><td>固定费用 Fixed charge</td><td></td><td class=\"n\">%.2f / 月</td>"
                    "<td class=\"n\">%s</td></tr>\n",
                    t->fixed_monthly, grouped(w->ch.fixed_charge, 2, b1, sizeof(b1)));
        fprintf(out,
                "<tr class=\"total\"><td>合计 Amount</td><td class=\"n\">%s %s</td><td></td>"
                "<td class=\"n\">%s %s</td></tr>\n</table>\n",
                grouped(w->r.consumption, 3, b1, sizeof(b1)), unit,
                grouped(statement_row_amount(w), 2, b2, sizeof(b2)), t->currency);
    } else {
        fputs("<p class=\"note\">无价格 no tariff for this utility: consumption only.</p>\n", out);
    }

    fprintf(out, "<p>数据覆盖 Coverage %.1f %%", w->r.coverage_pct);
    if (w->r.n_resets)
        fprintf(out, " · <span class=\"note\">换表/清零 %zu 次 meter reset or replaced</span>",
                w->r.n_resets);
    if (w->r.n_spikes)
        fprintf(out, " · <span class=\"note\">%zu 个异常跳变已剔除 implausible jumps excluded</span>",
                w->r.n_spikes);
    fputs("</p>\n", out);
    if (w->daily.n > 0) {
        fputs("<h3>日用量 Daily consumption</h3>\n", out);
        chart(out, &w->daily, unit);
    }
    fputs("</section>\n", out);
}

bool statement_html_has(const struct statement *s, size_t e)
{
    for (int u = 0; u < UTIL__COUNT; u++)
        if (s->ent_total[e][u].used)
            return true;
    return false;
}

char *statement_html_file(const struct config *cfg, size_t e, char *buf, size_t len)
{
    snprintf(buf, len, "%s.html", cfg->enterprises[e].id);
    return buf;
}

/* The totals table of one enterprise (or the park): a line per utility and
 * one amount per currency. */
static void totals_table(FILE *out, const struct statement_total *tot)
{
    char b1[48], b2[48];
    fputs("<table>\n<tr><th>类别 Utility</th><th class=\"n\">用量 Consumption</th>"
          "<th class=\"n\">金额 Amount</th></tr>\n",
          out);
    for (int u = 0; u < UTIL__COUNT; u++) {
        if (!tot[u].used)
            continue;
        fprintf(out, "<tr><td>%s %s</td><td class=\"n\">%s %s</td><td class=\"n\">", utility_zh(u),
                utility_name(u), grouped(tot[u].consumption, 3, b1, sizeof(b1)),
                utility_unit(u));
        if (tot[u].currency)
            fprintf(out, "%s %s", grouped(tot[u].amount, 2, b2, sizeof(b2)), tot[u].currency);
        else
            fputs("–", out);
        fputs("</td></tr>\n", out);
    }
    for (int u = 0; u < UTIL__COUNT; u++) {
        if (!tot[u].used || !tot[u].currency)
            continue;
        bool seen = false;
        for (int v = 0; v < u; v++)
            seen |= tot[v].used && tot[v].currency && !strcmp(tot[v].currency, tot[u].currency);
        if (seen)
            continue;
        double sum = 0;
        for (int v = u; v < UTIL__COUNT; v++)
            if (tot[v].used && tot[v].currency && !strcmp(tot[v].currency, tot[u].currency))
                sum += tot[v].amount;
        fprintf(out,
                "<tr class=\"total\"><td>应付合计 Total due</td><td></td><td class=\"n\">%s "
                "%s</td></tr>\n",
                grouped(sum, 2, b1, sizeof(b1)), tot[u].currency);
    }
    fputs("</table>\n", out);
}

int statement_html_page(FILE *out, const struct config *cfg, const struct statement *s,
                        size_t e)
{
    const struct cfg_enterprise *ent = &cfg->enterprises[e];
    const char *name = ent->name ? ent->name : ent->id;
    char b1[32];
    head(out, name, local_min(s->from, b1, sizeof(b1)));
    fputs("<header>\n<h1>", out);
    esc(out, name);
    fputs("</h1>\n<div class=\"sub\">能源费用结算单 · Utility statement</div>\n"
          "<table class=\"meta\">\n<tr><th>企业编号 Enterprise</th><td>",
          out);
    esc(out, ent->id);
    fputs("</td></tr>\n<tr><th>结算周期 Period</th><td>", out);
    period_text(out, cfg, s);
    fputs("</td></tr>\n</table>\n</header>\n<section class=\"sum\">\n<h2>合计 Totals</h2>\n", out);
    totals_table(out, s->ent_total[e]);
    fputs("</section>\n", out);
    for (size_t i = 0; i < s->n_rows; i++)
        if (s->rows[i].ent_idx == e)
            meter_section(out, cfg, &s->rows[i]);
    foot(out, cfg);
    return ferror(out) ? -EIO : 0;
}

int statement_html_index(FILE *out, const struct config *cfg, const struct statement *s,
                         const char *link_base)
{
    char b1[48], b2[48], file[160];
    head(out, "园区结算 Park statements", local_min(s->from, b1, sizeof(b1)));
    fputs("<header>\n<h1>园区能源结算 Park statements</h1>\n<div class=\"sub\">", out);
    period_text(out, cfg, s);
    fputs("</div>\n</header>\n<table>\n<tr><th>企业 Enterprise</th>", out);
    for (int u = 0; u < UTIL__COUNT; u++)
        if (s->park[u].used)
            fprintf(out, "<th class=\"n\">%s %s</th>", utility_zh(u), utility_unit(u));
    fputs("<th class=\"n\">金额 Amount</th></tr>\n", out);
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        if (!statement_html_has(s, e))
            continue;
        const struct cfg_enterprise *ent = &cfg->enterprises[e];
        fputs("<tr><td><a href=\"", out);
        if (link_base) {
            esc(out, link_base);
            esc(out, ent->id);
        } else {
            esc(out, statement_html_file(cfg, e, file, sizeof(file)));
        }
        fputs("\">", out);
        esc(out, ent->name ? ent->name : ent->id);
        fputs("</a><br><small>", out);
        esc(out, ent->id);
        fputs("</small></td>", out);
        double sum = 0;
        const char *cur = NULL;
        for (int u = 0; u < UTIL__COUNT; u++) {
            const struct statement_total *t = &s->ent_total[e][u];
            if (s->park[u].used)
                fprintf(out, "<td class=\"n\">%s</td>",
                        t->used ? grouped(t->consumption, 3, b1, sizeof(b1)) : "–");
            if (t->used && t->currency) {
                sum += t->amount;
                cur = t->currency;
            }
        }
        fprintf(out, "<td class=\"n\">%s %s</td></tr>\n",
                cur ? grouped(sum, 2, b2, sizeof(b2)) : "–", cur ? cur : "");
    }
    fputs("</table>\n<section class=\"sum\">\n<h2>园区合计 Park totals</h2>\n", out);
    totals_table(out, s->park);
    fputs("</section>\n", out);
    foot(out, cfg);
    return ferror(out) ? -EIO : 0;
}
