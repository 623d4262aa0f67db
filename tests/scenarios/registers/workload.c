/* Live FP/SIMD register state across a checkpoint: an assembly loop loads known values into
 * the general, x87, SSE/AVX/AVX-512 vector and opmask registers, MXCSR and the x87 control
 * word, then sleeps and ticks with raw syscalls (no C code that could spill or clobber them),
 * and finally stores them back for comparison. Prints a fixed line per feature either way.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ROUNDS=3] [ITERATIONS_PER_ROUND=1000] */
#include "scenario.h"

#include <stddef.h>
#include <sys/syscall.h>

#define MXCSR_TEST 0xffc0u  /* all exceptions masked, round toward zero, FTZ and DAZ on */
#define FCW_TEST 0x0f7fu    /* x87: all exceptions masked, 64-bit precision, truncate */

/* Everything the assembly reads and writes, addressed from %r14. Offsets are fixed by the
 * static asserts below because the assembly spells them as numbers. */
struct regs_io {
    unsigned char vec_in[32 * 64];   /* offset 0     */
    unsigned char vec_out[32 * 64];  /* offset 2048  */
    uint64_t k_in[8];                /* offset 4096  */
    uint64_t k_out[8];               /* offset 4160  */
    uint64_t gpr_in[5];              /* offset 4224: rbx r8 r9 r12 r13 */
    uint64_t gpr_out[5];             /* offset 4264  */
    unsigned char x87_in[3][16];     /* offset 4304: 80-bit values */
    unsigned char x87_out[3][16];    /* offset 4352  */
    uint32_t mxcsr_in, mxcsr_out;    /* offset 4400, 4404 */
    uint16_t fcw_in, fcw_out;        /* offset 4408, 4410 */
    uint32_t pad;
    struct timespec sleep;           /* offset 4416 */
    const char *marker;              /* offset 4432 */
    char dot;                        /* offset 4440 */
} __attribute__((aligned(64)));

_Static_assert(offsetof(struct regs_io, k_in) == 4096, "layout");
_Static_assert(offsetof(struct regs_io, gpr_in) == 4224, "layout");
_Static_assert(offsetof(struct regs_io, x87_in) == 4304, "layout");
_Static_assert(offsetof(struct regs_io, mxcsr_in) == 4400, "layout");
_Static_assert(offsetof(struct regs_io, fcw_in) == 4408, "layout");
_Static_assert(offsetof(struct regs_io, sleep) == 4416, "layout");
_Static_assert(offsetof(struct regs_io, marker) == 4432, "layout");
_Static_assert(offsetof(struct regs_io, dot) == 4440, "layout");

/* Common head and tail: GPRs, x87 stack and control word, MXCSR. */
#define HEAD                                                                                  \
    "mov 4224(%%r14), %%rbx\n\t mov 4232(%%r14), %%r8\n\t mov 4240(%%r14), %%r9\n\t"          \
    "mov 4248(%%r14), %%r12\n\t mov 4256(%%r14), %%r13\n\t"                                   \
    "fldcw 4408(%%r14)\n\t ldmxcsr 4400(%%r14)\n\t"                                           \
    "fldt 4304(%%r14)\n\t fldt 4320(%%r14)\n\t fldt 4336(%%r14)\n\t"
/* The loop: nanosleep, and every 16th round open/write/close of the marker file. */
#define LOOP                                                                                  \
    "1:\n\t"                                                                                  \
    "mov $35, %%eax\n\t lea 4416(%%r14), %%rdi\n\t xor %%esi, %%esi\n\t syscall\n\t"          \
    "test $15, %%r15\n\t jnz 2f\n\t"                                                          \
    "mov 4432(%%r14), %%rdi\n\t test %%rdi, %%rdi\n\t jz 2f\n\t"                              \
    "mov $2, %%eax\n\t mov $0x80441, %%esi\n\t mov $420, %%edx\n\t syscall\n\t"               \
    "test %%rax, %%rax\n\t js 2f\n\t"                                                         \
    "mov %%rax, %%rdi\n\t mov $1, %%eax\n\t lea 4440(%%r14), %%rsi\n\t mov $1, %%edx\n\t"     \
    "syscall\n\t mov $3, %%eax\n\t syscall\n\t"                                               \
    "2:\n\t dec %%r15\n\t jnz 1b\n\t"
#define TAIL                                                                                  \
    "fstpt 4352(%%r14)\n\t fstpt 4368(%%r14)\n\t fstpt 4384(%%r14)\n\t"                       \
    "fnstcw 4410(%%r14)\n\t stmxcsr 4404(%%r14)\n\t"                                          \
    "mov %%rbx, 4264(%%r14)\n\t mov %%r8, 4272(%%r14)\n\t mov %%r9, 4280(%%r14)\n\t"          \
    "mov %%r12, 4288(%%r14)\n\t mov %%r13, 4296(%%r14)\n\t"
#define CLOBBERS                                                                              \
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",         \
        "memory", "cc", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)",    \
        "st(7)", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",      \
        "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

/* One load or store of register REG##N at BASE + N * WIDTH from %r14. */
#define LD1(op, base, w, reg, n) op " " #base "+" #n "*" #w "(%%r14), %%" reg #n "\n\t"
#define ST1(op, base, w, reg, n) op " %%" reg #n ", " #base "+" #n "*" #w "(%%r14)\n\t"
#define EACH16LO(m, op, base, w, reg)                                                         \
    m(op, base, w, reg, 0) m(op, base, w, reg, 1) m(op, base, w, reg, 2) m(op, base, w, reg, 3) \
    m(op, base, w, reg, 4) m(op, base, w, reg, 5) m(op, base, w, reg, 6) m(op, base, w, reg, 7) \
    m(op, base, w, reg, 8) m(op, base, w, reg, 9) m(op, base, w, reg, 10)                     \
    m(op, base, w, reg, 11) m(op, base, w, reg, 12) m(op, base, w, reg, 13)                   \
    m(op, base, w, reg, 14) m(op, base, w, reg, 15)
#define EACH16HI(m, op, base, w, reg)                                                         \
    m(op, base, w, reg, 16) m(op, base, w, reg, 17) m(op, base, w, reg, 18)                   \
    m(op, base, w, reg, 19) m(op, base, w, reg, 20) m(op, base, w, reg, 21)                   \
    m(op, base, w, reg, 22) m(op, base, w, reg, 23) m(op, base, w, reg, 24)                   \
    m(op, base, w, reg, 25) m(op, base, w, reg, 26) m(op, base, w, reg, 27)                   \
    m(op, base, w, reg, 28) m(op, base, w, reg, 29) m(op, base, w, reg, 30)                   \
    m(op, base, w, reg, 31)
#define V16(op, base, w, reg) EACH16LO(LD1, op, base, w, reg)
#define S16(op, base, w, reg) EACH16LO(ST1, op, base, w, reg)
#define K8(op, base)                                                                          \
    op " " #base "+0(%%r14), %%k0\n\t" op " " #base "+8(%%r14), %%k1\n\t"                     \
    op " " #base "+16(%%r14), %%k2\n\t" op " " #base "+24(%%r14), %%k3\n\t"                   \
    op " " #base "+32(%%r14), %%k4\n\t" op " " #base "+40(%%r14), %%k5\n\t"                   \
    op " " #base "+48(%%r14), %%k6\n\t" op " " #base "+56(%%r14), %%k7\n\t"
#define KS8(op, base)                                                                         \
    op " %%k0, " #base "+0(%%r14)\n\t" op " %%k1, " #base "+8(%%r14)\n\t"                     \
    op " %%k2, " #base "+16(%%r14)\n\t" op " %%k3, " #base "+24(%%r14)\n\t"                   \
    op " %%k4, " #base "+32(%%r14)\n\t" op " %%k5, " #base "+40(%%r14)\n\t"                   \
    op " %%k6, " #base "+48(%%r14)\n\t" op " %%k7, " #base "+56(%%r14)\n\t"

static void run_sse(struct regs_io *io, long n)
{
    /* %r14 holds the base pointer, %r15 counts rounds down (both survive syscalls). */
    register struct regs_io *base __asm__("r14") = io;
    register long count __asm__("r15") = n;
    __asm__ volatile(HEAD V16("movdqu", 0, 16, "xmm")
                     LOOP S16("movdqu", 2048, 16, "xmm") TAIL
                     : "+r"(base), "+r"(count)
                     :
                     : CLOBBERS);
}

__attribute__((target("avx"))) static void run_avx(struct regs_io *io, long n)
{
    /* %r14 holds the base pointer, %r15 counts rounds down (both survive syscalls). */
    register struct regs_io *base __asm__("r14") = io;
    register long count __asm__("r15") = n;
    __asm__ volatile(HEAD V16("vmovdqu", 0, 32, "ymm")
                     LOOP S16("vmovdqu", 2048, 32, "ymm") TAIL "vzeroupper\n\t"
                     : "+r"(base), "+r"(count)
                     :
                     : CLOBBERS);
}

__attribute__((target("avx512f,avx512bw"))) static void run_avx512(struct regs_io *io, long n)
{
    /* %r14 holds the base pointer, %r15 counts rounds down (both survive syscalls). */
    register struct regs_io *base __asm__("r14") = io;
    register long count __asm__("r15") = n;
    __asm__ volatile(HEAD V16("vmovdqu64", 0, 64, "zmm")
                     EACH16HI(LD1, "vmovdqu64", 0, 64, "zmm") K8("kmovq", 4096)
                     LOOP S16("vmovdqu64", 2048, 64, "zmm") EACH16HI(ST1, "vmovdqu64", 2048, 64, "zmm")
                     KS8("kmovq", 4160) TAIL "vzeroupper\n\t"
                     : "+r"(base), "+r"(count)
                     :
                     : CLOBBERS, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
                       "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30",
                       "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

/* Compares nregs registers of width bytes and prints one line. */
static void report_vec(const char *label, const struct regs_io *io, int nregs, int width)
{
    for (int r = 0; r < nregs; r++) {
        if (memcmp(io->vec_in + r * width, io->vec_out + r * width, width) != 0) {
            int b = 0;
            while (io->vec_in[r * width + b] == io->vec_out[r * width + b])
                b++;
            printf("%s: MISMATCH in register %d at byte %d\n", label, r, b);
            return;
        }
    }
    printf("%s: ok\n", label);
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 3;
    long iterations = argc > 2 ? atol(argv[2]) : 1000;
    static struct regs_io io;
    __builtin_cpu_init();
    int has_avx = __builtin_cpu_supports("avx");
    int has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    printf("cpu: sse2 yes, avx %s, avx512f+bw %s\n", has_avx ? "yes" : "no",
           has_avx512 ? "yes" : "no");
    io.sleep.tv_nsec = 1000000;
    io.marker = getenv("SCENARIO_MARKER");
    io.dot = '.';
    scn_ready();

    for (long round = 0; round < rounds; round++) {
        uint64_t seed = 0x1234567890abcdefULL + (uint64_t)round * 0x9e3779b97f4a7c15ULL;
        scn_fill_xorshift(io.vec_in, sizeof io.vec_in, seed);
        scn_fill_xorshift(io.k_in, sizeof io.k_in, seed ^ 0x55);
        scn_fill_xorshift(io.gpr_in, sizeof io.gpr_in, seed ^ 0xaa);
        memset(io.vec_out, 0, sizeof io.vec_out);
        memset(io.k_out, 0, sizeof io.k_out);
        memset(io.gpr_out, 0, sizeof io.gpr_out);
        memset(io.x87_out, 0, sizeof io.x87_out);
        long double x[3] = {1.0L / 3.0L + round, -2.718281828459045235360L * 1e300L,
                            3.141592653589793238462L / (round + 7)};
        for (int i = 0; i < 3; i++) {
            memset(io.x87_in[i], 0, 16);
            memcpy(io.x87_in[i], &x[i], 10);
        }
        io.mxcsr_in = MXCSR_TEST;
        io.fcw_in = FCW_TEST;

        const char *path;
        if (has_avx512) {
            run_avx512(&io, iterations);
            path = "avx512";
        } else if (has_avx) {
            run_avx(&io, iterations);
            path = "avx";
        } else {
            run_sse(&io, iterations);
            path = "sse";
        }
        __asm__ volatile("ldmxcsr %0" : : "m"((uint32_t){0x1f80}));
        __asm__ volatile("fldcw %0" : : "m"((uint16_t){0x037f}));

        printf("round %ld (%s path):\n", round, path);
        printf("  gpr rbx r8 r9 r12 r13: %s\n",
               memcmp(io.gpr_in, io.gpr_out, sizeof io.gpr_in) == 0 ? "ok" : "MISMATCH");
        /* the x87 stack is popped in reverse order */
        int x87_ok = 1;
        for (int i = 0; i < 3; i++)
            x87_ok &= memcmp(io.x87_in[i], io.x87_out[2 - i], 10) == 0;
        printf("  x87 st0-st2: %s\n", x87_ok ? "ok" : "MISMATCH");
        printf("  x87 control word: %s (%#x)\n", io.fcw_out == FCW_TEST ? "ok" : "MISMATCH",
               io.fcw_out);
        printf("  mxcsr: %s (%#x)\n", io.mxcsr_out == MXCSR_TEST ? "ok" : "MISMATCH",
               io.mxcsr_out);
        if (has_avx512) {
            report_vec("  zmm0-31", &io, 32, 64);
            printf("  k0-7: %s\n",
                   memcmp(io.k_in, io.k_out, sizeof io.k_in) == 0 ? "ok" : "MISMATCH");
        } else if (has_avx) {
            report_vec("  ymm0-15", &io, 16, 32);
            printf("  avx-512: not supported by this CPU\n");
        } else {
            report_vec("  xmm0-15", &io, 16, 16);
            printf("  avx and avx-512: not supported by this CPU\n");
        }
    }
    printf("done\n");
    return 0;
}
