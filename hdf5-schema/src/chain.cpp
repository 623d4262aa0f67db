// SPDX-License-Identifier: Apache-2.0
// open_image_chain(): one ImageSource over an incremental image and the earlier generations it
// refers to (algorithm at the top of chain.hpp).
#include "ferry/image/chain.hpp"

#include <algorithm>
#include <cstdio>

#include "ferry/common/huge_buffer.hpp"
#include "ferry/image/names.hpp"
#include "ferry/image/reader.hpp"
#include "schema_fields.hpp"
#include "tables.hpp"

namespace ferry::image {

namespace {

std::string hex(uint64_t a) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(a));
  return b;
}

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

class ChainSource final : public ImageSource {
public:
  struct Segment {
    uint64_t addr = 0, end = 0;
    int src = -1;        // -1: the top image; else index into bases_
    bool read = false;   // some bytes were read (their chunks checked)
  };

  ChainSource(std::unique_ptr<ImageReader> top, std::vector<std::unique_ptr<ImageReader>> bases)
      : top_(std::move(top)), bases_(std::move(bases)), merged_(top_->image()) {
    const uint64_t ps = merged_.header.page_size;
    const size_t own = merged_.page_runs.size();
    segs_.reserve(own + merged_.page_refs.size());
    merged_.page_runs.reserve(own + merged_.page_refs.size());
    for (const auto& r : merged_.page_runs) segs_.push_back({r.addr, r.addr + r.npages * ps, -1, false});
    for (const auto& r : merged_.page_refs) {
      segs_.push_back({r.addr, r.addr + r.npages * ps, static_cast<int>(r.base), false});
      merged_.page_runs.push_back({r.addr, r.npages, kRefOffset});
    }
    // Both lists are written in address order: merged in one pass (sorted if not).
    by_addr(segs_, own, [](const Segment& a, const Segment& b) { return a.addr < b.addr; });
    by_addr(merged_.page_runs, own, [](const PageRun& a, const PageRun& b) { return a.addr < b.addr; });
  }

  const ProcessImage& image() const override { return merged_; }

  Result<void> read_pages(uint64_t addr, std::span<std::byte> out) override {
    FERRY_TRY(s, segment(addr, out.size()));
    s->read = true;
    return s->src < 0 ? top_->read_pages(addr, out) : base_read(s->src, addr, out);
  }

  // Consecutive reads from one image go to it together (it may merge them into whole chunks).
  Result<void> read_pages_v(std::span<const PageRead> reads) override {
    for (size_t i = 0; i < reads.size();) {
      FERRY_TRY(s, segment(reads[i].addr, reads[i].out.size()));
      s->read = true;
      const int src = s->src;
      size_t j = i + 1;
      for (; j < reads.size(); ++j) {
        FERRY_TRY(t, segment(reads[j].addr, reads[j].out.size()));
        if (t->src != src) break;
        t->read = true;
      }
      auto group = reads.subspan(i, j - i);
      if (src < 0) {
        FERRY_TRY_VOID(top_->read_pages_v(group));
      } else if (auto r = bases_[static_cast<size_t>(src)]->read_pages_v(group); !r) {
        return fail(r.error().wrap(base_name(src)));
      }
      i = j;
    }
    return {};
  }

  bool reads_scattered() const override { return true; }
  // Each store's reads go to its image together (a base's errors name its generation).
  Result<void> read_stored_v(std::span<const StoredRead> reads) override {
    for (size_t i = 0; i < reads.size();) {
      const uint32_t store = reads[i].store;
      if (store > bases_.size())
        return fail(errc::image_corrupt, top_->path() + ": no store " + std::to_string(store) + " in this chain");
      size_t j = i;
      for (; j < reads.size() && reads[j].store == store; ++j) {
        FERRY_TRY(seg, segment(reads[j].addr, reads[j].out.size()));
        if (seg->src + 1 != static_cast<int>(store))
          return fail(errc::image_corrupt, top_->path() + ": the pages at " + hex(reads[j].addr) + " are not in store " +
                                               std::to_string(store));
        seg->read = true;
        group_.push_back(reads[j]);
        group_.back().store = 0;
      }
      auto r = store == 0 ? top_->read_stored_v(group_) : bases_[store - 1]->read_stored_v(group_);
      group_.clear();
      if (!r) return store == 0 ? r : fail(r.error().wrap(base_name(static_cast<int>(store) - 1)));
      i = j;
    }
    return {};
  }
  Result<void> finish_stored_reads() override {
    FERRY_TRY_VOID(top_->finish_stored_reads());
    for (size_t b = 0; b < bases_.size(); ++b)
      if (auto r = bases_[b]->finish_stored_reads(); !r) return fail(r.error().wrap(base_name(static_cast<int>(b))));
    return {};
  }
  // Stores: 0 the top image's pages, 1 + i base i's.
  StoragePos storage_pos(uint64_t addr) const override {
    auto it = std::upper_bound(segs_.begin(), segs_.end(), addr,
                               [](uint64_t a, const Segment& s) { return a < s.addr; });
    if (it == segs_.begin() || addr >= (it - 1)->end) return {0, addr, 0};
    int src = (it - 1)->src;
    if (src < 0) return top_->storage_pos(addr);
    StoragePos p = bases_[static_cast<size_t>(src)]->storage_pos(addr);
    p.store = static_cast<uint32_t>(src) + 1;
    return p;
  }

  Result<void> read_blob(uint32_t id, uint64_t offset, std::span<std::byte> out) override {
    return top_->read_blob(id, offset, out);
  }

  Result<void> verify_all() override {
    FERRY_TRY_VOID(top_->verify_all());
    return verify_bases(false);
  }

  Result<void> verify_unread() override {
    FERRY_TRY_VOID(top_->verify_unread());
    return verify_bases(true);
  }

  // Every reader of a thread shares its buffers (chunk_store.hpp): the top image's hand-off
  // moves them all.
  std::shared_ptr<void> take_thread_read_buffers() override { return top_->take_thread_read_buffers(); }
  void adopt_thread_read_buffers(std::shared_ptr<void> buffers) override {
    top_->adopt_thread_read_buffers(std::move(buffers));
  }

private:
  // Orders v, whose [0, mid) and [mid, end) are each usually sorted already.
  template <typename T, typename Less>
  static void by_addr(std::vector<T>& v, size_t mid, Less less) {
    const auto m = v.begin() + static_cast<std::ptrdiff_t>(mid);
    if (std::is_sorted(v.begin(), m, less) && std::is_sorted(m, v.end(), less))
      std::inplace_merge(v.begin(), m, v.end(), less);
    else
      std::sort(v.begin(), v.end(), less);
  }

  // The segment holding [addr, addr+size).
  Result<Segment*> segment(uint64_t addr, uint64_t size) {
    auto it = std::upper_bound(segs_.begin(), segs_.end(), addr,
                               [](uint64_t a, const Segment& s) { return a < s.addr; });
    if (it != segs_.begin()) {
      Segment& s = *(it - 1);
      if (addr < s.end && size <= s.end - addr) return &s;
    }
    return fail(errc::image_corrupt, top_->path() + ": no page run or reference covers " +
                                         std::to_string(size) + " bytes at address " + hex(addr));
  }

  std::string base_name(int b) const {
    return "generation " + std::to_string(merged_.bases[static_cast<size_t>(b)].generation) + " (" +
           bases_[static_cast<size_t>(b)]->path() + "), needed by " + top_->path();
  }

  Result<void> base_read(int b, uint64_t addr, std::span<std::byte> out) {
    auto r = bases_[static_cast<size_t>(b)]->read_pages(addr, out);
    if (!r) return fail(r.error().wrap(base_name(b)));
    return {};
  }

  // Reads every referenced range (only_unread: those no read touched), which checks each
  // base chunk holding a referenced page.
  Result<void> verify_bases(bool only_unread) {
    HugeBuffer buf;  // allocated for the first range to read: usually every one was read
    for (auto& s : segs_) {
      if (s.src < 0 || (only_unread && s.read)) continue;
      if (!buf.ensure(4u << 20)) return fail_errno("allocate a buffer to check generation chunks", ENOMEM);
      for (uint64_t a = s.addr; a < s.end;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), s.end - a));
        FERRY_TRY_VOID(base_read(s.src, a, std::span(buf.data(), n)));
        a += n;
      }
      s.read = true;
    }
    return {};
  }

  std::unique_ptr<ImageReader> top_;
  std::vector<std::unique_ptr<ImageReader>> bases_;
  ProcessImage merged_;
  std::vector<Segment> segs_;
  std::vector<StoredRead> group_;  // read_stored_v's reads of one store
};

}  // namespace

uint64_t header_identity(const ImageHeader& h) { return tables::attrs_checksum(schema::header_fields(), h); }

Result<std::unique_ptr<ImageSource>> open_image_chain(const std::string& path, std::vector<ChainLink>* links) {
  FERRY_TRY(top, ImageReader::open(path));
  const ProcessImage& im = top->image();
  if (im.page_refs.empty()) return std::unique_ptr<ImageSource>(std::move(top));
  const uint64_t ps = im.header.page_size;
  const std::string dir = dir_of(path);
  std::vector<std::unique_ptr<ImageReader>> bases;
  std::vector<uint64_t> referenced(im.bases.size(), 0);
  for (const auto& r : im.page_refs) referenced[r.base] += r.npages * ps;
  for (size_t i = 0; i < im.bases.size(); ++i) {
    const BaseImage& b = im.bases[i];
    const std::string bpath = b.path.front() == '/' ? b.path : dir + "/" + b.path;
    auto refuse = [&](const std::string& why) {
      return fail(errc::image_corrupt, path + " is an incremental image built on generation " +
                                           std::to_string(b.generation) + " (" + bpath + "), which " + why);
    };
    auto r = ImageReader::open_pages_only(bpath);
    if (!r) return refuse("cannot be used: " + r.error().message());
    const ImageHeader& h = (*r)->image().header;
    if (header_identity(h) != b.header_xxh3 || h.generation != b.generation)
      return refuse("is not the image it was built on (another file is there now)");
    if (h.job != im.header.job || h.rank != im.header.rank || h.page_size != ps)
      return refuse("belongs to another job, rank or page size");
    bases.push_back(std::move(*r));
    if (links) links->push_back({b.generation, bpath, referenced[i]});
  }
  // Every reference must lie inside one of its base's own page runs.
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> runs(bases.size());
  for (size_t i = 0; i < bases.size(); ++i) {
    for (const auto& r : bases[i]->image().page_runs) runs[i].push_back({r.addr, r.addr + r.npages * ps});
    std::sort(runs[i].begin(), runs[i].end());
  }
  for (const auto& ref : im.page_refs) {
    const auto& v = runs[ref.base];
    uint64_t end = ref.addr + ref.npages * ps;
    auto it = std::upper_bound(v.begin(), v.end(), std::make_pair(ref.addr, ~uint64_t{0}));
    if (it == v.begin() || std::prev(it)->second < end)
      return fail(errc::image_corrupt, path + ": pages " + hex(ref.addr) + "-" + hex(end) + " are referred to generation " +
                                           std::to_string(im.bases[ref.base].generation) + " (" +
                                           bases[ref.base]->path() + "), which does not hold them");
  }
  return std::unique_ptr<ImageSource>(std::make_unique<ChainSource>(std::move(top), std::move(bases)));
}

}  // namespace ferry::image
