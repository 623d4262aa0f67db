/* SPDX-License-Identifier: Apache-2.0 */
/* libferry: the self-checkpoint call. Asks the job's supervisor (over its control socket) to
 * checkpoint this process, then waits on a futex word that the supervisor sets once the
 * generation is committed (FERRY_RESUMED) or that the restorer sets in the restored image
 * (FERRY_RESTARTED). The socket is closed before the checkpoint starts, so the image holds no
 * socket. Plain C with no dependencies: it lives inside the application. */
#define _GNU_SOURCE
#include "ferry/ferry.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

enum { kFailed = 3 };

int ferry_is_managed(void) {
  const char* path = getenv("FERRY_CONTROL");
  return path != NULL && *path != '\0';
}

static int send_all(int fd, const char* buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

int ferry_checkpoint(void) {
  const char* path = getenv("FERRY_CONTROL");
  if (path == NULL || *path == '\0') {
    errno = ENOTSUP;
    return -1;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, path);

  /* The word the supervisor or the restorer writes; it lives on this call's stack. */
  volatile int32_t flag = 0;

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  char req[128];
  int len = snprintf(req, sizeof req, "self %ld %llu\n", (long)syscall(SYS_gettid),
                     (unsigned long long)(uintptr_t)&flag);
  char reply[64];
  ssize_t got = -1;
  if (send_all(fd, req, (size_t)len) == 0) got = read(fd, reply, sizeof reply - 1);
  close(fd); /* the checkpoint starts only after the supervisor sees this close */
  if (got <= 0 || strncmp(reply, "accepted", 8) != 0) {
    errno = EIO;
    return -1;
  }
  /* Bounded by the supervisor: it always writes the flag, also on failure. */
  while (flag == 0) syscall(SYS_futex, &flag, FUTEX_WAIT, 0, NULL, NULL, 0);
  if (flag == kFailed) {
    errno = EIO;
    return -1;
  }
  return flag;
}
