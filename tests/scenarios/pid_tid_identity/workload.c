/* getpid(), gettid(), getppid() before and after restores, plus the calls that use glibc's
 * cached thread ids: pthread_kill must reach the thread it names (its handler compares
 * gettid() with the id that thread recorded at start) and kill(getpid()) must reach the
 * process. The ids themselves differ between the uninterrupted run and the run under ferry
 * (there the program is PID 2 of its own namespace), so only "unchanged" is printed.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=400] [SLEEP_US=10000] */
#include "scenario.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#define WORKERS 3

static pid_t worker_tid[WORKERS];
static volatile sig_atomic_t hits[WORKERS], misses, usr2_hits;
static volatile int stop;
static long worker_changed[WORKERS];

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

static void on_usr1(int sig)
{
    (void)sig;
    pid_t me = my_tid();
    for (int i = 0; i < WORKERS; i++)
        if (worker_tid[i] == me) {
            hits[i]++;
            return;
        }
    misses++;
}

static void on_usr2(int sig)
{
    (void)sig;
    usr2_hits++;
}

static void *worker(void *arg)
{
    long k = (long)arg;
    worker_tid[k] = my_tid();
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2); /* kill(getpid()) goes to main */
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    while (!stop) {
        if (my_tid() != worker_tid[k])
            worker_changed[k]++;
        scn_sleep_us(3000);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 400;
    long sleep_us = argc > 2 ? atol(argv[2]) : 10000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_usr1;
    SCN_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction SIGUSR1");
    sa.sa_handler = on_usr2;
    SCN_CHECK(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction SIGUSR2");
    pid_t pid0 = getpid(), ppid0 = getppid(), tid0 = my_tid();
    pthread_t w[WORKERS];
    for (long i = 0; i < WORKERS; i++)
        SCN_CHECK(pthread_create(&w[i], NULL, worker, (void *)i) == 0, "pthread_create");
    for (int i = 0; i < WORKERS; i++)
        while (__atomic_load_n(&worker_tid[i], __ATOMIC_SEQ_CST) == 0)
            scn_sleep_us(1000);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1); /* pthread_kill targets the workers only (they inherit no block) */
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    printf("main is the thread group leader: %s\n", pid0 == tid0 ? "yes" : "no");
    scn_ready();

    long changed = 0, sent = 0, usr2_sent = 0;
    for (long i = 0; i < iterations; i++) {
        changed += getpid() != pid0 || getppid() != ppid0 || my_tid() != tid0;
        int k = (int)(i % WORKERS);
        long before = hits[k];
        if (pthread_kill(w[k], SIGUSR1) == 0)
            sent++;
        for (int spin = 0; spin < 2000 && hits[k] == before; spin++)
            scn_sleep_us(100);
        if (i % 10 == 0) {
            long u = usr2_hits;
            if (kill(getpid(), SIGUSR2) == 0)
                usr2_sent++;
            for (int spin = 0; spin < 2000 && usr2_hits == u; spin++)
                scn_sleep_us(100);
        }
        if (i % 5 == 0)
            scn_tick();
        if (i % 100 == 99) {
            long h = 0;
            for (int j = 0; j < WORKERS; j++)
                h += hits[j];
            printf("iteration %ld: ids changed %ld times, pthread_kill sent %ld / reached its thread "
                   "%ld / other thread %d, kill(getpid) sent %ld / handled %d\n",
                   i + 1, changed, sent, h, (int)misses, usr2_sent, (int)usr2_hits);
        }
        scn_sleep_us(sleep_us);
    }
    stop = 1;
    long wc = 0;
    for (int i = 0; i < WORKERS; i++) {
        SCN_CHECK(pthread_join(w[i], NULL) == 0, "pthread_join");
        wc += worker_changed[i];
    }
    printf("workers saw their gettid() change %ld times\n", wc);
    return 0;
}
