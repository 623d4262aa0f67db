// SPDX-License-Identifier: Apache-2.0
// The error category of ferry::errc.
#include "ferry/common/result.hpp"

namespace ferry {
namespace {
class FerryCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "ferry"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok: return "ok";
      case errc::image_corrupt: return "image is corrupt";
      case errc::image_version: return "image schema version not supported";
      case errc::image_foreign: return "not an image this build can restore";
      case errc::cpu_incompatible: return "image needs CPU features this machine lacks";
      case errc::file_changed: return "a file changed since the checkpoint";
      case errc::address_conflict: return "address range conflict";
      case errc::unsupported: return "unsupported process state";
      case errc::not_found: return "not found";
      case errc::busy: return "busy";
      case errc::protocol: return "protocol error";
      case errc::restore_failed: return "restore failed after the point of no return";
      case errc::process_gone: return "process exited";
      case errc::permission: return "permission denied";
      case errc::vdso_mismatch: return "vDSO of this kernel differs from the image's";
    }
    return "unknown ferry error";
  }
};
}  // namespace

const std::error_category& ferry_category() noexcept {
  static const FerryCategory category;
  return category;
}
}  // namespace ferry
