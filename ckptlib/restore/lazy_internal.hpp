// SPDX-License-Identifier: Apache-2.0
// Types shared by page_filler.cpp and lazy_pages.cpp (internal to ckptlib/restore).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"
#include "restore/address_plan.hpp"
#include "restore/child_builder.hpp"
#include "restore/lazy_pages.hpp"

namespace ferry::restore {

// Bytes of image [image, image+len), stored at pos, for child address child.
struct LazyWrite {
  uint64_t image = 0, child = 0, len = 0;
  image::StoragePos pos;
};
// A still-lazy range of a target's address space and the image address it shows.
struct LazySeg {
  uint64_t child = 0, len = 0, image = 0;
};

}  // namespace ferry::restore
