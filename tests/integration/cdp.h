/*
 * cdp.h - drives a headless Chromium for the dashboard test through the
 * Chrome DevTools Protocol over --remote-debugging-pipe (JSON messages
 * separated by NUL bytes on the browser's fds 3 and 4): open a page, read
 * its DOM with Runtime.evaluate at any moment (the page keeps its live
 * event stream open, so --dump-dom, which waits for the load to settle,
 * cannot), emulate a phone, take screenshots. Test code only.
 */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

struct cdp;

/* The chromium binary ($PARKGW_CHROMIUM_BIN, else chromium in PATH), or
 * NULL when there is none. */
const char *cdp_browser(void);

/* Starts the browser (profile and log in dir) and opens url in a new
 * page. NULL on failure (reason on stderr). */
struct cdp *cdp_open(const char *browser, const char *dir, const char *url);
/* Evaluates a JavaScript expression in the page: its value as a string
 * (JSON text for non-strings), malloc'd, or NULL (exception, timeout). */
char *cdp_eval(struct cdp *c, const char *expr);
/* Sets the viewport (mobile: a phone's touch and meta-viewport handling). */
bool cdp_viewport(struct cdp *c, int width, int height, double scale, bool mobile);
/* Writes a PNG of the viewport (full: of the whole page) to path. */
bool cdp_screenshot(struct cdp *c, const char *path, bool full);
/* Closes the browser and frees c. NULL is a no-op. */
void cdp_close(struct cdp *c);
