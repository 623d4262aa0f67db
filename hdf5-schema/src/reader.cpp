// SPDX-License-Identifier: Apache-2.0
// ImageReader: opens an image, checks it in the order of SCHEMA.md "Compatibility" (is it
// HDF5, magic, major version, ABI, record kinds, then every checksum and size), and serves
// page and blob bytes through checked chunk readers.
#include "ferry/image/reader.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <sstream>

#include "chunk_store.hpp"
#include "ferry/image/names.hpp"
#include "h5_support.hpp"
#include "schema_fields.hpp"
#include "tables.hpp"

namespace ferry::image {

namespace n = names;

namespace {

std::string major_of(const std::string& version) { return version.substr(0, version.find('.')); }

std::string hex(uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

}  // namespace

struct ImageReader::Impl {
  std::string path;
  h5::Id file;
  ProcessImage image;
  std::vector<uint64_t> blob_offsets;
  std::vector<size_t> runs_by_addr;  // indices into image.page_runs, sorted by addr
  std::unique_ptr<ChunkReader> pages, blobs;
  std::vector<ImageCheck>* checks = nullptr;

  Error err(errc code, const std::string& what) const {
    return Error(code, "image " + path + ": " + what);
  }
  // Runs one check and records it.
  Result<void> step(const std::string& name, const std::function<Result<void>()>& body,
                    const std::function<std::string()>& ok_detail = {}) {
    Result<void> r = body();
    if (checks)
      checks->push_back({name, r.has_value(),
                         r ? (ok_detail ? ok_detail() : std::string()) : r.error().message()});
    return r;
  }
  Result<void> open();
  Result<void> read_header();
  Result<void> read_tables();
  Result<void> check_page_runs(uint64_t& total);
  bool pages_only = false;  // open_pages_only()
  Result<void> check_blobs(uint64_t& total);
};

ImageReader::ImageReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageReader::~ImageReader() = default;

Result<std::unique_ptr<ImageReader>> ImageReader::open_pages_only(const std::string& path) {
  h5::silence_errors();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->pages_only = true;
  FERRY_TRY_VOID(impl->open());
  return std::unique_ptr<ImageReader>(new ImageReader(std::move(impl)));
}

Result<std::unique_ptr<ImageReader>> ImageReader::open(const std::string& path,
                                                       std::vector<ImageCheck>* checks) {
  h5::silence_errors();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->checks = checks;
  FERRY_TRY_VOID(impl->open());
  impl->checks = nullptr;
  return std::unique_ptr<ImageReader>(new ImageReader(std::move(impl)));
}

Result<void> ImageReader::Impl::open() {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail_errno("open image " + path);
  if (!S_ISREG(st.st_mode)) return fail(err(errc::image_foreign, "not a regular file"));

  FERRY_TRY_VOID(step("HDF5 file", [&]() -> Result<void> {
    htri_t is = H5Fis_hdf5(path.c_str());
    h5::take_error();
    if (is <= 0) return fail(err(errc::image_foreign, "not a ferry image (not an HDF5 file)"));
    h5::Id fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
    file = h5::Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
    if (!file)
      return fail(h5::corrupt(path, "cannot open the HDF5 file (truncated or damaged)"));
    return {};
  }, [&] { return std::to_string(st.st_size) + " bytes"; }));

  FERRY_TRY_VOID(read_header());
  if (pages_only) {
    // A base of an incremental image: only what reading its pages needs (page runs and the
    // pages stream); its other tables (strings in HDF5's global heap: slow to read) are unused.
    FERRY_TRY_VOID(step("checksum " + std::string(n::kPageRuns), [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(file.get(), n::kPageRuns, schema::page_run_fields(), path));
      image.page_runs = std::move(v);
      return {};
    }));
    uint64_t total = 0;
    FERRY_TRY_VOID(check_page_runs(total));
    FERRY_TRY(r, ChunkReader::open(file.get(), std::string(n::kPages), std::string(n::kPagesXxh3), total, path));
    pages = std::move(r);
    return {};
  }
  FERRY_TRY_VOID(read_tables());

  uint64_t page_total = 0;
  FERRY_TRY_VOID(step("page runs", [&] { return check_page_runs(page_total); }, [&] {
    return std::to_string(image.page_runs.size()) + " runs, " + std::to_string(page_total) +
           " bytes";
  }));
  FERRY_TRY_VOID(step("shape " + std::string(n::kPages), [&]() -> Result<void> {
    FERRY_TRY(r, ChunkReader::open(file.get(), std::string(n::kPages),
                                   std::string(n::kPagesXxh3), page_total, path));
    pages = std::move(r);
    return {};
  }, [&] {
    return std::to_string(pages->chunks()) + " chunks of " + std::to_string(pages->chunk_bytes()) +
           " bytes";
  }));
  if (image.header.record_kinds & kRecBlobs) {
    uint64_t blob_total = 0;
    FERRY_TRY_VOID(step("blob table", [&] { return check_blobs(blob_total); }, [&] {
      return std::to_string(image.blobs.size()) + " blobs, " + std::to_string(blob_total) +
             " bytes";
    }));
    FERRY_TRY_VOID(step("shape " + std::string(n::kBlobsData), [&]() -> Result<void> {
      FERRY_TRY(r, ChunkReader::open(file.get(), std::string(n::kBlobsData),
                                     std::string(n::kBlobsXxh3), blob_total, path));
      blobs = std::move(r);
      return {};
    }, [&] { return std::to_string(blobs->chunks()) + " chunks"; }));
  }
  return {};
}

Result<void> ImageReader::Impl::read_header() {
  hid_t root = file.get();
  ImageHeader& h = image.header;
  FERRY_TRY_VOID(step("magic", [&]() -> Result<void> {
    std::string magic;
    if (!h5::read_string_attr(root, n::kMagic, magic) || magic != n::kMagicValue) {
      h5::take_error();
      return fail(err(errc::image_foreign, "not a ferry image (no " + std::string(n::kMagic) +
                                               " attribute \"" + std::string(n::kMagicValue) +
                                               "\")"));
    }
    return {};
  }, [] { return std::string(n::kMagicValue); }));

  FERRY_TRY_VOID(step("schema version", [&]() -> Result<void> {
    if (!h5::read_string_attr(root, n::kSchemaVersion, h.schema_version))
      return fail(h5::corrupt(path, "missing attribute " + std::string(n::kSchemaVersion)));
    if (major_of(h.schema_version) != major_of(kSchemaVersion))
      return fail(err(errc::image_version, "schema version " + h.schema_version +
                                               " cannot be read by this ferry (reads " +
                                               major_of(kSchemaVersion) + ".x, writes " +
                                               kSchemaVersion + ")"));
    return {};
  }, [&] { return h.schema_version; }));

  FERRY_TRY_VOID(step("abi", [&]() -> Result<void> {
    if (!h5::read_string_attr(root, n::kAbi, h.abi))
      return fail(h5::corrupt(path, "missing attribute " + std::string(n::kAbi)));
    if (h.abi != n::kAbiX8664)
      return fail(err(errc::image_foreign, "image is for ABI " + h.abi + "; this ferry restores " +
                                               std::string(n::kAbiX8664) + " processes only"));
    return {};
  }, [&] { return h.abi; }));

  FERRY_TRY_VOID(step("record kinds", [&]() -> Result<void> {
    if (!tables::read_num_attr(root, n::kRecordKinds, tables::Col::u64, h.record_kinds))
      return fail(h5::corrupt(path, "missing attribute " + std::string(n::kRecordKinds)));
    if (uint64_t unknown = h.record_kinds & ~kKnownRecordKinds)
      return fail(err(errc::image_version,
                      "image holds record kinds " + hex(unknown) +
                          " unknown to this ferry (knows " + hex(kKnownRecordKinds) +
                          "); restoring without them would lose state"));
    return {};
  }, [&] { return hex(h.record_kinds); }));

  return step("checksum header", [&] {
    return tables::read_attrs(root, schema::header_fields(), h, n::kHeaderXxh3, "/", path);
  });
}

Result<void> ImageReader::Impl::read_tables() {
  hid_t f = file.get();
  ProcessImage& im = image;
  uint64_t kinds = im.header.record_kinds;
  auto ds = [&](std::string_view p, const std::function<Result<void>()>& body) {
    return step("checksum " + std::string(p), body);
  };
  auto group_required = [&](std::string_view g) -> Result<void> {
    if (!h5::link_exists(f, g)) return fail(err(errc::image_corrupt, "missing group " + std::string(g)));
    return {};
  };

  FERRY_TRY_VOID(ds(n::kProcess, [&]() -> Result<void> {
    FERRY_TRY_VOID(group_required(n::kProcess));
    h5::Id g(H5Gopen2(f, std::string(n::kProcess).c_str(), H5P_DEFAULT));
    if (!g) return fail(h5::corrupt(path, "cannot open group " + std::string(n::kProcess)));
    return tables::read_attrs(g.get(), schema::process_fields(), im.process, n::kAttrsXxh3,
                              n::kProcess, path);
  }));
  FERRY_TRY_VOID(ds(n::kProcessArgv, [&]() -> Result<void> {
    FERRY_TRY(v, tables::read_strings(f, n::kProcessArgv, path));
    im.process.argv = std::move(v);
    return {};
  }));
  FERRY_TRY_VOID(ds(n::kProcessRlimits, [&]() -> Result<void> {
    FERRY_TRY(v, tables::read_table(f, n::kProcessRlimits, schema::rlimit_fields(), path));
    im.process.rlimits = std::move(v);
    return {};
  }));
  FERRY_TRY_VOID(ds(n::kProcessAuxv, [&]() -> Result<void> {
    FERRY_TRY(a, tables::read_array(f, n::kProcessAuxv, tables::Col::u64, 1, path));
    im.process.auxv.resize(a.dims[0]);
    if (!a.data.empty()) std::memcpy(im.process.auxv.data(), a.data.data(), a.data.size());
    return {};
  }));
  FERRY_TRY_VOID(ds(n::kRegions, [&]() -> Result<void> {
    FERRY_TRY(v, tables::read_table(f, n::kRegions, schema::region_fields(), path));
    im.regions = std::move(v);
    return {};
  }));
  FERRY_TRY_VOID(ds(n::kPageRuns, [&]() -> Result<void> {
    FERRY_TRY(v, tables::read_table(f, n::kPageRuns, schema::page_run_fields(), path));
    im.page_runs = std::move(v);
    return {};
  }));
  if (kinds & kRecPageRefs) {
    FERRY_TRY_VOID(ds(n::kBases, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kBases, schema::base_image_fields(), path));
      im.bases = std::move(v);
      return {};
    }));
    FERRY_TRY_VOID(ds(n::kPageRefs, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kPageRefs, schema::page_ref_fields(), path));
      im.page_refs = std::move(v);
      return {};
    }));
  }
  if (kinds & kRecMappedFiles)
    FERRY_TRY_VOID(ds(n::kMappedFiles, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kMappedFiles, schema::file_identity_fields(), path));
      im.mapped_files = std::move(v);
      return {};
    }));
  if (kinds & kRecThreads) {
    FERRY_TRY_VOID(ds(n::kThreadsInfo, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kThreadsInfo, schema::thread_fields(), path));
      im.threads = std::move(v);
      return {};
    }));
    size_t nt = im.threads.size();
    FERRY_TRY_VOID(ds(n::kThreadsRegs, [&]() -> Result<void> {
      FERRY_TRY(a, tables::read_array(f, n::kThreadsRegs, tables::Col::u64, 2, path));
      if (a.dims[0] != nt || a.dims[1] != n::kRegsWords)
        return fail(err(errc::image_corrupt, "dataset " + std::string(n::kThreadsRegs) +
                                                 " is not [" + std::to_string(nt) + "][" +
                                                 std::to_string(n::kRegsWords) + "]"));
      for (size_t i = 0; i < nt; ++i)
        std::memcpy(im.threads[i].regs.data(), a.data.data() + i * n::kRegsWords * 8,
                    n::kRegsWords * 8);
      return {};
    }));
    FERRY_TRY_VOID(ds(n::kThreadsXsave, [&]() -> Result<void> {
      FERRY_TRY(a, tables::read_array(f, n::kThreadsXsave, tables::Col::u8, 2, path));
      size_t xs = im.header.xsave_size;
      if (a.dims[0] != nt || a.dims[1] != xs)
        return fail(err(errc::image_corrupt, "dataset " + std::string(n::kThreadsXsave) +
                                                 " is not [" + std::to_string(nt) + "][" +
                                                 std::to_string(xs) + "] (xsave_size)"));
      for (size_t i = 0; i < nt; ++i) {
        auto* p = reinterpret_cast<const uint8_t*>(a.data.data()) + i * xs;
        im.threads[i].xsave.assign(p, p + xs);
      }
      return {};
    }));
  }
  if (kinds & kRecSignals)
    FERRY_TRY_VOID(ds(n::kSignalActions, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kSignalActions, schema::signal_fields(), path));
      im.signals = std::move(v);
      return {};
    }));
  if (kinds & kRecFiles)
    FERRY_TRY_VOID(ds(n::kFds, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kFds, schema::fd_fields(), path));
      im.fds = std::move(v);
      return {};
    }));
  if (kinds & kRecBlobs)
    FERRY_TRY_VOID(ds(n::kBlobsTable, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kBlobsTable, schema::blob_fields(), path));
      for (auto& row : v) {
        im.blobs.push_back(std::move(row.blob));
        blob_offsets.push_back(row.offset);
      }
      return {};
    }));
  if (kinds & kRecSelfCheckpoint)
    FERRY_TRY_VOID(ds(n::kSelfCheckpoint, [&]() -> Result<void> {
      FERRY_TRY_VOID(group_required(n::kSelfCheckpoint));
      h5::Id g(H5Gopen2(f, std::string(n::kSelfCheckpoint).c_str(), H5P_DEFAULT));
      if (!g) return fail(h5::corrupt(path, "cannot open " + std::string(n::kSelfCheckpoint)));
      SelfCheckpoint sc;
      FERRY_TRY_VOID(tables::read_attrs(g.get(), schema::self_checkpoint_fields(), sc,
                                        n::kAttrsXxh3, n::kSelfCheckpoint, path));
      im.self_checkpoint = sc;
      return {};
    }));
  if (kinds & kRecClocks)
    FERRY_TRY_VOID(ds(n::kClocks, [&]() -> Result<void> {
      FERRY_TRY_VOID(group_required(n::kClocks));
      h5::Id g(H5Gopen2(f, std::string(n::kClocks).c_str(), H5P_DEFAULT));
      if (!g) return fail(h5::corrupt(path, "cannot open " + std::string(n::kClocks)));
      Clocks c;
      FERRY_TRY_VOID(tables::read_attrs(g.get(), schema::clock_fields(), c, n::kAttrsXxh3,
                                        n::kClocks, path));
      im.clocks = c;
      return {};
    }));
  if (kinds & kRecTimers) {
    FERRY_TRY_VOID(ds(n::kItimers, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kItimers, schema::itimer_fields(), path));
      im.itimers = std::move(v);
      return {};
    }));
    FERRY_TRY_VOID(ds(n::kPosixTimers, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kPosixTimers, schema::posix_timer_fields(), path));
      im.posix_timers = std::move(v);
      return {};
    }));
  }
  if (kinds & kRecEventFds) {
    FERRY_TRY_VOID(ds(n::kEventFds, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kEventFds, schema::event_fd_fields(), path));
      im.event_fds = std::move(v);
      return {};
    }));
    FERRY_TRY_VOID(ds(n::kEpollTargets, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kEpollTargets, schema::epoll_target_fields(), path));
      im.epoll_targets = std::move(v);
      return {};
    }));
  }
  if (kinds & kRecPendingSignals) {
    FERRY_TRY_VOID(ds(n::kPendingInfo, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kPendingInfo, schema::pending_signal_fields(), path));
      im.pending_signals = std::move(v);
      return {};
    }));
    FERRY_TRY_VOID(ds(n::kPendingSiginfo, [&]() -> Result<void> {
      FERRY_TRY(a, tables::read_array(f, n::kPendingSiginfo, tables::Col::u8, 2, path));
      size_t np = im.pending_signals.size();
      if (a.dims[0] != np || a.dims[1] != n::kSiginfoBytes)
        return fail(err(errc::image_corrupt, "dataset " + std::string(n::kPendingSiginfo) +
                                                 " is not [" + std::to_string(np) + "][" +
                                                 std::to_string(n::kSiginfoBytes) + "]"));
      for (size_t i = 0; i < np; ++i)
        std::memcpy(im.pending_signals[i].siginfo.data(), a.data.data() + i * n::kSiginfoBytes,
                    n::kSiginfoBytes);
      return {};
    }));
  }
  if (kinds & kRecSharedFds)
    FERRY_TRY_VOID(ds(n::kSharedFds, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kSharedFds, schema::shared_fd_fields(), path));
      im.shared_fds = std::move(v);
      return {};
    }));
  if (kinds & kRecPipes) {
    FERRY_TRY_VOID(ds(n::kPipeObjects, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kPipeObjects, schema::pipe_fields(), path));
      im.pipes = std::move(v);
      return {};
    }));
    FERRY_TRY_VOID(ds(n::kPipeEnds, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kPipeEnds, schema::pipe_end_fields(), path));
      im.pipe_ends = std::move(v);
      return {};
    }));
  }
  if (kinds & kRecZombies)
    FERRY_TRY_VOID(ds(n::kZombies, [&]() -> Result<void> {
      FERRY_TRY(v, tables::read_table(f, n::kZombies, schema::zombie_fields(), path));
      im.zombies = std::move(v);
      return {};
    }));
  return {};
}

Result<void> ImageReader::Impl::check_page_runs(uint64_t& total) {
  uint64_t ps = image.header.page_size;
  if (ps < 4096 || ps > (uint64_t{1} << 30) || (ps & (ps - 1)) != 0)
    return fail(err(errc::image_corrupt, "page_size " + std::to_string(ps) + " is not valid"));
  total = 0;
  for (size_t i = 0; i < image.page_runs.size(); ++i) {
    const PageRun& r = image.page_runs[i];
    uint64_t bytes = 0, end = 0;
    std::string what = std::string(n::kPageRuns) + "[" + std::to_string(i) + "]";
    if (r.npages == 0 || r.addr % ps != 0 || __builtin_mul_overflow(r.npages, ps, &bytes) ||
        __builtin_add_overflow(r.addr, bytes, &end))
      return fail(err(errc::image_corrupt, what + " is malformed"));
    if (r.offset != total)
      return fail(err(errc::image_corrupt, what + " starts at byte " + std::to_string(r.offset) +
                                               " of " + std::string(n::kPages) + ", expected " +
                                               std::to_string(total)));
    if (__builtin_add_overflow(total, bytes, &total))
      return fail(err(errc::image_corrupt, what + " overflows"));
  }
  runs_by_addr.resize(image.page_runs.size());
  for (size_t i = 0; i < runs_by_addr.size(); ++i) runs_by_addr[i] = i;
  std::sort(runs_by_addr.begin(), runs_by_addr.end(), [&](size_t a, size_t b) {
    return image.page_runs[a].addr < image.page_runs[b].addr;
  });
  for (size_t i = 1; i < runs_by_addr.size(); ++i) {
    const PageRun& prev = image.page_runs[runs_by_addr[i - 1]];
    if (prev.addr + prev.npages * ps > image.page_runs[runs_by_addr[i]].addr)
      return fail(err(errc::image_corrupt, "page runs overlap at address " +
                                               hex(image.page_runs[runs_by_addr[i]].addr)));
  }
  // 1.4: references to earlier generations: well formed, sorted, disjoint from each other and
  // from this image's own runs, each naming a base that exists and is older.
  if (image.page_refs.empty() != image.bases.empty())
    return fail(err(errc::image_corrupt, std::string(n::kBases) + " and " + std::string(n::kPageRefs) +
                                             " must both be present or both empty"));
  for (size_t i = 0; i < image.bases.size(); ++i)
    if (image.bases[i].generation >= image.header.generation || image.bases[i].path.empty())
      return fail(err(errc::image_corrupt, std::string(n::kBases) + "[" + std::to_string(i) +
                                               "] names generation " + std::to_string(image.bases[i].generation) +
                                               " at '" + image.bases[i].path + "', not an earlier image"));
  for (size_t i = 0, run = 0; i < image.page_refs.size(); ++i) {
    const PageRef& r = image.page_refs[i];
    uint64_t bytes = 0, end = 0;
    std::string what = std::string(n::kPageRefs) + "[" + std::to_string(i) + "]";
    if (r.npages == 0 || r.addr % ps != 0 || __builtin_mul_overflow(r.npages, ps, &bytes) ||
        __builtin_add_overflow(r.addr, bytes, &end) || r.base >= image.bases.size())
      return fail(err(errc::image_corrupt, what + " is malformed"));
    if (i > 0) {
      const PageRef& p = image.page_refs[i - 1];
      if (p.addr + p.npages * ps > r.addr)
        return fail(err(errc::image_corrupt, what + " is out of order or overlaps the one before"));
    }
    while (run < runs_by_addr.size() &&
           image.page_runs[runs_by_addr[run]].addr + image.page_runs[runs_by_addr[run]].npages * ps <= r.addr)
      ++run;
    if (run < runs_by_addr.size() && image.page_runs[runs_by_addr[run]].addr < end)
      return fail(err(errc::image_corrupt, what + " overlaps a page run of this image at " + hex(r.addr)));
  }
  return {};
}

Result<void> ImageReader::Impl::check_blobs(uint64_t& total) {
  total = 0;
  for (size_t i = 0; i < image.blobs.size(); ++i) {
    std::string what = std::string(n::kBlobsTable) + "[" + std::to_string(i) + "]";
    if (image.blobs[i].id != i)
      return fail(err(errc::image_corrupt, what + " has id " + std::to_string(image.blobs[i].id)));
    if (blob_offsets[i] != total)
      return fail(err(errc::image_corrupt, what + " starts at byte " +
                                               std::to_string(blob_offsets[i]) + ", expected " +
                                               std::to_string(total)));
    if (__builtin_add_overflow(total, image.blobs[i].size, &total))
      return fail(err(errc::image_corrupt, what + " overflows"));
  }
  return {};
}

const ProcessImage& ImageReader::image() const { return impl_->image; }

namespace {

// The offset in /memory/pages of [addr, addr+size), which must lie inside one page run.
Result<uint64_t> stream_offset(const ProcessImage& image, const std::vector<size_t>& runs_by_addr,
                               uint64_t addr, uint64_t size, const std::string& path) {
  const auto& runs = image.page_runs;
  uint64_t ps = image.header.page_size;
  auto it = std::upper_bound(runs_by_addr.begin(), runs_by_addr.end(), addr,
                             [&](uint64_t a, size_t idx) { return a < runs[idx].addr; });
  if (it != runs_by_addr.begin()) {
    const PageRun& r = runs[*(it - 1)];
    uint64_t end = r.addr + r.npages * ps;
    if (addr >= r.addr && addr <= end && size <= end - addr) return r.offset + (addr - r.addr);
  }
  return fail(errc::image_corrupt, "image " + path + ": no page run covers " + std::to_string(size) +
                                       " bytes at address " + hex(addr));
}

}  // namespace

Result<void> ImageReader::read_pages(uint64_t addr, std::span<std::byte> out) {
  Impl& m = *impl_;
  FERRY_TRY(off, stream_offset(m.image, m.runs_by_addr, addr, out.size(), m.path));
  return m.pages->read(off, out);
}

Result<void> ImageReader::read_pages_v(std::span<const PageRead> reads) {
  Impl& m = *impl_;
  // Reads adjacent in the stream and in memory become one read (whole chunks go straight in).
  uint64_t off = 0;
  std::byte* at = nullptr;
  size_t len = 0;
  for (const auto& r : reads) {
    FERRY_TRY(o, stream_offset(m.image, m.runs_by_addr, r.addr, r.out.size(), m.path));
    if (len > 0 && o == off + len && r.out.data() == at + len) {
      len += r.out.size();
      continue;
    }
    if (len > 0) FERRY_TRY_VOID(m.pages->read(off, {at, len}));
    off = o;
    at = r.out.data();
    len = r.out.size();
  }
  if (len > 0) FERRY_TRY_VOID(m.pages->read(off, {at, len}));
  return {};
}

Result<void> ImageReader::read_stored_v(std::span<const StoredRead> reads) {
  thread_local std::vector<ChunkReader::Piece> pieces;
  pieces.clear();
  for (const auto& r : reads) {
    if (r.store != 0)
      return fail(errc::image_corrupt, "image " + impl_->path + " has no store " + std::to_string(r.store));
    pieces.push_back({r.offset, r.out.data(), r.out.size()});
  }
  return impl_->pages->read_scattered(pieces);
}

Result<void> ImageReader::finish_stored_reads() { return impl_->pages->finish_scattered(); }

StoragePos ImageReader::storage_pos(uint64_t addr) const {
  const Impl& m = *impl_;
  const auto& runs = m.image.page_runs;
  auto it = std::upper_bound(m.runs_by_addr.begin(), m.runs_by_addr.end(), addr,
                             [&](uint64_t a, size_t idx) { return a < runs[idx].addr; });
  uint64_t offset = addr;
  if (it != m.runs_by_addr.begin()) {
    const PageRun& r = runs[*(it - 1)];
    offset = r.offset + (addr - r.addr);
  }
  return {0, offset, m.pages ? m.pages->chunk_bytes() : 0};
}

Result<void> ImageReader::read_blob(uint32_t id, uint64_t offset, std::span<std::byte> out) {
  Impl& m = *impl_;
  if (id >= m.image.blobs.size() || !m.blobs)
    return fail(m.err(errc::image_corrupt, "no blob " + std::to_string(id)));
  uint64_t size = m.image.blobs[id].size;
  if (offset > size || out.size() > size - offset)
    return fail(m.err(errc::image_corrupt, "read of " + std::to_string(out.size()) +
                                               " bytes at " + std::to_string(offset) +
                                               " beyond blob " + std::to_string(id) + " of " +
                                               std::to_string(size) + " bytes"));
  return m.blobs->read(m.blob_offsets[id] + offset, out);
}

Result<void> ImageReader::verify_all() {
  FERRY_TRY_VOID(impl_->pages->verify_all());
  if (impl_->blobs) FERRY_TRY_VOID(impl_->blobs->verify_all());
  return {};
}

std::shared_ptr<void> ImageReader::take_thread_read_buffers() { return image::take_thread_read_buffers(); }

void ImageReader::adopt_thread_read_buffers(std::shared_ptr<void> buffers) {
  image::adopt_thread_read_buffers(std::move(buffers));
}

Result<void> ImageReader::verify_unread() {
  FERRY_TRY_VOID(impl_->pages->verify_unread());
  if (impl_->blobs) FERRY_TRY_VOID(impl_->blobs->verify_unread());
  return {};
}

const std::string& ImageReader::path() const { return impl_->path; }
uint64_t ImageReader::page_bytes() const { return impl_->pages->size(); }
uint64_t ImageReader::blob_bytes() const { return impl_->blobs ? impl_->blobs->size() : 0; }
uint64_t ImageReader::page_chunks() const { return impl_->pages->chunks(); }
uint64_t ImageReader::blob_chunks() const { return impl_->blobs ? impl_->blobs->chunks() : 0; }

}  // namespace ferry::image
