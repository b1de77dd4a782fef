/*
 * dblock.c - the one-daemon-per-database lock behind dblock.h: flock(2) on
 * a side file rather than fcntl(2) on the database itself, because SQLite
 * owns the database's POSIX locks and closing any other descriptor of that
 * file would silently drop them (POSIX record-lock semantics).
 */
#include "storage/dblock.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct dblock {
    int fd;
};

char *dblock_path(const char *db_path)
{
    return xasprintf("%s.lock", db_path);
}

/* The pid written in the lock file open on fd, or 0. */
static pid_t dblock_read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    int64_t v;
    if (parse_int64(buf, &v) < 0 || v <= 0 || v > INT32_MAX)
        return 0;
    return (pid_t)v;
}

int dblock_acquire(const char *db_path, struct dblock **ret, pid_t *ret_holder)
{
    char *path = dblock_path(db_path);
    char line[32];
    int r;

    /* No O_TRUNC: the holder's pid must stay readable until we own it. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    free(path);
    if (fd < 0)
        return -errno;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EINTR)
            continue;
        r = -errno;
        if (r == -EWOULDBLOCK) {
            *ret_holder = dblock_read_pid(fd);
            r = -EBUSY;
        }
        goto out_close;
    }
    int len = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0) {
        r = -errno;
        goto out_close;
    }
    r = (int)pwrite(fd, line, (size_t)len, 0);
    if (r != len) {
        r = r < 0 ? -errno : -EIO;
        goto out_close;
    }
    struct dblock *l = xcalloc(1, sizeof(*l));
    l->fd = fd;
    *ret = l;
    return 0;

out_close:
    close(fd);
    return r;
}

void dblock_release(struct dblock *l)
{
    if (!l)
        return;
    close(l->fd);
    free(l);
}
