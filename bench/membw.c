/* Physical baselines for bench/run.sh: memcpy bandwidth between two pre-faulted N MiB buffers
 * and process_vm_readv bandwidth from a child holding N MiB (64 MiB iovecs, as a ptrace-based
 * checkpointer would read). Prints "memcpy_gbps=X pvr_gbps=Y" (medians of REPS runs;
 * GB/s = N * 2^20 bytes / seconds / 1e9).
 * SPDX-License-Identifier: Apache-2.0
 * Usage: membw [MIB=1024] [REPS=5] */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IOV_BYTES (64u << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void *map_populated(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        perror("membw: mmap");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1024;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 64 || mib == 0) {
        fprintf(stderr, "usage: membw [MIB] [REPS 1..64]\n");
        return 64;
    }
    size_t bytes = mib << 20;
    double gb = (double)bytes / 1e9, t[64];

    unsigned char *src = map_populated(bytes), *dst = map_populated(bytes);
    memset(src, 0x5a, bytes);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        memcpy(dst, src, bytes);
        t[r] = now() - t0;
        __asm__ volatile("" : : "r"(dst) : "memory");
    }
    double memcpy_gbps = gb / median(t, reps);
    munmap(src, bytes);

    int pipefd[2];
    if (pipe(pipefd) != 0) {
        perror("membw: pipe");
        return 1;
    }
    pid_t child = fork();
    if (child == 0) {
        unsigned char *mem = map_populated(bytes);
        memset(mem, 0xa5, bytes);
        uintptr_t addr = (uintptr_t)mem;
        if (write(pipefd[1], &addr, sizeof addr) != sizeof addr)
            _exit(1);
        for (;;)
            pause();
    }
    uintptr_t remote;
    if (child < 0 || read(pipefd[0], &remote, sizeof remote) != sizeof remote) {
        perror("membw: child");
        if (child > 0) {
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
        }
        return 1;
    }
    int failed = 0;
    for (int r = 0; r < reps && !failed; r++) {
        double t0 = now();
        for (size_t off = 0; off < bytes; off += IOV_BYTES) {
            size_t len = bytes - off < IOV_BYTES ? bytes - off : IOV_BYTES;
            struct iovec local = {dst + off, len}, rem = {(void *)(remote + off), len};
            if (process_vm_readv(child, &local, 1, &rem, 1, 0) != (ssize_t)len) {
                perror("membw: process_vm_readv");
                failed = 1;
                break;
            }
        }
        t[r] = now() - t0;
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    if (failed)
        return 1;
    printf("memcpy_gbps=%.2f pvr_gbps=%.2f\n", memcpy_gbps, gb / median(t, reps));
    return 0;
}
