// SPDX-License-Identifier: Apache-2.0
// Field lists of every table and attribute group of schema 1.x (see schema_fields.hpp).
// Order matters: it is the canonical checksum order documented in SCHEMA.md. Append only.
#include "schema_fields.hpp"

#include "ferry/image/names.hpp"

namespace ferry::image::schema {

using tables::Col;
using tables::num;
using tables::str;
namespace n = names;

const std::vector<tables::Field<ImageHeader>>& header_fields() {
  using H = ImageHeader;
  static const std::vector<tables::Field<H>> f = {
      str(n::kSchemaVersion, &H::schema_version),
      num(n::kRecordKinds, Col::u64, &H::record_kinds),
      str(n::kAbi, &H::abi),
      num(n::kXfeatures, Col::u64, &H::xfeatures),
      num(n::kCpuXcr0, Col::u64, &H::cpu_xcr0),
      num(n::kXsaveSize, Col::u32, &H::xsave_size),
      num(n::kPageSize, Col::u32, &H::page_size),
      str(n::kKernel, &H::kernel),
      str(n::kHost, &H::host),
      str(n::kJob, &H::job),
      num(n::kRank, Col::u32, &H::rank),
      num(n::kGeneration, Col::u64, &H::generation),
      num(n::kTimeNs, Col::i64, &H::time_ns),
      num(n::kPid, Col::i32, &H::pid),
      str(n::kFerryVersion, &H::ferry_version),
      str(n::kVdsoHash, &H::vdso_hash),
  };
  return f;
}

const std::vector<tables::Field<ProcessInfo>>& process_fields() {
  using P = ProcessInfo;
  static const std::vector<tables::Field<P>> f = {
      str(n::kExe, &P::exe),
      str(n::kComm, &P::comm),
      str(n::kCwd, &P::cwd),
      num(n::kUmask, Col::u32, &P::umask),
      num(n::kPersonality, Col::u32, &P::personality),
      num(n::kStartCode, Col::u64, &P::start_code),
      num(n::kEndCode, Col::u64, &P::end_code),
      num(n::kStartData, Col::u64, &P::start_data),
      num(n::kEndData, Col::u64, &P::end_data),
      num(n::kStartBrk, Col::u64, &P::start_brk),
      num(n::kBrk, Col::u64, &P::brk),
      num(n::kStartStack, Col::u64, &P::start_stack),
      num(n::kArgStart, Col::u64, &P::arg_start),
      num(n::kArgEnd, Col::u64, &P::arg_end),
      num(n::kEnvStart, Col::u64, &P::env_start),
      num(n::kEnvEnd, Col::u64, &P::env_end),
  };
  return f;
}

const std::vector<tables::Field<SelfCheckpoint>>& self_checkpoint_fields() {
  static const std::vector<tables::Field<SelfCheckpoint>> f = {
      num(n::kFlagAddr, Col::u64, &SelfCheckpoint::flag_addr),
  };
  return f;
}

const std::vector<tables::Field<Rlimit>>& rlimit_fields() {
  namespace k = n::rlimit;
  static const std::vector<tables::Field<Rlimit>> f = {
      num(k::kResource, Col::i32, &Rlimit::resource),
      num(k::kSoft, Col::u64, &Rlimit::soft),
      num(k::kHard, Col::u64, &Rlimit::hard),
  };
  return f;
}

const std::vector<tables::Field<Region>>& region_fields() {
  namespace k = n::region;
  using R = Region;
  static const std::vector<tables::Field<R>> f = {
      num(k::kStart, Col::u64, &R::start),
      num(k::kEnd, Col::u64, &R::end),
      num(k::kProt, Col::u32, &R::prot),
      num(k::kFlags, Col::u32, &R::flags),
      num(k::kKind, Col::u32, &R::kind),
      num(k::kPgoff, Col::u64, &R::pgoff),
      num(k::kMappedFile, Col::i32, &R::mapped_file),
      num(k::kBlob, Col::i32, &R::blob),
      str(k::kName, &R::name),
  };
  return f;
}

const std::vector<tables::Field<PageRun>>& page_run_fields() {
  namespace k = n::page_run;
  static const std::vector<tables::Field<PageRun>> f = {
      num(k::kAddr, Col::u64, &PageRun::addr),
      num(k::kNpages, Col::u64, &PageRun::npages),
      num(k::kOffset, Col::u64, &PageRun::offset),
  };
  return f;
}

const std::vector<tables::Field<FileIdentity>>& file_identity_fields() {
  namespace k = n::file_identity;
  using F = FileIdentity;
  static const std::vector<tables::Field<F>> f = {
      str(k::kPath, &F::path),
      num(k::kDev, Col::u64, &F::dev),
      num(k::kIno, Col::u64, &F::ino),
      num(k::kSize, Col::u64, &F::size),
      num(k::kMtimeNs, Col::i64, &F::mtime_ns),
      str(k::kHash, &F::hash),
  };
  return f;
}

const std::vector<tables::Field<Thread>>& thread_fields() {
  namespace k = n::thread;
  using T = Thread;
  static const std::vector<tables::Field<T>> f = {
      num(k::kTid, Col::i32, &T::tid),
      num(k::kSigmask, Col::u64, &T::sigmask),
      num(k::kAltstackSp, Col::u64, &T::altstack_sp),
      num(k::kAltstackSize, Col::u64, &T::altstack_size),
      num(k::kAltstackFlags, Col::i32, &T::altstack_flags),
      num(k::kRseqAddr, Col::u64, &T::rseq_addr),
      num(k::kRseqLen, Col::u32, &T::rseq_len),
      num(k::kRseqSig, Col::u32, &T::rseq_sig),
      num(k::kClearTidAddr, Col::u64, &T::clear_tid_addr),
      num(k::kRobustList, Col::u64, &T::robust_list),
      num(k::kRobustListLen, Col::u64, &T::robust_list_len),
  };
  return f;
}

const std::vector<tables::Field<SignalAction>>& signal_fields() {
  namespace k = n::signal;
  using S = SignalAction;
  static const std::vector<tables::Field<S>> f = {
      num(k::kSigno, Col::i32, &S::signo),
      num(k::kHandler, Col::u64, &S::handler),
      num(k::kFlags, Col::u64, &S::flags),
      num(k::kRestorer, Col::u64, &S::restorer),
      num(k::kMask, Col::u64, &S::mask),
  };
  return f;
}

const std::vector<tables::Field<FdRecord>>& fd_fields() {
  namespace k = n::fd;
  namespace fi = n::file_identity;
  using D = FdRecord;
  using F = FileIdentity;
  static const std::vector<tables::Field<D>> f = {
      num(k::kFd, Col::i32, &D::fd),
      num(k::kKind, Col::u32, &D::kind),
      num(k::kFlags, Col::u32, &D::flags),
      num(k::kCloexec, Col::u8, &D::cloexec),
      num(k::kOffset, Col::u64, &D::offset),
      num(k::kMode, Col::u32, &D::mode),
      str(fi::kPath, &D::file, &F::path),
      num(fi::kDev, Col::u64, &D::file, &F::dev),
      num(fi::kIno, Col::u64, &D::file, &F::ino),
      num(fi::kSize, Col::u64, &D::file, &F::size),
      num(fi::kMtimeNs, Col::i64, &D::file, &F::mtime_ns),
      str(fi::kHash, &D::file, &F::hash),
      num(k::kBlob, Col::i32, &D::blob),
  };
  return f;
}

const std::vector<tables::Field<BlobRow>>& blob_fields() {
  namespace k = n::blob;
  static const std::vector<tables::Field<BlobRow>> f = {
      num(k::kId, Col::u32, &BlobRow::blob, &Blob::id),
      num(k::kSize, Col::u64, &BlobRow::blob, &Blob::size),
      num(k::kOffset, Col::u64, &BlobRow::offset),
      str(k::kName, &BlobRow::blob, &Blob::name),
  };
  return f;
}

const std::vector<tables::Field<Clocks>>& clock_fields() {
  using C = Clocks;
  static const std::vector<tables::Field<C>> f = {
      num(n::kRealtimeNs, Col::i64, &C::realtime_ns),
      num(n::kMonotonicNs, Col::i64, &C::monotonic_ns),
      num(n::kBoottimeNs, Col::i64, &C::boottime_ns),
  };
  return f;
}

const std::vector<tables::Field<Itimer>>& itimer_fields() {
  namespace k = n::itimer;
  static const std::vector<tables::Field<Itimer>> f = {
      num(k::kWhich, Col::i32, &Itimer::which),
      num(k::kValueNs, Col::i64, &Itimer::value_ns),
      num(k::kIntervalNs, Col::i64, &Itimer::interval_ns),
  };
  return f;
}

const std::vector<tables::Field<PosixTimer>>& posix_timer_fields() {
  namespace k = n::posix_timer;
  using P = PosixTimer;
  static const std::vector<tables::Field<P>> f = {
      num(k::kId, Col::i32, &P::id),
      num(k::kClockid, Col::i32, &P::clockid),
      num(k::kNotify, Col::i32, &P::notify),
      num(k::kSigno, Col::i32, &P::signo),
      num(k::kSigval, Col::u64, &P::sigval),
      num(k::kNotifyTid, Col::i32, &P::notify_tid),
      num(k::kValueNs, Col::i64, &P::value_ns),
      num(k::kIntervalNs, Col::i64, &P::interval_ns),
  };
  return f;
}

const std::vector<tables::Field<EventFd>>& event_fd_fields() {
  namespace k = n::event_fd;
  using E = EventFd;
  static const std::vector<tables::Field<E>> f = {
      num(k::kFd, Col::i32, &E::fd),
      num(k::kKind, Col::u32, &E::kind),
      num(k::kFlags, Col::u32, &E::flags),
      num(k::kCloexec, Col::u8, &E::cloexec),
      num(k::kCount, Col::u64, &E::count),
      num(k::kMode, Col::u32, &E::mode),
      num(k::kClockid, Col::i32, &E::clockid),
      num(k::kValueNs, Col::i64, &E::value_ns),
      num(k::kIntervalNs, Col::i64, &E::interval_ns),
      num(k::kSigmask, Col::u64, &E::sigmask),
  };
  return f;
}

const std::vector<tables::Field<EpollTarget>>& epoll_target_fields() {
  namespace k = n::epoll_target;
  static const std::vector<tables::Field<EpollTarget>> f = {
      num(k::kEpfd, Col::i32, &EpollTarget::epfd),
      num(k::kFd, Col::i32, &EpollTarget::fd),
      num(k::kEvents, Col::u32, &EpollTarget::events),
      num(k::kData, Col::u64, &EpollTarget::data),
  };
  return f;
}

const std::vector<tables::Field<PendingSignal>>& pending_signal_fields() {
  namespace k = n::pending;
  static const std::vector<tables::Field<PendingSignal>> f = {
      num(k::kTid, Col::i32, &PendingSignal::tid),
      num(k::kSigno, Col::i32, &PendingSignal::signo),
      num(k::kCode, Col::i32, &PendingSignal::code),
  };
  return f;
}

const std::vector<tables::Field<Pipe>>& pipe_fields() {
  namespace k = n::pipe;
  static const std::vector<tables::Field<Pipe>> f = {
      num(k::kId, Col::u64, &Pipe::id),
      str(k::kFifoPath, &Pipe::fifo_path),
      num(k::kCapacity, Col::u32, &Pipe::capacity),
      num(k::kBytes, Col::u64, &Pipe::bytes),
      num(k::kBlob, Col::i32, &Pipe::blob),
  };
  return f;
}

const std::vector<tables::Field<PipeEnd>>& pipe_end_fields() {
  namespace k = n::pipe_end;
  static const std::vector<tables::Field<PipeEnd>> f = {
      num(k::kFd, Col::i32, &PipeEnd::fd),
      num(k::kPipe, Col::u64, &PipeEnd::pipe),
      num(k::kDesc, Col::u32, &PipeEnd::desc),
      num(k::kFlags, Col::u32, &PipeEnd::flags),
      num(k::kCloexec, Col::u8, &PipeEnd::cloexec),
  };
  return f;
}

const std::vector<tables::Field<Zombie>>& zombie_fields() {
  namespace k = n::zombie;
  static const std::vector<tables::Field<Zombie>> f = {
      num(k::kPid, Col::i32, &Zombie::pid),
      num(k::kStatus, Col::i32, &Zombie::status),
      num(k::kPgid, Col::i32, &Zombie::pgid),
      num(k::kSid, Col::i32, &Zombie::sid),
  };
  return f;
}

const std::vector<tables::Field<SharedFd>>& shared_fd_fields() {
  namespace k = n::shared_fd;
  static const std::vector<tables::Field<SharedFd>> f = {
      num(k::kFd, Col::i32, &SharedFd::fd),
      num(k::kPid, Col::i32, &SharedFd::pid),
      num(k::kSourceFd, Col::i32, &SharedFd::source_fd),
  };
  return f;
}

const std::vector<tables::Field<BaseImage>>& base_image_fields() {
  namespace k = n::base_image;
  static const std::vector<tables::Field<BaseImage>> f = {
      num(k::kGeneration, Col::u64, &BaseImage::generation),
      str(k::kPath, &BaseImage::path),
      num(k::kHeaderXxh3, Col::u64, &BaseImage::header_xxh3),
  };
  return f;
}

const std::vector<tables::Field<PageRef>>& page_ref_fields() {
  namespace k = n::page_ref;
  static const std::vector<tables::Field<PageRef>> f = {
      num(k::kAddr, Col::u64, &PageRef::addr),
      num(k::kNpages, Col::u64, &PageRef::npages),
      num(k::kBase, Col::u32, &PageRef::base),
  };
  return f;
}

}  // namespace ferry::image::schema
