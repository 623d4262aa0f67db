/* A thread blocked in pthread_join and one in nanosleep across checkpoints. The sleeper
 * computes a hash chain in steps separated by nanosleep (and clock_nanosleep with an absolute
 * deadline every tenth step); the joiner sits in pthread_join(sleeper) for the whole run; main
 * sits in pthread_join(joiner). glibc's join waits on the kernel clearing the sleeper's tid
 * word (set_tid_address), so the restored sleeper's exit must still wake the joiner.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [STEPS=400] [SLEEP_US=10000] */
#include "scenario.h"

#include <pthread.h>

static long steps, sleep_us;
static uint64_t chain = SCN_FNV_INIT;

static void *sleeper(void *arg)
{
    (void)arg;
    for (long i = 0; i < steps; i++) {
        chain = scn_fnv(chain, &i, sizeof i);
        if (i % 10 == 9) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            t.tv_nsec += sleep_us * 1000;
            while (t.tv_nsec >= 1000000000L) {
                t.tv_nsec -= 1000000000L;
                t.tv_sec++;
            }
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
            }
        } else {
            scn_sleep_us(sleep_us);
        }
        if (i % 5 == 0)
            scn_tick();
        if (i % 50 == 49)
            printf("sleeper step %ld: chain %016llx\n", i + 1, (unsigned long long)chain);
    }
    return (void *)(intptr_t)42;
}

static void *joiner(void *arg)
{
    pthread_t *s = arg;
    void *r = NULL;
    int rc = pthread_join(*s, &r);
    printf("joiner: pthread_join returned %d with %ld\n", rc, (long)(intptr_t)r);
    return (void *)(intptr_t)(rc == 0 && r == (void *)42 ? 1 : 2);
}

int main(int argc, char **argv)
{
    steps = argc > 1 ? atol(argv[1]) : 400;
    sleep_us = argc > 2 ? atol(argv[2]) : 10000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t s, j;
    SCN_CHECK(pthread_create(&s, NULL, sleeper, NULL) == 0, "pthread_create sleeper");
    SCN_CHECK(pthread_create(&j, NULL, joiner, &s) == 0, "pthread_create joiner");
    scn_ready();
    void *r = NULL;
    SCN_CHECK(pthread_join(j, &r) == 0, "pthread_join joiner");
    printf("main: joiner says %s\n", r == (void *)1 ? "ok" : "FAILED");
    return 0;
}
