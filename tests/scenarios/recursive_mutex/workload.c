/* Mutexes whose behaviour depends on glibc's cached thread ids, held across checkpoints: main
 * holds a recursive mutex (locked three times) and an error-checking mutex for the whole loop;
 * a worker keeps checking that both are owned by someone else (trylock: EBUSY; unlock of the
 * error-checking one: EPERM) while main re-locks the recursive one (owner == its cached tid)
 * and gets EDEADLK from the error-checking one. A second worker holds a robust mutex and
 * exits without unlocking it at the end: the kernel marks it OWNER_DIED only if the worker's
 * real tid still equals the owner tid in the futex word, so main gets EOWNERDEAD exactly when
 * tids came back unchanged.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=400] [SLEEP_US=10000] */
#include "scenario.h"

#include <pthread.h>

static pthread_mutex_t rec, errchk, robust;
static volatile int stop, release_robust;
static long worker_checks, worker_bad;

static void *checker(void *arg)
{
    (void)arg;
    while (!stop) {
        int a = pthread_mutex_trylock(&rec);
        int b = pthread_mutex_trylock(&errchk);
        int c = pthread_mutex_unlock(&errchk);
        if (a == 0)
            pthread_mutex_unlock(&rec);
        if (b == 0)
            pthread_mutex_unlock(&errchk);
        if (!stop) {
            worker_checks++;
            worker_bad += a != EBUSY || b != EBUSY || c != EPERM;
        }
        scn_sleep_us(2000);
    }
    return NULL;
}

static void *robust_holder(void *arg)
{
    (void)arg;
    if (pthread_mutex_lock(&robust) != 0)
        return (void *)2;
    while (!release_robust)
        scn_sleep_us(1000);
    return (void *)1; /* exits holding the robust mutex */
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 400;
    long sleep_us = argc > 2 ? atol(argv[2]) : 10000;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rec, &a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&errchk, &a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_NORMAL);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &a);

    for (int i = 0; i < 3; i++)
        SCN_CHECK(pthread_mutex_lock(&rec) == 0, "lock recursive");
    SCN_CHECK(pthread_mutex_lock(&errchk) == 0, "lock error-checking");
    pthread_t w, r;
    SCN_CHECK(pthread_create(&w, NULL, checker, NULL) == 0, "pthread_create checker");
    SCN_CHECK(pthread_create(&r, NULL, robust_holder, NULL) == 0, "pthread_create robust holder");
    scn_ready();

    long relock_bad = 0, deadlk = 0;
    for (long i = 0; i < iterations; i++) {
        relock_bad += pthread_mutex_lock(&rec) != 0;  /* 4th level, owner is us */
        relock_bad += pthread_mutex_unlock(&rec) != 0;
        deadlk += pthread_mutex_lock(&errchk) == EDEADLK;
        if (i % 5 == 0)
            scn_tick();
        if (i % 100 == 99)
            printf("iteration %ld: relock errors %ld, EDEADLK %ld\n", i + 1, relock_bad, deadlk);
        scn_sleep_us(sleep_us);
    }
    stop = 1;
    SCN_CHECK(pthread_join(w, NULL) == 0, "pthread_join checker");
    printf("checker: %s\n", worker_checks > 0 && worker_bad == 0 ? "always EBUSY/EPERM" : "WRONG RESULTS");
    int unlocked = 0;
    for (int i = 0; i < 3; i++)
        unlocked += pthread_mutex_unlock(&rec) == 0;
    printf("recursive mutex: unlocked %d times, then unlock says %s\n", unlocked,
           pthread_mutex_unlock(&rec) == EPERM ? "EPERM" : "something else");
    printf("error-checking mutex: unlock %s\n", pthread_mutex_unlock(&errchk) == 0 ? "ok" : "FAILED");

    release_robust = 1;
    void *rr = NULL;
    SCN_CHECK(pthread_join(r, &rr) == 0, "pthread_join robust holder");
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    int rc = pthread_mutex_timedlock(&robust, &deadline);
    printf("robust mutex after its owner exited: %s\n",
           rc == EOWNERDEAD ? "EOWNERDEAD" : rc == ETIMEDOUT ? "ETIMEDOUT (owner death not seen)" : strerror(rc));
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(&robust);
        pthread_mutex_unlock(&robust);
    }
    return 0;
}
