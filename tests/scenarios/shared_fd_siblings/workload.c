/* Two siblings sharing one open file description their parent opened and closed: each writes
 * fixed 32-byte records through it (one offset: records never overlap); the second also
 * writes through a dup of it at fd 9. After the restarts the file must hold every record of
 * both, intact, and be exactly that long; with two descriptions the offsets would diverge and
 * records would overwrite each other.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [RECORDS=1200] */
#include "scenario.h"

#include <fcntl.h>
#include <sys/wait.h>

#define REC 32

static void writer(int fd, int who, long records)
{
    int dup_fd = who == 2 ? dup2(fd, 9) : fd;
    SCN_CHECK(dup_fd >= 0, "dup2");
    for (long i = 0; i < records; i++) {
        char rec[64];
        snprintf(rec, sizeof rec, "child %d record %08ld .......\n", who, i % 100000000);
        SCN_CHECK(strlen(rec) == REC, "record length");
        int use = (who == 2 && i % 2) ? dup_fd : fd;
        SCN_CHECK(write(use, rec, REC) == REC, "write record");
        if (who == 1)
            scn_tick();
        scn_sleep_us(who == 1 ? 3000 : 3500);
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    long records = argc > 1 ? atol(argv[1]) : 1200;
    int fd = open("shared.dat", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    SCN_CHECK(fd >= 0, "open shared.dat");
    printf("siblings share one description\n");
    fflush(stdout);
    pid_t c[2];
    for (int k = 0; k < 2; k++) {
        c[k] = fork();
        SCN_CHECK(c[k] >= 0, "fork");
        if (c[k] == 0)
            writer(fd, k + 1, records);
    }
    close(fd); /* only the children hold it now */
    scn_ready();
    for (int k = 0; k < 2; k++) {
        int st = 0;
        SCN_CHECK(waitpid(c[k], &st, 0) == c[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child");
    }
    FILE *f = fopen("shared.dat", "r");
    SCN_CHECK(f != NULL, "reopen shared.dat");
    long count[3] = {0, 0, 0}, bad = 0, size = 0;
    char rec[REC + 1];
    while (fread(rec, 1, REC, f) == REC) {
        size += REC;
        int who = 0;
        long i = -1;
        rec[REC] = '\0';
        if (sscanf(rec, "child %d record %ld", &who, &i) == 2 && (who == 1 || who == 2) && rec[REC - 1] == '\n')
            count[who]++;
        else
            bad++;
    }
    fclose(f);
    printf("child 1: %ld records, child 2: %ld records, damaged %ld, file %ld bytes\n", count[1], count[2], bad, size);
    return 0;
}
