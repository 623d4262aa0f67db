/* Per-process state other than memory and files: vDSO clocks (clock_gettime, gettimeofday,
 * time) keep working and stay monotonic across restores, the brk heap still grows with sbrk()
 * after a restore, a thread-local variable (fs base) keeps its value, soft rlimits stay set.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=3000] [SLEEP_US=1000] */
#include "scenario.h"

#include <sys/resource.h>
#include <sys/time.h>

#define BRK_STEP (64 * 1024)

static __thread uint64_t tls_counter = 7;

static void print_limit(const char *name, int res)
{
    struct rlimit rl;
    SCN_CHECK(getrlimit(res, &rl) == 0, "getrlimit");
    printf("%s soft limit: %llu\n", name, (unsigned long long)rl.rlim_cur);
}

static void lower_soft(int res, rlim_t value)
{
    struct rlimit rl;
    SCN_CHECK(getrlimit(res, &rl) == 0, "getrlimit");
    if (rl.rlim_max != RLIM_INFINITY && value > rl.rlim_max)
        value = rl.rlim_max;
    rl.rlim_cur = value;
    SCN_CHECK(setrlimit(res, &rl) == 0, "setrlimit");
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 3000;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;

    lower_soft(RLIMIT_NOFILE, 1000);
    lower_soft(RLIMIT_CORE, 0);
    lower_soft(RLIMIT_STACK, 4u << 20);
    printf("setup done\n"); /* stdio allocates its buffer first, so the loop's sbrk() */
    char *brk_start = sbrk(0); /* calls are the only ones moving the break */
    SCN_CHECK(brk_start != (void *)-1, "sbrk");
    size_t grown = 0;
    scn_ready();

    struct timespec last_mono = {0, 0}, last_boot = {0, 0};
    long mono_back = 0, boot_back = 0, real_bad = 0;
    for (long i = 0; i < iterations; i++) {
        struct timespec mono, boot, real;
        SCN_CHECK(clock_gettime(CLOCK_MONOTONIC, &mono) == 0, "clock_gettime MONOTONIC");
        SCN_CHECK(clock_gettime(CLOCK_BOOTTIME, &boot) == 0, "clock_gettime BOOTTIME");
        SCN_CHECK(clock_gettime(CLOCK_REALTIME, &real) == 0, "clock_gettime REALTIME");
        struct timeval tv;
        SCN_CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday");
        time_t now = time(NULL);
        if (mono.tv_sec < last_mono.tv_sec ||
            (mono.tv_sec == last_mono.tv_sec && mono.tv_nsec < last_mono.tv_nsec))
            mono_back++;
        if (boot.tv_sec < last_boot.tv_sec ||
            (boot.tv_sec == last_boot.tv_sec && boot.tv_nsec < last_boot.tv_nsec))
            boot_back++;
        /* the three wall clocks agree within two seconds */
        if (labs((long)(tv.tv_sec - real.tv_sec)) > 2 || labs((long)(now - real.tv_sec)) > 2)
            real_bad++;
        last_mono = mono;
        last_boot = boot;

        tls_counter = tls_counter * 6364136223846793005ULL + 1442695040888963407ULL;
        if (i % 100 == 0) {
            char *p = sbrk(BRK_STEP);
            SCN_CHECK(p != (void *)-1, "sbrk grow");
            scn_fill_xorshift(p, BRK_STEP, (uint64_t)i + 1);
            grown += BRK_STEP;
        }
        if (i % 500 == 499)
            printf("step %ld: tls %016llx, brk grown %zu KiB\n", i + 1,
                   (unsigned long long)tls_counter, grown >> 10);
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    printf("CLOCK_MONOTONIC went back %ld times, CLOCK_BOOTTIME %ld times\n", mono_back, boot_back);
    printf("realtime/gettimeofday/time disagreed %ld times\n", real_bad);
    printf("brk heap: %s, %zu KiB grown, hash %016llx\n",
           sbrk(0) == brk_start + grown ? "contiguous" : "MOVED", grown >> 10,
           (unsigned long long)scn_hash_words(SCN_FNV_INIT, brk_start, grown));
    print_limit("RLIMIT_NOFILE", RLIMIT_NOFILE);
    print_limit("RLIMIT_CORE", RLIMIT_CORE);
    print_limit("RLIMIT_STACK", RLIMIT_STACK);
    printf("done\n");
    return 0;
}
