// SPDX-License-Identifier: Apache-2.0
// Target of the restore end-to-end test. Fills heap and mmap memory with a pattern, puts a
// known value in ymm8, writes "hello\n" to argv[1] and seeks to 1000, prints "ready" on
// stdout, then sleeps in a loop until SIGUSR1 arrives. It then checks everything and exits:
// 0 all good; 10 heap; 11 mmap; 12 ymm8; 13 write; 14 clock_gettime; 15 signal count;
// 16 the fixed-address block (the test occupies that address in the restorer to force staging);
// 17 memfd mapping; 18 deleted-file fd (content and offset).
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

static volatile sig_atomic_t usr1_count;
static void on_usr1(int sig) { (void)sig; usr1_count++; }

static uint64_t pat(uint64_t i) { return i * 0x9E3779B97F4A7C15ull ^ 0x5bd1e995ull; }

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  size_t heap_words = (3u << 20) / 8, map_words = (2u << 20) / 8;
  uint64_t* heap = malloc(heap_words * 8);
  uint64_t* map = mmap(NULL, map_words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (!heap || map == MAP_FAILED) return 3;
  size_t fixed_words = (1u << 20) / 8;
  uint64_t* fixed = mmap((void*)0x300000000000ull, fixed_words * 8, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (fixed != (void*)0x300000000000ull) return 6;
  for (size_t i = 0; i < fixed_words; ++i) fixed[i] = pat(i + 13);
  for (size_t i = 0; i < heap_words; ++i) heap[i] = pat(i);
  for (size_t i = 0; i < map_words; ++i) map[i] = pat(i + 7);

  int mfd = memfd_create("ring", 0);
  if (mfd < 0 || ftruncate(mfd, 8192) != 0) return 7;
  char* ring = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (ring == MAP_FAILED) return 7;
  memset(ring, 'R', 8192);
  close(mfd);
  char del_path[4096];
  snprintf(del_path, sizeof del_path, "%s.deleted", argv[1]);
  int dfd = open(del_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (dfd < 0 || write(dfd, "0123456789", 10) != 10 || lseek(dfd, 4, SEEK_SET) != 4) return 8;
  unlink(del_path);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) return 4;

  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, "hello\n", 6) != 6 || lseek(fd, 1000, SEEK_SET) != 1000) return 5;

  int avx = __builtin_cpu_supports("avx");
  static const uint64_t want[4] = {0x1111222233334444ull, 0x5555666677778888ull,
                                   0x99990000aaaabbbbull, 0xccccddddeeeeffffull};
  if (avx) __asm__ volatile("vmovdqu %0, %%ymm8" : : "m"(want) : "xmm8");

  write(1, "ready\n", 6);
  while (usr1_count == 0) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }

  uint64_t got[4] = {0, 0, 0, 0};
  if (avx) __asm__ volatile("vmovdqu %%ymm8, %0" : "=m"(got) : : "memory");
  for (size_t i = 0; i < heap_words; ++i)
    if (heap[i] != pat(i)) return 10;
  for (size_t i = 0; i < map_words; ++i)
    if (map[i] != pat(i + 7)) return 11;
  for (size_t i = 0; i < fixed_words; ++i)
    if (fixed[i] != pat(i + 13)) return 16;
  for (int i = 0; i < 8192; ++i)
    if (ring[i] != 'R') return 17;
  char four[4];
  if (read(dfd, four, 4) != 4 || memcmp(four, "4567", 4) != 0) return 18;
  if (avx && memcmp(got, want, sizeof want) != 0) return 12;
  if (write(fd, "world\n", 6) != 6) return 13;
  struct timespec now;
  if (clock_gettime(CLOCK_MONOTONIC, &now) != 0 || now.tv_sec == 0) return 14;
  raise(SIGUSR1);  // the handler still runs after restore
  if (usr1_count != 2) return 15;
  close(fd);
  return 0;
}
