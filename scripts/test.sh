#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: installs dependencies, builds, runs every ctest (unit, scenario).
# ctest prints the summary line "N% tests passed, M tests failed out of T".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --preset release -j2 --timeout 900 "$@"
