// SPDX-License-Identifier: Apache-2.0
// XXH3 compiled for AVX2 (this file only: CMakeLists gives it -mavx2), called by hash.cpp
// when the CPU has AVX2. Same results as the baseline build; measured on the project VM (AMD
// EPYC with AVX-512): 1 GiB hashed in 39-45 ms, against 65-75 ms for the SSE2 build and for
// libxxhash's own dispatch (which picks its AVX-512 code, no faster there). Nothing else may
// live here: any function of this file may contain AVX2 instructions.
#include "hash_avx2.hpp"

#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <xxhash.h>

namespace ferry::hash::avx2 {

uint64_t xxh3_64(const void* data, size_t len) noexcept { return XXH3_64bits(data, len); }

void xxh3_64_update(void* state, const void* data, size_t len) noexcept {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state), data, len);
}

}  // namespace ferry::hash::avx2
