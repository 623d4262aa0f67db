/* Counter workload shared by the generation and image-refusal scenarios (sources_from):
 * a hash chain advanced by a steady loop, printed every 100 steps, plus a 4 MiB xorshift
 * block (the driver's corruption target) whose checksum is verified at the end.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=3000] [SLEEP_US=1000] */
#include "scenario.h"

#define BLOCK_BYTES (4u << 20)
#define BLOCK_SEED 0x9E3779B97F4A7C15ULL /* = CORRUPT_SEED in run_scenario.py */

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 3000;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;

    unsigned char *block = malloc(BLOCK_BYTES);
    SCN_CHECK(block != NULL, "malloc");
    scn_fill_xorshift(block, BLOCK_BYTES, BLOCK_SEED);
    uint64_t block_hash = scn_hash_words(SCN_FNV_INIT, block, BLOCK_BYTES);
    printf("counter: %ld iterations, block hash %016llx\n", iterations,
           (unsigned long long)block_hash);
    scn_ready();

    uint64_t state = SCN_FNV_INIT;
    for (long i = 0; i < iterations; i++) {
        state = scn_fnv(state, &i, sizeof i);
        if (i % 100 == 99)
            printf("step %5ld state %016llx\n", i + 1, (unsigned long long)state);
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    uint64_t again = scn_hash_words(SCN_FNV_INIT, block, BLOCK_BYTES);
    printf("block %s\n", again == block_hash ? "intact" : "CHANGED");
    printf("done\n");
    return 0;
}
