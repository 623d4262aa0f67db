/* Target of tree_e2e_test.cpp: a parent and a forked child sharing one open file description
 * (fd 3, one offset). The child leads its own process group, writes "child up", waits for
 * SIGUSR1, writes "child done" and exits 7; the parent sits in waitpid and then writes the
 * child's status. Prints "ready" on stdout once the child is set up.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: tree_target OUTFILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

static void put(int fd, const char *s) {
  if (write(fd, s, strlen(s)) != (ssize_t)strlen(s)) _exit(20);
}

int main(int argc, char **argv) {
  if (argc < 2) return 64;
  int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0 || dup2(out, 3) != 3) return 65;
  if (out != 3) close(out);
  int sync[2];
  if (pipe(sync) != 0) return 66;
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  pid_t child = fork();
  if (child < 0) return 67;
  if (child == 0) {
    close(sync[0]);
    if (setpgid(0, 0) != 0) _exit(21);
    put(3, "child up\n");
    if (write(sync[1], "x", 1) != 1) _exit(22);
    close(sync[1]);
    while (!got_usr1) usleep(10000);
    char line[96];
    snprintf(line, sizeof line, "child done, leads its group: %s\n", getpgid(0) == getpid() ? "yes" : "no");
    put(3, line);
    _exit(7);
  }
  close(sync[1]);
  char c;
  if (read(sync[0], &c, 1) != 1) return 68;
  close(sync[0]);
  printf("ready\n");
  fflush(stdout);
  int st = 0;
  if (waitpid(child, &st, 0) != child) return 69;
  char line[64];
  snprintf(line, sizeof line, "parent: child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  put(3, line);
  return 0;
}
