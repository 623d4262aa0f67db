/* Uses a small shared library (libscnhelper.so, dlopen'ed by name through LD_LIBRARY_PATH,
 * which the driver points at its own copy) on every step, so that a changed library file can
 * be detected at restart.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=3000] [SLEEP_US=1000] */
#include "scenario.h"

#include <dlfcn.h>

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 3000;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;

    void *lib = dlopen("libscnhelper.so", RTLD_NOW);
    if (lib == NULL) {
        fprintf(stderr, "scenario: dlopen: %s\n", dlerror());
        return 3;
    }
    uint64_t (*helper)(uint64_t) = (uint64_t(*)(uint64_t))dlsym(lib, "scn_helper");
    SCN_CHECK(helper != NULL, "dlsym scn_helper");
    printf("library loaded\n");
    scn_ready();

    uint64_t acc = 0;
    for (long i = 0; i < iterations; i++) {
        acc ^= helper((uint64_t)i);
        if (i % 250 == 249)
            printf("step %ld: %016llx\n", i + 1, (unsigned long long)acc);
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    printf("done\n");
    return 0;
}
