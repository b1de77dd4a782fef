/*
 * test_dblock.c - the one-daemon-per-database lock (storage/dblock.h): a
 * second taker is refused with the holder's pid, a killed holder's lock is
 * free again at once, a release frees it, the lock file keeps the pid.
 * Files under $PARKGW_TEST_TMP (set by CTest).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/dblock.h"
#include "tests/unit/check.h"

static char db[PATH_MAX];

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = xcalloc(1, 64);
    size_t n = fread(buf, 1, 63, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_second_refused(void)
{
    struct dblock *a = NULL, *b = NULL;
    pid_t holder = -1;
    CHECK_INT(dblock_acquire(db, &a, &holder), 0);
    CHECK(a != NULL);
    CHECK_INT(holder, -1);   /* untouched on success */

    /* flock(2) locks belong to the open file description: a second open in
     * the same process conflicts like another process would. */
    CHECK_INT(dblock_acquire(db, &b, &holder), -EBUSY);
    CHECK(b == NULL);
    CHECK_INT(holder, getpid());

    char *lp = dblock_path(db), *text = read_text(lp);
    char want[32];
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    CHECK_STR(text, want);
    free(text);

    dblock_release(a);
    CHECK_INT(dblock_acquire(db, &b, &holder), 0);
    dblock_release(b);
    /* The file stays (removing it would race with the next taker). */
    struct stat sb;
    CHECK_INT(stat(lp, &sb), 0);
    free(lp);
    dblock_release(NULL);
}

static void test_killed_holder(void)
{
    int pfd[2];
    CHECK_INT(pipe(pfd), 0);
    pid_t child = fork();
    if (child == 0) {
        struct dblock *l = NULL;
        pid_t h;
        char c = dblock_acquire(db, &l, &h) == 0 ? 'y' : 'n';
        if (write(pfd[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c = 0;
    CHECK_INT(read(pfd[0], &c, 1), 1);
    CHECK_INT(c, 'y');
    struct dblock *l = NULL;
    pid_t holder = 0;
    CHECK_INT(dblock_acquire(db, &l, &holder), -EBUSY);
    CHECK_INT(holder, child);

    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    /* The kernel released it with the process; the stale pid is replaced. */
    CHECK_INT(dblock_acquire(db, &l, &holder), 0);
    char *lp = dblock_path(db), *text = read_text(lp);
    char want[32];
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    CHECK_STR(text, want);
    free(text);
    free(lp);
    dblock_release(l);
    close(pfd[0]);
    close(pfd[1]);
}

static void test_unwritable_dir(void)
{
    struct dblock *l = NULL;
    pid_t holder = 0;
    CHECK_INT(dblock_acquire("/nonexistent-dir/parkgw.db", &l, &holder), -ENOENT);
    CHECK(l == NULL);
}

int main(void)
{
    const char *t = getenv("PARKGW_TEST_TMP");
    const char *dir = t && *t ? t : "/tmp/parkgw-test";
    mkdir(dir, 0755);
    if (snprintf(db, sizeof(db), "%s/test_dblock.db", dir) >= (int)sizeof(db))
        abort(); /* temp dir path too long */
    char *lp = dblock_path(db);
    unlink(lp);
    free(lp);

    test_second_refused();
    test_killed_holder();
    test_unwritable_dir();
    return check_done();
}
