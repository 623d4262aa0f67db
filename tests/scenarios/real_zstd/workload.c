/* SPDX-License-Identifier: Apache-2.0
 * A multi-threaded program we did not write: zstd with two worker threads compressing a
 * generated 15.75 MB text file to stdout. The wrapper writes the input (deterministic), then
 * execs zstd; what ferry checkpoints is zstd and its threads. zstd's multi-threaded output is
 * deterministic for a given level, thread count and job size, so it can be compared byte for
 * byte. 1 MiB jobs (-B1MiB) keep both workers compressing at once for most of the run; at
 * level 19 the run takes ~11 s on two idle cores (it must outlast the actions). zstd never calls
 * scn_tick(): the driver sees a restarted zstd's progress as CPU time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
  FILE* in = fopen("input.txt", "w");
  if (!in) return perror("input.txt"), 2;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  static const char* words[] = {"ferry", "checkpoint", "restart", "rank", "image", "page",
                                "generation", "commit", "xsave", "thread", "signal", "vdso"};
  for (long i = 0; i < 2250000; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    fputs(words[x % 12], in);
    fputc((x >> 8) % 11 ? ' ' : '\n', in);
  }
  fclose(in);
  fclose(fopen(getenv("SCENARIO_READY"), "w"));
  execlp("zstd", "zstd", "-q", "-T2", "-19", "-B1MiB", "-c", "input.txt", (char*)NULL);
  perror("exec zstd");
  return 127;
}
