// SPDX-License-Identifier: Apache-2.0
// The AVX2 build of the XXH3 calls hash.cpp makes (hash_avx2.cpp); call only when the CPU
// has AVX2. `state` is an XXH3_state_t of the baseline build (same layout and results).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferry::hash::avx2 {

uint64_t xxh3_64(const void* data, size_t len) noexcept;
void xxh3_64_update(void* state, const void* data, size_t len) noexcept;

}  // namespace ferry::hash::avx2
