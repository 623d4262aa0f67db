// SPDX-License-Identifier: Apache-2.0
// The lower-half state a restart needs (Server::serialize / Server::restore), stored beside the
// rank's images as rank-<R>/mpi-lower.state. Written after the drain, so no send is outstanding
// and no collective is half done: what remains is logical state, independent of the library.
//
// Format (little-endian, native sizes; written and read by the same build):
//   "FERRYMPS" u32 version u32 world_size u32 world_rank
//   u32 n_comms   { u32 id u64 key u64 entered u32 n (i32 world_rank)*n }
//   u32 n_freed   { u64 key u64 entered }
//   u32 n_reqs    { u32 id u8 receive u8 done u32 type u32 comm i32 count i32 peer i32 tag u64 order
//                   i32 source i32 tag i32 error i32 cancelled u64 bytes
//                   u32 coll i32 root u32 op u64 seq  u64 input_size [input bytes]
//                   u64 buffer_size [bytes if a done receive, or a collective] }
//   u32 n_drained { u32 comm i32 source i32 tag u64 n bytes }
//   u32 skip_send_seq u64 next_order
// `entered` excludes a blocking collective still at its barrier: the restarted application posts
// that call again and it is counted then. A nonblocking collective still at its barrier (some
// member had not entered it) stays counted: the application will not post it again, the restored
// proxy does (its MPI_Ibarrier, in posting order, like pending receives). Requests the
// application freed (MPI_Request_free) are complete after the drain and are not kept. Restore rebuilds communicators with MPI_Comm_create_group over
// their world ranks in key order (the same order on every rank, so overlapping groups cannot
// deadlock), under the same lower-half ids, so the upper half's handles need no rebinding.
#include <algorithm>
#include <cstring>

#include "server.hpp"

namespace ferry::mpi::proxy {
namespace {

constexpr char kMagic[8] = {'F', 'E', 'R', 'R', 'Y', 'M', 'P', 'S'};
constexpr std::uint32_t kStateVersion = 2;

class Out {
 public:
  template <class T>
  void put(T v) {
    bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_bytes(const void* p, std::size_t n) { bytes.append(static_cast<const char*>(p), n); }
  std::string bytes;
};

class In {
 public:
  explicit In(const std::string& b) : b_(b) {}
  template <class T>
  T get() {
    T v{};
    if (pos_ + sizeof v > b_.size()) {
      bad = true;
      return v;
    }
    std::memcpy(&v, b_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  bool get_bytes(void* p, std::size_t n) {
    if (pos_ + n > b_.size()) return !(bad = true);
    if (n != 0) std::memcpy(p, b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool bad = false;

 private:
  const std::string& b_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string Server::serialize() const {
  Out o;
  o.put_bytes(kMagic, sizeof kMagic);
  o.put(kStateVersion);
  int size = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  o.put(static_cast<std::uint32_t>(size));
  o.put(static_cast<std::uint32_t>(rank));
  std::uint32_t pending_coll = 0xffff'ffffu;
  if (active_.busy && active_.stage == Active::Stage::barrier)
    pending_coll = active_.call.op == channel::Op::finalize ? 0 : active_.call.h[1];
  std::uint32_t n = 0;
  for (const auto& c : comms_) n += c.real != MPI_COMM_NULL;
  o.put(n);
  for (std::uint32_t id = 0; id < comms_.size(); ++id) {
    const CommEntry& c = comms_[id];
    if (c.real == MPI_COMM_NULL) continue;
    o.put(id);
    o.put(c.key);
    o.put(c.entered - (id == pending_coll ? 1 : 0));
    o.put(static_cast<std::uint32_t>(c.world_ranks.size()));
    for (int r : c.world_ranks) o.put(static_cast<std::int32_t>(r));
  }
  o.put(static_cast<std::uint32_t>(freed_.size()));
  for (const auto& [key, entered] : freed_) {
    o.put(key);
    o.put(entered);
  }
  n = 0;
  for (const auto& r : requests_) n += r.live && !r.orphan;
  o.put(n);
  for (std::uint32_t id = 0; id < requests_.size(); ++id) {
    const RequestEntry& r = requests_[id];
    if (!r.live || r.orphan) continue;
    // A send is complete once the drain ends (settled()); only receives may still be pending.
    bool done = r.done || (!r.receive && r.coll == 0);
    o.put(id);
    o.put(static_cast<std::uint8_t>(r.receive));
    o.put(static_cast<std::uint8_t>(done));
    o.put(r.type);
    o.put(r.comm);
    o.put(static_cast<std::int32_t>(r.count));
    o.put(static_cast<std::int32_t>(r.peer));
    o.put(static_cast<std::int32_t>(r.tag));
    o.put(r.order);
    o.put(r.status.source);
    o.put(r.status.tag);
    o.put(r.status.error);
    o.put(r.status.cancelled);
    o.put(r.status.bytes);
    o.put(r.coll);
    o.put(static_cast<std::int32_t>(r.root));
    o.put(r.op);
    o.put(r.seq);
    o.put(static_cast<std::uint64_t>(r.input.size()));
    o.put_bytes(r.input.data(), r.input.size());
    o.put(static_cast<std::uint64_t>(r.buffer.size()));
    if ((done && r.receive) || r.coll != 0) o.put_bytes(r.buffer.data(), r.buffer.size());
  }
  o.put(static_cast<std::uint32_t>(drained_.size()));
  for (const auto& d : drained_) {
    o.put(d.comm);
    o.put(static_cast<std::int32_t>(d.source));
    o.put(static_cast<std::int32_t>(d.tag));
    o.put(static_cast<std::uint64_t>(d.packed.size()));
    o.put_bytes(d.packed.data(), d.packed.size());
  }
  bool half_sendrecv = active_.busy && active_.stage == Active::Stage::sendrecv && active_.send_done;
  o.put(half_sendrecv ? active_.seq : std::uint32_t{0});
  o.put(next_order_);
  return std::move(o.bytes);
}

bool Server::restore(const std::string& bytes, std::string* why) {
  In in(bytes);
  char magic[8];
  in.get_bytes(magic, sizeof magic);
  if (in.bad || std::memcmp(magic, kMagic, sizeof magic) != 0 || in.get<std::uint32_t>() != kStateVersion) {
    *why = "not a ferry MPI state file of this version";
    return false;
  }
  int size = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  auto saved_size = in.get<std::uint32_t>();
  auto saved_rank = in.get<std::uint32_t>();
  if (saved_size != static_cast<std::uint32_t>(size) || saved_rank != static_cast<std::uint32_t>(rank)) {
    *why = "the checkpoint has " + std::to_string(saved_size) + " ranks (this file is rank " +
           std::to_string(saved_rank) + "), the restarted job " + std::to_string(size);
    return false;
  }
  struct SavedComm {
    std::uint32_t id;
    CommEntry entry;
  };
  std::vector<SavedComm> saved;
  for (auto n = in.get<std::uint32_t>(); n-- > 0 && !in.bad;) {
    SavedComm s;
    s.id = in.get<std::uint32_t>();
    s.entry.key = in.get<std::uint64_t>();
    s.entry.entered = in.get<std::uint64_t>();
    auto members = in.get<std::uint32_t>();
    if (members > static_cast<std::uint32_t>(size)) in.bad = true;
    for (std::uint32_t i = 0; i < members && !in.bad; ++i) s.entry.world_ranks.push_back(in.get<std::int32_t>());
    saved.push_back(std::move(s));
  }
  for (auto n = in.get<std::uint32_t>(); n-- > 0 && !in.bad;) {
    auto key = in.get<std::uint64_t>();
    freed_.emplace_back(key, in.get<std::uint64_t>());
  }
  std::vector<std::pair<std::uint32_t, RequestEntry>> reqs;
  for (auto n = in.get<std::uint32_t>(); n-- > 0 && !in.bad;) {
    auto id = in.get<std::uint32_t>();
    RequestEntry r;
    r.live = true;
    r.receive = in.get<std::uint8_t>() != 0;
    r.done = in.get<std::uint8_t>() != 0;
    r.type = in.get<std::uint32_t>();
    r.comm = in.get<std::uint32_t>();
    r.count = in.get<std::int32_t>();
    r.peer = in.get<std::int32_t>();
    r.tag = in.get<std::int32_t>();
    r.order = in.get<std::uint64_t>();
    r.status.source = in.get<std::int32_t>();
    r.status.tag = in.get<std::int32_t>();
    r.status.error = in.get<std::int32_t>();
    r.status.cancelled = in.get<std::int32_t>();
    r.status.bytes = in.get<std::uint64_t>();
    r.coll = in.get<std::uint32_t>();
    r.root = in.get<std::int32_t>();
    r.op = in.get<std::uint32_t>();
    r.seq = in.get<std::uint64_t>();
    auto input = in.get<std::uint64_t>();
    if (input > (std::uint64_t{1} << 40)) in.bad = true;
    if (!in.bad) r.input.resize(input);
    in.get_bytes(r.input.data(), r.input.size());
    auto buffer = in.get<std::uint64_t>();
    if (buffer > (std::uint64_t{1} << 40)) in.bad = true;
    if (!in.bad) r.buffer.resize(buffer);
    if ((r.done && r.receive) || r.coll != 0) in.get_bytes(r.buffer.data(), r.buffer.size());
    reqs.emplace_back(id, std::move(r));
  }
  for (auto n = in.get<std::uint32_t>(); n-- > 0 && !in.bad;) {
    Drained d;
    d.comm = in.get<std::uint32_t>();
    d.source = in.get<std::int32_t>();
    d.tag = in.get<std::int32_t>();
    auto len = in.get<std::uint64_t>();
    if (len > (std::uint64_t{1} << 40)) in.bad = true;
    if (!in.bad) d.packed.resize(len);
    in.get_bytes(d.packed.data(), d.packed.size());
    drained_.push_back(std::move(d));
  }
  skip_send_seq_ = in.get<std::uint32_t>();
  next_order_ = in.get<std::uint64_t>();
  if (in.bad) {
    *why = "the MPI state file is truncated";
    return false;
  }

  // Communicators: the predefined ones keep their slots; the others are made again, in key order.
  std::sort(saved.begin(), saved.end(), [](const SavedComm& a, const SavedComm& b) { return a.entry.key < b.entry.key; });
  MPI_Group world;
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  for (auto& s : saved) {
    if (s.id < 2) {
      comms_[s.id].entered = s.entry.entered;
      continue;
    }
    MPI_Group group;
    MPI_Group_incl(world, static_cast<int>(s.entry.world_ranks.size()), s.entry.world_ranks.data(), &group);
    MPI_Comm made = MPI_COMM_NULL;
    int rc = MPI_Comm_create_group(MPI_COMM_WORLD, group, static_cast<int>(s.entry.key % 32749), &made);
    MPI_Group_free(&group);
    if (rc != MPI_SUCCESS || made == MPI_COMM_NULL) {
      *why = "cannot rebuild a communicator of " + std::to_string(s.entry.world_ranks.size()) + " ranks";
      MPI_Group_free(&world);
      return false;
    }
    if (comms_.size() <= s.id) comms_.resize(s.id + 1);
    s.entry.real = made;
    if (!make_barrier_comm(s.entry)) {
      *why = "cannot rebuild a communicator's barrier duplicate";
      MPI_Group_free(&world);
      return false;
    }
    comms_[s.id] = std::move(s.entry);
  }
  MPI_Group_free(&world);

  // Requests: same ids; pending receives posted again in their original order.
  std::sort(reqs.begin(), reqs.end(), [](const auto& a, const auto& b) { return a.second.order < b.second.order; });
  for (auto& [id, r] : reqs) {
    if (requests_.size() <= id) requests_.resize(id + 1);
    requests_[id] = std::move(r);
    RequestEntry& e = requests_[id];
    if (e.coll != 0) ++collectives_live_;
    if (e.done) continue;
    if (e.coll != 0) {  // a nonblocking collective not entered by every member: its barrier again
      e.stage = 0;
      if (MPI_Ibarrier(comms_[e.comm].barriers, &e.real) != MPI_SUCCESS) {
        *why = "cannot post a pending nonblocking collective again";
        return false;
      }
      continue;
    }
    int rc = MPI_Irecv(e.buffer.data(), e.count, type(e.type), e.peer, e.tag, comm(e.comm), &e.real);
    if (rc != MPI_SUCCESS) {
      *why = "cannot post a pending receive again";
      return false;
    }
  }
  return true;
}

}  // namespace ferry::mpi::proxy
