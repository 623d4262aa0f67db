// SPDX-License-Identifier: Apache-2.0
// Incremental images (schema 1.4): an image may keep only the pages written since the previous
// generation and refer, for the others, to earlier generations' images of the same process
// (/memory/bases, /memory/page_refs). open_image_chain() gives restore one ImageSource over
// such an image and every image it refers to:
//   open:  the image, then each base named in /memory/bases (path relative to the image's
//          directory); a base must exist, be the very image recorded (its header_xxh3), be of
//          the same job, rank and page size, and hold every page referred to inside one of its
//          own page runs. Any failure is image_corrupt naming the generation and the file, so
//          restore refuses before anything is torn down.
//   image(): the top image's metadata with page_runs = its own runs + one run per reference
//          (offset kRefOffset), sorted by address: restore sees an ordinary image.
//   read_pages: dispatched by address to the image holding the bytes; each reader checks every
//          chunk it touches. storage_pos names the image (0 top, 1 + i base i) and the offset
//          in its pages: restore reads image by image in file order, so each base's chunks are
//          loaded once and one after the other (not 11 readers' chunks in turn: per perf, that
//          made every byte read and hashed ~3x dearer on this VM).
//   read_stored_v: each store's reads go to its image, which reads raw chunks straight into
//          the caller's scattered pieces (the restore's destination windows: no chunk cache).
//   verify_all / verify_unread: the top image's chunks, and every chunk of a base that holds a
//          referenced page (never a base's unrelated chunks).
// An image without references is returned as its plain ImageReader.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"
#include "ferry/image/model.hpp"

namespace ferry::image {

// offset of a page run that image() synthesises for a reference (its bytes are in a base).
inline constexpr uint64_t kRefOffset = ~uint64_t{0};

// The header_xxh3 an image with this header carries (what BaseImage::header_xxh3 records).
uint64_t header_identity(const ImageHeader& h);

// One link of an opened chain, for `ferry inspect`.
struct ChainLink {
  uint64_t generation = 0;
  std::string path;           // as opened
  uint64_t referenced_bytes = 0;  // bytes of pages the top image takes from it
};

// Opens `path` and, for an incremental image, every base it refers to (see the top of this
// file). `links` (optional) receives one entry per base.
Result<std::unique_ptr<ImageSource>> open_image_chain(const std::string& path,
                                                      std::vector<ChainLink>* links = nullptr);

}  // namespace ferry::image
