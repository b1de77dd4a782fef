/*
 * statement_out.h - the three printed forms of a billing statement
 * (engine/statement.h): table, CSV, JSON (docs/CLI.md "parkgw bill").
 */
#pragma once
#include <stdio.h>

#include "config/config.h"
#include "engine/statement.h"

enum statement_format { STATEMENT_TABLE, STATEMENT_CSV, STATEMENT_JSON };

/* Writes s to out in format. 0 or -EIO (a write failed; errno tells). */
int statement_out_write(FILE *out, const struct config *cfg, const struct statement *s,
                        enum statement_format format);

/* Computes the statement of req from st (statement_build) and writes it to
 * out: nothing is written unless every row was computed. 0, -EINVAL or
 * -EIO with the message in err (statement_build's; "writing the
 * statement: ..." when out fails). */
struct store;
int statement_out_print(FILE *out, const struct config *cfg, struct store *st,
                        const struct statement_request *req, enum statement_format format,
                        char *err, size_t errlen);

/* `bill --close`: computes the whole park's statement of req (no
 * enterprise or utility filter), stores it in each format with the figures
 * of its rows (storage/closelog.h) and writes it to out in format. -EINVAL
 * (filters, the period closed already or overlapping a closed one), -EIO,
 * -ENOSPC, -EBUSY; message in err. A later statement_out_print of the same
 * period writes the stored text. */
int statement_out_close(FILE *out, const struct config *cfg, struct store *st,
                        const struct statement_request *req, enum statement_format format,
                        char *err, size_t errlen);
