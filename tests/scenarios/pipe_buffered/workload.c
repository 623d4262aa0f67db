/* A pipe holding 40 KiB nobody has read yet, across checkpoints of the tree: the parent sizes a
 * pipe to 256 KiB (F_SETPIPE_SZ), forks a reader, writes 40 KiB of xorshift data into it and
 * closes its end; the child sets O_NONBLOCK on its read end and waits (ticking) before reading.
 * The parent also keeps a pipe whose both ends it holds, with 1000 bytes in it. After the
 * restarts the child must read exactly the 40 KiB in order, then EOF, with its pipe still
 * 256 KiB and non-blocking; the parent reads its own 1000 bytes back.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [WAIT_STEPS=1500] */
#include "scenario.h"

#include <fcntl.h>
#include <sys/wait.h>

#define BYTES (40 * 1024)
#define PIPE_SIZE (256 * 1024)

static int reader(int fd, long steps)
{
    SCN_CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0, "F_SETFL O_NONBLOCK");
    for (long i = 0; i < steps; i++) {
        scn_tick();
        scn_sleep_us(4000);
    }
    static unsigned char got[2 * BYTES];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, got + n, sizeof got - n);
        if (r == 0)
            break;
        if (r < 0 && errno == EAGAIN) {
            printf("reader: EAGAIN after %zu bytes (the writer end is still open?)\n", n);
            break;
        }
        SCN_CHECK(r > 0, "read");
        n += (size_t)r;
    }
    static unsigned char want[BYTES];
    scn_fill_xorshift(want, BYTES, 42);
    printf("reader: %zu bytes, %s\n", n, n == BYTES && memcmp(got, want, BYTES) == 0 ? "in order" : "WRONG");
    printf("reader: pipe size %d, non-blocking %s\n", fcntl(fd, F_GETPIPE_SZ),
           (fcntl(fd, F_GETFL) & O_NONBLOCK) ? "yes" : "no");
    return 0;
}

int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 1500;
    int p[2], self_pipe[2];
    SCN_CHECK(pipe(p) == 0 && pipe(self_pipe) == 0, "pipe");
    SCN_CHECK(fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE) >= PIPE_SIZE, "F_SETPIPE_SZ");
    /* Out of the way of 0-2 and of each other: fds 7 and 9 (any number must work). */
    SCN_CHECK(dup2(p[0], 7) == 7 && dup2(p[1], 9) == 9, "dup2");
    close(p[0]);
    close(p[1]);
    fflush(stdout);
    pid_t child = fork();
    SCN_CHECK(child >= 0, "fork");
    if (child == 0) {
        close(9);
        return reader(7, steps);
    }
    close(7);
    static unsigned char data[BYTES];
    scn_fill_xorshift(data, BYTES, 42);
    SCN_CHECK(write(9, data, BYTES) == BYTES, "write 40 KiB");
    close(9);
    unsigned char mine[1000];
    for (int i = 0; i < 1000; i++)
        mine[i] = (unsigned char)(i * 7 + 3);
    SCN_CHECK(write(self_pipe[1], mine, sizeof mine) == (ssize_t)sizeof mine, "write own pipe");
    printf("parent: wrote %d bytes to the reader, 1000 to itself\n", BYTES);
    fflush(stdout);
    scn_ready();
    int st = 0;
    SCN_CHECK(waitpid(child, &st, 0) == child, "waitpid");
    unsigned char back[2000];
    ssize_t r = read(self_pipe[0], back, sizeof back);
    printf("parent: reader exited %d; own pipe gave %zd bytes, %s\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1, r,
           r == 1000 && memcmp(back, mine, 1000) == 0 ? "in order" : "WRONG");
    return 0;
}
