// SPDX-License-Identifier: Apache-2.0
// Target of timers_e2e_test.cpp: an itimer, POSIX timers (one id gap), eventfd, timerfd,
// signalfd and epoll, a queued real-time signal; runs ~800 ms of monotonic time and then
// checks rates, clock continuity and every object's state. Writes "ok" or why not to argv[1].
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alrm, ptick, rt_code, rt_value, rt_seen;

static void on_alrm(int s) { (void)s; alrm++; }
static void on_ptimer(int s) { (void)s; ptick++; }
static void on_rt(int s, siginfo_t* si, void* uc) {
  (void)s; (void)uc;
  rt_seen++;
  rt_code = si->si_code;
  rt_value = si->si_value.sival_int;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static FILE* out;
#define CHECK(cond, ...) do { if (!(cond)) { fprintf(out, __VA_ARGS__); fputc('\n', out); fclose(out); return 1; } } while (0)

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  out = fopen(argv[1], "w");
  if (!out) return 2;
  signal(SIGALRM, on_alrm);
  signal(SIGRTMIN + 1, on_ptimer);
  struct sigaction sa = {0};
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN + 3, &sa, NULL);

  sigset_t blk;
  sigemptyset(&blk);
  sigaddset(&blk, SIGRTMIN + 3);
  sigaddset(&blk, SIGUSR2);
  sigprocmask(SIG_BLOCK, &blk, NULL);
  union sigval v = {.sival_int = 777};
  sigqueue(getpid(), SIGRTMIN + 3, v);  // stays pending across the checkpoint
  kill(getpid(), SIGUSR2);              // read through the signalfd

  struct itimerval itv = {{0, 20000}, {0, 20000}};
  setitimer(ITIMER_REAL, &itv, NULL);
  struct sigevent sev = {0};
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGRTMIN + 1;
  timer_t t0, t1, t2;
  timer_create(CLOCK_MONOTONIC, &sev, &t0);
  timer_create(CLOCK_MONOTONIC, &sev, &t1);
  timer_create(CLOCK_MONOTONIC, &sev, &t2);
  timer_delete(t1);  // an id gap: t2 must keep its id
  struct itimerspec its = {{0, 10000000}, {0, 10000000}};
  timer_settime(t2, 0, &its, NULL);

  int efd = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  timerfd_settime(tfd, 0, &its, NULL);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  int sfd = signalfd(-1, &usr2, SFD_NONBLOCK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0xe0e0};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  ev.data.u64 = 0x7f7f;
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
  ev.data.u64 = 0x5151;
  epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

  write(1, "ready\n", 6);
  const int64_t start = now_ns();
  int64_t prev = start, max_step = 0;
  uint64_t tfd_ticks = 0;
  // Expirations that may have merged into one signal while this process did not run (a
  // loaded machine, the capture itself): a standard signal does not queue.
  int64_t merged20 = 0, merged10 = 0;
  while (now_ns() - start < 800000000) {
    struct timespec d = {0, 1000000};
    nanosleep(&d, NULL);
    int64_t n = now_ns();
    CHECK(n >= prev, "monotonic went back by %lld ns", (long long)(prev - n));
    if (n - prev > max_step) max_step = n - prev;
    merged20 += (n - prev) / 20000000;
    merged10 += (n - prev) / 10000000;
    prev = n;
    uint64_t x;
    if (read(tfd, &x, 8) == 8) tfd_ticks += x;
  }
  // The downtime (freeze to restore) must not show up beyond the restore's own duration.
  CHECK(max_step < 5000000000LL, "monotonic jumped by %lld ms", (long long)(max_step / 1000000));
  // 800 ms: 40 itimer ticks, 80 POSIX timer and timerfd ticks; a checkpoint may lose a few,
  // and a gap in this loop may have merged several into one signal.
  CHECK(alrm + merged20 >= 25 && alrm <= 50, "itimer ticks %d (+%lld possibly merged)", (int)alrm,
        (long long)merged20);
  CHECK(ptick + merged10 >= 50 && ptick <= 100, "posix timer ticks %d (+%lld possibly merged)", (int)ptick,
        (long long)merged10);
  CHECK(tfd_ticks + merged10 >= 50 && tfd_ticks <= 100, "timerfd ticks %llu (+%lld in gaps)",
        (unsigned long long)tfd_ticks, (long long)merged10);
  CHECK((intptr_t)t2 == 2, "timer id %ld", (long)(intptr_t)t2);
  CHECK(timer_gettime(t2, &its) == 0 && its.it_interval.tv_nsec == 10000000, "timer_gettime of id 2");
  CHECK(timer_gettime(t1, &its) != 0, "deleted timer id 1 exists again");

  // epoll: all three are ready; eventfd gives 1 three times (semaphore), then EAGAIN.
  struct epoll_event evs[8];
  int n = epoll_wait(ep, evs, 8, 1000);
  int seen_e = 0, seen_s = 0;
  for (int i = 0; i < n; ++i) {
    if (evs[i].data.u64 == 0xe0e0) seen_e = 1;
    if (evs[i].data.u64 == 0x5151) seen_s = 1;
  }
  CHECK(seen_e && seen_s, "epoll_wait: %d events, eventfd %d signalfd %d", n, seen_e, seen_s);
  uint64_t x;
  for (int i = 0; i < 3; ++i) CHECK(read(efd, &x, 8) == 8 && x == 1, "eventfd read %d", i);
  CHECK(read(efd, &x, 8) < 0 && errno == EAGAIN, "eventfd not empty");
  struct signalfd_siginfo ssi;
  CHECK(read(sfd, &ssi, sizeof ssi) == (ssize_t)sizeof ssi && ssi.ssi_signo == SIGUSR2, "signalfd");

  sigset_t rt;
  sigemptyset(&rt);
  sigaddset(&rt, SIGRTMIN + 3);
  sigprocmask(SIG_UNBLOCK, &rt, NULL);
  CHECK(rt_seen == 1 && rt_code == SI_QUEUE && rt_value == 777, "queued signal: seen %d code %d value %d",
        (int)rt_seen, (int)rt_code, (int)rt_value);
  fprintf(out, "ok max_step_ms=%lld\n", (long long)(max_step / 1000000));
  fclose(out);
  return 0;
}
