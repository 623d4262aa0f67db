/* Sleeps and waits keep their remaining time across a checkpoint, and no wait fails with an
 * EINTR the program did not ask for. Four threads start together:
 *   - one in nanosleep(3 s, &rem) (glibc: clock_nanosleep(CLOCK_REALTIME, 0, ...)),
 *   - one in clock_nanosleep(CLOCK_MONOTONIC, 0, 3 s, &rem),
 *   - one in epoll_wait(eventfd, no timeout) and one in sigtimedwait(SIGUSR1, 20 s): both are
 *     woken by main once the sleepers are done and must get their event, not EINTR.
 * Each sleeper measures its sleep with CLOCK_MONOTONIC, which the restored job's time
 * namespace keeps continuous across the checkpoint (downtime is not counted). A sleep that
 * restarted with its full interval after a checkpoint at ~1 s lasts ~4 s of job time; one that
 * kept its remaining time lasts ~3 s. Only pass/fail lines are printed, so the output is the
 * same with or without ferry.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [SLEEP_S=3] */
#include "scenario.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static long sleep_s;
static volatile int sleepers_done;
static int efd, epfd;
/* Each thread's verdict, printed by main in a fixed order once all are joined. */
static char verdict[4][160];

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Tolerant bounds: a restore adds a little job time (the time namespace offset is taken before
 * the restored threads run), a full-interval restart adds the whole second slept before the
 * checkpoint. */
static void judge(char *out, const char *what, double took)
{
    int ok = took >= (double)sleep_s - 0.01 && took < (double)sleep_s + 0.7;
    snprintf(out, sizeof verdict[0], "%s %ld s: %s", what, sleep_s,
             ok ? "woke after the remaining time" : "FAIL");
    if (!ok)
        fprintf(stderr, "%s took %.3f s of job time\n", what, took);
}

static void *nanosleeper(void *arg)
{
    (void)arg;
    struct timespec req = {sleep_s, 0}, rem = {0, 0};
    double t0 = mono();
    int rc = nanosleep(&req, &rem);
    double took = mono() - t0;
    if (rc != 0)
        snprintf(verdict[0], sizeof verdict[0], "nanosleep: FAIL (%s)", strerror(errno));
    else
        judge(verdict[0], "nanosleep", took);
    return NULL;
}

static void *monotonic_sleeper(void *arg)
{
    (void)arg;
    struct timespec req = {sleep_s, 0}, rem = {0, 0};
    double t0 = mono();
    int rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    double took = mono() - t0;
    if (rc != 0)
        snprintf(verdict[1], sizeof verdict[1], "clock_nanosleep: FAIL (%s)", strerror(rc));
    else
        judge(verdict[1], "clock_nanosleep(MONOTONIC, relative)", took);
    return NULL;
}

static void *epoll_waiter(void *arg)
{
    (void)arg;
    struct epoll_event ev;
    int n = epoll_wait(epfd, &ev, 1, -1);
    if (n == 1)
        snprintf(verdict[2], sizeof verdict[2], "epoll_wait: one event, no EINTR");
    else
        snprintf(verdict[2], sizeof verdict[2], "epoll_wait: FAIL (%d, %s)", n,
                 n < 0 ? strerror(errno) : "no event");
    return NULL;
}

static void *signal_waiter(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    struct timespec limit = {20, 0};
    int sig = sigtimedwait(&set, NULL, &limit);
    if (sig == SIGUSR1)
        snprintf(verdict[3], sizeof verdict[3], "sigtimedwait: SIGUSR1, no EINTR");
    else
        snprintf(verdict[3], sizeof verdict[3], "sigtimedwait: FAIL (%d, %s)", sig, strerror(errno));
    return NULL;
}

int main(int argc, char **argv)
{
    sleep_s = argc > 1 ? atol(argv[1]) : 3;
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    SCN_CHECK(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0, "block SIGUSR1");
    efd = eventfd(0, EFD_CLOEXEC);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    SCN_CHECK(efd >= 0 && epfd >= 0, "eventfd/epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN};
    SCN_CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev) == 0, "epoll_ctl");

    pthread_t ns, ms, ew, sw;
    SCN_CHECK(pthread_create(&ew, NULL, epoll_waiter, NULL) == 0, "pthread_create");
    SCN_CHECK(pthread_create(&sw, NULL, signal_waiter, NULL) == 0, "pthread_create");
    SCN_CHECK(pthread_create(&ns, NULL, nanosleeper, NULL) == 0, "pthread_create");
    SCN_CHECK(pthread_create(&ms, NULL, monotonic_sleeper, NULL) == 0, "pthread_create");
    scn_ready();
    /* Progress for the driver while the others sleep; main's own naps restart on EINTR. */
    int joined = 0;
    while (!joined) {
        scn_tick();
        scn_sleep_us(20000);
        joined = pthread_tryjoin_np(ns, NULL) == 0;
    }
    SCN_CHECK(pthread_join(ms, NULL) == 0, "pthread_join");
    uint64_t one = 1;
    SCN_CHECK(write(efd, &one, sizeof one) == sizeof one, "write eventfd");
    SCN_CHECK(pthread_kill(sw, SIGUSR1) == 0, "pthread_kill");
    SCN_CHECK(pthread_join(ew, NULL) == 0 && pthread_join(sw, NULL) == 0, "pthread_join");
    for (int i = 0; i < 4; i++)
        printf("%s\n", verdict[i]);
    return 0;
}
