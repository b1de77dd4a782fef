/*
 * log.c - stderr logger with journald priority prefixes (see log.h).
 * One fprintf per line under a lock, so lines from bus threads never mix.
 */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static enum log_level max_level = LOG_LVL_INFO;
static int journal = -1; /* -1: not decided yet */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(enum log_level max)
{
    max_level = max;
}

enum log_level log_get_level(void)
{
    return max_level;
}

int log_level_parse(const char *s, enum log_level *ret)
{
    static const struct {
        const char *name;
        enum log_level lvl;
    } names[] = {{"err", LOG_LVL_ERR},       {"error", LOG_LVL_ERR}, {"warning", LOG_LVL_WARN},
                 {"warn", LOG_LVL_WARN},     {"notice", LOG_LVL_NOTICE}, {"info", LOG_LVL_INFO},
                 {"debug", LOG_LVL_DEBUG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i].name) == 0) {
            *ret = names[i].lvl;
            return 0;
        }
    return -EINVAL;
}

void log_set_journal(bool on)
{
    journal = on;
}

/* stderr is the journal when JOURNAL_STREAM names its device:inode. */
static bool detect_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long dev, ino;
    if (!e || sscanf(e, "%lu:%lu", &dev, &ino) != 2)
        return false;
    if (fstat(fileno(stderr), &st) < 0)
        return false;
    return st.st_dev == dev && st.st_ino == ino;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if (lvl > max_level)
        return;
    int saved = errno;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&log_lock);
    if (journal < 0)
        journal = detect_journal();
    if (journal) {
        fprintf(stderr, "<%d>%s\n", (int)lvl, buf);
    } else {
        static const char *tag[] = {"", "", "", "error", "warning", "notice", "info", "debug"};
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        fprintf(stderr, "%02d:%02d:%02d.%03ld %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000, tag[lvl], buf);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
    errno = saved;
}
