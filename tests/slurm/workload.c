// SPDX-License-Identifier: Apache-2.0
// Workload of the Slurm tests: STEPS steps of a deterministic computation over 4 MiB of
// memory, SLEEP_MS milliseconds per step, a "step N" line each step and "result X" at the
// end. The result depends on every step, so a restart that loses or repeats work shows.
//   workload STEPS SLEEP_MS
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: workload STEPS SLEEP_MS\n");
    return 64;
  }
  long steps = atol(argv[1]), sleep_ms = atol(argv[2]);
  enum { kWords = 4 << 17 };  // 4 MiB of uint64_t
  uint64_t* mem = malloc(sizeof(uint64_t) * kWords);
  if (!mem) return 71;
  for (size_t i = 0; i < kWords; ++i) mem[i] = i;
  setvbuf(stdout, NULL, _IOLBF, 0);
  uint64_t acc = 1;
  for (long s = 0; s < steps; ++s) {
    for (size_t i = 0; i < kWords; i += 7) {
      mem[i] = mix(mem[i] + acc + (uint64_t)s);
      acc += mem[i];
    }
    printf("step %ld\n", s);
    struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  printf("result %016llx\n", (unsigned long long)acc);
  return 0;
}
