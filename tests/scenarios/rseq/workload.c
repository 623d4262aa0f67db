/* rseq across checkpoints: glibc 2.36 registers one struct rseq per thread; ferry must
 * re-register each at the same address with the same signature, and a thread frozen inside a
 * critical section must resume at its abort handler. Three threads (main + 2) add to per-CPU
 * counters with an rseq critical section (check cpu_id, spin a little, single-instruction
 * commit), retrying after every abort; the sum of the counters must equal the number of
 * commits. At the end each thread checks that its registration is still there (a second
 * rseq() with the same area, length and signature fails with EBUSY; it would succeed if the
 * thread were unregistered) and that cpu_id and sched_getcpu() name a real CPU.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [COMMITS_PER_THREAD=3000000] */
#include "scenario.h"

#include <pthread.h>
#include <sched.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#define NTHREADS 3
#define MAXCPU 256
#define SLOT 8 /* counters 64 bytes apart */

static long commits_per_thread;
static long counters[MAXCPU * SLOT];
static char verdict[NTHREADS][200];

static struct rseq *rseq_area(void)
{
    return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/* counters[cpu] += 1 on the CPU we run on, or -1 if the section was aborted. */
static int percpu_add(struct rseq *rs)
{
    int cpu = (int)__atomic_load_n(&rs->cpu_id_start, __ATOMIC_RELAXED);
    long *slot = &counters[(cpu % MAXCPU) * SLOT];
    __asm__ __volatile__ goto(
        ".pushsection __rseq_cs, \"aw\"\n\t"
        ".balign 32\n\t"
        "3:\n\t"
        ".long 0x0, 0x0\n\t"
        ".quad 1f, (2f - 1f), 4f\n\t"
        ".popsection\n\t"
        "leaq 3b(%%rip), %%rax\n\t"
        "movq %%rax, 8(%[rs])\n\t"
        "1:\n\t"
        "cmpl %[cpu], 4(%[rs])\n\t"
        "jnz %l[aborted]\n\t"
        "movl $200, %%ecx\n\t"
        "5:\n\t"
        "decl %%ecx\n\t"
        "jnz 5b\n\t"
        "addq $1, (%[slot])\n\t"
        "2:\n\t"
        ".pushsection __rseq_failure, \"ax\"\n\t"
        ".long 0x53053053\n\t"
        "4:\n\t"
        "jmp %l[aborted]\n\t"
        ".popsection\n\t"
        :
        : [cpu] "r"(cpu), [rs] "r"(rs), [slot] "r"(slot)
        : "memory", "cc", "rax", "rcx"
        : aborted);
    return 0;
aborted:
    return -1;
}

static void *worker(void *arg)
{
    long id = (long)arg;
    struct rseq *rs = rseq_area();
    long done = 0, aborts = 0;
    while (done < commits_per_thread) {
        if (percpu_add(rs) == 0)
            done++;
        else
            aborts++;
        if (id == 0 && done % 20000 == 0)
            scn_tick();
    }
    /* Still registered here, at this address, with glibc's signature? */
    long again = syscall(SYS_rseq, rs, 32, 0, RSEQ_SIG);
    int registered = again == -1 && errno == EBUSY;
    int ncpu = (int)sysconf(_SC_NPROCESSORS_CONF);
    int cpu = sched_getcpu();
    int cpu_ok = (int)rs->cpu_id >= 0 && (int)rs->cpu_id < ncpu && cpu >= 0 && cpu < ncpu;
    snprintf(verdict[id], sizeof verdict[id], "thread %ld: %ld commits, rseq %s, cpu_id %s", id, done,
             registered ? "still registered" : again == 0 ? "FAIL (was not registered)" : "FAIL (other error)",
             cpu_ok ? "valid" : "FAIL");
    (void)aborts;
    return NULL;
}

int main(int argc, char **argv)
{
    commits_per_thread = argc > 1 ? atol(argv[1]) : 3000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (__rseq_size == 0) {
        printf("rseq: not registered by glibc on this machine\n");
        scn_ready();
        return 0;
    }
    pthread_t t[NTHREADS];
    for (long i = 1; i < NTHREADS; i++)
        SCN_CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0, "pthread_create");
    scn_ready();
    worker((void *)0);
    for (long i = 1; i < NTHREADS; i++)
        SCN_CHECK(pthread_join(t[i], NULL) == 0, "pthread_join");
    long sum = 0;
    for (int c = 0; c < MAXCPU; c++)
        sum += counters[c * SLOT];
    for (int i = 0; i < NTHREADS; i++)
        printf("%s\n", verdict[i]);
    printf("per-CPU counters sum to %ld: %s\n", sum,
           sum == commits_per_thread * NTHREADS ? "every commit counted once" : "FAIL");
    return 0;
}
