/* One large region: 1 GiB of incompressible (xorshift) private anonymous memory, mutated at
 * scattered pages while it runs, verified by hash at the end.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [MIB=1024] [ITERATIONS=2000] [SLEEP_US=1000] */
#include "scenario.h"

#include <sys/mman.h>

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1024;
    long iterations = argc > 2 ? atol(argv[2]) : 2000;
    long sleep_us = argc > 3 ? atol(argv[3]) : 1000;
    size_t bytes = mib << 20;

    unsigned char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                              -1, 0);
    SCN_CHECK(mem != MAP_FAILED, "mmap");
    scn_fill_xorshift(mem, bytes, 0x5eed);
    printf("filled %zu MiB: hash %016llx\n", mib,
           (unsigned long long)scn_hash_words(SCN_FNV_INIT, mem, bytes));
    scn_ready();

    uint64_t s = 42;
    for (long i = 0; i < iterations; i++) {
        uint64_t v = scn_xorshift64(&s);
        size_t at = (size_t)(v % (bytes / 8)) * 8;
        memcpy(mem + at, &v, 8);
        if (i % 500 == 499)
            printf("step %ld: wrote %016llx at offset %zu\n", i + 1, (unsigned long long)v, at);
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    printf("final hash %016llx\n", (unsigned long long)scn_hash_words(SCN_FNV_INIT, mem, bytes));
    printf("done\n");
    return 0;
}
