/* Producer/consumer over a bounded ring guarded by a mutex and two condition variables: two
 * producers and two consumers, so at any checkpoint some threads are parked in
 * pthread_cond_wait (futex waits, stored rewound and re-executed at restore) while others run.
 * Every item is consumed exactly once; the output (per-consumer counts are not printed: they
 * depend on scheduling) is the total count and an order-independent checksum per block.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITEMS=60000] [SLEEP_EVERY=10] (a producer sleeps 1 ms every SLEEP_EVERY items) */
#include "scenario.h"

#include <pthread.h>

#define RING 16
#define PRODUCERS 2
#define CONSUMERS 2

static long ring[RING];
static int head, tail, count, producers_left = PRODUCERS;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER, not_empty = PTHREAD_COND_INITIALIZER;
static long items, sleep_every;
static uint64_t block_sum[64]; /* sum of f(item) per block of items, under mu */
static long consumed;

static uint64_t f(long v) { return (uint64_t)v * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)v >> 3); }

static void *producer(void *arg)
{
    long id = (long)arg;
    for (long v = id; v < items; v += PRODUCERS) {
        pthread_mutex_lock(&mu);
        while (count == RING)
            pthread_cond_wait(&not_full, &mu);
        ring[head] = v;
        head = (head + 1) % RING;
        count++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&mu);
        if (v % sleep_every == id)
            scn_sleep_us(1000);
    }
    pthread_mutex_lock(&mu);
    producers_left--;
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (count == 0 && producers_left > 0)
            pthread_cond_wait(&not_empty, &mu);
        if (count == 0) {
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        long v = ring[tail];
        tail = (tail + 1) % RING;
        count--;
        block_sum[v * 64 / items] += f(v);
        consumed++;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&mu);
        if (v % 500 == 0)
            scn_tick();
    }
}

int main(int argc, char **argv)
{
    items = argc > 1 ? atol(argv[1]) : 60000;
    sleep_every = argc > 2 ? atol(argv[2]) : 10;
    pthread_t p[PRODUCERS], c[CONSUMERS];
    for (long i = 0; i < CONSUMERS; i++)
        SCN_CHECK(pthread_create(&c[i], NULL, consumer, NULL) == 0, "pthread_create consumer");
    scn_ready();
    for (long i = 0; i < PRODUCERS; i++)
        SCN_CHECK(pthread_create(&p[i], NULL, producer, (void *)i) == 0, "pthread_create producer");
    for (int i = 0; i < PRODUCERS; i++)
        SCN_CHECK(pthread_join(p[i], NULL) == 0, "pthread_join producer");
    for (int i = 0; i < CONSUMERS; i++)
        SCN_CHECK(pthread_join(c[i], NULL) == 0, "pthread_join consumer");
    printf("consumed %ld of %ld items\n", consumed, items);
    uint64_t want[64] = {0};
    for (long v = 0; v < items; v++)
        want[v * 64 / items] += f(v);
    int bad = 0;
    for (int b = 0; b < 64; b++) {
        printf("block %2d: %016llx\n", b, (unsigned long long)block_sum[b]);
        bad += block_sum[b] != want[b];
    }
    printf("%s\n", bad ? "MISMATCH: items lost or consumed twice" : "every item consumed exactly once");
    return 0;
}
