/* Signals queued and blocked at checkpoint time are delivered after restore, with their
 * values, in order: each step sigqueue()s SIGRTMIN+4 with the step number to itself while the
 * signal is blocked; every 40 steps it unblocks it and the SA_SIGINFO handler checks that the
 * 40 values arrive in order with si_code SI_QUEUE and our pid. A SIGUSR2 sent with kill() is
 * kept pending (blocked) during the whole run and checked at the end.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [STEPS=2000] [SLEEP_US=1000] */
#include "scenario.h"

#include <signal.h>

static volatile long next_value, delivered, bad;
static volatile sig_atomic_t usr2_seen;

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    if (si->si_code != SI_QUEUE || si->si_value.sival_int != next_value || si->si_pid != getpid())
        bad++;
    next_value++;
    delivered++;
}

static void on_usr2(int sig) { (void)sig; usr2_seen++; }

int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 2000;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;
    struct sigaction sa = {0};
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    SCN_CHECK(sigaction(SIGRTMIN + 4, &sa, NULL) == 0, "sigaction");
    struct sigaction su = {0};
    su.sa_handler = on_usr2;
    SCN_CHECK(sigaction(SIGUSR2, &su, NULL) == 0, "sigaction SIGUSR2");
    sigset_t rt, usr2;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN + 4);
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    SCN_CHECK(sigprocmask(SIG_BLOCK, &rt, NULL) == 0, "block");
    SCN_CHECK(sigprocmask(SIG_BLOCK, &usr2, NULL) == 0, "block SIGUSR2");
    SCN_CHECK(kill(getpid(), SIGUSR2) == 0, "kill SIGUSR2");
    printf("queueing SIGRTMIN+4 with values 0..%ld, 40 at a time\n", steps - 1);
    scn_ready();
    for (long i = 0; i < steps; i++) {
        union sigval v = {.sival_int = (int)i};
        SCN_CHECK(sigqueue(getpid(), SIGRTMIN + 4, v) == 0, "sigqueue");
        if (i % 40 == 39) {
            SCN_CHECK(sigprocmask(SIG_UNBLOCK, &rt, NULL) == 0, "unblock");
            SCN_CHECK(sigprocmask(SIG_BLOCK, &rt, NULL) == 0, "block");
            if (i % 400 == 399)
                printf("step %ld: delivered %ld, out of order or wrong %ld\n", i + 1, delivered, bad);
        }
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    printf("SIGUSR2 delivered before unblocking: %s\n", usr2_seen ? "yes" : "no");
    SCN_CHECK(sigprocmask(SIG_UNBLOCK, &usr2, NULL) == 0, "unblock SIGUSR2");
    printf("SIGUSR2 delivered once unblocked: %s\n", usr2_seen == 1 ? "yes" : "no");
    printf("total delivered %ld, wrong %ld\n", delivered, bad);
    return 0;
}
