/* A three-process pipeline: without arguments the workload execs
 * `sh -c 'W gen N | W filter | W sink'` (W = this program). gen writes numbered lines of
 * xorshift values as fast as the pipe takes them; filter turns each into a shorter line (a
 * hash of the value, upper-case hex) and is slower than gen; sink checksums the lines, is
 * slower still, and prints its progress. Both pipes are therefore usually full or partly full
 * when ferry checkpoints the tree: their buffered bytes must come back in order.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [LINES=60000]   (internally: workload gen N | filter | sink) */
#include "scenario.h"

#include <ctype.h>
#include <limits.h>

static int gen(long lines)
{
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < lines; i++) {
        uint64_t v = scn_xorshift64(&state);
        printf("line %ld %016llx %llu\n", i, (unsigned long long)v, (unsigned long long)(v % 1000003));
    }
    fflush(stdout);
    return 0;
}

static int filter(void)
{
    char line[256];
    long n = 0;
    while (fgets(line, sizeof line, stdin)) {
        uint64_t h = scn_fnv(SCN_FNV_INIT, line, strlen(line));
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        for (char *p = hex; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        printf("%ld:%s\n", n, hex);
        if (++n % 16 == 0)
            scn_sleep_us(1000);
    }
    fflush(stdout);
    return 0;
}

static int sink(void)
{
    char line[256];
    long n = 0;
    uint64_t sum = SCN_FNV_INIT;
    scn_ready();
    while (fgets(line, sizeof line, stdin)) {
        sum = scn_fnv(sum, line, strlen(line));
        if (++n % 3000 == 0) {
            printf("sink: %ld lines, checksum %016llx\n", n, (unsigned long long)sum);
            fflush(stdout);
        }
        if (n % 12 == 0) {
            scn_tick();
            scn_sleep_us(1000);
        }
    }
    printf("sink: done, %ld lines, checksum %016llx\n", n, (unsigned long long)sum);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "gen") == 0)
        return gen(atol(argv[2]));
    if (argc > 1 && strcmp(argv[1], "filter") == 0)
        return filter();
    if (argc > 1 && strcmp(argv[1], "sink") == 0)
        return sink();
    long lines = argc > 1 ? atol(argv[1]) : 60000;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    SCN_CHECK(n > 0, "readlink /proc/self/exe");
    self[n] = '\0';
    char script[3 * PATH_MAX + 200];
    snprintf(script, sizeof script, "'%s' gen %ld | '%s' filter | '%s' sink", self, lines, self, self);
    printf("pipeline of 3\n");
    fflush(stdout);
    execl("/bin/sh", "sh", "-c", script, (char *)NULL);
    SCN_CHECK(0, "exec /bin/sh");
    return 1;
}
