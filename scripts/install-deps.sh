#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian package ferry needs to build, test and benchmark (Debian 12, as root).
# Idempotent: a second run installs nothing new.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libhdf5-dev hdf5-tools
  libboost-log-dev libboost-program-options-dev libboost-system-dev libboost-filesystem-dev
  libgtest-dev libgmock-dev
  nlohmann-json3-dev libexpected-dev libxxhash-dev libzstd-dev libsqlite3-dev libssl-dev libmunge-dev
  openmpi-bin libopenmpi-dev gfortran
  libomp-dev python3 procps util-linux iproute2 xz-utils
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages (run as root to install): ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: installed ${#missing[@]} packages: ${missing[*]}"
else
  echo "install-deps: all ${#packages[@]} packages present"
fi
