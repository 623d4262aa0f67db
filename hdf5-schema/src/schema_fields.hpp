// SPDX-License-Identifier: Apache-2.0
// The schema as code: which model field goes to which stored name and type, in the canonical
// (checksum) order of SCHEMA.md. Writer and reader both use these lists and nothing else.
#pragma once

#include <vector>

#include "ferry/image/model.hpp"
#include "tables.hpp"

namespace ferry::image::schema {

// A row of /blobs/table: the model's Blob plus where its bytes start in /blobs/data.
struct BlobRow {
  Blob blob;
  uint64_t offset = 0;
};

const std::vector<tables::Field<ImageHeader>>& header_fields();   // root attributes
const std::vector<tables::Field<ProcessInfo>>& process_fields();  // /process attributes
const std::vector<tables::Field<SelfCheckpoint>>& self_checkpoint_fields();
const std::vector<tables::Field<Rlimit>>& rlimit_fields();
const std::vector<tables::Field<Region>>& region_fields();
const std::vector<tables::Field<PageRun>>& page_run_fields();
const std::vector<tables::Field<FileIdentity>>& file_identity_fields();
const std::vector<tables::Field<Thread>>& thread_fields();  // without regs and xsave
const std::vector<tables::Field<SignalAction>>& signal_fields();
const std::vector<tables::Field<FdRecord>>& fd_fields();
const std::vector<tables::Field<BlobRow>>& blob_fields();
// 1.1
const std::vector<tables::Field<Clocks>>& clock_fields();  // /clocks attributes
const std::vector<tables::Field<Itimer>>& itimer_fields();
const std::vector<tables::Field<PosixTimer>>& posix_timer_fields();
const std::vector<tables::Field<EventFd>>& event_fd_fields();
const std::vector<tables::Field<EpollTarget>>& epoll_target_fields();
const std::vector<tables::Field<PendingSignal>>& pending_signal_fields();  // without siginfo
// 1.2
const std::vector<tables::Field<Pipe>>& pipe_fields();
const std::vector<tables::Field<PipeEnd>>& pipe_end_fields();
const std::vector<tables::Field<Zombie>>& zombie_fields();
const std::vector<tables::Field<SharedFd>>& shared_fd_fields();
// 1.4
const std::vector<tables::Field<BaseImage>>& base_image_fields();
const std::vector<tables::Field<PageRef>>& page_ref_fields();

}  // namespace ferry::image::schema
