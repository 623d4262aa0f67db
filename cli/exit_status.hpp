// SPDX-License-Identifier: Apache-2.0
// ferry's own exit statuses (sysexits.h values), documented in docs/exit-status.md. A
// command that runs the job (launch, restart) otherwise exits with the job's own status.
#pragma once

#include "ferry/common/result.hpp"

namespace ferry::cli {

inline constexpr int kExitUsage = 64;        // bad command line
inline constexpr int kExitImage = 65;        // image corrupt, truncated, foreign or too new
inline constexpr int kExitNotFound = 66;     // unknown job, generation or image
inline constexpr int kExitUnsupported = 69;  // checkpoint refused: unsupported state; job runs on
inline constexpr int kExitInternal = 70;     // internal error; restore failed after the point of no return
inline constexpr int kExitSystem = 71;       // other system error
inline constexpr int kExitBusy = 73;         // job running / another checkpoint in progress
inline constexpr int kExitIo = 74;           // I/O error writing or reading the store (disk full)
inline constexpr int kExitStopped = 75;      // job stopped after `ferry checkpoint --stop`
inline constexpr int kExitPermission = 77;   // not your job
inline constexpr int kExitEnvironment = 78;  // restart refused: files, CPU or vDSO differ

int exit_status_for(const Error& e);

}  // namespace ferry::cli
