/* A socket makes checkpoints fail (unsupported resource) without harming the program: phase 1
 * holds a connected AF_UNIX datagram pair and uses it every step; phase 2, after closing it and
 * creating the file "phase2", has nothing unsupported and must checkpoint normally.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [PHASE1_ITERATIONS=2500] [PHASE2_ITERATIONS=2000] [SLEEP_US=1000] */
#include "scenario.h"

#include <sys/socket.h>

int main(int argc, char **argv)
{
    long phase1 = argc > 1 ? atol(argv[1]) : 2500;
    long phase2 = argc > 2 ? atol(argv[2]) : 2000;
    long sleep_us = argc > 3 ? atol(argv[3]) : 1000;

    int sv[2];
    SCN_CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
    printf("socket pair open\n");
    scn_ready();

    long sum = 0;
    for (long i = 0; i < phase1; i++) {
        SCN_CHECK(send(sv[0], &i, sizeof i, 0) == sizeof i, "send");
        long got;
        SCN_CHECK(recv(sv[1], &got, sizeof got, 0) == sizeof got, "recv");
        sum += got;
        if (i % 250 == 249)
            printf("phase 1 step %ld: sum of datagrams %ld\n", i + 1, sum);
        if (i % 8 == 0)
            scn_tick();
        scn_sleep_us(sleep_us);
    }
    close(sv[0]);
    close(sv[1]);
    int fd = open("phase2", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    SCN_CHECK(fd >= 0, "create phase2");
    close(fd);
    printf("socket pair closed\n");

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
