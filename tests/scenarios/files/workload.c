/* Open files across checkpoints: a file read sequentially, a file written at offsets (pwrite,
 * lseek+write, a sparse hole), an O_APPEND log, a file deleted while open and still read and
 * written, plus cwd and umask. Prints offsets, flags and content hashes.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [ITERATIONS=2500] [SLEEP_US=1000] */
#include "scenario.h"

#include <sys/stat.h>

#define IN_BYTES (64 * 1024)
#define DEL_BYTES (64 * 1024)
#define REC 64

static uint64_t hash_fd(int fd, off_t *size_out)
{
    struct stat st;
    SCN_CHECK(fstat(fd, &st) == 0, "fstat");
    unsigned char buf[8192];
    uint64_t h = SCN_FNV_INIT;
    for (off_t off = 0; off < st.st_size;) {
        ssize_t n = pread(fd, buf, sizeof buf, off);
        SCN_CHECK(n > 0, "pread");
        h = scn_fnv(h, buf, (size_t)n);
        off += n;
    }
    *size_out = st.st_size;
    return h;
}

static uint64_t hash_path(const char *path, off_t *size_out)
{
    int fd = open(path, O_RDONLY);
    SCN_CHECK(fd >= 0, path);
    uint64_t h = hash_fd(fd, size_out);
    close(fd);
    return h;
}

static const char *flags_str(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    switch (fl & O_ACCMODE) {
    case O_RDONLY: return (fl & O_APPEND) ? "rdonly|append" : "rdonly";
    case O_WRONLY: return (fl & O_APPEND) ? "wronly|append" : "wronly";
    default: return (fl & O_APPEND) ? "rdwr|append" : "rdwr";
    }
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 2500;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;
    unsigned char buf[IN_BYTES];

    SCN_CHECK(mkdir("sub", 0755) == 0, "mkdir sub");
    SCN_CHECK(chdir("sub") == 0, "chdir sub");
    umask(027);

    /* input.dat: read sequentially through one fd */
    scn_fill_xorshift(buf, IN_BYTES, 21);
    int fd = open("input.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    SCN_CHECK(fd >= 0 && write(fd, buf, IN_BYTES) == IN_BYTES, "write input.dat");
    close(fd);
    int fd_in = open("input.dat", O_RDONLY);
    SCN_CHECK(fd_in >= 0, "open input.dat");

    int fd_out = open("output.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    SCN_CHECK(fd_out >= 0, "open output.dat");
    int fd_log = open("log.txt", O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
    SCN_CHECK(fd_log >= 0, "open log.txt");
    int fd_sparse = open("sparse.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    SCN_CHECK(fd_sparse >= 0, "open sparse.dat");

    /* deleted.dat: filled, then unlinked while open */
    int fd_del = open("deleted.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
    SCN_CHECK(fd_del >= 0, "open deleted.dat");
    scn_fill_xorshift(buf, DEL_BYTES, 22);
    SCN_CHECK(write(fd_del, buf, DEL_BYTES) == DEL_BYTES, "write deleted.dat");
    SCN_CHECK(lseek(fd_del, 0, SEEK_SET) == 0, "lseek deleted.dat");
    SCN_CHECK(unlink("deleted.dat") == 0, "unlink deleted.dat");

    printf("setup done\n");
    scn_ready();

    uint64_t in_hash = SCN_FNV_INIT, del_hash = SCN_FNV_INIT;
    for (long i = 0; i < iterations; i++) {
        /* sequential reads, wrapping at the end */
        ssize_t n = read(fd_in, buf, 40);
        SCN_CHECK(n >= 0, "read input.dat");
        if (n == 0)
            SCN_CHECK(lseek(fd_in, 0, SEEK_SET) == 0, "rewind input.dat");
        in_hash = scn_fnv(in_hash, buf, (size_t)n);

        /* records at offsets: pwrite of record i, then an overwrite through the fd offset */
        unsigned char rec[REC];
        uint64_t s = (uint64_t)i + 1;
        for (int k = 0; k < REC; k++)
            rec[k] = (unsigned char)scn_xorshift64(&s);
        SCN_CHECK(pwrite(fd_out, rec, REC, (off_t)i * REC) == REC, "pwrite output.dat");
        if (i % 3 == 0) {
            SCN_CHECK(lseek(fd_out, (off_t)((i * 37) % (i + 1)) * REC + 5, SEEK_SET) >= 0,
                      "lseek output.dat");
            SCN_CHECK(write(fd_out, "overwrite", 9) == 9, "write output.dat");
        }

        /* appends */
        char line[80];
        int len = snprintf(line, sizeof line, "log line %ld\n", i);
        SCN_CHECK(write(fd_log, line, (size_t)len) == len, "append log.txt");

        /* the deleted file: read on through its offset, patch it every 5 steps */
        n = read(fd_del, buf, 24);
        SCN_CHECK(n >= 0, "read deleted.dat");
        if (n == 0)
            SCN_CHECK(lseek(fd_del, 0, SEEK_SET) == 0, "rewind deleted.dat");
        del_hash = scn_fnv(del_hash, buf, (size_t)n);
        if (i % 5 == 0)
            SCN_CHECK(pwrite(fd_del, &i, sizeof i, (off_t)((i * 8) % DEL_BYTES)) == sizeof i,
                      "pwrite deleted.dat");

        /* a sparse file written far from its start */
        if (i % 100 == 0)
            SCN_CHECK(pwrite(fd_sparse, &i, sizeof i, (off_t)(1 << 20) + i * 4096) == sizeof i,
                      "pwrite sparse.dat");

        if (i % 250 == 249)
            printf("step %ld: input offset %lld, output offset %lld, deleted offset %lld, "
                   "hashes %016llx %016llx\n", i + 1, (long long)lseek(fd_in, 0, SEEK_CUR),
                   (long long)lseek(fd_out, 0, SEEK_CUR), (long long)lseek(fd_del, 0, SEEK_CUR),
                   (unsigned long long)in_hash, (unsigned long long)del_hash);
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }

    off_t size;
    uint64_t h;
    h = hash_fd(fd_out, &size);
    printf("output.dat: %lld bytes, hash %016llx, flags %s\n", (long long)size,
           (unsigned long long)h, flags_str(fd_out));
    h = hash_path("log.txt", &size);
    printf("log.txt: %lld bytes, hash %016llx, flags %s, offset %lld\n", (long long)size,
           (unsigned long long)h, flags_str(fd_log), (long long)lseek(fd_log, 0, SEEK_CUR));
    h = hash_fd(fd_sparse, &size);
    printf("sparse.dat: %lld bytes, hash %016llx\n", (long long)size, (unsigned long long)h);
    struct stat st;
    SCN_CHECK(fstat(fd_del, &st) == 0, "fstat deleted");
    h = hash_fd(fd_del, &size);
    printf("deleted.dat: %lld bytes, hash %016llx, links %ld, still absent: %s\n",
           (long long)size, (unsigned long long)h, (long)st.st_nlink,
           access("deleted.dat", F_OK) != 0 ? "yes" : "NO");
    printf("input.dat: offset %lld, flags %s\n", (long long)lseek(fd_in, 0, SEEK_CUR),
           flags_str(fd_in));
    char cwd[4096];
    SCN_CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    const char *base = strrchr(cwd, '/');
    mode_t old = umask(0);
    printf("cwd ends in /%s, umask %03o\n", base ? base + 1 : cwd, (unsigned)old);
    printf("done\n");
    return 0;
}
