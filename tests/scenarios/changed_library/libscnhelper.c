/* The small shared library of the changed_library scenario: a 32 KiB read-only table (so the
 * byte the driver changes, in the middle of the file, lies in mapped data) hashed on each call.
 * SPDX-License-Identifier: Apache-2.0 */
#include <stdint.h>

#define TABLE_BYTES 32768

/* const and initialised: lives in .rodata, in the middle of the .so file */
static const unsigned char table[TABLE_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8};

uint64_t scn_helper(uint64_t x)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ x;
    for (int i = 0; i < TABLE_BYTES; i++) {
        h ^= table[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
