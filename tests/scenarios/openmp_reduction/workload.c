/* An OpenMP (libgomp) reduction loop checkpointed many times: each round a parallel for with
 * reduction(+) over integer work, then a short sequential pause during which the worker
 * threads are parked in libgomp's barrier (spinning, then futex waits). Integer sums are exact
 * whatever the schedule, so every round prints the same value as the uninterrupted run.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ROUNDS=300] [N=200000] [SLEEP_US=10000]  (run with OMP_NUM_THREADS=3) */
#include "scenario.h"

#include <omp.h>

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 300;
    long n = argc > 2 ? atol(argv[2]) : 200000;
    long sleep_us = argc > 3 ? atol(argv[3]) : 10000;
    uint64_t total = 0;
    int threads = 0;
#pragma omp parallel
    {
#pragma omp single
        threads = omp_get_num_threads();
    }
    printf("threads: %d\n", threads);
    scn_ready();
    for (long r = 0; r < rounds; r++) {
        uint64_t sum = 0;
        double fsum = 0.0;
#pragma omp parallel for reduction(+ : sum) reduction(+ : fsum) schedule(dynamic, 1024)
        for (long i = 0; i < n; i++) {
            uint64_t x = (uint64_t)(i + 1) * (uint64_t)(r + 7);
            x ^= x >> 13;
            x *= 0x9E3779B97F4A7C15ULL;
            sum += x >> 32;
            fsum += (double)(x & 1023); /* small integers: the double sum is exact too */
        }
        total += sum;
        if (r % 10 == 9)
            printf("round %ld: sum %llu fsum %.0f total %llu\n", r + 1, (unsigned long long)sum, fsum,
                   (unsigned long long)total);
        scn_tick();
        scn_sleep_us(sleep_us);
    }
    printf("done: %llu\n", (unsigned long long)total);
    return 0;
}
