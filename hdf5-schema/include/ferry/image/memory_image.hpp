// SPDX-License-Identifier: Apache-2.0
// MemoryImage: an ImageSink and ImageSource kept entirely in memory. For unit tests of capture
// and restore logic that should not depend on HDF5; never used for real checkpoints.
#pragma once

#include <cstring>
#include <map>
#include <vector>

#include "ferry/image/image_io.hpp"

namespace ferry::image {

class MemoryImage final : public ImageSink, public ImageSource {
public:
  Result<void> append_pages(uint64_t addr, std::span<const std::byte> data) override {
    if (!image_.page_runs.empty()) {
      auto& last = image_.page_runs.back();
      if (last.addr + last.npages * page_ == addr) {
        last.npages += data.size() / page_;
        pages_.insert(pages_.end(), data.begin(), data.end());
        return {};
      }
    }
    image_.page_runs.push_back({addr, data.size() / page_, pages_.size()});
    pages_.insert(pages_.end(), data.begin(), data.end());
    return {};
  }
  Result<uint32_t> begin_blob(uint64_t size, const std::string& name) override {
    uint32_t id = static_cast<uint32_t>(image_.blobs.size());
    image_.blobs.push_back({id, size, name});
    blob_data_.emplace_back();
    blob_data_.back().reserve(size);
    return id;
  }
  Result<void> append_blob_data(uint32_t id, std::span<const std::byte> data) override {
    if (id >= blob_data_.size()) return fail(errc::protocol, "no blob " + std::to_string(id));
    blob_data_[id].insert(blob_data_[id].end(), data.begin(), data.end());
    return {};
  }
  Result<void> finish(const ProcessImage& image) override {
    auto runs = std::move(image_.page_runs);
    auto blobs = std::move(image_.blobs);
    image_ = image;
    image_.page_runs = std::move(runs);
    image_.blobs = std::move(blobs);
    return {};
  }

  const ProcessImage& image() const override { return image_; }
  Result<void> read_pages(uint64_t addr, std::span<std::byte> out) override {
    for (const auto& r : image_.page_runs) {
      uint64_t end = r.addr + r.npages * page_;
      if (addr >= r.addr && addr + out.size() <= end) {
        std::memcpy(out.data(), pages_.data() + r.offset + (addr - r.addr), out.size());
        return {};
      }
    }
    return fail(errc::image_corrupt, "no page run covers address " + std::to_string(addr));
  }
  Result<void> read_blob(uint32_t id, uint64_t offset, std::span<std::byte> out) override {
    if (id >= blob_data_.size() || offset + out.size() > blob_data_[id].size())
      return fail(errc::image_corrupt, "blob " + std::to_string(id) + " out of range");
    std::memcpy(out.data(), blob_data_[id].data() + offset, out.size());
    return {};
  }
  Result<void> verify_all() override { return {}; }

  ProcessImage& mutable_image() { return image_; }

private:
  uint64_t page_ = 4096;
  ProcessImage image_;
  std::vector<std::byte> pages_;
  std::vector<std::vector<std::byte>> blob_data_;
};

}  // namespace ferry::image
