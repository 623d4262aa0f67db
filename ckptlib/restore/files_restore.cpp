// SPDX-License-Identifier: Apache-2.0
// restore_fds: reopens every fd of the image inside the restore child at its number, with
// its flags and offset, rolling writable files back to their checkpoint size (README.md).
// Pipe ends are not FdRecords: restore_pipes (tree_fds_restore.cpp) placed them before.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <set>

#include "ferry/common/fs.hpp"
#include "restore/steps.hpp"

namespace ferry::restore {

using image::FdKind;

namespace {

// Open flags that describe an open file description and can be given to open() again.
// O_CREAT/O_EXCL/O_TRUNC/O_TMPFILE are creation-time only; O_CLOEXEC is per fd (dup3).
constexpr int kReopenFlags = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT |
                             O_NOATIME | O_LARGEFILE | O_PATH;

}  // namespace

Result<void> restore_fds(ChildBuilder& b, image::ImageSource& src, const RestoreOptions& opt) {
  const auto& img = src.image();
  std::set<int> in_image;
  for (const auto& e : img.pipe_ends) in_image.insert(e.fd);  // placed by restore_pipes already
  for (const auto& f : img.fds) {
    in_image.insert(f.fd);
    if (f.kind == FdKind::inherit) continue;
    std::string what = "restore fd " + std::to_string(f.fd) +
                       (f.file.path.empty() ? "" : " (" + f.file.path + ")");
    int flags = static_cast<int>(f.flags) & kReopenFlags;
    int tmp = -1;
    auto with = [&](const Error& e) { return e.wrap(what); };
    switch (f.kind) {
      case FdKind::regular: {
        auto r = b.open(f.file.path, flags);
        if (!r) return fail(with(r.error()));
        tmp = *r;
        struct stat st {};
        bool writable = (f.flags & O_ACCMODE) != O_RDONLY;
        if (writable && ::stat(f.file.path.c_str(), &st) == 0 &&
            static_cast<uint64_t>(st.st_size) > f.file.size) {
          // Roll back output written after the checkpoint: the restarted run writes it again.
          if (opt.log)
            opt.log("restore: truncate " + f.file.path + " from " + std::to_string(st.st_size) +
                    " to its checkpoint size " + std::to_string(f.file.size));
          auto t = b.call("truncate " + f.file.path + " to " + std::to_string(f.file.size), SYS_ftruncate,
                          {static_cast<uint64_t>(tmp), f.file.size});
          if (!t) return fail(with(t.error()));
        }
        break;
      }
      case FdKind::deleted:
      case FdKind::memfd: {
        uint32_t blob = static_cast<uint32_t>(f.blob);
        int obj = -1;
        if (auto it = b.blob_fds().find(blob); it != b.blob_fds().end()) {
          obj = it->second;
        } else {
          std::string path = f.file.path;
          auto r = f.kind == FdKind::deleted
                       ? b.materialize_blob(src, blob, fs::dirname(path), fs::basename(path))
                       : b.materialize_blob(src, blob, "", path.rfind("/memfd:", 0) == 0 ? path.substr(7) : path);
          if (!r) return fail(with(r.error()));
          obj = *r;
          b.blob_fds()[blob] = obj;
        }
        // A new open file description of the same object, with this fd's own flags.
        auto r = b.open("/proc/self/fd/" + std::to_string(obj), flags);
        if (!r) return fail(with(r.error()));
        tmp = *r;
        break;
      }
      case FdKind::directory:
      case FdKind::devnull: {
        auto r = b.open(f.file.path, flags | (f.kind == FdKind::directory ? O_DIRECTORY : 0));
        if (!r) return fail(with(r.error()));
        tmp = *r;
        break;
      }
      default:
        return fail(errc::unsupported, what + ": unsupported fd kind");
    }
    if (f.offset != 0 && !(flags & O_PATH)) {
      auto r = b.call("seek to " + std::to_string(f.offset), SYS_lseek,
                      {static_cast<uint64_t>(tmp), f.offset, SEEK_SET});
      if (!r && f.kind != FdKind::directory) return fail(with(r.error()));
    }
    if (tmp == f.fd) {
      auto r = b.call("set close-on-exec", SYS_fcntl,
                      {static_cast<uint64_t>(tmp), F_SETFD, f.cloexec ? uint64_t{FD_CLOEXEC} : 0});
      if (!r) return fail(with(r.error()));
    } else {
      auto r = b.call("dup3 to its number", SYS_dup3,
                      {static_cast<uint64_t>(tmp), static_cast<uint64_t>(f.fd),
                       f.cloexec ? uint64_t{O_CLOEXEC} : 0});
      if (!r) return fail(with(r.error()));
      if (auto c = b.close(tmp); !c) return fail(with(c.error()));
    }
  }
  // The child kept only fds 0-2 from its parent; those the process did not have go away.
  for (int fd = 0; fd <= 2; ++fd) {
    if (in_image.count(fd)) continue;
    (void)b.call("close fd " + std::to_string(fd), SYS_close, {static_cast<uint64_t>(fd)});
  }
  if (auto r = b.close_temps(); !r) return fail(r.error().wrap("close temporary fds"));
  if (opt.log) opt.log("restore: reopened " + std::to_string(img.fds.size()) + " fds");
  return {};
}

}  // namespace ferry::restore
