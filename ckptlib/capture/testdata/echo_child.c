// SPDX-License-Identifier: Apache-2.0
// Test workload for capture_test: answers each byte read from stdin with byte+1 on stdout,
// blocking in read() in between. "--socket" also keeps a socket open at fd 3; "--fork" keeps a
// child process.
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--socket") == 0 && socket(AF_INET, SOCK_DGRAM, 0) < 0) return 2;
    if (strcmp(argv[i], "--fork") == 0 && fork() == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;) pause();
    }
  }
  if (write(1, "ready\n", 6) != 6) return 3;
  for (;;) {
    unsigned char c;
    if (read(0, &c, 1) != 1) return 0;
    c++;
    if (write(1, &c, 1) != 1) return 4;
  }
}
