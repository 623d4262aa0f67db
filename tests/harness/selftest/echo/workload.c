/* Tiny workload for the driver's self-test: prints numbered lines in a steady loop.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [LINES=10] [SLEEP_US=1000] [MODE=tick]
 *   tick   print a line and scn_tick() every SLEEP_US microseconds
 *   cpu    no scn_tick(): spend SLEEP_US of CPU time per line, print all lines at the end
 *          (progress is visible only as CPU time, like zstd's)
 *   stuck  like tick without scn_tick() on the first run in a folder; run again in the same
 *          folder (fake_ferry's "restart" reruns the program) it sleeps 60 s without printing,
 *          ticking or using CPU: the driver must report that it shows no progress */
#include "scenario.h"

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int lines = argc > 1 ? atoi(argv[1]) : 10;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;
    const char *mode = argc > 3 ? argv[3] : "tick";
    scn_ready();
    if (strcmp(mode, "cpu") == 0) {
        volatile uint64_t x = 1;
        for (int i = 1; i <= lines; i++) {
            double until = cpu_seconds() + (double)sleep_us / 1e6;
            while (cpu_seconds() < until)
                for (int k = 0; k < 10000; k++)
                    x = x * 6364136223846793005ULL + 1;
        }
        for (int i = 1; i <= lines; i++)
            printf("line %d\n", i);
        return 0;
    }
    if (strcmp(mode, "stuck") == 0 && access("started", F_OK) == 0) {
        scn_sleep_us(60 * 1000000L);
        return 0;
    }
    if (strcmp(mode, "stuck") == 0)
        close(open("started", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    for (int i = 1; i <= lines; i++) {
        printf("line %d\n", i);
        fflush(stdout);
        if (strcmp(mode, "tick") == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    return 0;
}
