// SPDX-License-Identifier: Apache-2.0
// Maps an Error to one of ferry's documented exit statuses.
#include "exit_status.hpp"

#include <cerrno>

namespace ferry::cli {

int exit_status_for(const Error& e) {
  if (e.code().category() == ferry_category()) {
    switch (static_cast<errc>(e.code().value())) {
      case errc::image_corrupt:
      case errc::image_version:
      case errc::image_foreign: return kExitImage;
      case errc::not_found: return kExitNotFound;
      case errc::unsupported:
      case errc::process_gone: return kExitUnsupported;
      case errc::cpu_incompatible:
      case errc::file_changed:
      case errc::vdso_mismatch:
      case errc::address_conflict: return kExitEnvironment;
      case errc::busy: return kExitBusy;
      case errc::permission: return kExitPermission;
      default: return kExitInternal;
    }
  }
  switch (e.code().value()) {
    case ENOSPC:
    case EDQUOT:
    case EIO:
    case EROFS: return kExitIo;
    case EACCES:
    case EPERM: return kExitPermission;
    case ENOENT: return kExitNotFound;
    default: return kExitSystem;
  }
}

}  // namespace ferry::cli
