// SPDX-License-Identifier: Apache-2.0
// ferry::Result<T> and ferry::Error: the one error type of ckptlib, the CLI and the daemons.
// An Error is a std::error_code (errno or ferry::errc) plus a context string saying what was
// being done ("open image /x/rank-0.h5"); message() renders "context: reason".
#pragma once

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include <tl/expected.hpp>

namespace ferry {

// Domain failures. Keep numbers stable: they appear in logs and protocol replies.
enum class errc {
  ok = 0,
  image_corrupt = 1,       // checksum mismatch, missing dataset, truncated file
  image_version = 2,       // schema version this build cannot read
  image_foreign = 3,       // not a ferry image, or another ABI (i386, x32, other arch)
  cpu_incompatible = 4,    // image uses XSAVE components this CPU lacks
  file_changed = 5,        // a mapped or open file differs from the one at checkpoint
  address_conflict = 6,    // a range the restorer needs is not available
  unsupported = 7,         // state ferry cannot checkpoint yet (socket, child process, ...)
  not_found = 8,           // unknown job, generation or image
  busy = 9,                // another checkpoint of this job is running
  protocol = 10,           // malformed request or reply
  restore_failed = 11,     // failure after the point of no return
  process_gone = 12,       // the target process exited during the operation
  permission = 13,         // the caller may not act on this job
  vdso_mismatch = 14,      // the kernel's vDSO differs from the image's
};

}  // namespace ferry

template <>
struct std::is_error_code_enum<ferry::errc> : std::true_type {};

namespace ferry {

const std::error_category& ferry_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), ferry_category()};
}

class [[nodiscard]] Error {
public:
  Error() = default;
  Error(std::error_code code, std::string context)
      : code_(code), context_(std::move(context)) {}
  Error(errc code, std::string context) : code_(make_error_code(code)), context_(std::move(context)) {}

  // Captures errno on the failing line: Error::from_errno("ptrace(PTRACE_SEIZE)").
  static Error from_errno(std::string context, int err = errno) {
    return Error(std::error_code(err, std::system_category()), std::move(context));
  }

  const std::error_code& code() const noexcept { return code_; }
  const std::string& context() const noexcept { return context_; }
  bool is(errc e) const noexcept { return code_ == make_error_code(e); }

  // Adds an outer context: "restore job 3: open image /x: No such file or directory".
  Error wrap(const std::string& outer) const {
    return Error(code_, context_.empty() ? outer : outer + ": " + context_);
  }

  std::string message() const {
    if (context_.empty()) return code_.message();
    // Domain errors carry their whole reason in the context.
    if (code_.category() == ferry_category()) return context_;
    return context_ + ": " + code_.message();
  }

private:
  std::error_code code_;
  std::string context_;
};

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(Error e) { return tl::unexpected<Error>(std::move(e)); }
inline tl::unexpected<Error> fail(errc code, std::string context) {
  return tl::unexpected<Error>(Error(code, std::move(context)));
}
inline tl::unexpected<Error> fail_errno(std::string context, int err = errno) {
  return tl::unexpected<Error>(Error::from_errno(std::move(context), err));
}

}  // namespace ferry

// Propagates the error of a Result-returning expression, else yields its value.
#define FERRY_TRY(var, expr)                                    \
  auto var##_result_ = (expr);                                  \
  if (!var##_result_) return ::tl::unexpected(var##_result_.error()); \
  auto& var = *var##_result_
#define FERRY_TRY_VOID(expr)                                    \
  do {                                                          \
    auto ferry_r_ = (expr);                                     \
    if (!ferry_r_) return ::tl::unexpected(ferry_r_.error());   \
  } while (0)
