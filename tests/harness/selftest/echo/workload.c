/* Tiny workload for the driver's self-test: prints ten numbered lines.
 * SPDX-License-Identifier: Apache-2.0 */
#include "scenario.h"

int main(void)
{
    scn_ready();
    for (int i = 1; i <= 10; i++) {
        printf("line %d\n", i);
        scn_tick();
        scn_sleep_us(1000);
    }
    return 0;
}
