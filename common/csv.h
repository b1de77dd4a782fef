/*
 * csv.h - writing CSV fields as RFC 4180 reads them: the one quoting rule
 * of every CSV the CLI writes (query, bill).
 */
#pragma once
#include <stdio.h>

/* Writes s as one field: as is when it holds no comma, double quote, CR or
 * LF; else in double quotes with each '"' doubled. Other bytes (UTF-8
 * included) pass through unchanged. No separator is written. */
void csv_field(FILE *out, const char *s);
