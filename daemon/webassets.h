/*
 * webassets.h - the dashboard's static files (the folder daemon/web), compiled into
 * the binary by cmake/embed-web.cmake (web_assets.c in the build tree), so
 * the page always matches the daemon serving it and nothing is fetched
 * from elsewhere.
 */
#pragma once
#include <stddef.h>

struct web_asset {
    const char *path;          /* "/index.html", "/app.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};

extern const struct web_asset web_assets[];
extern const size_t web_n_assets;
