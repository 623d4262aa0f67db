// SPDX-License-Identifier: Apache-2.0
// ImageWriter: streams pages and blob bytes into chunk streams, then writes the metadata
// tables and attributes of SCHEMA.md with their checksums, flushes, closes and fsyncs.
#include "ferry/image/writer.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "chunk_pipeline.hpp"
#include "ferry/common/fs.hpp"
#include "ferry/common/unique_fd.hpp"
#include "ferry/image/names.hpp"
#include "h5_support.hpp"
#include "schema_fields.hpp"
#include "tables.hpp"

namespace ferry::image {

namespace n = names;

struct ImageWriter::Impl {
  std::string path;
  h5::Id file;
  uint64_t page_size = 4096;
  std::unique_ptr<ChunkPipeline> pages;
  std::unique_ptr<ChunkPipeline> blob_data;  // created by the first begin_blob
  std::vector<PageRun> runs;
  std::vector<schema::BlobRow> blobs;
  uint64_t blob_filled = 0;  // bytes received by blobs.back()
  uint64_t stored_total = 0; // bytes_written() once the chunk writers are gone
  bool finished = false;
  bool failed = false;       // a write failed: the file is unusable

  Result<void> check_usable(const char* what) const {
    if (finished) return fail(errc::protocol, "image " + path + ": " + what + " after finish");
    if (failed)
      return fail(errc::protocol, "image " + path + ": " + what + " after an earlier write error");
    return {};
  }
  Result<void> finish(const ProcessImage& image);
  Result<void> write_groups(const ProcessImage& image, uint64_t kinds);
  void abandon() noexcept;
  Result<void> reserve_metadata_room(int fd);

  ~Impl() {
    if (file && !finished) abandon();
  }
};

// An image that is not finished (a write failed, or the dump gave up) is abandoned; the caller
// removes its file. Closing it still makes HDF5 flush its metadata, and when that flush fails
// (the disk is full) HDF5 1.10 leaves a half-closed file in its id table that crashes the
// process in HDF5's exit handler, long after: a rank supervisor would report a SIGSEGV
// instead of its program's exit status. So the file's descriptor is first pointed at an
// anonymous memory file: the last writes of the abandoned image go nowhere and the close
// succeeds. The image on disk stays as it was (incomplete, without its magic).
void ImageWriter::Impl::abandon() noexcept {
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file.get(), H5P_DEFAULT, &handle) >= 0 && handle) {
    int fd = *static_cast<int*>(handle);
    UniqueFd sink(::memfd_create("ferry-abandoned-image", MFD_CLOEXEC));
    if (sink && fd >= 0) (void)::dup3(sink.get(), fd, O_CLOEXEC);
  }
  pages.reset();
  blob_data.reset();
  if (!file.reset()) (void)h5::take_error();
}

// HDF5 writes its metadata (groups, tables, the chunk index) when the file is flushed, at the
// addresses it allocated beyond what is on disk yet. If the disk fills up during that flush,
// HDF5 1.10 cannot close the file any more ("slist already enabled?" on every later flush or
// close). So the room is taken first: the file is extended with fallocate over everything
// HDF5 allocated, plus slack for what the flush itself allocates; a full disk fails here,
// before the flush, and the image is abandoned cleanly. A filesystem without fallocate
// skips the reservation.
Result<void> ImageWriter::Impl::reserve_metadata_room(int fd) {
  constexpr uint64_t kSlack = uint64_t{1} << 20;
  haddr_t eoa = HADDR_UNDEF;
  struct stat st {};
  if (H5Fget_eoa(file.get(), &eoa) < 0) return fail(h5::write_error(path, "H5Fget_eoa"));
  if (::fstat(fd, &st) != 0) return fail_errno("stat image " + path);
  const uint64_t from = static_cast<uint64_t>(st.st_size), to = eoa + kSlack;
  if (to <= from) return {};
  if (::fallocate(fd, 0, static_cast<off_t>(from), static_cast<off_t>(to - from)) != 0) {
    if (errno == EOPNOTSUPP || errno == ENOSYS) return {};
    return fail_errno("reserve room for the metadata of image " + path);
  }
  return {};
}

ImageWriter::ImageWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageWriter::~ImageWriter() = default;

Result<std::unique_ptr<ImageWriter>> ImageWriter::create(const std::string& path) {
  h5::silence_errors();
  {
    // Create with 0600 first: H5Fcreate would use 0666 & ~umask. H5F_ACC_TRUNC keeps the mode.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return fail_errno("create image " + path);
    if (::fchmod(fd.get(), 0600) != 0) return fail_errno("chmod image " + path);
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  long ps = ::sysconf(_SC_PAGESIZE);
  impl->page_size = ps > 0 ? static_cast<uint64_t>(ps) : 4096;

  h5::Id fapl(H5Pcreate(H5P_FILE_ACCESS));
  // 1.10 format: extensible-array chunk index for the unlimited pages dataset (O(1) appends).
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110);
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  // Raw chunks may be written with O_DIRECT (chunk_pipeline.hpp): allocations of a whole chunk
  // start on a 4 KiB boundary, and the metadata cache never evicts (nor writes) an entry
  // before the flush in finish() (an image's metadata is a few hundred KiB at most).
  H5Pset_alignment(fapl.get(), kChunkBytes, 4096);
  {
    H5AC_cache_config_t mdc{};
    mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    if (H5Pget_mdc_config(fapl.get(), &mdc) >= 0) {
      mdc.incr_mode = H5C_incr__off;
      mdc.flash_incr_mode = H5C_flash_incr__off;
      mdc.decr_mode = H5C_decr__off;
      mdc.evictions_enabled = false;
      H5Pset_mdc_config(fapl.get(), &mdc);
    }
  }
  impl->file = h5::Id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!impl->file) return fail(h5::write_error(path, "H5Fcreate"));
  h5::Id g(H5Gcreate2(impl->file.get(), std::string(n::kMemory).c_str(), H5P_DEFAULT,
                      H5P_DEFAULT, H5P_DEFAULT));
  if (!g) return fail(h5::write_error(path, "create group " + std::string(n::kMemory)));
  FERRY_TRY(pages, ChunkPipeline::create(impl->file.get(), std::string(n::kPages),
                                       std::string(n::kPagesXxh3), path));
  impl->pages = std::move(pages);
  return std::unique_ptr<ImageWriter>(new ImageWriter(std::move(impl)));
}

Result<void> ImageWriter::append_pages(uint64_t addr, std::span<const std::byte> data) {
  Impl& m = *impl_;
  FERRY_TRY_VOID(m.check_usable("append_pages"));
  if (addr % m.page_size != 0 || data.size() % m.page_size != 0)
    return fail(errc::protocol, "image " + m.path + ": append_pages at " + std::to_string(addr) +
                                    " of " + std::to_string(data.size()) +
                                    " bytes is not page aligned");
  if (data.empty()) return {};
  uint64_t npages = data.size() / m.page_size;
  if (!m.runs.empty() && m.runs.back().addr + m.runs.back().npages * m.page_size == addr)
    m.runs.back().npages += npages;
  else
    m.runs.push_back({addr, npages, m.pages->size()});
  auto r = m.pages->append(data);
  if (!r) m.failed = true;
  return r;
}

Result<std::span<std::byte>> ImageWriter::page_buffer(size_t max) {
  Impl& m = *impl_;
  FERRY_TRY_VOID(m.check_usable("page_buffer"));
  max = std::max<size_t>(max / m.page_size * m.page_size, m.page_size);
  auto b = m.pages->fill_buffer(max);
  if (!b) m.failed = true;
  return b;
}

Result<void> ImageWriter::commit_pages(uint64_t addr, size_t n) {
  Impl& m = *impl_;
  FERRY_TRY_VOID(m.check_usable("commit_pages"));
  if (addr % m.page_size != 0 || n % m.page_size != 0)
    return fail(errc::protocol, "image " + m.path + ": commit_pages at " + std::to_string(addr) + " of " +
                                    std::to_string(n) + " bytes is not page aligned");
  if (n == 0) return {};
  const uint64_t npages = n / m.page_size;
  if (!m.runs.empty() && m.runs.back().addr + m.runs.back().npages * m.page_size == addr)
    m.runs.back().npages += npages;
  else
    m.runs.push_back({addr, npages, m.pages->size()});
  auto r = m.pages->commit(n);
  if (!r) m.failed = true;
  return r;
}

Result<uint32_t> ImageWriter::begin_blob(uint64_t size, const std::string& name) {
  Impl& m = *impl_;
  FERRY_TRY_VOID(m.check_usable("begin_blob"));
  if (!m.blobs.empty() && m.blob_filled != m.blobs.back().blob.size)
    return fail(errc::protocol, "image " + m.path + ": blob " +
                                    std::to_string(m.blobs.back().blob.id) + " got " +
                                    std::to_string(m.blob_filled) + " of its " +
                                    std::to_string(m.blobs.back().blob.size) + " bytes");
  if (!m.blob_data) {
    h5::Id g(H5Gcreate2(m.file.get(), std::string(n::kBlobsGroup).c_str(), H5P_DEFAULT,
                        H5P_DEFAULT, H5P_DEFAULT));
    if (!g) {
      m.failed = true;
      return fail(h5::write_error(m.path, "create group " + std::string(n::kBlobsGroup)));
    }
    auto w = ChunkPipeline::create(m.file.get(), std::string(n::kBlobsData),
                                 std::string(n::kBlobsXxh3), m.path);
    if (!w) {
      m.failed = true;
      return fail(w.error());
    }
    m.blob_data = std::move(*w);
  }
  auto id = static_cast<uint32_t>(m.blobs.size());
  m.blobs.push_back({Blob{id, size, name}, m.blob_data->size()});
  m.blob_filled = 0;
  return id;
}

Result<void> ImageWriter::append_blob_data(uint32_t id, std::span<const std::byte> data) {
  Impl& m = *impl_;
  FERRY_TRY_VOID(m.check_usable("append_blob_data"));
  if (m.blobs.empty() || id != m.blobs.back().blob.id)
    return fail(errc::protocol, "image " + m.path + ": append to blob " + std::to_string(id) +
                                    ", which is not the blob begun last");
  if (data.size() > m.blobs.back().blob.size - m.blob_filled)
    return fail(errc::protocol, "image " + m.path + ": blob " + std::to_string(id) +
                                    " overflows its declared size " +
                                    std::to_string(m.blobs.back().blob.size));
  auto r = m.blob_data->append(data);
  if (!r) {
    m.failed = true;
    return r;
  }
  m.blob_filled += data.size();
  return {};
}

Result<void> ImageWriter::finish(const ProcessImage& image) {
  FERRY_TRY_VOID(impl_->check_usable("finish"));
  auto r = impl_->finish(image);
  if (!r) impl_->failed = true;
  return r;
}

Result<void> ImageWriter::Impl::finish(const ProcessImage& image) {
  const ImageHeader& h = image.header;
  if (h.page_size != page_size)
    return fail(errc::protocol, "image " + path + ": header page_size " +
                                    std::to_string(h.page_size) + " but pages were appended in " +
                                    std::to_string(page_size) + "-byte pages");
  for (const auto& t : image.threads)
    if (t.xsave.size() != h.xsave_size)
      return fail(errc::protocol, "image " + path + ": thread " + std::to_string(t.tid) +
                                      " has " + std::to_string(t.xsave.size()) +
                                      " XSAVE bytes, header xsave_size is " +
                                      std::to_string(h.xsave_size));
  if (!blobs.empty() && blob_filled != blobs.back().blob.size)
    return fail(errc::protocol, "image " + path + ": blob " +
                                    std::to_string(blobs.back().blob.id) + " got " +
                                    std::to_string(blob_filled) + " of its " +
                                    std::to_string(blobs.back().blob.size) + " bytes");

  FERRY_TRY_VOID(pages->finish());
  if (blob_data) FERRY_TRY_VOID(blob_data->finish());

  uint64_t kinds = kRecMemory;
  if (!image.threads.empty()) kinds |= kRecThreads;
  if (!image.signals.empty()) kinds |= kRecSignals;
  if (!image.fds.empty()) kinds |= kRecFiles;
  if (!image.mapped_files.empty()) kinds |= kRecMappedFiles;
  if (!blobs.empty()) kinds |= kRecBlobs;
  if (image.self_checkpoint) kinds |= kRecSelfCheckpoint;
  if (image.clocks) kinds |= kRecClocks;
  if (!image.itimers.empty() || !image.posix_timers.empty()) kinds |= kRecTimers;
  if (!image.event_fds.empty()) kinds |= kRecEventFds;
  if (!image.pending_signals.empty()) kinds |= kRecPendingSignals;
  if (!image.pipes.empty() || !image.pipe_ends.empty()) kinds |= kRecPipes;
  if (!image.zombies.empty()) kinds |= kRecZombies;
  if (!image.shared_fds.empty()) kinds |= kRecSharedFds | kRecFiles;
  if (!image.page_refs.empty()) kinds |= kRecPageRefs;
  FERRY_TRY_VOID(write_groups(image, kinds));

  // The header goes last: an image interrupted before this point has no magic and is refused.
  ImageHeader hdr = h;
  hdr.schema_version = kSchemaVersion;
  hdr.record_kinds = kinds;
  if (!h5::write_string_attr(file.get(), n::kMagic, std::string(n::kMagicValue)) ||
      !tables::write_attrs(file.get(), schema::header_fields(), hdr, n::kHeaderXxh3))
    return fail(h5::write_error(path, "write header attributes"));

  stored_total = pages->stored_bytes() + (blob_data ? blob_data->stored_bytes() : 0);
  std::vector<FileRange> holes = {pages->padding()};
  if (blob_data) holes.push_back(blob_data->padding());
  pages.reset();
  blob_data.reset();
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return fail_errno("reopen image " + path);
  FERRY_TRY_VOID(reserve_metadata_room(fd.get()));
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) return fail(h5::write_error(path, "H5Fflush"));
  haddr_t eoa = HADDR_UNDEF;
  if (H5Fget_eoa(file.get(), &eoa) < 0) return fail(h5::write_error(path, "H5Fget_eoa"));
  if (!file.reset()) return fail(h5::write_error(path, "H5Fclose"));
  {
    // The file ends at HDF5's end of allocation; the rest of the reserved room goes back.
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail_errno("stat image " + path);
    if (static_cast<uint64_t>(st.st_size) > eoa && ::ftruncate(fd.get(), static_cast<off_t>(eoa)) != 0)
      return fail_errno("truncate image " + path);
    // Give back the zero padding of partial last chunks (reads return zeros, as written).
    // Best effort: a filesystem without hole punching just keeps the zeros.
    for (const auto& h : holes)
      if (h.len > 0)
        (void)::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          static_cast<off_t>(h.offset), static_cast<off_t>(h.len));
    const auto t0 = std::chrono::steady_clock::now();
    if (::fsync(fd.get()) != 0) return fail_errno("fsync image " + path);
    if (const char* e = std::getenv("FERRY_WRITE_TRACE"); e && *e && std::strcmp(e, "0") != 0)
      std::fprintf(stderr, "ferry write %s: fsync %.3f s\n", path.c_str(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  FERRY_TRY_VOID(fs::fsync_parent(path));
  finished = true;
  return {};
}

Result<void> ImageWriter::Impl::write_groups(const ProcessImage& image, uint64_t kinds) {
  hid_t f = file.get();
  auto group = [&](std::string_view name) -> Result<h5::Id> {
    h5::Id g(H5Gcreate2(f, std::string(name).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!g) return fail(h5::write_error(path, "create group " + std::string(name)));
    return g;
  };
  using tables::write_table;

  // /process
  {
    FERRY_TRY(g, group(n::kProcess));
    if (!tables::write_attrs(g.get(), schema::process_fields(), image.process, n::kAttrsXxh3))
      return fail(h5::write_error(path, "write attributes of " + std::string(n::kProcess)));
    FERRY_TRY_VOID(tables::write_strings(f, n::kProcessArgv, image.process.argv, path));
    FERRY_TRY_VOID(write_table(f, n::kProcessRlimits, schema::rlimit_fields(),
                               std::span<const Rlimit>(image.process.rlimits), path));
    hsize_t dims[1] = {image.process.auxv.size()};
    FERRY_TRY_VOID(tables::write_array(f, n::kProcessAuxv, tables::Col::u64,
                                       image.process.auxv.data(), dims, path));
  }
  // /memory (the group and the pages exist since create())
  FERRY_TRY_VOID(write_table(f, n::kRegions, schema::region_fields(),
                             std::span<const Region>(image.regions), path));
  FERRY_TRY_VOID(write_table(f, n::kPageRuns, schema::page_run_fields(),
                             std::span<const PageRun>(runs), path));
  if (kinds & kRecPageRefs) {
    FERRY_TRY_VOID(write_table(f, n::kBases, schema::base_image_fields(),
                               std::span<const BaseImage>(image.bases), path));
    FERRY_TRY_VOID(write_table(f, n::kPageRefs, schema::page_ref_fields(),
                               std::span<const PageRef>(image.page_refs), path));
  }
  if (kinds & kRecMappedFiles) {
    FERRY_TRY_VOID(group(n::kMappedFilesGroup));
    FERRY_TRY_VOID(write_table(f, n::kMappedFiles, schema::file_identity_fields(),
                               std::span<const FileIdentity>(image.mapped_files), path));
  }
  if (kinds & kRecThreads) {
    FERRY_TRY_VOID(group(n::kThreadsGroup));
    FERRY_TRY_VOID(write_table(f, n::kThreadsInfo, schema::thread_fields(),
                               std::span<const Thread>(image.threads), path));
    size_t nt = image.threads.size();
    std::vector<uint64_t> regs(nt * n::kRegsWords);
    std::vector<uint8_t> xsave(nt * image.header.xsave_size);
    for (size_t i = 0; i < nt; ++i) {
      std::copy(image.threads[i].regs.begin(), image.threads[i].regs.end(),
                regs.begin() + static_cast<ptrdiff_t>(i * n::kRegsWords));
      std::copy(image.threads[i].xsave.begin(), image.threads[i].xsave.end(),
                xsave.begin() + static_cast<ptrdiff_t>(i * image.header.xsave_size));
    }
    hsize_t rdims[2] = {nt, n::kRegsWords};
    FERRY_TRY_VOID(
        tables::write_array(f, n::kThreadsRegs, tables::Col::u64, regs.data(), rdims, path));
    hsize_t xdims[2] = {nt, image.header.xsave_size};
    FERRY_TRY_VOID(
        tables::write_array(f, n::kThreadsXsave, tables::Col::u8, xsave.data(), xdims, path));
  }
  if (kinds & kRecSignals) {
    FERRY_TRY_VOID(group(n::kSignalsGroup));
    FERRY_TRY_VOID(write_table(f, n::kSignalActions, schema::signal_fields(),
                               std::span<const SignalAction>(image.signals), path));
  }
  if (kinds & kRecFiles) {
    FERRY_TRY_VOID(group(n::kFilesGroup));
    FERRY_TRY_VOID(write_table(f, n::kFds, schema::fd_fields(),
                               std::span<const FdRecord>(image.fds), path));
  }
  if (kinds & kRecBlobs) {
    FERRY_TRY_VOID(write_table(f, n::kBlobsTable, schema::blob_fields(),
                               std::span<const schema::BlobRow>(blobs), path));
  }
  if (kinds & kRecSelfCheckpoint) {
    FERRY_TRY(g, group(n::kSelfCheckpoint));
    if (!tables::write_attrs(g.get(), schema::self_checkpoint_fields(), *image.self_checkpoint,
                             n::kAttrsXxh3))
      return fail(h5::write_error(path, "write " + std::string(n::kSelfCheckpoint)));
  }
  if (kinds & kRecClocks) {
    FERRY_TRY(g, group(n::kClocks));
    if (!tables::write_attrs(g.get(), schema::clock_fields(), *image.clocks, n::kAttrsXxh3))
      return fail(h5::write_error(path, "write " + std::string(n::kClocks)));
  }
  if (kinds & kRecTimers) {
    FERRY_TRY_VOID(group(n::kTimersGroup));
    FERRY_TRY_VOID(write_table(f, n::kItimers, schema::itimer_fields(),
                               std::span<const Itimer>(image.itimers), path));
    FERRY_TRY_VOID(write_table(f, n::kPosixTimers, schema::posix_timer_fields(),
                               std::span<const PosixTimer>(image.posix_timers), path));
  }
  if (kinds & kRecEventFds) {
    FERRY_TRY_VOID(group(n::kEventFdsGroup));
    FERRY_TRY_VOID(write_table(f, n::kEventFds, schema::event_fd_fields(),
                               std::span<const EventFd>(image.event_fds), path));
    FERRY_TRY_VOID(write_table(f, n::kEpollTargets, schema::epoll_target_fields(),
                               std::span<const EpollTarget>(image.epoll_targets), path));
  }
  if (kinds & kRecPendingSignals) {
    FERRY_TRY_VOID(group(n::kPendingGroup));
    FERRY_TRY_VOID(write_table(f, n::kPendingInfo, schema::pending_signal_fields(),
                               std::span<const PendingSignal>(image.pending_signals), path));
    size_t np = image.pending_signals.size();
    std::vector<uint8_t> raw(np * n::kSiginfoBytes);
    for (size_t i = 0; i < np; ++i)
      std::copy(image.pending_signals[i].siginfo.begin(), image.pending_signals[i].siginfo.end(),
                raw.begin() + static_cast<ptrdiff_t>(i * n::kSiginfoBytes));
    hsize_t dims[2] = {np, n::kSiginfoBytes};
    FERRY_TRY_VOID(
        tables::write_array(f, n::kPendingSiginfo, tables::Col::u8, raw.data(), dims, path));
  }
  if (kinds & kRecSharedFds)  // inside /files, which kRecFiles created above
    FERRY_TRY_VOID(write_table(f, n::kSharedFds, schema::shared_fd_fields(),
                               std::span<const SharedFd>(image.shared_fds), path));
  if (kinds & kRecPipes) {
    FERRY_TRY_VOID(group(n::kPipesGroup));
    FERRY_TRY_VOID(write_table(f, n::kPipeObjects, schema::pipe_fields(),
                               std::span<const Pipe>(image.pipes), path));
    FERRY_TRY_VOID(write_table(f, n::kPipeEnds, schema::pipe_end_fields(),
                               std::span<const PipeEnd>(image.pipe_ends), path));
  }
  if (kinds & kRecZombies) {
    FERRY_TRY_VOID(group(n::kZombiesGroup));
    FERRY_TRY_VOID(write_table(f, n::kZombies, schema::zombie_fields(),
                               std::span<const Zombie>(image.zombies), path));
  }
  return {};
}

uint64_t ImageWriter::bytes_written() const {
  const Impl& m = *impl_;
  if (!m.pages) return m.stored_total;
  return m.pages->stored_bytes() + (m.blob_data ? m.blob_data->stored_bytes() : 0);
}

const std::string& ImageWriter::path() const { return impl_->path; }

}  // namespace ferry::image
