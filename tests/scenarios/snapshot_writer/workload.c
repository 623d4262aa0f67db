/* A program writing furiously over all its memory while checkpoints are written behind it
 * (issue 7: the copy-on-write snapshot). Every pass over the memory checks that each word
 * still holds the previous pass's value before writing the next one, so a restarted copy whose
 * image mixed pages from different moments stops with "INCONSISTENT". Private anonymous memory
 * (taken from the snapshot), plus a MAP_SHARED, a MADV_WIPEONFORK and a MADV_DONTFORK region
 * (which a fork does not snapshot: ferry copies them while the program is frozen).
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [MIB=64] [PASSES=400] (20 ms pause between passes) */
#include "scenario.h"

#include <sys/mman.h>

static uint64_t pattern(uint64_t pass, uint64_t i)
{
    return (pass << 40) ^ (i * 0x9E3779B97F4A7C15ULL);
}

/* Checks that every word of [mem, mem+words) holds pass-1's pattern and writes pass's. */
static void pass_over(const char *name, uint64_t *mem, size_t words, uint64_t pass)
{
    for (size_t i = 0; i < words; i++) {
        uint64_t want = pattern(pass - 1, i);
        if (mem[i] != want) {
            printf("INCONSISTENT %s pass %llu word %zu: %016llx, expected %016llx\n", name,
                   (unsigned long long)pass, i, (unsigned long long)mem[i],
                   (unsigned long long)want);
            exit(1);
        }
        mem[i] = pattern(pass, i);
    }
}

static uint64_t *region(size_t bytes, int flags, int advice, const char *what)
{
    uint64_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
    SCN_CHECK(p != MAP_FAILED, what);
    if (advice >= 0)
        SCN_CHECK(madvise(p, bytes, advice) == 0, what);
    for (size_t i = 0; i < bytes / 8; i++)
        p[i] = pattern(0, i);
    return p;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
    long passes = argc > 2 ? atol(argv[2]) : 400;
    size_t words = (mib << 20) / 8, small = (1u << 20) / 8;

    uint64_t *mem = region(mib << 20, MAP_PRIVATE, -1, "private memory");
    uint64_t *shared = region(small * 8, MAP_SHARED, -1, "shared memory");
    uint64_t *wipe = region(small * 8, MAP_PRIVATE, MADV_WIPEONFORK, "wipe-on-fork memory");
    uint64_t *nofork = region(small * 8, MAP_PRIVATE, MADV_DONTFORK, "dont-fork memory");
    printf("%zu MiB private + 3 x 1 MiB shared/wipe-on-fork/dont-fork\n", mib);
    scn_ready();

    const size_t slice = (4u << 20) / 8;
    for (long pass = 1; pass <= passes; pass++) {
        /* the big region in 4 MiB slices, the small ones in between: all written non-stop */
        for (size_t at = 0; at < words; at += slice) {
            size_t n = words - at < slice ? words - at : slice;
            for (size_t i = 0; i < n; i++) {
                uint64_t want = pattern((uint64_t)pass - 1, at + i);
                if (mem[at + i] != want) {
                    printf("INCONSISTENT private pass %ld word %zu: %016llx, expected %016llx\n",
                           pass, at + i, (unsigned long long)mem[at + i],
                           (unsigned long long)want);
                    return 1;
                }
                mem[at + i] = pattern((uint64_t)pass, at + i);
            }
            scn_tick();
        }
        pass_over("shared", shared, small, (uint64_t)pass);
        pass_over("wipe-on-fork", wipe, small, (uint64_t)pass);
        pass_over("dont-fork", nofork, small, (uint64_t)pass);
        if (pass % 20 == 0)
            printf("pass %ld: all %zu MiB consistent\n", pass, mib + 3);
        scn_sleep_us(20000);
    }
    printf("final hash %016llx\n", (unsigned long long)scn_hash_words(SCN_FNV_INIT, mem, words * 8));
    printf("done\n");
    return 0;
}
