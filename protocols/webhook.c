/*
 * webhook.c - alert message formats and their HTTP delivery (see
 * webhook.h). The text is Chinese first with the English words the
 * events use, so a chat reader and a grep both find it.
 */
#include "protocols/webhook.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

/* Answers longer than this are cut (a robot answers a few dozen bytes). */
#define WEBHOOK_MAX_ANSWER 65536

const char *webhook_event_kind(const char *type, const char *alarm)
{
    if (!type)
        return NULL;
    if (!strcmp(type, "alarm_raised") || !strcmp(type, "alarm_cleared"))
        return alarm;
    if (!strcmp(type, "comm_lost") || !strcmp(type, "comm_restored"))
        return "comm_lost";
    if (!strcmp(type, "bus_down") || !strcmp(type, "bus_restored"))
        return "bus_down";
    return NULL;
}

static const char *kind_zh(const char *kind)
{
    if (!strcmp(kind, "supply_lost"))
        return "断供";
    if (!strcmp(kind, "comm_lost"))
        return "通讯中断";
    if (!strcmp(kind, "bus_down"))
        return "总线中断";
    if (!strcmp(kind, "phase_loss"))
        return "缺相";
    if (!strcmp(kind, "low_pressure"))
        return "压力低";
    return "告警";
}

static bool is_clear(const char *type)
{
    return !strcmp(type, "alarm_cleared") || !strcmp(type, "comm_restored") ||
           !strcmp(type, "bus_restored");
}

/* Local time (the process's TZ: the gateway's zone). */
static void fmt_local(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void fmt_duration(int64_t ms, char *buf, size_t len)
{
    int64_t s = ms / 1000;
    if (s < 60)
        snprintf(buf, len, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(buf, len, "%lldmin", (long long)(s / 60));
    else
        snprintf(buf, len, "%lldh%02lldmin", (long long)(s / 3600), (long long)(s % 3600 / 60));
}

/* The one-paragraph text of an alert, for people (malloc'd). */
static char *alert_text(const struct webhook_alert *a, json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *kind = webhook_event_kind(type, json_string_value(json_object_get(ev, "alarm")));
    const char *meter = json_string_value(json_object_get(ev, "meter"));
    const char *ent = json_string_value(json_object_get(ev, "enterprise"));
    const char *util = json_string_value(json_object_get(ev, "utility"));
    const char *bus = json_string_value(json_object_get(ev, "bus"));
    int64_t ts = json_integer_value(json_object_get(ev, "ts"));
    int64_t since = json_integer_value(json_object_get(ev, "since"));
    bool clear = is_clear(type);
    char when[32], start[32], dur[32], who[512], extra[256] = "";

    fmt_local(ts, when, sizeof(when));
    fmt_local(since ? since : ts, start, sizeof(start));
    fmt_duration(ts - since, dur, sizeof(dur));
    if (meter)
        snprintf(who, sizeof(who), "%s (%s) 表计 meter %s%s%s%s", a->enterprise_name ? a->enterprise_name : ent,
                 ent ? ent : "-", meter, util ? " [" : "", util ? util : "", util ? "]" : "");
    else
        snprintf(who, sizeof(who), "总线 bus %s, %lld 块表 meters", bus ? bus : "-",
                 (long long)json_integer_value(json_object_get(ev, "meters")));
    if (!strcmp(type, "comm_lost"))
        snprintf(extra, sizeof(extra), "; %lld 次失败 failed polls, %s",
                 (long long)json_integer_value(json_object_get(ev, "failures")),
                 json_string_value(json_object_get(ev, "error"))
                     ? json_string_value(json_object_get(ev, "error"))
                     : "-");
    char suppressed[128] = "";
    if (a->suppressed > 0)
        snprintf(suppressed, sizeof(suppressed),
                 "\n（此前 %d 次状态变化未单独发送 / %d earlier changes not sent: rate limit）",
                 a->suppressed, a->suppressed);
    if (clear)
        return xasprintf("【恢复 CLEARED】%s %s\n%s\n恢复于 cleared at %s，自 since %s，持续 "
                         "lasted %s%s\n[parkgw %s · %s]",
                         kind_zh(kind), kind, who, when, start, dur, suppressed, a->gateway,
                         a->id);
    return xasprintf("【告警 ALARM】%s %s\n%s\n开始 since %s%s%s\n[parkgw %s · %s]", kind_zh(kind),
                     kind, who, start, extra, suppressed, a->gateway, a->id);
}

char *webhook_body(enum webhook_format f, const struct webhook_alert *a)
{
    json_t *ev = json_loads(a->event, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!json_is_object(ev) || !type) {
        json_decref(ev);
        return NULL;
    }
    char *text = alert_text(a, ev);
    json_t *body;
    if (f == WEBHOOK_WECOM || f == WEBHOOK_DINGTALK) {
        /* Both robots take {"msgtype":"text","text":{"content":...}}. */
        body = json_pack("{s:s,s:{s:s}}", "msgtype", "text", "text", "content", text);
    } else {
        const char *kind =
            webhook_event_kind(type, json_string_value(json_object_get(ev, "alarm")));
        body = json_pack("{s:s,s:s,s:s,s:s?,s:b,s:s?,s:O,s:s,s:i}", "id", a->id, "gateway",
                         a->gateway, "type", type, "kind", kind, "cleared", is_clear(type),
                         "enterprise_name", a->enterprise_name, "event", ev, "text", text,
                         "suppressed", a->suppressed);
    }
    free(text);
    json_decref(ev);
    char *out = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return out;
}

void webhook_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct answer {
    char buf[WEBHOOK_MAX_ANSWER + 1];
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct answer *a = ud;
    size_t total = size * n, room = WEBHOOK_MAX_ANSWER - a->len;
    size_t take = total < room ? total : room;
    memcpy(a->buf + a->len, p, take);
    a->len += take;
    a->buf[a->len] = '\0';
    return total;
}

int webhook_post(const char *url, enum webhook_format f, const char *body, const char *id,
                 int timeout_ms, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "cannot create a curl handle");
        return -ENOMEM;
    }
    struct answer *ans = xcalloc(1, sizeof(*ans));
    char *hid = xasprintf("X-Parkgw-Alert-Id: %s", id);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
    h = curl_slist_append(h, hid);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "parkgw-alerts");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ans);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    int r = 0;
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
        r = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299) {
            snprintf(err, errlen, "HTTP %ld: %.200s", status, ans->buf);
            r = -EPROTO;
        } else if (f != WEBHOOK_JSON) {
            /* The robots answer 200 with {"errcode":N,"errmsg":...}. */
            json_t *j = json_loads(ans->buf, 0, NULL);
            json_t *code = json_object_get(j, "errcode");
            if (!json_is_integer(code) || json_integer_value(code) != 0) {
                snprintf(err, errlen, "robot refused: %.200s", ans->buf);
                r = -EPROTO;
            }
            json_decref(j);
        }
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(hid);
    free(ans);
    return r;
}

char *webhook_dingtalk_sign(const char *url, const char *secret, int64_t now_ms)
{
    char *msg = xasprintf("%lld\n%s", (long long)now_ms, secret);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, strlen(msg), mac,
         &mlen);
    free(msg);
    unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    EVP_EncodeBlock(b64, mac, (int)mlen);
    /* URL-encode the Base64 text (+, / and =). */
    char enc[3 * sizeof(b64)], *o = enc;
    for (const unsigned char *c = b64; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))
            *o++ = (char)*c;
        else
            o += sprintf(o, "%%%02X", *c);
    }
    *o = '\0';
    return xasprintf("%s%ctimestamp=%lld&sign=%s", url, strchr(url, '?') ? '&' : '?',
                     (long long)now_ms, enc);
}
