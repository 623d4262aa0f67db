/* Helpers shared by the scenario workloads (tests/scenarios/<name>/workload.c): readiness and
 * progress signals for the driver (tests/harness/run_scenario.py), deterministic data and hashes.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Protocol with the driver, through two files named in the environment:
 *   SCENARIO_READY   created once the workload finished its setup; the driver checkpoints only
 *                    after it exists ("wait-ready").
 *   SCENARIO_MARKER  one byte is appended by scn_tick() (open, write, close: the file is not kept
 *                    open) while the workload makes progress; the driver watches it grow to know
 *                    that a restarted process is running ("restart") and that a refused restart
 *                    ran none of the program ("restart-refused").
 *   SCENARIO_HOLD    (only under ferry) while this file exists, the workload's main process
 *                    waits at exit, after flushing its output, ticking the marker; it first
 *                    creates SCENARIO_HELD. The driver removes the file at "wait-exit", so a
 *                    fast machine or an unlucky seed cannot end the job before the scenario's
 *                    last checkpoint or kill; the driver counts the checkpoints that found the
 *                    job held (after its work) to tell when a workload is too short.
 * None of these files influences stdout, so an uninterrupted run and a run under ferry print
 * the same. */
#ifndef FERRY_TESTS_SCENARIO_H
#define FERRY_TESTS_SCENARIO_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Creates the file named by SCENARIO_READY (no-op when unset). */
static inline void scn_ready(void)
{
    const char *path = getenv("SCENARIO_READY");
    if (path == NULL || *path == '\0')
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("scenario: create ready file");
        exit(2);
    }
    close(fd);
}

/* Appends one byte to SCENARIO_MARKER: "the program is making progress". */
static inline void scn_tick(void)
{
    const char *path = getenv("SCENARIO_MARKER");
    if (path == NULL || *path == '\0')
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    ssize_t n = write(fd, ".", 1);
    (void)n;
    close(fd);
}

/* Sleeps for usec microseconds; restarts after EINTR so signal handlers do not shorten it. */
static inline void scn_sleep_us(long usec)
{
    struct timespec ts = {usec / 1000000, (usec % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The hold at exit (see SCENARIO_HOLD above). Only the process that started the program holds
 * (forked children exit at once); it is registered before main, so it runs when main returns
 * or calls exit(), after every other atexit handler of the workload. */
static pid_t scn_hold_pid;

static void scn_hold_at_exit(void)
{
    const char *path = getenv("SCENARIO_HOLD");
    if (path == NULL || *path == '\0' || getpid() != scn_hold_pid)
        return;
    fflush(NULL);
    const char *held = getenv("SCENARIO_HELD");
    if (held != NULL && *held != '\0') {
        int fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
    }
    for (int i = 0; i < 60000 && access(path, F_OK) == 0; i++) { /* at most 10 minutes */
        scn_tick();
        scn_sleep_us(10000);
    }
}

__attribute__((constructor)) static void scn_hold_register(void)
{
    scn_hold_pid = getpid();
    atexit(scn_hold_at_exit);
}

/* xorshift64: incompressible, reproducible data (the driver re-creates it to find it in images). */
static inline uint64_t scn_xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static inline void scn_fill_xorshift(void *buf, size_t bytes, uint64_t seed)
{
    uint64_t *p = (uint64_t *)buf;
    uint64_t s = seed;
    for (size_t i = 0; i < bytes / 8; i++)
        p[i] = scn_xorshift64(&s);
}

/* FNV-1a 64, continued from h (start with SCN_FNV_INIT). */
#define SCN_FNV_INIT 0xcbf29ce484222325ULL
static inline uint64_t scn_fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Word-wise hash for large buffers (FNV per byte is too slow for 1 GiB). */
static inline uint64_t scn_hash_words(uint64_t h, const void *data, size_t bytes)
{
    const uint64_t *p = (const uint64_t *)data;
    for (size_t i = 0; i < bytes / 8; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return h;
}

/* Exits with a message when a call that must succeed fails (setup errors are not test results). */
#define SCN_CHECK(cond, what)                                                                   \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "scenario: %s failed: %s\n", (what), strerror(errno));              \
            exit(3);                                                                            \
        }                                                                                       \
    } while (0)

#endif
