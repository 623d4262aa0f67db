/* Tiny workload for the driver's self-test: prints numbered lines in a steady loop.
 * SPDX-License-Identifier: Apache-2.0
 * Usage: workload [LINES=10] [SLEEP_US=1000] */
#include "scenario.h"

int main(int argc, char **argv)
{
    int lines = argc > 1 ? atoi(argv[1]) : 10;
    long sleep_us = argc > 2 ? atol(argv[2]) : 1000;
    scn_ready();
    for (int i = 1; i <= lines; i++) {
        printf("line %d\n", i);
        scn_tick();
        scn_sleep_us(sleep_us);
    }
    return 0;
}
