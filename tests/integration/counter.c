/* SPDX-License-Identifier: Apache-2.0 */
/* counter: workload of the CLI integration tests. Fills MIB MiB of heap with a pattern,
 * then for ITER iterations updates it, prints "iter N sum S" and sleeps SLEEP_MS; finally
 * re-verifies all memory and prints "done". Creates the file $READY_FILE once set up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
  int iters = argc > 2 ? atoi(argv[2]) : 50;
  int sleep_ms = argc > 3 ? atoi(argv[3]) : 50;
  size_t n = mib * 1024 * 1024 / sizeof(uint64_t);
  uint64_t* a = malloc(n * sizeof *a);
  if (!a) return 2;
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    a[i] = x;
  }
  const char* ready = getenv("READY_FILE");
  if (ready) fclose(fopen(ready, "w"));
  for (int it = 1; it <= iters; ++it) {
    uint64_t s = 0;
    for (size_t i = it % 512; i < n; i += 512) a[i] += (uint64_t)it, s += a[i];
    printf("iter %d sum %016llx\n", it, (unsigned long long)s);
    fflush(stdout);
    struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  uint64_t s = 0;
  for (size_t i = 0; i < n; ++i) s = s * 31 + a[i];
  printf("done %016llx\n", (unsigned long long)s);
  return 0;
}
