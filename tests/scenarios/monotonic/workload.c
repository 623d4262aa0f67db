/* Elapsed CLOCK_MONOTONIC and CLOCK_BOOTTIME time across checkpoints (read through the vDSO):
 * never negative, and no step larger than 1.5 s although the driver keeps the job dead for
 * 2 s between kill and restart: the restored job runs in a time namespace whose offsets hide
 * the downtime. CLOCK_REALTIME is not offset (it jumps forward by the downtime), so it is only
 * checked for never going back.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=3000] [SLEEP_US=1000] */
#include "scenario.h"

static long long ns_of(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 3000;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;
    const clockid_t clocks[3] = {CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME};
    const char *names[3] = {"CLOCK_MONOTONIC", "CLOCK_BOOTTIME", "CLOCK_REALTIME"};
    long long prev[3], maxstep[3] = {0, 0, 0};
    long back[3] = {0, 0, 0};
    for (int c = 0; c < 3; c++)
        prev[c] = ns_of(clocks[c]);
    printf("measuring %ld steps\n", iters);
    scn_ready();
    for (long i = 0; i < iters; i++) {
        scn_sleep_us(sleep_us);
        for (int c = 0; c < 3; c++) {
            long long n = ns_of(clocks[c]);
            if (n < prev[c])
                back[c]++;
            else if (n - prev[c] > maxstep[c])
                maxstep[c] = n - prev[c];
            prev[c] = n;
        }
        if (i % 8 == 0)
            scn_tick();
        if (i % 500 == 499)
            printf("step %ld\n", i + 1);
    }
    for (int c = 0; c < 3; c++) {
        printf("%s never went back: %s\n", names[c], back[c] == 0 ? "yes" : "NO");
        if (c < 2)
            printf("%s largest step below 1.5 s: %s\n", names[c],
                   maxstep[c] < 1500000000LL ? "yes" : "NO");
    }
    return 0;
}
