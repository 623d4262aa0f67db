/* Benchmark target: holds N MiB of private anonymous memory and answers requests from
 * bench/run.sh through files in a control folder, so that a restarted copy can be driven
 * without knowing its PID.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Usage: memhog MIB DIR [random|hpc]
 *   random             incompressible xorshift words (the default)
 *   hpc                a typical simulation array: smooth doubles (a few sine modes on a
 *                      grid plus a slow trend, full 52-bit mantissas), with one 64 KiB block
 *                      in eight left all zeros (untouched halo/padding), 12.5 % zero pages
 *   DIR containing "%r": the %r is replaced by $FERRY_RANK (0 if unset) and that folder is
 *                      created, so the ranks of one `ferry launch --ntasks N` job (same
 *                      arguments) each get their own control folder (bench/multirank.sh)
 *   DIR/ready          written once the memory is filled: "<hash> <pid>"
 *   DIR/verify-request when it appears, memhog removes it, writes DIR/taken "<ns>" (the
 *                      CLOCK_REALTIME of that moment, as `date +%s%N`), re-reads all N MiB and
 *                      writes
 *   DIR/verified       "OK <pid> <ns>" or "BAD <pid> <ns>" (<ns>: CLOCK_REALTIME when the pass
 *                      ended; written to a temporary name, then renamed). The times let the
 *                      bench poll slowly without its polling counting in the figures
 *   DIR/change-request when it appears, memhog removes it, rewrites 10 % of its pages (every
 *                      tenth 64 KiB block, a different tenth each time) with new xorshift
 *                      words, updates the hash it verifies against and writes DIR/changed
 *                      (for bench/incremental.sh)
 *   DIR/exit-request   when it appears, memhog removes it and exits 0
 * It polls every millisecond and exits 2 after an hour, so a lost copy cannot run forever. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t hash_words(const uint64_t *p, size_t words)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < words; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return h;
}

static uint64_t realtime_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

/* Removes DIR/name; true when it existed (the request is taken). */
static int take_request(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return unlink(path) == 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: memhog MIB DIR [random|hpc]\n");
        return 64;
    }
    int hpc = argc == 4 && strcmp(argv[3], "hpc") == 0;
    if (argc == 4 && !hpc && strcmp(argv[3], "random") != 0) {
        fprintf(stderr, "memhog: unknown workload %s\n", argv[3]);
        return 64;
    }
    size_t bytes = (size_t)atol(argv[1]) << 20;
    char dir_buf[4096];
    const char *dir = argv[2];
    const char *mark = strstr(dir, "%r");
    if (mark != NULL) {
        const char *rank = getenv("FERRY_RANK");
        snprintf(dir_buf, sizeof dir_buf, "%.*s%s%s", (int)(mark - dir), dir, rank ? rank : "0", mark + 2);
        dir = dir_buf;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            perror("memhog: mkdir");
            return 1;
        }
    }
    uint64_t *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("memhog: mmap");
        return 1;
    }
    if (hpc) {
        double *d = (double *)mem;
        const size_t block = (64u << 10) / sizeof(double);
        for (size_t i = 0; i < bytes / 8; i++) {
            if ((i / block) % 8 == 7) {
                d[i] = 0.0; /* written, so the page is present: a zero page, not a hole */
                continue;
            }
            double x = (double)i * 1e-6;
            d[i] = 300.0 + 25.0 * sin(x) + 3.0 * cos(7.0 * x) + 0.5 * sin(61.0 * x) + 1e-3 * x;
        }
    } else {
        uint64_t x = 0x2545F4914F6CDD1DULL;
        for (size_t i = 0; i < bytes / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            mem[i] = x;
        }
    }
    uint64_t expected = hash_words(mem, bytes / 8);
    uint64_t changes = 0, y = 0x9E3779B97F4A7C15ULL;
    char text[128];
    snprintf(text, sizeof text, "%016llx %d\n", (unsigned long long)expected, (int)getpid());
    if (write_file(dir, "ready", text) != 0) {
        perror("memhog: write ready");
        return 1;
    }
    struct timespec tick = {0, 1000000};
    for (long n = 0; n < 3600L * 1000; n++) {
        if (take_request(dir, "verify-request")) {
            snprintf(text, sizeof text, "%llu\n", (unsigned long long)realtime_ns());
            write_file(dir, "taken", text);
            int ok = hash_words(mem, bytes / 8) == expected;
            snprintf(text, sizeof text, "%s %d %llu\n", ok ? "OK" : "BAD", (int)getpid(),
                     (unsigned long long)realtime_ns());
            write_file(dir, "verified", text);
        }
        if (take_request(dir, "change-request")) {
            const size_t block = (64u << 10) / 8;
            for (size_t b = changes % 10; b * block < bytes / 8; b += 10)
                for (size_t i = b * block; i < (b + 1) * block && i < bytes / 8; i++) {
                    y ^= y << 13;
                    y ^= y >> 7;
                    y ^= y << 17;
                    mem[i] = y;
                }
            changes++;
            expected = hash_words(mem, bytes / 8);
            snprintf(text, sizeof text, "%llu %d\n", (unsigned long long)changes, (int)getpid());
            write_file(dir, "changed", text);
        }
        if (take_request(dir, "exit-request"))
            return 0;
        nanosleep(&tick, NULL);
    }
    return 2;
}
