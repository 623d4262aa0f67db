/* A fork-based worker pool across checkpoints: the main process forks WORKERS children that
 * each run their own hash chain (one in its own process group, one in its own session), write
 * their result to a file of their own and wait to be stopped; the main process collects the
 * results, stops and reaps the workers and prints everything. Each worker checks on every step
 * that getpid/getppid/getpgid/getsid are what they were before any checkpoint.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=3000] [SLEEP_US=1000] */
#include "scenario.h"

#include <signal.h>
#include <sys/wait.h>

#define WORKERS 3

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void worker(int index, long iterations, long sleep_us)
{
    if (index == 1)
        SCN_CHECK(setpgid(0, 0) == 0, "setpgid");
    if (index == 2)
        SCN_CHECK(setsid() > 0, "setsid");
    pid_t pid = getpid(), ppid = getppid(), pgid = getpgid(0), sid = getsid(0);
    uint64_t state = 0x9e3779b97f4a7c15ull * (uint64_t)(index + 1), sum = 0;
    long ids_wrong = 0;
    for (long i = 0; i < iterations; i++) {
        sum += scn_xorshift64(&state) >> 20;
        if (getpid() != pid || getppid() != ppid || getpgid(0) != pgid || getsid(0) != sid)
            ids_wrong++;
        scn_sleep_us(sleep_us);
    }
    char name[32], line[160];
    snprintf(name, sizeof name, "worker-%d.out", index);
    int n = snprintf(line, sizeof line, "worker %d: sum %llu, leads group %d, leads session %d, ids changed %ld\n",
                     index, (unsigned long long)sum, pgid == pid, sid == pid, ids_wrong);
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    SCN_CHECK(fd >= 0, "create worker result");
    SCN_CHECK(write(fd, line, (size_t)n) == n, "write worker result");
    close(fd);
    while (!stop_requested)
        scn_sleep_us(1000);
    _exit(10 + index);
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 3000;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    SCN_CHECK(sigaction(SIGTERM, &sa, NULL) == 0, "sigaction");
    for (int w = 0; w < WORKERS; w++) {
        char name[32];
        snprintf(name, sizeof name, "worker-%d.out", w);
        unlink(name);
    }
    printf("pool of %d workers\n", WORKERS);
    fflush(stdout);
    pid_t kids[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        kids[w] = fork();
        SCN_CHECK(kids[w] >= 0, "fork");
        if (kids[w] == 0)
            worker(w, iterations, sleep_us);
    }
    scn_ready();
    char results[WORKERS][160];
    for (int w = 0; w < WORKERS; w++) {
        char name[32];
        snprintf(name, sizeof name, "worker-%d.out", w);
        for (;;) {
            int fd = open(name, O_RDONLY);
            if (fd >= 0) {
                ssize_t n = read(fd, results[w], sizeof results[w] - 1);
                close(fd);
                if (n > 0 && results[w][n - 1] == '\n') {
                    results[w][n] = '\0';
                    break;
                }
            }
            scn_tick();
            scn_sleep_us(5000);
        }
    }
    for (int w = 0; w < WORKERS; w++) {
        SCN_CHECK(kill(kids[w], SIGTERM) == 0, "kill worker");
        int status;
        SCN_CHECK(waitpid(kids[w], &status, 0) == kids[w], "waitpid");
        printf("%s", results[w]);
        printf("worker %d exit status %d\n", w, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        char name[32];
        snprintf(name, sizeof name, "worker-%d.out", w);
        unlink(name);
    }
    return 0;
}
