/*
 * test_csv.c - common/csv.c: plain fields pass as they are; a comma, a
 * double quote, CR or LF puts the field in quotes with quotes doubled;
 * UTF-8 passes byte for byte. Each case is also read back with a small
 * RFC 4180 reader to show the field survives the round trip.
 */
#include "common/csv.h"
#include "tests/unit/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* csv_field(s) as a string; the caller frees it. */
static char *field(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    csv_field(f, s);
    fclose(f);
    return buf;
}

/* Reads one RFC 4180 field from the whole of text; NULL when malformed. */
static char *unquote(const char *text)
{
    size_t n = strlen(text);
    char *out = malloc(n + 1), *o = out;
    if (!out)
        abort();
    if (text[0] != '"') {
        if (strpbrk(text, ",\"\r\n")) {
            free(out);
            return NULL;
        }
        memcpy(out, text, n + 1);
        return out;
    }
    const char *p = text + 1;
    for (;;) {
        if (!*p) {
            free(out);
            return NULL; /* unterminated */
        }
        if (*p == '"') {
            if (p[1] == '"') {
                *o++ = '"';
                p += 2;
                continue;
            }
            if (p[1]) {
                free(out);
                return NULL; /* text after the closing quote */
            }
            break;
        }
        *o++ = *p++;
    }
    *o = '\0';
    return out;
}

static void check_field(const char *in, const char *want)
{
    char *got = field(in);
    CHECK_STR(got, want);
    char *back = unquote(got);
    CHECK_STR(back, in);
    free(back);
    free(got);
}

int main(void)
{
    check_field("", "");
    check_field("chengtong-plastics", "chengtong-plastics");
    check_field("e1", "e1");
    check_field("a,b", "\"a,b\"");
    check_field(",", "\",\"");
    check_field("say \"hi\"", "\"say \"\"hi\"\"\"");
    check_field("\"", "\"\"\"\"");
    check_field("line1\nline2", "\"line1\nline2\"");
    check_field("cr\rhere", "\"cr\rhere\"");
    check_field("a,\"b\"\r\n", "\"a,\"\"b\"\"\r\n\"");
    /* spaces and semicolons are not special in RFC 4180 */
    check_field(" padded ; x ", " padded ; x ");
    /* UTF-8: 成通塑料 ("Chengtong Plastics"), m³, and with a comma */
    check_field("\xe6\x88\x90\xe9\x80\x9a\xe5\xa1\x91\xe6\x96\x99",
                "\xe6\x88\x90\xe9\x80\x9a\xe5\xa1\x91\xe6\x96\x99");
    check_field("m\xc2\xb3", "m\xc2\xb3");
    check_field("\xe6\x88\x90\xe9\x80\x9a,\xe5\xa1\x91\xe6\x96\x99",
                "\"\xe6\x88\x90\xe9\x80\x9a,\xe5\xa1\x91\xe6\x96\x99\"");
    return check_done();
}
