/*
 * dblock.h - one daemon per database: `parkgw run` holds an exclusive
 * flock(2) on "<storage.path>.lock" (which holds its pid) for as long as it
 * runs. A second daemon meets the lock at start and is refused with the
 * holder's pid. The kernel drops the lock when the holder exits, however it
 * exits (kill -9 included), so a stale file never blocks a start. The CLI
 * commands (status, bill, import...) do not take it (docs/STORAGE.md).
 */
#pragma once
#include <sys/types.h>

struct dblock;

/* "<db_path>.lock", malloc'd. */
char *dblock_path(const char *db_path);

/*
 * Takes the lock of db_path without waiting and writes our pid into the
 * lock file. 0 and *ret; -EBUSY when another process holds it, with its
 * pid in *ret_holder (0 when it has not written it yet); another -errno
 * when the lock file cannot be created or locked. *ret_holder is set only
 * for -EBUSY.
 */
int dblock_acquire(const char *db_path, struct dblock **ret, pid_t *ret_holder);

/* Releases the lock (the file stays: removing it would race with the next
 * daemon taking it) and frees l. NULL is a no-op. */
void dblock_release(struct dblock *l);
