/* An itimer (ITIMER_REAL, 10 ms) and a POSIX timer (CLOCK_MONOTONIC, SIGRTMIN+2, 5 ms) keep
 * firing at their rate across checkpoints: ticks are counted over fixed windows of monotonic
 * time and each window prints a bucketed verdict ("at rate" within 25..150 % of the expected
 * count over the time the program actually ran: steps of more than 20 ms between two 1 ms
 * sleeps are time it spent frozen for a checkpoint or being restored, when a timer's signals
 * collapse into one pending signal, so they are left out of the expectation).
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ROUNDS=12] [WINDOW_MS=250] */
#include "scenario.h"

#include <signal.h>
#include <sys/time.h>

static volatile sig_atomic_t alrm, ptick;
static void on_alrm(int s) { (void)s; alrm++; }
static void on_ptimer(int s) { (void)s; ptick++; }

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *bucket(long got, long expected)
{
    if (expected < 4)
        return "at rate"; /* the window was almost all frozen: nothing to judge */
    if (got * 100 < expected * 25)
        return "too slow";
    if (got * 100 > expected * 150)
        return "too fast";
    return "at rate";
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 12;
    long window = argc > 2 ? atol(argv[2]) : 250;
    struct sigaction sa = {0};
    sa.sa_handler = on_alrm;
    sa.sa_flags = SA_RESTART;
    SCN_CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction SIGALRM");
    sa.sa_handler = on_ptimer;
    SCN_CHECK(sigaction(SIGRTMIN + 2, &sa, NULL) == 0, "sigaction SIGRTMIN+2");

    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN + 2;
    timer_t spare, t;
    SCN_CHECK(timer_create(CLOCK_MONOTONIC, &sev, &spare) == 0, "timer_create spare");
    SCN_CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0, "timer_create");
    SCN_CHECK(timer_delete(spare) == 0, "timer_delete"); /* the live timer keeps id 1 */
    struct itimerspec its = {{0, 5000000}, {0, 5000000}};
    SCN_CHECK(timer_settime(t, 0, &its, NULL) == 0, "timer_settime");
    struct itimerval itv = {{0, 10000}, {0, 10000}};
    SCN_CHECK(setitimer(ITIMER_REAL, &itv, NULL) == 0, "setitimer");
    printf("timers armed: itimer every 10 ms, POSIX timer id %ld every 5 ms\n", (long)(intptr_t)t);
    scn_ready();

    for (long r = 0; r < rounds; r++) {
        long a0 = alrm, p0 = ptick;
        long long t0 = now_ms(), prev = t0, frozen = 0;
        int n = 0;
        while (prev - t0 < window) {
            scn_sleep_us(1000);
            long long t = now_ms();
            if (t - prev > 20)
                frozen += t - prev;
            prev = t;
            if (++n % 8 == 0)
                scn_tick();
        }
        long ran = (long)(prev - t0 - frozen);
        printf("round %ld: itimer %s, POSIX timer %s\n", r, bucket(alrm - a0, ran / 10),
               bucket(ptick - p0, ran / 5));
        fflush(stdout);
    }
    struct itimerspec cur;
    SCN_CHECK(timer_gettime(t, &cur) == 0, "timer_gettime");
    printf("POSIX timer interval after the run: %ld ns\n", cur.it_interval.tv_nsec);
    getitimer(ITIMER_REAL, &itv);
    printf("itimer interval after the run: %ld us\n", (long)itv.it_interval.tv_usec);
    return 0;
}
