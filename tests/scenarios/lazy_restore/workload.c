/* Lazy restore workload: MIB MiB of incompressible private anonymous memory that several
 * threads read and rewrite in a random order (each thread owns the words i % THREADS == t, so
 * the result does not depend on scheduling). Every FORK_EVERY steps a forked child hashes a
 * 8 MiB window at a random place and the parent compares with its own hash of it (a child
 * that saw a page not yet restored would differ); every 16 steps 1 MiB is dropped with MADV_DONTNEED, must read back as zeros,
 * and is refilled. The final hash covers every word.
 * With WAIT_S > 0 the program first idles (no output, memory untouched) until it sees it was
 * restarted (CLOCK_REALTIME jumped ahead of CLOCK_MONOTONIC by the downtime: a restart does not
 * offset the real-time clock) or WAIT_S seconds passed, so its steps (and forks) start right
 * after a restart, while a lazy restore still streams pages in. WAIT_S < 0: idle -WAIT_S
 * seconds in any case (tests/integration/test_lazy.py).
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [MIB=256] [STEPS=200] [THREADS=4] [FORK_EVERY=1] [WAIT_S=0] */
#include "scenario.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

static uint64_t *mem;
static size_t words;
static int nthreads;
static long step;

struct worker {
    int id;
    uint64_t sum;
};

static void *touch(void *arg)
{
    struct worker *w = arg;
    uint64_t s = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)step << 20) ^ (uint64_t)w->id;
    size_t per = words / (size_t)nthreads;
    for (int k = 0; k < 1024; k++) {
        uint64_t v = scn_xorshift64(&s);
        size_t i = (size_t)(v % per) * (size_t)nthreads + (size_t)w->id;
        w->sum += mem[i];
        mem[i] = mem[i] * 0x100000001b3ULL + v;
    }
    return NULL;
}

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static double real_minus_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9 - mono();
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 256;
    long steps = argc > 2 ? atol(argv[2]) : 200;
    nthreads = argc > 3 ? atoi(argv[3]) : 4;
    long fork_every = argc > 4 ? atol(argv[4]) : 1;
    double wait_s = argc > 5 ? atof(argv[5]) : 0;
    size_t bytes = mib << 20;
    words = bytes / 8;
    mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SCN_CHECK(mem != MAP_FAILED, "mmap");
    scn_fill_xorshift(mem, bytes, 0x1a2e);
    printf("filled %zu MiB: hash %016llx\n", mib, (unsigned long long)scn_hash_words(SCN_FNV_INIT, mem, bytes));
    fflush(stdout);
    scn_ready();
    if (wait_s != 0) {  /* < 0: idle -WAIT_S seconds whether restarted or not */
        double base = real_minus_mono(), start = mono();
        while (mono() - start < (wait_s < 0 ? -wait_s : wait_s) && (wait_s < 0 || real_minus_mono() - base < 0.5)) {
            scn_tick();
            scn_sleep_us(10000);
        }
    }

    for (step = 0; step < steps; step++) {
        /* first in the step: right after a restart, before the threads fault pages in */
        if (fork_every > 0 && step % fork_every == 0) {
            int fd[2];
            SCN_CHECK(pipe(fd) == 0, "pipe");
            fflush(stdout);
            pid_t c = fork();
            SCN_CHECK(c >= 0, "fork");
            size_t win = (size_t)8 << 20, at = (mib - 8 - (size_t)step * 104729 % (mib - 8)) << 20; /* step 0: the end, streamed last */
            const unsigned char *wp = (const unsigned char *)mem + at;
            if (c == 0) {
                uint64_t h = scn_hash_words(SCN_FNV_INIT, wp, win);
                (void)!write(fd[1], &h, sizeof h);
                _exit(0);
            }
            close(fd[1]);
            uint64_t mine = scn_hash_words(SCN_FNV_INIT, wp, win), theirs = 0;
            SCN_CHECK(read(fd[0], &theirs, sizeof theirs) == sizeof theirs, "read child hash");
            close(fd[0]);
            int st = 0;
            waitpid(c, &st, 0);
            printf("step %ld: forked child %s (%016llx)\n", step, theirs == mine ? "sees the same memory" : "DIFFERS",
                     (unsigned long long)theirs);
        }
        pthread_t th[64];
        struct worker w[64];
        for (int t = 0; t < nthreads; t++) {
            w[t] = (struct worker){t, 0};
            SCN_CHECK(pthread_create(&th[t], NULL, touch, &w[t]) == 0, "pthread_create");
        }
        uint64_t sum = 0;
        for (int t = 0; t < nthreads; t++) {
            pthread_join(th[t], NULL);
            sum ^= w[t].sum;
        }
        if (step % 20 == 0)
            printf("step %ld: sum %016llx\n", step, (unsigned long long)sum);
        if (step % 16 == 8) {  /* drop 1 MiB: zeros, whatever was there */
            size_t at = ((size_t)step * 7919 % (mib - 1)) << 20;
            unsigned char *p = (unsigned char *)mem + at;
            SCN_CHECK(madvise(p, 1 << 20, MADV_DONTNEED) == 0, "madvise");
            size_t nonzero = 0;
            for (size_t k = 0; k < (1 << 20); k += 512)
                nonzero += p[k] != 0;
            printf("step %ld: dropped MiB %zu, %zu non-zero bytes after\n", step, at >> 20, nonzero);
            scn_fill_xorshift(p, 1 << 20, (uint64_t)step);
        }
        scn_tick();
        scn_sleep_us(15000);
    }
    printf("final hash %016llx\n", (unsigned long long)scn_hash_words(SCN_FNV_INIT, mem, bytes));
    printf("done\n");
    return 0;
}
