/* SPDX-License-Identifier: Apache-2.0 */
/* ids_workload: what a job sees of its ids, for test_unprivileged.py. Usage:
 *   ids_workload ITERS SLEEP_MS
 * Main holds a recursive mutex (locked twice) and an error-checking mutex for the whole run;
 * two worker threads record their gettid(). It prints its pid/ppid/tid, the workers' tids,
 * its uid/gid, its effective capabilities and the first line of /proc/self/uid_map, creates
 * start.txt, then $READY_FILE, then prints ITERS lines ("iter N pid P tid T ppid Q") SLEEP_MS
 * apart. At the end: gettid() of every thread again, pthread_kill to each worker (the
 * handler reports the tid it ran in), kill(getpid(), SIGUSR2), both mutexes unlocked by
 * their owner (glibc compares the owner field with its cached tid: EPERM when ids changed),
 * the capabilities again, and end.txt created. Output depends on nothing but the ids, so a
 * run restarted with the same ids prints exactly what an uninterrupted one prints. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handler_tid[2];
static volatile sig_atomic_t usr2_tid;
static volatile int stop;
static pid_t worker_tid[2], worker_tid_end[2];
static pthread_t workers[2];

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void on_usr1(int sig) {
  (void)sig;
  pid_t me = tid();
  for (int i = 0; i < 2; ++i)
    if (worker_tid[i] == me) handler_tid[i] = me;
}
static void on_usr2(int sig) {
  (void)sig;
  usr2_tid = tid();
}

static void* worker(void* arg) {
  int i = (int)(long)arg;
  worker_tid[i] = tid();
  while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) sleep_ms(5);
  worker_tid_end[i] = tid();
  for (int w = 0; w < 400 && !handler_tid[i]; ++w) sleep_ms(5);  // pthread_kill comes first
  return NULL;
}

static void print_caps(const char* when) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "CapEff:", 7) == 0) printf("%s %s", when, line);
  if (f) fclose(f);
}

static void touch(const char* name) {
  FILE* f = fopen(name, "w");
  if (f) fclose(f);
}

int main(int argc, char** argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 40;
  int sleep = argc > 2 ? atoi(argv[2]) : 50;
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGUSR1, on_usr1);
  signal(SIGUSR2, on_usr2);

  pthread_mutexattr_t a;
  pthread_mutex_t rec, chk;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&rec, &a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&chk, &a);
  pthread_mutex_lock(&rec);
  pthread_mutex_lock(&rec);
  pthread_mutex_lock(&chk);

  for (long i = 0; i < 2; ++i) pthread_create(&workers[i], NULL, worker, (void*)i);
  while (!worker_tid[0] || !worker_tid[1]) sleep_ms(1);
  printf("pid %d ppid %d tid %d workers %d %d\n", getpid(), getppid(), tid(), worker_tid[0], worker_tid[1]);
  printf("uid %d euid %d gid %d egid %d\n", getuid(), geteuid(), getgid(), getegid());
  print_caps("start");
  FILE* m = fopen("/proc/self/uid_map", "r");
  char map[128] = "?";
  if (m && fgets(map, sizeof map, m)) printf("uid_map %s", map);
  if (m) fclose(m);
  touch("start.txt");
  const char* ready = getenv("READY_FILE");
  if (ready) touch(ready);

  for (int it = 1; it <= iters; ++it) {
    printf("iter %d pid %d tid %d ppid %d\n", it, getpid(), tid(), getppid());
    sleep_ms(sleep);
  }

  __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 2; ++i) {
    int r = pthread_kill(workers[i], SIGUSR1);
    for (int w = 0; w < 400 && !handler_tid[i]; ++w) sleep_ms(5);
    printf("pthread_kill worker %d: %s, handler ran in tid %d\n", i, r ? strerror(r) : "ok", (int)handler_tid[i]);
  }
  for (int i = 0; i < 2; ++i) pthread_join(workers[i], NULL);
  printf("worker tids at end %d %d\n", worker_tid_end[0], worker_tid_end[1]);
  kill(getpid(), SIGUSR2);
  for (int w = 0; w < 400 && !usr2_tid; ++w) sleep_ms(5);
  printf("kill(getpid()) handled in tid %d\n", (int)usr2_tid);
  int r1 = pthread_mutex_unlock(&rec), r2 = pthread_mutex_unlock(&rec);
  int relock = pthread_mutex_lock(&chk);  // an error-checking mutex its owner locks again
  int r3 = pthread_mutex_unlock(&chk);
  printf("recursive unlock: %s, %s; error-checking relock: %s, unlock: %s\n", r1 ? strerror(r1) : "ok",
         r2 ? strerror(r2) : "ok", relock ? strerror(relock) : "ok", r3 ? strerror(r3) : "ok");
  print_caps("end");
  touch("end.txt");
  printf("done\n");
  return 0;
}
