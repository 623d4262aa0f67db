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
    if (strcmp(argv[i], "--fork") == 0) {
      int sync[2];
      if (pipe(sync) != 0) return 2;
      pid_t parent = getpid();
      if (fork() == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);  // parent already gone
        close(sync[1]);  // the parent's read() returns once this end is closed
        for (;;) pause();
      }
      close(sync[1]);
      char c;
      if (read(sync[0], &c, 1) < 0) return 2;  // EOF: the child has its death signal set
      close(sync[0]);
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
