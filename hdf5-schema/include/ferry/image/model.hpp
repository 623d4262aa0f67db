// SPDX-License-Identifier: Apache-2.0
// The in-memory model of one process image: everything ferry records about a checkpointed
// process except the bytes of its memory and of saved file contents, which stream through
// ImageSink / ImageSource (image_io.hpp). Capture fills it, the writer stores it, the reader
// returns it, the restorer consumes it. SCHEMA.md says how each field is stored in HDF5.
//
// Conventions: addresses and sizes are bytes; times are nanoseconds since the Unix epoch;
// register blocks are raw little-endian x86-64 kernel layouts (arch tag in ImageHeader::abi).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ferry::image {

// Bits of ImageHeader::record_kinds: which kinds of records the image holds. A reader that
// meets a bit it does not know refuses the image (a record it cannot restore would be lost);
// adding a kind never changes the meaning of an existing one.
enum RecordKind : uint64_t {
  kRecMemory = 1u << 0,         // /memory: regions, page runs, pages
  kRecThreads = 1u << 1,        // /threads: registers and XSAVE per thread
  kRecSignals = 1u << 2,        // /signals: dispositions
  kRecFiles = 1u << 3,          // /files: open file descriptors
  kRecMappedFiles = 1u << 4,    // /mapped_files: identities of file-backed mappings
  kRecBlobs = 1u << 5,          // /blobs: saved file contents (deleted files, memfd, shm)
  kRecSelfCheckpoint = 1u << 6, // a ferry_checkpoint() call was waiting at checkpoint time
  kRecClocks = 1u << 7,         // /clocks: the process's clocks when it was frozen (1.1)
  kRecTimers = 1u << 8,         // /timers: itimers and POSIX timers (1.1)
  kRecEventFds = 1u << 9,       // /event_fds: eventfd, timerfd, signalfd, epoll fds (1.1)
  kRecPendingSignals = 1u << 10,// /pending_signals: queued signals, shared and per thread (1.1)
  kRecPipes = 1u << 11,         // /pipes: pipes and FIFOs between fds of the job (1.2)
  kRecZombies = 1u << 12,       // /zombies: exited children not yet reaped (1.2)
  kRecSharedFds = 1u << 13,     // /files/shared: fds that are another fd's open file description (1.2)
  kRecPageRefs = 1u << 14,      // /memory/bases + /memory/page_refs: pages kept in earlier generations (1.4)
};
inline constexpr uint64_t kKnownRecordKinds = (1u << 15) - 1;

struct ImageHeader {
  std::string schema_version;   // "MAJOR.MINOR.PATCH" of SCHEMA.md this image follows
  uint64_t record_kinds = 0;    // RecordKind bits present
  std::string abi;              // "x86_64" (a 64-bit process); "i386"/"x32" are refused
  uint64_t xfeatures = 0;       // OR of xstate_bv over all threads (XSAVE components in use)
  uint64_t cpu_xcr0 = 0;        // XCR0 of the checkpointing CPU
  uint32_t xsave_size = 0;      // bytes of the XSAVE area per thread (standard format)
  uint32_t page_size = 4096;
  std::string kernel;           // uname -r of the checkpointing host
  std::string host;             // hostname
  std::string job;              // job id
  uint32_t rank = 0;            // process index within the job
  uint64_t generation = 0;
  int64_t time_ns = 0;          // when the process was frozen
  int32_t pid = 0;              // pid at checkpoint (namespace of the launcher)
  std::string ferry_version;
  std::string vdso_hash;        // XXH3-128 hex of the [vdso] bytes: restore needs an identical
                                //   vDSO (same symbol offsets) and refuses otherwise
  bool operator==(const ImageHeader&) const = default;
};

// Identity of a file mapped into memory or open at checkpoint time.
struct FileIdentity {
  std::string path;             // absolute path at checkpoint (without " (deleted)")
  uint64_t dev = 0, ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string hash;             // XXH3-128 hex of the whole content; empty if not hashed
  bool operator==(const FileIdentity&) const = default;
};

enum class RegionKind : uint32_t {
  anon_private = 0,   // private anonymous memory (malloc arenas, mmap'd buffers, guard pages)
  heap = 1,           // [heap], the brk area
  stack = 2,          // [stack] of the main thread (MAP_GROWSDOWN)
  file_private = 3,   // private file mapping: text/rodata/data of binaries and libraries
  file_shared = 4,    // MAP_SHARED of a regular file (not tmpfs): the file is the state
  anon_shared = 5,    // MAP_SHARED|MAP_ANONYMOUS ("/dev/zero (deleted)")
  shm_shared = 6,     // MAP_SHARED of a tmpfs file (/dev/shm/...), content saved
  memfd_shared = 7,   // MAP_SHARED of a memfd ("/memfd:NAME (deleted)"), content saved
  vdso = 8,           // [vdso]: not saved; the live kernel's is moved here at restore
  vvar = 9,           // [vvar]: not saved
  vvar_vclock = 10,   // [vvar_vclock]: not saved
  vsyscall = 11,      // [vsyscall]: fixed by the kernel, ignored
};

struct Region {
  uint64_t start = 0, end = 0;  // [start, end), page aligned
  uint32_t prot = 0;            // PROT_READ|PROT_WRITE|PROT_EXEC
  uint32_t flags = 0;           // MAP_PRIVATE or MAP_SHARED, | MAP_GROWSDOWN for the stack
  RegionKind kind = RegionKind::anon_private;
  uint64_t pgoff = 0;           // file offset in bytes (file and shm/memfd kinds)
  int32_t mapped_file = -1;     // index into ProcessImage::mapped_files, or -1
  int32_t blob = -1;            // shm_shared/memfd_shared: id of the blob holding the whole
                                //   backing file (its size at checkpoint); -1 otherwise.
                                //   anon_shared and private kinds keep their bytes in page runs
  std::string name;             // as in /proc/PID/maps: "[heap]", "/usr/lib/.../libc.so.6"
  bool operator==(const Region&) const = default;
};

// A run of consecutive pages whose bytes are stored in the image; written by the ImageSink
// as pages are appended, so it is not filled by capture.
struct PageRun {
  uint64_t addr = 0;            // first page's virtual address
  uint64_t npages = 0;
  uint64_t offset = 0;          // byte offset into /memory/pages
  bool operator==(const PageRun&) const = default;
};

// One thread's CPU state. For issue-2 images there is exactly one thread (the main one).
struct Thread {
  int32_t tid = 0;
  // struct user_regs_struct as PTRACE_GETREGSET NT_PRSTATUS returns it (27 u64: r15 r14 r13
  // r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base
  // gs_base ds es fs gs). A thread stopped in a restartable system call is stored already
  // rewound (rip -= 2, rax = the syscall number, orig_rax = -1) so restore re-executes it.
  std::array<uint64_t, 27> regs{};
  std::vector<uint8_t> xsave;   // standard-format XSAVE area (NT_X86_XSTATE), xsave_size bytes
  uint64_t sigmask = 0;         // blocked signals, bit (signo-1)
  uint64_t altstack_sp = 0, altstack_size = 0;
  int32_t altstack_flags = 0;   // SS_DISABLE when none
  uint64_t rseq_addr = 0;       // 0 = not registered
  uint32_t rseq_len = 0, rseq_sig = 0;
  uint64_t clear_tid_addr = 0;  // set_tid_address value (PR_GET_TID_ADDRESS)
  uint64_t robust_list = 0, robust_list_len = 0;
  bool operator==(const Thread&) const = default;
};

struct SignalAction {
  int32_t signo = 0;
  uint64_t handler = 0;         // SIG_DFL=0, SIG_IGN=1, or an address
  uint64_t flags = 0;           // SA_* (kernel sa_flags)
  uint64_t restorer = 0;        // sa_restorer
  uint64_t mask = 0;            // sa_mask, bit (signo-1)
  bool operator==(const SignalAction&) const = default;
};

enum class FdKind : uint32_t {
  regular = 0,        // regular file reopened by path, offset and flags restored
  deleted = 1,        // regular file unlinked while open: content in a blob
  inherit = 2,        // fd 0-2 that was a tty, pipe, socket or /dev/null: the restarting
                      //   command's own fd of the same number is used instead
  memfd = 3,          // memfd: content in a blob (shared with a mapping if both exist)
  devnull = 4,        // /dev/null, /dev/zero, /dev/urandom, /dev/random at fd > 2: reopened
  directory = 5,      // an open directory (opendir): reopened by path
};

struct FdRecord {
  int32_t fd = -1;
  FdKind kind = FdKind::regular;
  uint32_t flags = 0;           // open flags from fdinfo (O_ACCMODE|O_APPEND|O_NONBLOCK|...)
  bool cloexec = false;
  uint64_t offset = 0;
  uint32_t mode = 0;            // st_mode of the file
  FileIdentity file;            // path, identity and size at checkpoint
  int32_t blob = -1;            // deleted/memfd: the blob with the content
  bool operator==(const FdRecord&) const = default;
};

// Saved contents of objects that may not exist at restart (deleted files, memfd, /dev/shm,
// shared anonymous memory). Bytes stream through ImageSink::append_blob.
struct Blob {
  uint32_t id = 0;
  uint64_t size = 0;
  std::string name;             // what it held, e.g. "memfd:ring", "/dev/shm/x", "fd 4"
  bool operator==(const Blob&) const = default;
};

struct Rlimit {
  int32_t resource = 0;
  uint64_t soft = 0, hard = 0;  // RLIM_INFINITY = ~0
  bool operator==(const Rlimit&) const = default;
};

struct ProcessInfo {
  std::string exe;              // readlink /proc/PID/exe
  std::vector<std::string> argv;
  std::string comm;
  std::string cwd;
  uint32_t umask = 022;
  uint32_t personality = 0;
  std::vector<Rlimit> rlimits;
  // mm fields for prctl(PR_SET_MM_MAP) (from /proc/PID/stat and brk(0))
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  uint64_t start_brk = 0, brk = 0, start_stack = 0;
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::vector<uint64_t> auxv;   // /proc/PID/auxv as u64 pairs, AT_NULL-terminated
  bool operator==(const ProcessInfo&) const = default;
};

// A ferry_checkpoint() call in progress: the word the caller waits on. Restore writes
// kSelfRestarted there; a checkpoint that lets the process continue writes kSelfResumed.
struct SelfCheckpoint {
  uint64_t flag_addr = 0;
  bool operator==(const SelfCheckpoint&) const = default;
};

// The process's own view of its clocks when it was frozen (read by a remote clock_gettime, so
// a process already inside a time namespace reports its shifted clocks). Restore puts the
// process into a time namespace whose offsets make MONOTONIC and BOOTTIME continue from here.
struct Clocks {
  int64_t realtime_ns = 0;      // CLOCK_REALTIME (never offset: wall time jumps by the downtime)
  int64_t monotonic_ns = 0;     // CLOCK_MONOTONIC
  int64_t boottime_ns = 0;      // CLOCK_BOOTTIME
  bool operator==(const Clocks&) const = default;
};

// ITIMER_REAL (0), ITIMER_VIRTUAL (1) or ITIMER_PROF (2); only armed ones are stored.
struct Itimer {
  int32_t which = 0;
  int64_t value_ns = 0;         // remaining time until the next expiry
  int64_t interval_ns = 0;      // reload value (0: one-shot)
  bool operator==(const Itimer&) const = default;
};

// A timer_create() timer, from /proc/PID/timers and a remote timer_gettime. Overruns are not
// kept. Recreated with the same kernel timer id.
struct PosixTimer {
  int32_t id = 0;               // kernel timer id (glibc's timer_t for SIGEV_SIGNAL timers)
  int32_t clockid = 0;
  int32_t notify = 0;           // SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD_ID 4
  int32_t signo = 0;
  uint64_t sigval = 0;          // sigev_value
  int32_t notify_tid = 0;       // SIGEV_THREAD_ID: the thread (namespace tid); else 0
  int64_t value_ns = 0;         // remaining time (0: disarmed)
  int64_t interval_ns = 0;
  bool operator==(const PosixTimer&) const = default;
};

enum class EventFdKind : uint32_t {
  eventfd = 0,        // count and EFD_SEMAPHORE
  timerfd = 1,        // clock, settime flags, remaining time, interval, unread ticks
  signalfd = 2,       // signal mask
  epoll = 3,          // its registered targets are EpollTarget rows
};

// An fd of one of the kinds above (anon inodes; none is in ProcessImage::fds).
struct EventFd {
  int32_t fd = -1;
  EventFdKind kind = EventFdKind::eventfd;
  uint32_t flags = 0;           // file flags from fdinfo (O_NONBLOCK|O_RDWR...)
  bool cloexec = false;
  uint64_t count = 0;           // eventfd: counter; timerfd: expirations not yet read
  uint32_t mode = 0;            // eventfd: EFD_SEMAPHORE; timerfd: settime flags (TFD_TIMER_*)
  int32_t clockid = 0;          // timerfd
  int64_t value_ns = 0;         // timerfd: remaining time (0: disarmed)
  int64_t interval_ns = 0;      // timerfd
  uint64_t sigmask = 0;         // signalfd: bit (signo-1)
  bool operator==(const EventFd&) const = default;
};

// One fd registered in an epoll set (the fdinfo "tfd:" line). Re-added after every other fd
// of the process exists.
struct EpollTarget {
  int32_t epfd = -1;
  int32_t fd = -1;
  uint32_t events = 0;          // EPOLLIN|... including EPOLLET/EPOLLONESHOT/EPOLLEXCLUSIVE
  uint64_t data = 0;            // epoll_data as u64
  bool operator==(const EpollTarget&) const = default;
};

// A signal queued and not yet delivered, for the whole process (tid 0) or for one thread.
struct PendingSignal {
  int32_t tid = 0;              // 0: process-shared queue; else the thread's (namespace) tid
  int32_t signo = 0;
  int32_t code = 0;             // si_code (copy of siginfo bytes 8..11, for display)
  std::array<uint8_t, 128> siginfo{};  // the raw siginfo_t PTRACE_PEEKSIGINFO returned
  bool operator==(const PendingSignal&) const = default;
};

// 1.2: a pipe or FIFO whose both ends belong to the job (not the job's own stdin/stdout).
// Its record, and its buffered bytes, are in the image of ONE process of the tree (the first
// that holds it); every process holding it has PipeEnd rows naming it by id.
struct Pipe {
  uint64_t id = 0;              // pipe inode at checkpoint ("pipe:[id]"), unique in a generation
  std::string fifo_path;        // "" for an anonymous pipe; the FIFO's path otherwise
  uint32_t capacity = 0;        // F_GETPIPE_SZ, bytes
  uint64_t bytes = 0;           // bytes buffered at checkpoint (== the blob's size)
  int32_t blob = -1;            // blob holding those bytes in order; -1 when empty
  bool operator==(const Pipe&) const = default;
};

// 1.2: one fd of this process on a Pipe (of this image or of another image of the tree).
struct PipeEnd {
  int32_t fd = -1;
  uint64_t pipe = 0;            // Pipe::id
  uint32_t desc = 0;            // open file description within the pipe: fds with the same
                                //   (pipe, desc), in any process, share one description
  uint32_t flags = 0;           // status flags from fdinfo (O_ACCMODE|O_NONBLOCK|...)
  bool cloexec = false;
  bool operator==(const PipeEnd&) const = default;
};

// 1.4 (incremental images): an earlier generation's image of the same process whose pages
// this image refers to instead of storing them again.
struct BaseImage {
  uint64_t generation = 0;      // its generation number
  std::string path;             // its file, relative to this image's directory ("../gen-000003/rank-0.h5")
  uint64_t header_xxh3 = 0;     // its header_xxh3: the file found at `path` must be that image
  bool operator==(const BaseImage&) const = default;
};

// 1.4: pages not stored in this image: their bytes are in bases[base]'s own /memory/pages, inside
// one of its page runs (a reference is never to another reference).
struct PageRef {
  uint64_t addr = 0;            // first page's virtual address
  uint64_t npages = 0;
  uint32_t base = 0;            // index into ProcessImage::bases
  bool operator==(const PageRef&) const = default;
};

// 1.2: a child that had exited and was not yet reaped by this process (its parent).
struct Zombie {
  int32_t pid = 0;              // id in the job's PID namespace
  int32_t status = 0;           // wait status (as waitpid reports it: exit code << 8, or signal)
  int32_t pgid = 0, sid = 0;    // its process group and session (job namespace ids)
  bool operator==(const Zombie&) const = default;
};

// 1.2: fd `fd` of this process is the same open file description as fd `source_fd` of process
// `pid` of the tree (job namespace id; may be this process: a dup). The fd also has its
// FdRecord; restore reopens it, then replaces it with the source's description.
struct SharedFd {
  int32_t fd = -1;
  int32_t pid = 0;
  int32_t source_fd = -1;
  bool operator==(const SharedFd&) const = default;
};

struct ProcessImage {
  ImageHeader header;
  ProcessInfo process;
  std::vector<Region> regions;          // sorted by start, non-overlapping
  std::vector<FileIdentity> mapped_files;
  std::vector<Thread> threads;          // threads[0] is the thread group leader
  std::vector<SignalAction> signals;    // signals 1..64 except SIGKILL/SIGSTOP
  std::vector<FdRecord> fds;            // sorted by fd
  std::vector<Blob> blobs;
  std::vector<PageRun> page_runs;       // filled by the writer / read back by the reader
  std::optional<SelfCheckpoint> self_checkpoint;
  // 1.1 additions (each with its record kind bit)
  std::optional<Clocks> clocks;
  std::vector<Itimer> itimers;
  std::vector<PosixTimer> posix_timers;     // sorted by id
  std::vector<EventFd> event_fds;           // sorted by fd
  std::vector<EpollTarget> epoll_targets;   // grouped by epfd, in fdinfo order
  std::vector<PendingSignal> pending_signals;  // shared first, then per thread; queue order
  // 1.2 additions
  std::vector<Pipe> pipes;                  // pipes whose record this image holds, by id
  std::vector<PipeEnd> pipe_ends;           // sorted by fd
  std::vector<Zombie> zombies;              // sorted by pid
  std::vector<SharedFd> shared_fds;         // sorted by fd
  // 1.4 additions (kind kRecPageRefs, both present or both empty)
  std::vector<BaseImage> bases;             // earlier generations referred to
  std::vector<PageRef> page_refs;           // sorted by addr; disjoint from page_runs
  bool operator==(const ProcessImage&) const = default;
};

inline constexpr const char* kSchemaVersion = "1.5.0";

}  // namespace ferry::image
