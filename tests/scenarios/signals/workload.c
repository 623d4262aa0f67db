/* Signal state across checkpoints, without timers (no SIGALRM): the program signals itself.
 * SIGUSR1 has an SA_SIGINFO|SA_RESTART handler that sums sigqueue() values, a real-time signal
 * has a plain handler, SIGUSR2 a one-shot SA_RESETHAND handler fired at the end, SIGTERM is
 * ignored and SIGHUP is blocked. Handlers must still fire after restore, and dispositions,
 * flags and the signal mask must be as installed.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=3000] [SLEEP_US=1000] */
#include "scenario.h"

#include <signal.h>

static volatile sig_atomic_t usr1_count, rt_count, usr2_count;
static volatile long usr1_sum;
static volatile int usr1_blocked_usr2; /* was SIGUSR2 blocked inside the SIGUSR1 handler? */

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    usr1_count++;
    usr1_sum += si->si_value.sival_int;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    usr1_blocked_usr2 = sigismember(&cur, SIGUSR2);
}

static void on_rt(int sig)
{
    (void)sig;
    rt_count++;
}

static void on_usr2(int sig)
{
    (void)sig;
    usr2_count++;
}

static void describe(const char *name, int sig, void *expected_handler)
{
    struct sigaction sa;
    SCN_CHECK(sigaction(sig, NULL, &sa) == 0, "sigaction query");
    void *h = (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction : (void *)sa.sa_handler;
    const char *what = h == (void *)SIG_DFL ? "default"
                       : h == (void *)SIG_IGN ? "ignored"
                       : h == expected_handler ? "our handler"
                                               : "ANOTHER handler";
    printf("%s: %s, flags%s%s%s%s, mask has SIGUSR2: %s\n", name, what,
           (sa.sa_flags & SA_SIGINFO) ? " SIGINFO" : "", (sa.sa_flags & SA_RESTART) ? " RESTART" : "",
           (sa.sa_flags & SA_RESETHAND) ? " RESETHAND" : "",
           (sa.sa_flags & SA_NODEFER) ? " NODEFER" : "",
           sigismember(&sa.sa_mask, SIGUSR2) ? "yes" : "no");
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 3000;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;
    int rt = SIGRTMIN + 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    SCN_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction SIGUSR1");

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_rt;
    sigemptyset(&sa.sa_mask);
    SCN_CHECK(sigaction(rt, &sa, NULL) == 0, "sigaction SIGRTMIN+1");

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    SCN_CHECK(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction SIGUSR2");

    SCN_CHECK(signal(SIGTERM, SIG_IGN) != SIG_ERR, "ignore SIGTERM");
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    SCN_CHECK(sigprocmask(SIG_BLOCK, &block, NULL) == 0, "block SIGHUP");

    printf("handlers installed\n");
    scn_ready();

    for (long i = 0; i < iterations; i++) {
        union sigval v = {.sival_int = (int)i};
        SCN_CHECK(sigqueue(getpid(), SIGUSR1, v) == 0, "sigqueue");
        if (i % 7 == 0)
            raise(rt);
        if (i % 300 == 299)
            printf("step %ld: SIGUSR1 x%d (sum %ld, SIGUSR2 blocked in handler: %s), "
                   "SIGRTMIN+1 x%d\n", i + 1, (int)usr1_count, (long)usr1_sum,
                   usr1_blocked_usr2 ? "yes" : "no", (int)rt_count);
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }

    describe("SIGUSR1", SIGUSR1, (void *)on_usr1);
    describe("SIGRTMIN+1", rt, (void *)on_rt);
    describe("SIGUSR2 before firing", SIGUSR2, (void *)on_usr2);
    raise(SIGUSR2);
    printf("SIGUSR2 handler ran %d time(s)\n", (int)usr2_count);
    describe("SIGUSR2 after firing", SIGUSR2, (void *)on_usr2);
    describe("SIGTERM", SIGTERM, NULL);
    raise(SIGTERM); /* ignored: the process must survive */
    printf("survived SIGTERM\n");

    sigset_t cur, pending;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("SIGHUP blocked: %s\n", sigismember(&cur, SIGHUP) ? "yes" : "NO");
    raise(SIGHUP); /* blocked: stays pending instead of ending the process */
    sigpending(&pending);
    printf("SIGHUP pending: %s\n", sigismember(&pending, SIGHUP) ? "yes" : "no");
    signal(SIGHUP, SIG_IGN); /* discard it before the exit */
    printf("done\n");
    return 0;
}
