// SPDX-License-Identifier: Apache-2.0
// Small durable-filesystem helpers: whole-file reads, atomic replace (write temp, fsync,
// rename, fsync directory), directory fsync. Every generation commit goes through these.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "ferry/common/result.hpp"

namespace ferry::fs {

Result<std::string> read_file(const std::string& path);
// Writes data to path+".tmp", fsyncs it, renames over path, fsyncs the directory.
Result<void> write_file_atomic(const std::string& path, std::span<const std::byte> data, int mode = 0600);
Result<void> write_file_atomic(const std::string& path, const std::string& text, int mode = 0600);
Result<void> fsync_path(const std::string& path);   // file or directory
Result<void> fsync_parent(const std::string& path);  // the directory holding path
Result<void> make_dirs(const std::string& path, int mode = 0700);
std::string dirname(const std::string& path);
std::string basename(const std::string& path);

}  // namespace ferry::fs
