/* Something ferry does not support makes checkpoints fail without harming the program: in
 * phase 1 the program holds KIND and uses it every step; phase 2, after it released KIND and
 * created the file "phase2", has nothing unsupported and must checkpoint normally.
 * KIND: socket (a connected AF_UNIX datagram pair), child (a child process), thread (a second
 * thread), inotify (an fd of a kind ferry does not restore; eventfd, which this scenario
 * used before, is restored since the timers/event-fd work: see ../event_fds), clone_vm (a
 * child process made by clone(CLONE_VM), sharing the parent's address space as a vfork or
 * posix_spawn child does until it execs; it runs raw system calls on its own stack only).
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload KIND [PHASE1_ITERATIONS=2500] [PHASE2_ITERATIONS=2000] [SLEEP_US=1000] */
#include "scenario.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static volatile int thread_stop;
static volatile long thread_steps;

/* The CLONE_VM child: shares our memory (so it sees clone_stop) but not our thread's TLS
 * ownership, so it uses raw system calls only, never errno or stdio. */
static volatile int clone_stop;
static volatile long clone_steps;
static char clone_stack[64 * 1024] __attribute__((aligned(16)));

static int clone_main(void *arg)
{
    (void)arg;
    struct timespec ms = {0, 1000000};
    while (!clone_stop) {
        clone_steps++;
        syscall(SYS_nanosleep, &ms, NULL);
    }
    syscall(SYS_exit, 0);
    return 0;
}

static void *thread_main(void *arg)
{
    (void)arg;
    while (!thread_stop) {
        thread_steps++;
        scn_sleep_us(1000);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *kind = argc > 1 ? argv[1] : "socket";
    long phase1 = argc > 2 ? atol(argv[2]) : 2500;
    long phase2 = argc > 3 ? atol(argv[3]) : 2000;
    long sleep_us = argc > 4 ? atol(argv[4]) : 1000;

    int sv[2] = {-1, -1}, efd = -1, ino = -1;
    pid_t child = -1;
    pthread_t thread;
    if (strcmp(kind, "socket") == 0) {
        SCN_CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
    } else if (strcmp(kind, "child") == 0) {
        fflush(stdout);
        child = fork();
        SCN_CHECK(child >= 0, "fork");
        if (child == 0) {
            for (;;)
                scn_sleep_us(1000); /* until the parent kills it */
        }
    } else if (strcmp(kind, "thread") == 0) {
        SCN_CHECK(pthread_create(&thread, NULL, thread_main, NULL) == 0, "pthread_create");
    } else if (strcmp(kind, "clone_vm") == 0) {
        child = clone(clone_main, clone_stack + sizeof clone_stack, CLONE_VM | SIGCHLD, NULL);
        SCN_CHECK(child > 0, "clone(CLONE_VM)");
    } else if (strcmp(kind, "eventfd") == 0) {
        efd = eventfd(0, 0);
        SCN_CHECK(efd >= 0, "eventfd");
    } else if (strcmp(kind, "inotify") == 0) {
        ino = inotify_init1(IN_NONBLOCK);
        SCN_CHECK(ino >= 0, "inotify_init1");
    } else {
        fprintf(stderr, "scenario: unknown KIND %s\n", kind);
        return 64;
    }
    printf("holding: %s\n", kind);
    scn_ready();

    long sum = 0;
    for (long i = 0; i < phase1; i++) {
        if (sv[0] >= 0) {
            SCN_CHECK(send(sv[0], &i, sizeof i, 0) == sizeof i, "send");
            long got;
            SCN_CHECK(recv(sv[1], &got, sizeof got, 0) == sizeof got, "recv");
            sum += got;
        } else if (efd >= 0) {
            uint64_t one = 1, got;
            SCN_CHECK(write(efd, &one, 8) == 8, "write eventfd");
            SCN_CHECK(read(efd, &got, 8) == 8, "read eventfd");
            sum += (long)got * i;
        } else if (child > 0) {
            SCN_CHECK(kill(child, 0) == 0, "child alive");
            sum += i;
        } else {
            sum += i;
        }
        if (i % 250 == 249)
            printf("phase 1 step %ld: sum %ld\n", i + 1, sum);
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    if (sv[0] >= 0) {
        close(sv[0]);
        close(sv[1]);
    }
    if (efd >= 0)
        close(efd);
    if (ino >= 0)
        close(ino);
    if (child > 0) {
        int status;
        if (strcmp(kind, "clone_vm") == 0) {
            clone_stop = 1;
            SCN_CHECK(waitpid(child, &status, 0) == child, "waitpid");
            printf("clone_vm child exited with %d (it ran: %s)\n",
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1, clone_steps > 0 ? "yes" : "no");
        } else {
            kill(child, SIGKILL);
            SCN_CHECK(waitpid(child, &status, 0) == child, "waitpid");
            printf("child ended by signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
        }
    }
    if (strcmp(kind, "thread") == 0) {
        thread_stop = 1;
        SCN_CHECK(pthread_join(thread, NULL) == 0, "pthread_join");
        printf("thread joined (it ran: %s)\n", thread_steps > 0 ? "yes" : "no");
    }
    int fd = open("phase2", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    SCN_CHECK(fd >= 0, "create phase2");
    close(fd);
    printf("%s released\n", kind);

    uint64_t state = SCN_FNV_INIT;
    for (long i = 0; i < phase2; i++) {
        state = scn_fnv(state, &i, sizeof i);
        if (i % 250 == 249)
            printf("phase 2 step %ld: state %016llx\n", i + 1, (unsigned long long)state);
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    printf("done\n");
    return 0;
}
