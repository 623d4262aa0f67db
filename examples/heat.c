/* SPDX-License-Identifier: Apache-2.0 */
/* heat: the demo workload. Explicit finite differences for the 2-D heat equation on an
 * N x N plate with a hot edge; prints the total heat and a checksum every REPORT steps.
 * Deterministic (same output on every run), a few seconds long, ~2*N*N*8 bytes of heap. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 768;
  int steps = argc > 2 ? atoi(argv[2]) : 9000;
  int report = steps / 12 > 0 ? steps / 12 : 1;
  double* u = calloc((size_t)n * n, sizeof *u);
  double* v = calloc((size_t)n * n, sizeof *v);
  if (!u || !v) {
    perror("heat: calloc");
    return 1;
  }
  for (int j = 0; j < n; ++j) u[j] = v[j] = 100.0; /* hot top edge */
  const double k = 0.24;
  for (int s = 1; s <= steps; ++s) {
    for (int i = 1; i < n - 1; ++i)
      for (int j = 1; j < n - 1; ++j) {
        size_t c = (size_t)i * n + j;
        v[c] = u[c] + k * (u[c - n] + u[c + n] + u[c - 1] + u[c + 1] - 4.0 * u[c]);
      }
    double* t = u;
    u = v;
    v = t;
    if (s % report == 0) {
      double total = 0;
      uint64_t sum = 0;
      for (size_t c = 0; c < (size_t)n * n; ++c) {
        total += u[c];
        uint64_t bits;
        memcpy(&bits, &u[c], sizeof bits);
        sum = sum * 1099511628211ull ^ bits;
      }
      printf("step %5d  heat %.9e  checksum %016llx\n", s, total, (unsigned long long)sum);
      fflush(stdout);
    }
  }
  free(u);
  free(v);
  return 0;
}
