/* Restore baselines for bench/run.sh: how long this machine takes to make N MiB of fresh
 * anonymous memory resident, measured in a fresh mapping each time:
 *   populate_s      madvise(MADV_POPULATE_WRITE) on 4 KiB pages (the kernel allocates and
 *                   zeroes them; the restore baseline)
 *   first_pass_s    then one read per page from user space: on a VM with shadow paging
 *                   (PVM) the first user access to each page still takes a hypervisor fault
 *   populate_thp_s  MADV_HUGEPAGE + MADV_POPULATE_WRITE (2 MiB pages: what ferry's restore
 *                   uses for dense regions, after which the first pass is fast)
 * Prints "populate_s=A first_pass_s=B populate_thp_s=C".
 * SPDX-License-Identifier: Apache-2.0
 * Usage: populate MIB */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define HUGE (2u << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A 2 MiB-aligned fresh anonymous mapping of bytes (plus slack, unmapped by the caller). */
static unsigned char *map_aligned(size_t bytes, void **base)
{
    *base = mmap(NULL, bytes + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (*base == MAP_FAILED) {
        perror("populate: mmap");
        exit(1);
    }
    return (unsigned char *)(((uintptr_t)*base + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
}

int main(int argc, char **argv)
{
    if (argc != 2 || atol(argv[1]) <= 0) {
        fprintf(stderr, "usage: populate MIB\n");
        return 64;
    }
    size_t bytes = (size_t)atol(argv[1]) << 20;
    void *base;

    unsigned char *m = map_aligned(bytes, &base);
    double t0 = now();
    if (madvise(m, bytes, MADV_POPULATE_WRITE) != 0) {
        perror("populate: MADV_POPULATE_WRITE");
        return 1;
    }
    double t1 = now();
    volatile unsigned long sum = 0;
    for (size_t i = 0; i < bytes; i += 4096)
        sum += m[i];
    double t2 = now();
    munmap(base, bytes + HUGE);

    m = map_aligned(bytes, &base);
    double t3 = now();
    madvise(m, bytes, MADV_HUGEPAGE); /* advice: refused when THP is off ("never") */
    if (madvise(m, bytes, MADV_POPULATE_WRITE) != 0) {
        perror("populate: MADV_POPULATE_WRITE (huge pages)");
        return 1;
    }
    double t4 = now();
    munmap(base, bytes + HUGE);
    printf("populate_s=%.3f first_pass_s=%.3f populate_thp_s=%.3f\n", t1 - t0, t2 - t1, t4 - t3);
    return 0;
}
