/* A shell script that runs programs in turn: without arguments the workload execs
 * `sh -c 'W step 1 N; W step 2 N; W step 3 N'` (W = this program), so the job is a dash
 * process with one child at a time, all writing to the same stdout (one open file description
 * with one offset, shared after fork). Each step prints its progress lines as it goes.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=900]   (internally: workload step K ITERATIONS) */
#include "scenario.h"

#include <limits.h>

static int step(int k, long iterations)
{
    if (k == 1)
        scn_ready();
    uint64_t state = 0x2545f4914f6cdd1dull * (uint64_t)k, sum = 0;
    pid_t ppid = getppid();
    long parent_changed = 0;
    for (long i = 0; i < iterations; i++) {
        sum += scn_xorshift64(&state) >> 24;
        if (getppid() != ppid)
            parent_changed++;
        if (i % 150 == 149) {
            printf("step %d at %ld: sum %llu\n", k, i + 1, (unsigned long long)sum);
            fflush(stdout);
        }
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(1000);
    }
    printf("step %d done, parent changed %ld times\n", k, parent_changed);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 3 && strcmp(argv[1], "step") == 0)
        return step(atoi(argv[2]), atol(argv[3]));
    long iterations = argc > 1 ? atol(argv[1]) : 900;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    SCN_CHECK(n > 0, "readlink /proc/self/exe");
    self[n] = '\0';
    char script[3 * PATH_MAX + 200];
    snprintf(script, sizeof script, "'%s' step 1 %ld; '%s' step 2 %ld; '%s' step 3 %ld", self, iterations, self,
             iterations, self, iterations);
    printf("script of 3 steps\n");
    fflush(stdout);
    execl("/bin/sh", "sh", "-c", script, (char *)NULL);
    SCN_CHECK(0, "exec /bin/sh");
    return 1;
}
