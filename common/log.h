/*
 * log.h - the one logger: stderr, with journald priority prefixes ("<3>")
 * when stderr is connected to the journal (JOURNAL_STREAM) or forced.
 * Thread-safe; every function preserves errno.
 */
#pragma once
#include <stdbool.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Messages above 'max' are dropped. Default: LOG_LVL_INFO. */
void log_set_level(enum log_level max);
enum log_level log_get_level(void);
/* Parses "err", "warning", "notice", "info", "debug". 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *ret);
/* Prefix lines with <N> priorities (auto-detected from JOURNAL_STREAM otherwise). */
void log_set_journal(bool on);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
