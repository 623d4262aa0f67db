// SPDX-License-Identifier: Apache-2.0
// Transport 1: the LowerHalf interface over the shared-memory channel to this rank's
// ferry-mpi-proxy (channel.hpp describes the layout and the doorbells; the argument slots of
// each call are listed beside channel::Op and must match proxy/server.cpp).
//
// Staging: before a call, every buffer argument that fits in the data area is given an offset
// there (inputs are copied in); the rest are left in application memory for the proxy's
// cross-memory attach. After the reply, outputs staged in the data area are copied out (only the
// bytes a receive actually got).
//
// After a restart the application runs on a restored copy of its old channel, which no proxy
// serves. The new proxy sets `moved` in that copy (channel.hpp); the next call, or a call waiting
// for its reply (checked each time the futex sleep times out), then attaches to the new proxy's
// channel, copies the call and its staged bytes over and posts it again with the same sequence
// number. A proxy that is gone and has not handed over within kOrphanSeconds ends the rank; so
// does a `moved` record that names no live proxy's channel for that long (a stale record is
// otherwise ignored: the new proxy overwrites it).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "lower_half.hpp"
#include "mpi/channel/channel.hpp"

namespace ferry::mpi {
namespace {

using channel::BufRef;
using channel::Call;
using channel::Op;
using channel::Reply;
using channel::Where;

class ProxyLowerHalf final : public LowerHalf {
 public:
  explicit ProxyLowerHalf(channel::Layout* layout) : ch_(layout), policy_(channel::WaitPolicy::from_env()) {}

  int hello(int required, WorldInfo& out) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::hello);
    c.i[0] = required;
    const Reply& r = roundtrip();
    out.rank = r.i[0];
    out.size = r.i[1];
    out.provided = r.i[2];
    struct SizeRecord {
      std::int32_t size;
      std::int32_t pad;
      std::int64_t extent;
    };
    const auto* sizes = reinterpret_cast<const SizeRecord*>(ch_->data);
    out.datatype_sizes.clear();
    for (std::size_t i = 0; i < 128 && i < channel::kDataBytes / sizeof(SizeRecord); ++i) {
      out.datatype_sizes.emplace_back(sizes[i].size, static_cast<long>(sizes[i].extent));
    }
    return r.rc;
  }

  int finalize() override {
    std::lock_guard lock(mu_);
    begin(Op::finalize);
    return roundtrip().rc;
  }

  void abort(LhId comm, int code) override {
    mu_.try_lock();  // another thread may hold the channel; aborting ends everything anyway
    Call& c = begin(Op::abort);
    c.h[0] = comm;
    c.i[0] = code;
    roundtrip();
    _exit(code);
  }

  int processor_name(std::string& out) override {
    std::lock_guard lock(mu_);
    begin(Op::processor_name);
    const Reply& r = roundtrip();
    out.assign(reinterpret_cast<const char*>(ch_->data), static_cast<std::size_t>(r.i[0]));
    return r.rc;
  }

  int send(Span data, int count, LhId type, int dest, int tag, LhId comm) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::send);
    c.buf[0] = stage_in(data);
    c.i[0] = count;
    c.h[0] = type;
    c.i[1] = dest;
    c.i[2] = tag;
    c.h[1] = comm;
    return roundtrip().rc;
  }

  int ssend(Span data, int count, LhId type, int dest, int tag, LhId comm) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::ssend);
    c.buf[0] = stage_in(data);
    c.i[0] = count;
    c.h[0] = type;
    c.i[1] = dest;
    c.i[2] = tag;
    c.h[1] = comm;
    return roundtrip().rc;
  }

  int probe(int source, int tag, LhId comm, bool blocking, bool& found, LhStatus& status) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::probe);
    c.i[0] = blocking ? 1 : 0;
    c.i[1] = source;
    c.i[2] = tag;
    c.h[1] = comm;
    const Reply& r = roundtrip();
    found = r.i[0] != 0;
    if (found) status = to_status(r);
    return r.rc;
  }

  int gather_like(GatherKind kind, const CollectiveBuffers& b, int root, LhId comm) override {
    static constexpr Op kOps[] = {Op::gather, Op::scatter, Op::allgather, Op::alltoall};
    std::lock_guard lock(mu_);
    Call& c = begin(kOps[static_cast<int>(kind)]);
    c.buf[0] = b.send.data == nullptr ? BufRef{} : stage_in(b.send);
    c.buf[1] = b.recv.data == nullptr ? BufRef{}
               : b.in_place          ? stage_in({b.recv.data, b.recv.bytes})
                                     : stage_out(b.recv);
    c.i[0] = b.send_count;
    c.h[0] = b.send_type;
    c.i[3] = b.recv_count;
    c.h[2] = b.recv_type;
    c.i[1] = root;
    c.h[1] = comm;
    c.i[6] = b.in_place ? 1 : 0;
    const Reply& r = roundtrip();
    if (b.recv.data != nullptr) unstage(c.buf[1], b.recv, b.recv.bytes);
    return r.rc;
  }

  int recv(MutSpan data, int count, LhId type, int source, int tag, LhId comm,
           LhStatus& status) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::recv);
    c.buf[0] = stage_out(data);
    c.i[0] = count;
    c.h[0] = type;
    c.i[1] = source;
    c.i[2] = tag;
    c.h[1] = comm;
    const Reply& r = roundtrip();
    status = to_status(r);
    unstage(c.buf[0], data, r.written);
    return r.rc;
  }

  int sendrecv(Span send, int send_count, LhId send_type, int dest, int send_tag, MutSpan recv,
               int recv_count, LhId recv_type, int source, int recv_tag, LhId comm,
               LhStatus& status) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::sendrecv);
    c.buf[0] = stage_in(send);
    c.i[0] = send_count;
    c.h[0] = send_type;
    c.i[1] = dest;
    c.i[2] = send_tag;
    c.buf[1] = stage_out(recv);
    c.i[3] = recv_count;
    c.h[2] = recv_type;
    c.i[4] = source;
    c.i[5] = recv_tag;
    c.h[1] = comm;
    const Reply& r = roundtrip();
    status = to_status(r);
    unstage(c.buf[1], recv, r.written);
    return r.rc;
  }

  int isend(Span data, int count, LhId type, int dest, int tag, LhId comm, LhId& request) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::isend);
    c.buf[0] = stage_in(data);
    c.i[0] = count;
    c.h[0] = type;
    c.i[1] = dest;
    c.i[2] = tag;
    c.h[1] = comm;
    const Reply& r = roundtrip();
    request = r.h[0];
    return r.rc;
  }

  int irecv(MutSpan into, int count, LhId type, int source, int tag, LhId comm,
            LhId& request) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::irecv);
    c.buf[0] = BufRef{0, into.bytes, Where::none, 0};  // only the size: the proxy owns the landing area
    c.i[0] = count;
    c.h[0] = type;
    c.i[1] = source;
    c.i[2] = tag;
    c.h[1] = comm;
    const Reply& r = roundtrip();
    request = r.h[0];
    return r.rc;
  }

  int wait(LhId request, MutSpan into, LhStatus& status) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::wait);
    c.h[0] = request;
    c.buf[0] = stage_out(into);
    const Reply& r = roundtrip();
    status = to_status(r);
    unstage(c.buf[0], into, r.written);
    return r.rc;
  }

  int test(LhId request, MutSpan into, bool& done, LhStatus& status) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::test);
    c.h[0] = request;
    c.buf[0] = stage_out(into);
    const Reply& r = roundtrip();
    done = r.i[0] != 0;
    if (done) {
      status = to_status(r);
      unstage(c.buf[0], into, r.written);
    }
    return r.rc;
  }

  int barrier(LhId comm) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::barrier);
    c.h[1] = comm;
    return roundtrip().rc;
  }

  int bcast(MutSpan data, int count, LhId type, int root, LhId comm) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::bcast);
    c.buf[0] = stage_in({data.data, data.bytes});
    c.i[0] = count;
    c.h[0] = type;
    c.i[1] = root;
    c.h[1] = comm;
    const Reply& r = roundtrip();
    unstage(c.buf[0], data, data.bytes);
    return r.rc;
  }

  int reduce(const void* in, MutSpan out, int count, LhId type, LhId op, int root, LhId comm,
             bool i_am_root) override {
    // Off the root the output buffer is not significant: keep only its size (the input's).
    return reduction(Op::reduce, in, i_am_root ? out : MutSpan{nullptr, out.bytes}, count, type, op,
                     root, comm);
  }

  int allreduce(const void* in, MutSpan out, int count, LhId type, LhId op, LhId comm) override {
    return reduction(Op::allreduce, in, out, count, type, op, 0, comm);
  }

  int gatherv_like(VKind kind, const VBuffers& v, int root, LhId comm) override {
    static constexpr Op kOps[] = {Op::gatherv, Op::scatterv, Op::allgatherv, Op::alltoallv};
    const CollectiveBuffers& b = v.base;
    std::lock_guard lock(mu_);
    Call& c = begin(kOps[static_cast<int>(kind)]);
    c.buf[0] = b.send.data == nullptr ? BufRef{} : stage_in(b.send);
    // In-out: the gaps between displaced blocks keep the application's data.
    c.buf[1] = b.recv.data == nullptr ? BufRef{} : stage_in({b.recv.data, b.recv.bytes});
    c.buf[2] = stage_in({v.counts.data(), v.counts.size() * sizeof(int)});
    c.i[0] = b.send_count;
    c.h[0] = b.send_type;
    c.i[3] = b.recv_count;
    c.h[2] = b.recv_type;
    c.i[1] = root;
    c.h[1] = comm;
    c.i[6] = b.in_place ? 1 : 0;
    c.i[7] = static_cast<std::int32_t>(v.counts.size() / 4);
    const Reply& r = roundtrip();
    if (b.recv.data != nullptr) unstage(c.buf[1], b.recv, b.recv.bytes);
    return r.rc;
  }

  int reduce_more(RKind kind, Span in, MutSpan out, int count, LhId type, LhId op,
                  const std::vector<int>& recv_counts, LhId comm) override {
    static constexpr Op kOps[] = {Op::reduce_scatter, Op::reduce_scatter_block, Op::scan, Op::exscan};
    std::lock_guard lock(mu_);
    Call& c = begin(kOps[static_cast<int>(kind)]);
    c.buf[0] = in.data == nullptr ? BufRef{} : stage_in(in);
    c.buf[1] = stage_in({out.data, out.bytes});  // in-out: in place, or exscan's rank 0 keeps it
    c.buf[2] = stage_in({recv_counts.data(), recv_counts.size() * sizeof(int)});
    c.i[0] = count;
    c.h[0] = type;
    c.h[2] = op;
    c.h[1] = comm;
    c.i[7] = static_cast<std::int32_t>(recv_counts.size());
    const Reply& r = roundtrip();
    unstage(c.buf[1], out, out.bytes);
    return r.rc;
  }

  int issend(Span data, int count, LhId type, int dest, int tag, LhId comm, LhId& request) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::issend);
    c.buf[0] = stage_in(data);
    c.i[0] = count;
    c.h[0] = type;
    c.i[1] = dest;
    c.i[2] = tag;
    c.h[1] = comm;
    const Reply& r = roundtrip();
    request = r.h[0];
    return r.rc;
  }

  int wait_some(const std::vector<LhId>& requests, WaitMode mode, int& index, int& complete) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::wait_some);
    c.buf[0] = stage_in({requests.data(), requests.size() * sizeof(LhId)});
    c.i[0] = static_cast<std::int32_t>(requests.size());
    c.i[1] = static_cast<std::int32_t>(mode);
    const Reply& r = roundtrip();
    index = r.i[0];
    complete = r.i[1];
    return r.rc;
  }

  int cancel(LhId request) override { return request_op(Op::cancel, request); }
  int request_free(LhId request) override { return request_op(Op::request_free, request); }

  int ibarrier(LhId comm, LhId& request) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::ibarrier);
    c.h[1] = comm;
    const Reply& r = roundtrip();
    request = r.h[0];
    return r.rc;
  }

  int ibcast(Span data, int count, LhId type, int root, LhId comm, LhId& request) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::ibcast);
    c.buf[0] = stage_in(data);
    c.i[0] = count;
    c.h[0] = type;
    c.i[1] = root;
    c.h[1] = comm;
    const Reply& r = roundtrip();
    request = r.h[0];
    return r.rc;
  }

  int iallreduce(Span in, std::size_t out_bytes, int count, LhId type, LhId op, LhId comm,
                 LhId& request) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::iallreduce);
    c.buf[0] = stage_in(in);
    c.buf[1] = BufRef{0, out_bytes, Where::none, 0};
    c.i[0] = count;
    c.h[0] = type;
    c.h[2] = op;
    c.h[1] = comm;
    const Reply& r = roundtrip();
    request = r.h[0];
    return r.rc;
  }

  int comm_dup(LhId comm, NewComm& out) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::comm_dup);
    c.h[1] = comm;
    const Reply& r = roundtrip();
    read_new_comm(r, out);
    return r.rc;
  }

  int comm_split(LhId comm, int color, int key, NewComm& out) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::comm_split);
    c.h[1] = comm;
    c.i[0] = color;
    c.i[1] = key;
    const Reply& r = roundtrip();
    read_new_comm(r, out);
    return r.rc;
  }

  int comm_free(LhId comm) override {
    std::lock_guard lock(mu_);
    Call& c = begin(Op::comm_free);
    c.h[1] = comm;
    return roundtrip().rc;
  }

 private:
  Call& begin(Op op) {
    if (stale_ != nullptr) {  // left mapped by a reattach during the previous call (see there)
      channel::detach(stale_);
      stale_ = nullptr;
    }
    if (moved()) reattach(false);  // if the relay is not ready yet, roundtrip() retries
    used_ = 0;
    Call& c = ch_->call;
    c = Call{};
    c.op = op;
    return c;
  }

  // A data-area slot of `bytes` (64-byte aligned), or nullopt-like {none} when it does not fit.
  bool reserve(std::size_t bytes, std::uint64_t& offset) {
    std::size_t start = (used_ + 63) & ~std::size_t{63};
    if (start > channel::kDataBytes || bytes > channel::kDataBytes - start) return false;
    offset = start;
    used_ = start + bytes;
    return true;
  }

  BufRef stage_in(Span s) {
    std::uint64_t off = 0;
    if (reserve(s.bytes, off)) {
      if (s.bytes != 0) std::memcpy(ch_->data + off, s.data, s.bytes);
      return BufRef{off, s.bytes, Where::shm, 0};
    }
    return BufRef{reinterpret_cast<std::uint64_t>(s.data), s.bytes, Where::app, 0};
  }

  BufRef stage_out(MutSpan s) {
    std::uint64_t off = 0;
    if (reserve(s.bytes, off)) return BufRef{off, s.bytes, Where::shm, 0};
    return BufRef{reinterpret_cast<std::uint64_t>(s.data), s.bytes, Where::app, 0};
  }

  void unstage(const BufRef& ref, MutSpan s, std::size_t bytes) {
    if (ref.where != Where::shm || bytes == 0) return;
    std::memcpy(s.data, ch_->data + ref.at, bytes < s.bytes ? bytes : s.bytes);
  }

  int reduction(Op op, const void* in, MutSpan out, int count, LhId type, LhId red_op, int root,
                LhId comm) {
    std::lock_guard lock(mu_);
    Call& c = begin(op);
    // in == nullptr: MPI_IN_PLACE, the input travels in the output buffer.
    c.buf[0] = in == nullptr ? BufRef{} : stage_in({in, out.bytes});
    c.buf[1] = out.data == nullptr ? BufRef{}
               : in == nullptr      ? stage_in({out.data, out.bytes})
                                    : stage_out(out);
    c.i[0] = count;
    c.h[0] = type;
    c.h[2] = red_op;
    c.i[1] = root;
    c.h[1] = comm;
    const Reply& r = roundtrip();
    if (out.data != nullptr) unstage(c.buf[1], out, out.bytes);
    return r.rc;
  }

  int request_op(Op op, LhId request) {
    std::lock_guard lock(mu_);
    Call& c = begin(op);
    c.h[0] = request;
    return roundtrip().rc;
  }

  bool moved() const { return ch_->header.moved.load(std::memory_order_acquire) != 0; }

  // True when `pid` is the process that started at `host_start` (clock ticks since boot, as the
  // host sees it). /proc/PID/stat shows start times shifted by the reader's time namespace
  // boottime offset, and a restored application runs in a time namespace (a new offset at each
  // restart): add it back, read each time (1 tick of rounding allowed).
  static bool process_is(int pid, std::uint64_t host_start) {
    std::uint64_t seen = channel::process_start_time(pid);
    if (seen == 0) return false;
    long long off_s = 0, off_ns = 0;
    if (FILE* f = std::fopen("/proc/self/timens_offsets", "re")) {
      char name[32];
      long long s = 0, ns = 0;
      while (std::fscanf(f, "%31s %lld %lld", name, &s, &ns) == 3)
        if (std::strcmp(name, "boottime") == 0) off_s = s, off_ns = ns;
      std::fclose(f);
    }
    long hz = sysconf(_SC_CLK_TCK);
    long long expected = static_cast<long long>(host_start) + (off_s * hz + off_ns * hz / 1'000'000'000LL);
    long long diff = static_cast<long long>(seen) - expected;
    return diff >= -1 && diff <= 1;
  }

  // The proxy is alive while /proc/<pid> is the process that made the channel (a pid seen from
  // the host, so this works inside the rank's PID namespace where kill() could not reach it).
  bool proxy_alive() {
    if (process_is(ch_->header.proxy_pid, ch_->header.proxy_start)) {
      orphan_since_ = 0;
      return true;
    }
    std::uint64_t now = channel::monotonic_ns();
    if (orphan_since_ == 0) orphan_since_ = now;
    return now - orphan_since_ < kOrphanSeconds * 1'000'000'000ull;
  }

  // Attaches to the channel named by the `moved` record; with `repost`, the call in progress is
  // copied over (call record and staged bytes) and posted again under the same number.
  // Returns false, attached to nothing new, when the record names no live proxy's channel: a
  // record written into this copy by a proxy that is gone since (the new proxy has not announced
  // itself yet and will overwrite it); the caller keeps waiting, within the orphan limit.
  bool reattach(bool repost) {
    channel::Layout* old = ch_;
    std::int32_t relay_pid = old->header.relay_pid;
    std::string path = "/proc/" + std::to_string(relay_pid) + "/fd/" + std::to_string(old->header.relay_fd);
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    std::string why = fd < 0 ? std::strerror(errno) : "";
    channel::Layout* fresh = fd < 0 ? nullptr : channel::attach(fd, &why);
    if (fd >= 0) close(fd);
    if (fresh != nullptr && (fresh->header.proxy_pid != relay_pid || !process_is(relay_pid, fresh->header.proxy_start))) {
      why = "not the channel of a live proxy";
      channel::detach(fresh);
      fresh = nullptr;
    }
    if (fresh == nullptr) {
      if (!relay_unusable_since_) relay_unusable_since_ = channel::monotonic_ns();
      if (channel::monotonic_ns() - relay_unusable_since_ >= kOrphanSeconds * 1'000'000'000ull) {
        std::fprintf(stderr, "ferry: cannot attach to the restarted MPI proxy's channel %s: %s\n", path.c_str(),
                     why.c_str());
        _exit(70);
      }
      return false;
    }
    relay_unusable_since_ = 0;
    if (repost) {
      fresh->call = old->call;
      if (used_ != 0) std::memcpy(fresh->data, old->data, used_ < channel::kDataBytes ? used_ : channel::kDataBytes);
    }
    ch_ = fresh;
    orphan_since_ = 0;
    if (repost) {
      // The caller still holds a reference to the old call record (its buffer references are
      // read after the reply): unmap the old channel at the next call. (A second reattach within
      // one call, possible across two restarts, leaves the first old copy mapped: the caller
      // may still refer to it.)
      stale_ = old;
      channel::post(ch_->request, seq_);
    } else {
      channel::detach(old);
    }
    return true;
  }

  const Reply& roundtrip() {
    ++seq_;
    channel::post(ch_->request, seq_);
    for (;;) {
      bool ok = channel::wait_for(ch_->response, seq_, policy_, [this] { return !moved() && proxy_alive(); });
      if (ok) return ch_->reply;
      if (moved()) {
        if (!reattach(true)) ::usleep(100'000);  // a stale record: wait for the new proxy's
        continue;
      }
      static const char msg[] = "ferry: the MPI proxy of this rank is gone\n";
      ssize_t ignored = write(2, msg, sizeof msg - 1);
      (void)ignored;
      _exit(70);
    }
  }

  static LhStatus to_status(const Reply& r) {
    return LhStatus{r.status.source, r.status.tag, r.status.error, r.status.bytes, r.status.cancelled != 0};
  }

  void read_new_comm(const Reply& r, NewComm& out) {
    out.id = r.h[0];
    out.rank = r.i[0];
    out.size = r.i[1];
    out.world_ranks.clear();
    if (out.id == kLhNone) return;
    const auto* ranks = reinterpret_cast<const int*>(ch_->data);
    out.world_ranks.assign(ranks, ranks + out.size);
  }

  static constexpr std::uint64_t kOrphanSeconds = 20;
  channel::Layout* ch_;
  channel::Layout* stale_ = nullptr;
  channel::WaitPolicy policy_;
  std::uint64_t orphan_since_ = 0;
  std::uint64_t relay_unusable_since_ = 0;  // first failed reattach to the current `moved` record
  std::mutex mu_;
  std::uint32_t seq_ = 0;
  std::size_t used_ = 0;
};

}  // namespace

std::unique_ptr<LowerHalf> connect_lower_half(std::string* why) {
  const char* text = std::getenv(channel::kChannelEnv);
  long proxy = 0, fd = -1;
  if (text == nullptr || std::sscanf(text, "%ld:%ld", &proxy, &fd) != 2) {
    *why = "this program uses ferry's libmpi.so.40 but was not started by ferry-mpi-proxy "
           "(run it as: mpirun ... ferry-mpi-proxy -- PROGRAM)";
    return nullptr;
  }
  // The inherited descriptor, if the application kept it; else the proxy's, through /proc.
  struct stat st {};
  bool inherited = fstat(static_cast<int>(fd), &st) == 0 && S_ISREG(st.st_mode) &&
                   static_cast<std::size_t>(st.st_size) == channel::kMappingBytes;
  int channel_fd = static_cast<int>(fd);
  if (!inherited) {
    std::string path = "/proc/" + std::to_string(proxy) + "/fd/" + std::to_string(fd);
    channel_fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (channel_fd < 0) {
      *why = "open the channel " + path + ": " + std::strerror(errno);
      return nullptr;
    }
  }
  channel::Layout* layout = channel::attach(channel_fd, why);
  close(channel_fd);  // the mapping stays; the application keeps no extra descriptor
  if (layout == nullptr) return nullptr;
  unsetenv(channel::kChannelEnv);
  return std::make_unique<ProxyLowerHalf>(layout);
}

}  // namespace ferry::mpi
