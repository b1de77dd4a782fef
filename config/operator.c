/*
 * operator.c - the operator surface's settings (docs/OPERATOR.md):
 * gateway.http, the daemon's read-only HTTP listener. Called from park.c's
 * gateway section; a non-loopback address without a password is refused
 * here, so `check` and `run` both refuse it with FILE:LINE.
 */
#include "config/config_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/netaddr.h"
#include "common/util.h"

#define MAX_HTTP_PASSWORD_BYTES 4096

int cfg_parse_http(struct ld *ld, const config_setting_t *gw, struct config *cfg)
{
    static const char *const keys[] = {"listen", "password_file", NULL};
    config_setting_t *g, *s, *ps = NULL;
    struct sockaddr_storage addr;
    socklen_t alen;
    char err[256];
    int r;

    if ((r = cfg_get_group(ld, gw, "http", false, &g)))
        return r < 0 ? r : 0;
    cfg_set_ctx(ld, "gateway.http");
    if ((r = cfg_check_keys(ld, g, keys)))
        return r;
    cfg->http_listen = xstrdup("127.0.0.1:8080");
    s = g;
    if ((r = cfg_dup_str(ld, g, "listen", false, &cfg->http_listen, &s)) < 0)
        return r;
    if (netaddr_parse(cfg->http_listen, &addr, &alen, err, sizeof(err)) < 0)
        return cfg_fail(ld, s, "%s", err);
    if ((r = cfg_dup_str(ld, g, "password_file", false, &cfg->http_password_file, &ps)) < 0)
        return r;
    if (r == 0) {
        char *pw;
        size_t len;
        r = cfg_slurp(cfg->http_password_file, MAX_HTTP_PASSWORD_BYTES, &pw, &len);
        if (r < 0)
            return cfg_fail(ld, ps, "cannot read password_file '%s': %s",
                            cfg->http_password_file, strerror(-r));
        while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
            pw[--len] = '\0';
        cfg->http_password = pw;
        if (!len)
            return cfg_fail(ld, ps, "password_file '%s' is empty", cfg->http_password_file);
    }
    /* Anyone on the network could read the park's consumption otherwise. */
    if (!netaddr_is_loopback(&addr) && !cfg->http_password)
        return cfg_fail(ld, s,
                        "listen \"%s\" is not a loopback address: it needs password_file "
                        "(HTTP basic auth)",
                        cfg->http_listen);
    return 0;
}

void cfg_free_http(struct config *cfg)
{
    free(cfg->http_listen);
    free(cfg->http_password_file);
    if (cfg->http_password) {
        explicit_bzero(cfg->http_password, strlen(cfg->http_password));
        free(cfg->http_password);
    }
}
