/* eventfd, timerfd, signalfd and epoll across checkpoints, with deterministic output. One epoll
 * set (level-triggered) watches a semaphore eventfd, a counter eventfd (edge-triggered), a
 * periodic timerfd (2 ms) and a signalfd for SIGUSR1 (blocked). Every step writes 3 to the
 * semaphore eventfd and 1 to the counter, raises SIGUSR1 every third step, and then waits in
 * epoll_wait until the timer fired once: the semaphore gives 1 per read (two reads per step,
 * so its count grows by one per step and is carried across checkpoints), the counter and the
 * signals are summed when seen. Output only shows counts that do not depend on timing.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [STEPS=1500] */
#include "scenario.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

enum { TAG_SEM = 1, TAG_CNT = 2, TAG_TIMER = 3, TAG_SIG = 4 };

int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 1500;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    SCN_CHECK(sigprocmask(SIG_BLOCK, &usr1, NULL) == 0, "sigprocmask");
    int sem = eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
    int cnt = eventfd(0, EFD_NONBLOCK);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int sfd = signalfd(-1, &usr1, SFD_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    SCN_CHECK(sem >= 0 && cnt >= 0 && tfd >= 0 && sfd >= 0 && ep >= 0, "create fds");
    struct itimerspec its = {{0, 2000000}, {0, 2000000}};
    SCN_CHECK(timerfd_settime(tfd, 0, &its, NULL) == 0, "timerfd_settime");
    struct { int fd; uint32_t ev; uint64_t tag; } add[] = {
        {sem, EPOLLIN, TAG_SEM}, {cnt, EPOLLIN | EPOLLET, TAG_CNT},
        {tfd, EPOLLIN, TAG_TIMER}, {sfd, EPOLLIN, TAG_SIG}};
    for (int i = 0; i < 4; i++) {
        struct epoll_event e = {.events = add[i].ev, .data.u64 = add[i].tag};
        SCN_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, add[i].fd, &e) == 0, "epoll_ctl");
    }
    printf("epoll set of 4: semaphore eventfd, counter eventfd (edge), timerfd, signalfd\n");
    scn_ready();

    long sem_reads = 0, cnt_sum = 0, signals = 0, timer_steps = 0;
    uint64_t v;
    for (long i = 0; i < steps; i++) {
        v = 3;
        SCN_CHECK(write(sem, &v, 8) == 8, "write semaphore");
        v = 1;
        SCN_CHECK(write(cnt, &v, 8) == 8, "write counter");
        if (i % 3 == 0)
            SCN_CHECK(kill(getpid(), SIGUSR1) == 0, "kill");
        int sem_left = 2, fired = 0, sig_seen = (i % 3 != 0);
        while (sem_left > 0 || !fired || !sig_seen) {
            struct epoll_event evs[8];
            int n = epoll_wait(ep, evs, 8, 5000);
            SCN_CHECK(n > 0 || (n < 0 && errno == EINTR), "epoll_wait (timeout or error)");
            for (int k = 0; k < n; k++) {
                switch (evs[k].data.u64) {
                case TAG_SEM:
                    if (sem_left > 0 && read(sem, &v, 8) == 8) {
                        SCN_CHECK(v == 1, "semaphore read gave more than 1");
                        sem_left--;
                        sem_reads++;
                    }
                    break;
                case TAG_CNT:
                    while (read(cnt, &v, 8) == 8)
                        cnt_sum += (long)v;
                    break;
                case TAG_TIMER:
                    if (read(tfd, &v, 8) == 8 && v > 0)
                        fired = 1;
                    break;
                case TAG_SIG: {
                    struct signalfd_siginfo si;
                    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                        SCN_CHECK(si.ssi_signo == SIGUSR1, "signalfd gave another signal");
                        signals++;
                        sig_seen = 1;
                    }
                    break;
                }
                }
            }
        }
        timer_steps++;
        if (i % 8 == 0)
            scn_tick();
        if (i % 250 == 249)
            printf("step %ld: semaphore reads %ld, signals %ld, timer steps %ld\n", i + 1,
                   sem_reads, signals, timer_steps);
    }
    /* The counter eventfd's edge may still hold the last writes: drain it. */
    while (read(cnt, &v, 8) == 8)
        cnt_sum += (long)v;
    uint64_t sem_count = 0;
    while (read(sem, &v, 8) == 8)
        sem_count += v;
    printf("counter eventfd sum %ld (expected %ld)\n", cnt_sum, steps);
    printf("semaphore eventfd left %llu (expected %ld)\n", (unsigned long long)sem_count, steps);
    return 0;
}
