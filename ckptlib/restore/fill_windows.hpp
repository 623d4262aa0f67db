// SPDX-License-Identifier: Apache-2.0
// Destination-ordered batches for the page fill (page_filler.cpp). A chain of incremental
// images interleaves its generations in memory at the granularity of what changed (64 KiB
// blocks in the benchmark): in storage order every piece lands somewhere else in the child,
// one UFFDIO_COPY each (16400 for 1 GiB). A window is a stretch of child address space laid
// out in a batch buffer as in the child; its pieces are read from all the images at once
// (ImageSource::read_stored_v streams each image's raw chunks straight to their places, the
// checksum of a chunk taken across windows), and the window goes in with one UFFDIO_COPY per
// region.
//
// plan_fill_windows: the pieces sorted by child address are cut into windows of at most
// max_bytes (a window starts at its first piece; a piece crossing the end is cut there). This
// needs every store's pieces, in child order, to be in increasing storage order too (true of
// images ferry writes: each stores its pages in address order); if one is not, the plan is
// empty and the caller fills in storage order.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ferry/image/image_io.hpp"

namespace ferry::restore {

struct FillPiece {
  uint64_t image_addr = 0, child_addr = 0, len = 0;
  image::StoragePos pos;
};

struct FillWindow {
  uint64_t child_base = 0, size = 0;  // child addresses [child_base, child_base + size)
  std::vector<FillPiece> pieces;      // sorted by (store, offset)
};

std::vector<FillWindow> plan_fill_windows(std::span<const FillPiece> pieces, uint64_t max_bytes);

}  // namespace ferry::restore
