// SPDX-License-Identifier: Apache-2.0
// Target of the multi-threaded restore end-to-end tests. Parks threads in every kind of wait
// (condvar, barrier, pthread_join of a thread in nanosleep), one spinning, one holding a
// value in xmm/ymm registers, while main holds a recursive mutex twice; writes
// "before pid=P ppid=Q tids=..." to argv[1], prints "ready" and waits for SIGUSR1. Then it
// wakes everyone, checks, writes "after pid=P ppid=Q tids=..." and exits:
// 0 good; 20 condvar; 21 barrier; 22 join/nanosleep thread; 23 a thread's gettid() changed
// although argv[2] is "exact"; 24 pthread_kill; 25 kill(getpid()); 26 recursive mutex;
// 27 new thread after restore; 28 spinning thread's sums; 29 register value lost.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

enum { kA, kB, kC, kD, kE, kF, kThreads };

static pid_t tids[kThreads], after_tids[kThreads];
static int exact_mode;
static volatile sig_atomic_t usr1, usr2_count, usr2_tid;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t rmu;
static int go_a, parked_a;
static pthread_barrier_t barrier;
static volatile int stop_d, stop_e, stop_f;
static volatile int started;

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

static void on_usr1(int s) { (void)s; usr1 = 1; }
static void on_usr2(int s) { (void)s; usr2_count++; usr2_tid = my_tid(); }

static void* thread_a(void* arg) {  // condvar waiter
  (void)arg;
  tids[kA] = my_tid();
  pthread_mutex_lock(&mu);
  parked_a = 1;
  __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
  while (!go_a) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  after_tids[kA] = my_tid();
  return (void*)(intptr_t)(!exact_mode || after_tids[kA] == tids[kA] ? 1 : 2);
}

static void* thread_b(void* arg) {  // blocked in a barrier (the other party is main)
  (void)arg;
  tids[kB] = my_tid();
  __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
  int r = pthread_barrier_wait(&barrier);
  after_tids[kB] = my_tid();
  return (void*)(intptr_t)(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD ? 1 : 2);
}

static void* thread_d(void* arg) {  // nanosleep loop
  (void)arg;
  tids[kD] = my_tid();
  __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
  while (!stop_d) {
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  after_tids[kD] = my_tid();
  return (void*)(intptr_t)7;
}

static void* thread_c(void* arg) {  // blocked in pthread_join(D)
  (void)arg;
  tids[kC] = my_tid();
  pthread_t d;
  if (pthread_create(&d, NULL, thread_d, NULL) != 0) return (void*)2;
  __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
  void* r = NULL;
  if (pthread_join(d, &r) != 0) return (void*)2;
  after_tids[kC] = my_tid();
  return (void*)(intptr_t)(r == (void*)7 ? 1 : 2);
}

static void* thread_e(void* arg) {  // spinning: two sums that must stay consistent
  (void)arg;
  tids[kE] = my_tid();
  __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
  uint64_t i = 0, sum = 0, sum2 = 0;
  while (!stop_e) {
    ++i;
    sum += i;
    sum2 += 2 * i;
  }
  after_tids[kE] = my_tid();
  return (void*)(intptr_t)(sum * 2 == sum2 && sum == i * (i + 1) / 2 ? 1 : 2);
}

static void* thread_f(void* arg) {  // a value kept in ymm/xmm registers while sleeping
  (void)arg;
  tids[kF] = my_tid();
  int avx = __builtin_cpu_supports("avx");
  static const uint64_t want[4] = {0x0102030405060708ull, 0x1112131415161718ull,
                                   0x2122232425262728ull, 0x3132333435363738ull};
  if (avx) __asm__ volatile("vmovdqu %0, %%ymm9" : : "m"(want) : "xmm9");
  __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
  while (!stop_f) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    syscall(SYS_nanosleep, &ts, NULL);  // raw: keep libc from touching vector registers
  }
  after_tids[kF] = my_tid();
  uint64_t got[4] = {0, 0, 0, 0};
  if (avx) __asm__ volatile("vmovdqu %%ymm9, %0" : "=m"(got) : : "memory");
  return (void*)(intptr_t)(!avx || memcmp(got, want, sizeof want) == 0 ? 1 : 2);
}

static void* thread_late(void* arg) {  // created after the restore: takes the recursive mutex
  (void)arg;
  if (pthread_mutex_trylock(&rmu) != 0) return (void*)2;
  pthread_mutex_unlock(&rmu);
  return (void*)1;
}

static void print_ids(FILE* out, const char* when, const pid_t* ids) {
  fprintf(out, "%s pid=%d ppid=%d main=%d", when, (int)getpid(), (int)getppid(), (int)my_tid());
  for (int i = 0; i < kThreads; ++i) fprintf(out, " %d", (int)ids[i]);
  fprintf(out, "\n");
  fflush(out);
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  int exact = exact_mode = strcmp(argv[2], "exact") == 0;
  FILE* out = fopen(argv[1], "w");
  if (!out) return 3;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) return 4;
  sa.sa_handler = on_usr2;
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGUSR2, &sa, NULL) != 0) return 4;
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&rmu, &ma);
  if (pthread_mutex_lock(&rmu) != 0 || pthread_mutex_lock(&rmu) != 0) return 5;
  if (pthread_barrier_init(&barrier, NULL, 2) != 0) return 6;

  pthread_t th[6];
  void* (*fns[6])(void*) = {thread_a, thread_b, thread_c, thread_e, thread_f, NULL};
  int n = 0;
  for (; fns[n]; ++n)
    if (pthread_create(&th[n], NULL, fns[n], NULL) != 0) return 7;
  while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < kThreads) usleep(1000);
  for (;;) {  // A must really wait on the condvar
    pthread_mutex_lock(&mu);
    int ok = parked_a;
    pthread_mutex_unlock(&mu);
    if (ok) break;
    usleep(1000);
  }
  usleep(50 * 1000);  // let every thread reach its blocking call
  print_ids(out, "before", tids);
  if (write(1, "ready\n", 6) != 6) return 8;
  while (!usr1) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }

  int rc = 0;
  if (exact) {  // pthread_kill uses glibc's cached tid of B
    if (pthread_kill(th[1], SIGUSR2) != 0) rc = rc ? rc : 24;
    for (int i = 0; i < 500 && usr2_count == 0; ++i) usleep(1000);
    if (usr2_count != 1 || usr2_tid != tids[kB]) rc = rc ? rc : 24;
    if (kill(getpid(), SIGUSR2) != 0) rc = rc ? rc : 25;
    for (int i = 0; i < 500 && usr2_count < 2; ++i) usleep(1000);
    if (usr2_count != 2) rc = rc ? rc : 25;
  }
  pthread_mutex_lock(&mu);
  go_a = 1;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  int br = pthread_barrier_wait(&barrier);
  if (br != 0 && br != PTHREAD_BARRIER_SERIAL_THREAD) rc = rc ? rc : 21;
  stop_d = stop_e = stop_f = 1;
  static const int codes[5] = {20, 21, 22, 28, 29};
  for (int i = 0; i < n; ++i) {
    void* r = NULL;
    if (pthread_join(th[i], &r) != 0 || r != (void*)1) rc = rc ? rc : codes[i];
  }
  if (exact) {
    for (int i = 0; i < kThreads; ++i)
      if (after_tids[i] != tids[i]) rc = rc ? rc : 23;
  }
  if (pthread_mutex_unlock(&rmu) != 0 || pthread_mutex_unlock(&rmu) != 0) rc = rc ? rc : 26;
  pthread_t late;
  void* lr = NULL;
  if (pthread_create(&late, NULL, thread_late, NULL) != 0 || pthread_join(late, &lr) != 0 || lr != (void*)1)
    rc = rc ? rc : 27;
  print_ids(out, "after", after_tids);
  fclose(out);
  return rc;
}
