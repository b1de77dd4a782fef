/*
 * cnframe.h - what the frames of DL/T 645-2007 (dlt645.h) and CJ/T 188-2004
 * (cjt188.h) share: 0xFE wake-up bytes before the first 0x68, and a tail of
 * the byte sum mod 256 of everything from that 0x68, then 0x16.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wake-up bytes sent before each request. */
#define CNFRAME_PREAMBLE_LEN 4
/* Most 0xFE bytes accepted before a reply's first 0x68. */
#define CNFRAME_MAX_SKIP 16

/* Writes CNFRAME_PREAMBLE_LEN 0xFE bytes when 'on'. Returns how many. */
size_t cnframe_preamble(uint8_t *buf, bool on);
/* Appends the checksum of buf[start..k) and 0x16 at buf[k]. Returns k + 2. */
size_t cnframe_close(uint8_t *buf, size_t start, size_t k);
/* The count of leading 0xFE bytes in buf[0..len). */
size_t cnframe_skip(const uint8_t *buf, size_t len);
/* True when h[body] is the checksum of h[0..body) and h[body + 1] is 0x16. */
bool cnframe_tail_ok(const uint8_t *h, size_t body);
