/*
 * statement_html.h - the billing statement (engine/statement.h) as printable
 * HTML: one page per enterprise, by its Chinese name, for the enterprise to
 * check line by line (each meter's readings x multiplier, bands with unit
 * price and charge, demand and power-factor lines, totals, a daily chart in
 * inline SVG), and an index of the park. Plain HTML and CSS, no script, A4
 * when printed (docs/CLI.md "parkgw bill").
 */
#pragma once
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"
#include "engine/statement.h"

/* The page of enterprise e (index in cfg->enterprises) to out. The
 * statement should have been built with req.daily for the chart. 0 or -EIO
 * (a write failed). */
int statement_html_page(FILE *out, const struct config *cfg, const struct statement *s,
                        size_t e);
/* index.html: every enterprise of s with its totals and a link to its page:
 * "ID.html" (statement_html_file), or link_base followed by the id when
 * link_base is not NULL (the HTTP API's query). 0 or -EIO. */
int statement_html_index(FILE *out, const struct config *cfg, const struct statement *s,
                         const char *link_base);
/* The file name of enterprise e's page: "<id>.html" into buf (ids are
 * [a-z0-9-]); returns buf. */
char *statement_html_file(const struct config *cfg, size_t e, char *buf, size_t len);
/* Whether enterprise e has rows in s (a page is written for it). */
bool statement_html_has(const struct statement *s, size_t e);
