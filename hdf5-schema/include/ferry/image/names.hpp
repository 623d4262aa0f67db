// SPDX-License-Identifier: Apache-2.0
// Every group, dataset, attribute and compound-field name of the ferry HDF5 image, in one
// place (SCHEMA.md is the prose for each). Writer, reader and validator use only these.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace ferry::image::names {

// clang-format off

// ---- root attributes (the image header) -------------------------------------------------
inline constexpr std::string_view kMagic              = "magic";
inline constexpr std::string_view kMagicValue         = "FERRY-IMAGE";
inline constexpr std::string_view kSchemaVersion      = "ferry_schema_version";
inline constexpr std::string_view kRecordKinds        = "record_kinds";
inline constexpr std::string_view kAbi                = "abi";
inline constexpr std::string_view kXfeatures          = "xfeatures";
inline constexpr std::string_view kCpuXcr0            = "cpu_xcr0";
inline constexpr std::string_view kXsaveSize          = "xsave_size";
inline constexpr std::string_view kPageSize           = "page_size";
inline constexpr std::string_view kKernel             = "kernel";
inline constexpr std::string_view kHost               = "host";
inline constexpr std::string_view kJob                = "job";
inline constexpr std::string_view kRank               = "rank";
inline constexpr std::string_view kGeneration         = "generation";
inline constexpr std::string_view kTimeNs             = "time_ns";
inline constexpr std::string_view kPid                = "pid";
inline constexpr std::string_view kFerryVersion       = "ferry_version";
inline constexpr std::string_view kVdsoHash           = "vdso_hash";
inline constexpr std::string_view kHeaderXxh3         = "header_xxh3";

// Checksum attributes: on every metadata dataset, and on groups that keep fields as attributes.
inline constexpr std::string_view kXxh3               = "xxh3";
inline constexpr std::string_view kAttrsXxh3          = "attrs_xxh3";

// The only ABI this build restores.
inline constexpr std::string_view kAbiX8664           = "x86_64";

// ---- /process -----------------------------------------------------------------------------
inline constexpr std::string_view kProcess            = "/process";
inline constexpr std::string_view kProcessArgv        = "/process/argv";
inline constexpr std::string_view kProcessRlimits     = "/process/rlimits";
inline constexpr std::string_view kProcessAuxv        = "/process/auxv";
// /process attributes
inline constexpr std::string_view kExe                = "exe";
inline constexpr std::string_view kComm               = "comm";
inline constexpr std::string_view kCwd                = "cwd";
inline constexpr std::string_view kUmask              = "umask";
inline constexpr std::string_view kPersonality        = "personality";
inline constexpr std::string_view kStartCode          = "start_code";
inline constexpr std::string_view kEndCode            = "end_code";
inline constexpr std::string_view kStartData          = "start_data";
inline constexpr std::string_view kEndData            = "end_data";
inline constexpr std::string_view kStartBrk           = "start_brk";
inline constexpr std::string_view kBrk                = "brk";
inline constexpr std::string_view kStartStack         = "start_stack";
inline constexpr std::string_view kArgStart           = "arg_start";
inline constexpr std::string_view kArgEnd             = "arg_end";
inline constexpr std::string_view kEnvStart           = "env_start";
inline constexpr std::string_view kEnvEnd             = "env_end";

// ---- /memory ------------------------------------------------------------------------------
inline constexpr std::string_view kMemory             = "/memory";
inline constexpr std::string_view kRegions            = "/memory/regions";
inline constexpr std::string_view kPageRuns           = "/memory/page_runs";
inline constexpr std::string_view kPages              = "/memory/pages";
inline constexpr std::string_view kPagesXxh3          = "/memory/pages_xxh3";

// ---- /mapped_files, /threads, /signals, /files, /blobs, /self_checkpoint --------------------
inline constexpr std::string_view kMappedFilesGroup   = "/mapped_files";
inline constexpr std::string_view kMappedFiles        = "/mapped_files/identities";
inline constexpr std::string_view kThreadsGroup       = "/threads";
inline constexpr std::string_view kThreadsInfo        = "/threads/info";
inline constexpr std::string_view kThreadsRegs        = "/threads/regs";
inline constexpr std::string_view kThreadsXsave       = "/threads/xsave";
inline constexpr std::string_view kSignalsGroup       = "/signals";
inline constexpr std::string_view kSignalActions      = "/signals/actions";
inline constexpr std::string_view kFilesGroup         = "/files";
inline constexpr std::string_view kFds                = "/files/fds";
inline constexpr std::string_view kBlobsGroup         = "/blobs";
inline constexpr std::string_view kBlobsTable         = "/blobs/table";
inline constexpr std::string_view kBlobsData          = "/blobs/data";
inline constexpr std::string_view kBlobsXxh3          = "/blobs/data_xxh3";
inline constexpr std::string_view kSelfCheckpoint     = "/self_checkpoint";
inline constexpr std::string_view kFlagAddr           = "flag_addr";

// ---- 1.1: /clocks, /timers, /event_fds, /pending_signals ----------------------------------
inline constexpr std::string_view kClocks             = "/clocks";
inline constexpr std::string_view kRealtimeNs         = "realtime_ns";
inline constexpr std::string_view kMonotonicNs        = "monotonic_ns";
inline constexpr std::string_view kBoottimeNs         = "boottime_ns";
inline constexpr std::string_view kTimersGroup        = "/timers";
inline constexpr std::string_view kItimers            = "/timers/itimers";
inline constexpr std::string_view kPosixTimers        = "/timers/posix";
inline constexpr std::string_view kEventFdsGroup      = "/event_fds";
inline constexpr std::string_view kEventFds           = "/event_fds/fds";
inline constexpr std::string_view kEpollTargets       = "/event_fds/epoll_targets";
inline constexpr std::string_view kPendingGroup       = "/pending_signals";
inline constexpr std::string_view kPendingInfo        = "/pending_signals/info";
inline constexpr std::string_view kPendingSiginfo     = "/pending_signals/siginfo";

// ---- 1.2: /pipes, /zombies, /files/shared --------------------------------------------------
inline constexpr std::string_view kPipesGroup         = "/pipes";
inline constexpr std::string_view kPipeObjects        = "/pipes/objects";
inline constexpr std::string_view kPipeEnds           = "/pipes/ends";
inline constexpr std::string_view kZombiesGroup       = "/zombies";
inline constexpr std::string_view kZombies            = "/zombies/children";
inline constexpr std::string_view kSharedFds          = "/files/shared";

// ---- 1.4: incremental images ---------------------------------------------------------------
inline constexpr std::string_view kBases              = "/memory/bases";
inline constexpr std::string_view kPageRefs           = "/memory/page_refs";

// ---- compound fields (one namespace per table; order = canonical checksum order) ----------
namespace region {
inline constexpr std::string_view kStart = "start", kEnd = "end", kProt = "prot", kFlags = "flags",
    kKind = "kind", kPgoff = "pgoff", kMappedFile = "mapped_file", kBlob = "blob", kName = "name";
}
namespace page_run {
inline constexpr std::string_view kAddr = "addr", kNpages = "npages", kOffset = "offset";
}
namespace file_identity {
inline constexpr std::string_view kPath = "path", kDev = "dev", kIno = "ino", kSize = "size",
    kMtimeNs = "mtime_ns", kHash = "hash";
}
namespace thread {
inline constexpr std::string_view kTid = "tid", kSigmask = "sigmask", kAltstackSp = "altstack_sp",
    kAltstackSize = "altstack_size", kAltstackFlags = "altstack_flags", kRseqAddr = "rseq_addr",
    kRseqLen = "rseq_len", kRseqSig = "rseq_sig", kClearTidAddr = "clear_tid_addr",
    kRobustList = "robust_list", kRobustListLen = "robust_list_len";
}
namespace signal {
inline constexpr std::string_view kSigno = "signo", kHandler = "handler", kFlags = "flags",
    kRestorer = "restorer", kMask = "mask";
}
namespace fd {
inline constexpr std::string_view kFd = "fd", kKind = "kind", kFlags = "flags", kCloexec = "cloexec",
    kOffset = "offset", kMode = "mode", kBlob = "blob";
// plus the file_identity fields, inlined
}
namespace itimer {
inline constexpr std::string_view kWhich = "which", kValueNs = "value_ns", kIntervalNs = "interval_ns";
}
namespace posix_timer {
inline constexpr std::string_view kId = "id", kClockid = "clockid", kNotify = "notify",
    kSigno = "signo", kSigval = "sigval", kNotifyTid = "notify_tid", kValueNs = "value_ns",
    kIntervalNs = "interval_ns";
}
namespace event_fd {
inline constexpr std::string_view kFd = "fd", kKind = "kind", kFlags = "flags", kCloexec = "cloexec",
    kCount = "count", kMode = "mode", kClockid = "clockid", kValueNs = "value_ns",
    kIntervalNs = "interval_ns", kSigmask = "sigmask";
}
namespace epoll_target {
inline constexpr std::string_view kEpfd = "epfd", kFd = "fd", kEvents = "events", kData = "data";
}
namespace pending {
inline constexpr std::string_view kTid = "tid", kSigno = "signo", kCode = "code";
}
namespace pipe {
inline constexpr std::string_view kId = "id", kFifoPath = "fifo_path", kCapacity = "capacity",
    kBytes = "bytes", kBlob = "blob";
}
namespace pipe_end {
inline constexpr std::string_view kFd = "fd", kPipe = "pipe", kDesc = "desc", kFlags = "flags",
    kCloexec = "cloexec";
}
namespace zombie {
inline constexpr std::string_view kPid = "pid", kStatus = "status", kPgid = "pgid", kSid = "sid";
}
namespace shared_fd {
inline constexpr std::string_view kFd = "fd", kPid = "pid", kSourceFd = "source_fd";
}
namespace base_image {
inline constexpr std::string_view kGeneration = "generation", kPath = "path", kHeaderXxh3 = "header_xxh3";
}
namespace page_ref {
inline constexpr std::string_view kAddr = "addr", kNpages = "npages", kBase = "base";
}
namespace blob {
inline constexpr std::string_view kId = "id", kSize = "size", kOffset = "offset", kName = "name";
}
namespace rlimit {
inline constexpr std::string_view kResource = "resource", kSoft = "soft", kHard = "hard";
}

// Names retired from earlier schema versions stay reserved here and must not be reused with
// another meaning (criu's commented-out field numbers). None yet in 1.x.
inline constexpr std::array<std::string_view, 0> kReserved{};

// Number of u64 words in /threads/regs rows (struct user_regs_struct).
inline constexpr std::size_t kRegsWords = 27;
// Bytes per /pending_signals/siginfo row (siginfo_t).
inline constexpr std::size_t kSiginfoBytes = 128;

// clang-format on

}  // namespace ferry::image::names
