/* Memory of every kind a process can have, mutated while it runs: malloc heap (brk and
 * mmap'd chunks, freed and reallocated), private anonymous mmap grown with mremap, a region
 * with an munmap'd hole, PROT_NONE and read-only pages, MAP_SHARED anonymous memory, a
 * /dev/shm file mapping and a memfd mapping (both also read through their fds).
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=3000] [SLEEP_US=1000] */
#include "scenario.h"

#include <sys/mman.h>
#include <sys/stat.h>

#define PAGE 4096
#define NBLOCKS 2000
#define ANON_BYTES (16u << 20)
#define SHARED_BYTES (4u << 20)
#define SHM_BYTES (4u << 20)
#define MEMFD_BYTES (4u << 20)

static unsigned char *heap_blocks[NBLOCKS];
static size_t heap_sizes[NBLOCKS];
static unsigned char *big_malloc;       /* large enough for malloc to mmap it */
static unsigned char *anon;             /* grows by mremap halfway through */
static size_t anon_bytes = ANON_BYTES;
static unsigned char *holey;            /* 8 pages, pages 3 and 4 unmapped */
static unsigned char *guarded;          /* 4 pages: rw, PROT_NONE, r--, rw */
static unsigned char *shared_anon;
static unsigned char *shm;
static unsigned char *mfd_map;
static int mfd;
static char shm_name[256];

static void fill_block(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t s = seed | 1;
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)scn_xorshift64(&s);
}

/* Writes one word into region p (bytes long) at a place chosen by i. */
static void poke(unsigned char *p, size_t bytes, long i, uint64_t salt)
{
    uint64_t s = (uint64_t)i * 0x9e3779b97f4a7c15ULL + salt;
    uint64_t v = scn_xorshift64(&s);
    size_t at = (size_t)(v % (bytes / 8)) * 8;
    memcpy(p + at, &v, 8);
}

static uint64_t heap_hash(void)
{
    uint64_t h = SCN_FNV_INIT;
    for (int b = 0; b < NBLOCKS; b++)
        h = scn_fnv(h, heap_blocks[b], heap_sizes[b]);
    return h;
}

/* The permissions of addr's mapping in /proc/self/maps, into perms[5]. */
static const char *perms_of(const void *addr, char *perms)
{
    FILE *f = fopen("/proc/self/maps", "r");
    SCN_CHECK(f != NULL, "open /proc/self/maps");
    char line[512];
    strcpy(perms, "????");
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && (unsigned long)addr >= lo &&
            (unsigned long)addr < hi) {
            memcpy(perms, p, 5);
            break;
        }
    }
    fclose(f);
    return perms;
}

static int is_mapped(const void *addr)
{
    unsigned char vec;
    return mincore((void *)addr, PAGE, &vec) == 0;
}

static void report(const char *label)
{
    uint64_t h = heap_hash();
    h = scn_hash_words(h, big_malloc, 8u << 20);
    h = scn_hash_words(h, anon, anon_bytes);
    h = scn_hash_words(h, holey, 3 * PAGE);
    h = scn_hash_words(h, holey + 5 * PAGE, 3 * PAGE);
    h = scn_hash_words(h, guarded, PAGE);
    h = scn_hash_words(h, guarded + 2 * PAGE, 2 * PAGE);
    h = scn_hash_words(h, shared_anon, SHARED_BYTES);
    h = scn_hash_words(h, shm, SHM_BYTES);
    h = scn_hash_words(h, mfd_map, MEMFD_BYTES);
    printf("%s: memory hash %016llx\n", label, (unsigned long long)h);
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 3000;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;

    for (int b = 0; b < NBLOCKS; b++) {
        heap_sizes[b] = 16 + (size_t)(b * 7919) % 4096;
        heap_blocks[b] = malloc(heap_sizes[b]);
        SCN_CHECK(heap_blocks[b] != NULL, "malloc");
        fill_block(heap_blocks[b], heap_sizes[b], (uint64_t)b);
    }
    big_malloc = malloc(8u << 20);
    SCN_CHECK(big_malloc != NULL, "malloc 8 MiB");
    scn_fill_xorshift(big_malloc, 8u << 20, 11);

    anon = mmap(NULL, anon_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SCN_CHECK(anon != MAP_FAILED, "mmap anon");
    scn_fill_xorshift(anon, anon_bytes, 12);

    holey = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SCN_CHECK(holey != MAP_FAILED, "mmap holey");
    scn_fill_xorshift(holey, 8 * PAGE, 13);
    SCN_CHECK(munmap(holey + 3 * PAGE, 2 * PAGE) == 0, "munmap hole");

    guarded = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SCN_CHECK(guarded != MAP_FAILED, "mmap guarded");
    scn_fill_xorshift(guarded, 4 * PAGE, 14);
    SCN_CHECK(mprotect(guarded + PAGE, PAGE, PROT_NONE) == 0, "mprotect none");
    SCN_CHECK(mprotect(guarded + 2 * PAGE, PAGE, PROT_READ) == 0, "mprotect read");

    shared_anon = mmap(NULL, SHARED_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                       -1, 0);
    SCN_CHECK(shared_anon != MAP_FAILED, "mmap shared anon");
    scn_fill_xorshift(shared_anon, SHARED_BYTES, 15);

    const char *tag = getenv("SCENARIO_TAG");
    snprintf(shm_name, sizeof shm_name, "/%s-shm", tag ? tag : "ferry-scenario-memory");
    int shm_fd = shm_open(shm_name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    SCN_CHECK(shm_fd >= 0, "shm_open");
    SCN_CHECK(ftruncate(shm_fd, SHM_BYTES) == 0, "ftruncate shm");
    shm = mmap(NULL, SHM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
    SCN_CHECK(shm != MAP_FAILED, "mmap shm");
    close(shm_fd); /* the mapping alone keeps it */
    scn_fill_xorshift(shm, SHM_BYTES, 16);

    mfd = memfd_create("scenario-memfd", 0);
    SCN_CHECK(mfd >= 0, "memfd_create");
    SCN_CHECK(ftruncate(mfd, MEMFD_BYTES) == 0, "ftruncate memfd");
    mfd_map = mmap(NULL, MEMFD_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    SCN_CHECK(mfd_map != MAP_FAILED, "mmap memfd");
    scn_fill_xorshift(mfd_map, MEMFD_BYTES, 17);

    report("setup");
    scn_ready();

    for (long i = 0; i < iterations; i++) {
        /* heap churn: free one block, allocate a new one of another size */
        int b = (int)((i * 31) % NBLOCKS);
        free(heap_blocks[b]);
        heap_sizes[b] = 16 + (size_t)((i * 104729) % 6000);
        heap_blocks[b] = malloc(heap_sizes[b]);
        SCN_CHECK(heap_blocks[b] != NULL, "malloc");
        fill_block(heap_blocks[b], heap_sizes[b], (uint64_t)i + 1000);

        poke(big_malloc, 8u << 20, i, 1);
        poke(anon, anon_bytes, i, 2);
        poke(holey, 3 * PAGE, i, 3);
        poke(holey + 5 * PAGE, 3 * PAGE, i, 4);
        poke(guarded, PAGE, i, 5);
        poke(guarded + 3 * PAGE, PAGE, i, 6);
        poke(shared_anon, SHARED_BYTES, i, 7);
        poke(shm, SHM_BYTES, i, 8);
        poke(mfd_map, MEMFD_BYTES, i, 9);

        if (i == iterations / 2) {
            /* grow and (most likely) move the anonymous region */
            unsigned char *n = mremap(anon, anon_bytes, 2 * anon_bytes, MREMAP_MAYMOVE);
            SCN_CHECK(n != MAP_FAILED, "mremap");
            anon = n;
            scn_fill_xorshift(anon + anon_bytes, anon_bytes, 18);
            anon_bytes *= 2;
            printf("step %ld: anonymous region grown to %zu MiB\n", i, anon_bytes >> 20);
        }
        if (i % 250 == 249) {
            char label[64];
            snprintf(label, sizeof label, "step %ld", i + 1);
            report(label);
        }
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }

    report("final");
    printf("hole pages mapped: %s\n", is_mapped(holey + 3 * PAGE) || is_mapped(holey + 4 * PAGE)
                                          ? "YES (wrong)" : "no");
    char p0[5], p1[5], p2[5], p3[5];
    printf("page protections: %s %s %s %s\n", perms_of(guarded, p0), perms_of(guarded + PAGE, p1),
           perms_of(guarded + 2 * PAGE, p2), perms_of(guarded + 3 * PAGE, p3));
    printf("shared anonymous mapping: %s\n", perms_of(shared_anon, p0));
    /* the shm and memfd mappings must still be the files, not private copies */
    int fd = shm_open(shm_name, O_RDONLY, 0);
    SCN_CHECK(fd >= 0, "reopen shm");
    unsigned char *via_fd = malloc(SHM_BYTES);
    SCN_CHECK(pread(fd, via_fd, SHM_BYTES, 0) == (ssize_t)SHM_BYTES, "pread shm");
    printf("/dev/shm file equals its mapping: %s\n",
           memcmp(via_fd, shm, SHM_BYTES) == 0 ? "yes" : "NO");
    close(fd);
    SCN_CHECK(pread(mfd, via_fd, MEMFD_BYTES, 0) == (ssize_t)MEMFD_BYTES, "pread memfd");
    printf("memfd equals its mapping: %s\n",
           memcmp(via_fd, mfd_map, MEMFD_BYTES) == 0 ? "yes" : "NO");
    /* a write through the fd must show in the mapping */
    uint64_t probe = 0x0123456789abcdefULL;
    SCN_CHECK(pwrite(mfd, &probe, 8, 4096) == 8, "pwrite memfd");
    printf("memfd write visible in mapping: %s\n",
           memcmp(mfd_map + 4096, &probe, 8) == 0 ? "yes" : "NO");
    shm_unlink(shm_name);
    printf("done\n");
    return 0;
}
