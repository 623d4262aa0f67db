/* SPDX-License-Identifier: Apache-2.0
 * A program we did not write: the CPython interpreter in the middle of a computation
 * (Machin's formula for pi with big integers). This wrapper only execs python3 with the
 * script below; what ferry checkpoints is the interpreter. */
#include <stdio.h>
#include <unistd.h>

static const char kScript[] =
    "import os, sys\n"
    "sys.set_int_max_str_digits(1000000)\n"
    "def arctan_inv(x, digits):\n"
    "    total = term = (10 ** (digits + 10)) // x\n"
    "    n, sign, x2 = 3, -1, x * x\n"
    "    while term:\n"
    "        term //= x2\n"
    "        total += sign * (term // n)\n"
    "        sign, n = -sign, n + 2\n"
    "    return total\n"
    "open(os.environ['SCENARIO_READY'], 'w').close()\n"
    "for d in range(2000, 48001, 2000):\n"
    "    pi = 4 * (4 * arctan_inv(5, d) - arctan_inv(239, d))\n"
    "    print(d, str(pi)[d - 20:d], flush=True)\n"
    "    with open(os.environ['SCENARIO_MARKER'], 'a') as m:\n"
    "        m.write('.')\n";

int main(void) {
  execlp("python3", "python3", "-c", kScript, (char*)NULL);
  perror("exec python3");
  return 127;
}
