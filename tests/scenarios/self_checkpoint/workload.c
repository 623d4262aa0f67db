/* Self-checkpoint through the C API: at step ITERATIONS/3 the program calls ferry_checkpoint()
 * and prints what it returned: "resumed" after the checkpoint, "restarted" when a restart
 * brings it back there, "unavailable" when it does not run under ferry.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=3000] [SLEEP_US=1000] */
#include "scenario.h"

#include <ferry/ferry.h>

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 3000;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;
    printf("self-checkpoint at step %ld\n", iterations / 3);
    scn_ready();

    uint64_t state = SCN_FNV_INIT;
    for (long i = 0; i < iterations; i++) {
        if (i == iterations / 3) {
            int rc = ferry_checkpoint();
            printf("self-checkpoint: %s\n", rc == FERRY_RESUMED     ? "resumed"
                                            : rc == FERRY_RESTARTED ? "restarted"
                                            : rc == -1              ? "unavailable"
                                                                    : "UNEXPECTED VALUE");
        }
        state = scn_fnv(state, &i, sizeof i);
        if (i % 200 == 199)
            printf("step %ld: state %016llx\n", i + 1, (unsigned long long)state);
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    printf("done\n");
    return 0;
}
