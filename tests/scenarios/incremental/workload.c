/* Incremental checkpoints: a large buffer of which ~10% changes between checkpoints, plus the
 * memory events dirty tracking must not miss: a region unmapped and mapped again at the same
 * address (a new region: written whole), pages zapped with MADV_DONTNEED and re-read (now
 * zero) or rewritten, heap growth, and a block that never changes after setup (the driver's
 * `tamper corrupt-image` finds it in the first, full, generation that every later incremental
 * image refers to).
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [MIB=64] [STEPS=6000] [SLEEP_US=1000] */
#include "scenario.h"

#include <sys/mman.h>

#define BLOCK_BYTES (4u << 20)
#define BLOCK_SEED 0x9E3779B97F4A7C15ULL /* = CORRUPT_SEED in run_scenario.py */
#define STRIPE (64u << 10)
#define SIDE_BYTES (1u << 20)

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
    long steps = argc > 2 ? atol(argv[2]) : 6000;
    long sleep_us = argc > 3 ? atol(argv[3]) : 1000;
    size_t bytes = mib << 20;

    unsigned char *block = mmap(NULL, BLOCK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *side = mmap(NULL, SIDE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SCN_CHECK(block != MAP_FAILED && mem != MAP_FAILED && side != MAP_FAILED, "mmap");
    scn_fill_xorshift(block, BLOCK_BYTES, BLOCK_SEED);
    scn_fill_xorshift(mem, bytes, 0x5eed);
    scn_fill_xorshift(side, SIDE_BYTES, 0x51de);
    uint64_t block_hash = scn_hash_words(SCN_FNV_INIT, block, BLOCK_BYTES);
    printf("filled %zu MiB, block %016llx\n", mib, (unsigned long long)block_hash);
    scn_ready();

    unsigned char **heap = calloc((size_t)steps / 100 + 1, sizeof *heap);
    size_t nheap = 0;
    uint64_t s = 42;
    for (long i = 0; i < steps; i++) {
        uint64_t v = scn_xorshift64(&s);
        /* One 64 KiB stripe of the buffer rewritten per step (~1.5% of 64 MiB per 15 steps). */
        size_t stripe = (size_t)(v % (bytes / STRIPE)) * STRIPE;
        for (size_t o = 0; o < STRIPE; o += 4096) {
            uint64_t w = v ^ (uint64_t)i ^ o;
            memcpy(mem + stripe + o + (v % 512) * 8, &w, 8);
        }
        if (i % 97 == 0) {
            /* Zap 16 pages; read one back (zero page) and rewrite one. */
            size_t at = (size_t)((v >> 20) % (bytes / 4096 - 16)) * 4096;
            madvise(mem + at, 16 * 4096, MADV_DONTNEED);
            volatile unsigned char r = mem[at + 4096];
            (void)r;
            mem[at + 2 * 4096 + 5] = (unsigned char)i;
        }
        if (i % 301 == 0) {
            /* Replace the side region by a new mapping at the same address. */
            uint64_t h = scn_hash_words(SCN_FNV_INIT, side, SIDE_BYTES);
            munmap(side, SIDE_BYTES);
            unsigned char *again = mmap(side, SIDE_BYTES, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            SCN_CHECK(again == side, "mmap side again");
            scn_fill_xorshift(side, SIDE_BYTES, h ^ (uint64_t)i);
        }
        if (i % 100 == 0) {
            heap[nheap] = malloc(100000 + (size_t)(v % 4096));
            SCN_CHECK(heap[nheap] != NULL, "malloc");
            memset(heap[nheap], (int)(i & 0xff), 100000);
            nheap++;
        }
        if (i % 1000 == 999)
            printf("step %ld: buffer %016llx\n", i + 1,
                   (unsigned long long)scn_hash_words(SCN_FNV_INIT, mem, bytes));
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    uint64_t h = SCN_FNV_INIT;
    for (size_t k = 0; k < nheap; k++)
        h = scn_hash_words(h, heap[k], 100000);
    printf("final buffer %016llx side %016llx heap %016llx block %s\n",
           (unsigned long long)scn_hash_words(SCN_FNV_INIT, mem, bytes),
           (unsigned long long)scn_hash_words(SCN_FNV_INIT, side, SIDE_BYTES), (unsigned long long)h,
           scn_hash_words(SCN_FNV_INIT, block, BLOCK_BYTES) == block_hash ? "intact" : "CHANGED");
    printf("done\n");
    return 0;
}
