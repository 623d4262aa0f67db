// SPDX-License-Identifier: Apache-2.0
// Test workload for capture_test: fills heap, anonymous, shared, memfd and /dev/shm memory with
// known patterns, keeps a regular file (argv[1], offset 5) and a deleted file (argv[2]) open,
// prints the addresses, loads ymm0 with bytes 0x11..0x30 and spins in user space.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static void on_usr1(int sig) { (void)sig; }

int main(int argc, char** argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Dispositions the capture must read back: a handler with a mask and flags, an ignored one.
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (argc < 3) return 2;
  uint32_t* heap = malloc(64 * 1024);  // below the mmap threshold: lives in [heap]
  for (uint32_t i = 0; i < 64 * 1024 / 4; ++i) heap[i] = 0xC0DE0000u + i;
  uint32_t* anon = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (uint32_t i = 0; i < (1 << 20) / 4; ++i) anon[i] = 0x5EED0000u + i;
  char* shared = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  strcpy(shared, "shared!");
  int mfd = memfd_create("ring", 0);
  if (ftruncate(mfd, 8192) != 0) return 3;
  char* ring = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  for (int i = 0; i < 8192; ++i) ring[i] = (char)(i * 7);
  char shm_path[64];
  snprintf(shm_path, sizeof shm_path, "/dev/shm/ferry-capture-test-%d", getpid());
  int sfd = open(shm_path, O_CREAT | O_RDWR | O_EXCL, 0600);
  if (sfd < 0 || ftruncate(sfd, 4096) != 0) return 4;
  char* shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
  strcpy(shm, "in /dev/shm");
  close(sfd);
  unlink(shm_path);
  int rfd = open(argv[1], O_RDWR);
  if (rfd < 0 || lseek(rfd, 5, SEEK_SET) != 5) return 5;
  int dfd = open(argv[2], O_CREAT | O_RDWR | O_TRUNC, 0600);
  if (dfd < 0 || write(dfd, "deleted content", 15) != 15) return 6;
  unlink(argv[2]);
  dprintf(1, "heap=%p anon=%p shared=%p ring=%p shm=%p memfd=%d regular=%d deleted=%d\n",
          (void*)heap, (void*)anon, (void*)shared, (void*)ring, (void*)shm, mfd, rfd, dfd);
  static unsigned char pattern[32];
  for (int i = 0; i < 32; ++i) pattern[i] = (unsigned char)(0x11 + i);
  __asm__ volatile("vmovdqu (%0), %%ymm0" ::"r"(pattern) : "xmm0");
  for (;;) __asm__ volatile("" ::: "memory");
}
