/* Exited children not yet reaped, across checkpoints: the parent forks child A, which exits 7,
 * and child B, which kills itself with SIGTERM; it waits for each to have exited without
 * reaping it (waitid WNOWAIT), counts SIGCHLDs in a handler, then runs on (ticking) and only
 * at the end reaps both with waitpid(pid): the statuses, the pids and the number of SIGCHLDs
 * (no extra one from the restore) must be those of the uninterrupted run.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [STEPS=1500] */
#include "scenario.h"

#include <signal.h>
#include <sys/wait.h>

static volatile sig_atomic_t sigchld_count;
static void on_sigchld(int sig)
{
    (void)sig;
    sigchld_count++;
}

static pid_t spawn(int how)
{
    pid_t c = fork();
    SCN_CHECK(c >= 0, "fork");
    if (c == 0) {
        if (how == 0)
            _exit(7);
        signal(SIGTERM, SIG_DFL);
        kill(getpid(), SIGTERM);
        _exit(99);
    }
    siginfo_t si;
    SCN_CHECK(waitid(P_PID, (id_t)c, &si, WEXITED | WNOWAIT) == 0, "waitid WNOWAIT");
    return c;
}

int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 1500;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART;
    SCN_CHECK(sigaction(SIGCHLD, &sa, NULL) == 0, "sigaction");
    pid_t a = spawn(0);
    pid_t b = spawn(1);
    printf("two children exited, not reaped\n");
    fflush(stdout);
    scn_ready();
    uint64_t state = 7, sum = 0;
    for (long i = 0; i < steps; i++) {
        sum += scn_xorshift64(&state) >> 40;
        scn_tick();
        scn_sleep_us(4000);
    }
    int sa_st = 0, sb_st = 0;
    pid_t ra = waitpid(a, &sa_st, WNOHANG);
    pid_t rb = waitpid(b, &sb_st, WNOHANG);
    printf("reaped A: %s, status %d (exited %d)\n", ra == a ? "same pid" : "NOT FOUND", sa_st,
           WIFEXITED(sa_st) ? WEXITSTATUS(sa_st) : -1);
    printf("reaped B: %s, status %d (signal %d)\n", rb == b ? "same pid" : "NOT FOUND", sb_st,
           WIFSIGNALED(sb_st) ? WTERMSIG(sb_st) : -1);
    printf("no more children: %s; SIGCHLD handled %d times; sum %llu\n",
           waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD ? "yes" : "no", (int)sigchld_count,
           (unsigned long long)sum);
    return 0;
}
