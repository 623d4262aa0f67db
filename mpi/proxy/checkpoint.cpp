// SPDX-License-Identifier: Apache-2.0
// A job checkpoint, one rank's part (checkpoint.hpp). Every proxy runs the same steps; the
// proxy serves no new call of its application from the moment it gets the order (the call in
// progress, if any, keeps being advanced, and its reply is posted if it completes: the
// application then runs until its next MPI call, where it waits unserved - a safe point).
//
// The proxies exchange point-to-point messages on `ctl` only: each other rank reports to rank 0
// (tag kReportTag), rank 0 answers every other rank (tag kCtlTag). Every message carries the
// front end's round number; one of a round that is over is dropped when it arrives.
//
//  0. Rank 0 gets "checkpoint GEN DIR TIMEOUT_MS ROUND" from the front end and sends the order
//     to every other proxy. Each proxy's deadline is TIMEOUT_MS from when it got the order
//     (rank 0), or that plus kLateMarginMs (the others, so that rank 0 normally decides).
//  1. Agree on collectives. Each proxy reports, for every communicator it knows (and every one
//     it freed), how many collectives its application entered; rank 0 sends everyone all the
//     reports. target(C) = the minimum over C's members (a member that does not know C yet
//     counts 0). Since every collective starts with a barrier (server.hpp), a collective
//     entered by all members (entered <= target) will complete and must, before the dump; one
//     entered by only some (entered > target) cannot complete and stays pending, to be
//     re-issued by a restart.
//  2. Drain point-to-point. Rounds of: advance the active call and every request, receive
//     every unmatched message on every communicator into the drained queue (MPI_Iprobe +
//     MPI_Recv as MPI_PACKED), then report {sent - received, unsettled} to rank 0, which sums
//     the reports of the iteration and answers drained or not (every proxy keeps draining while
//     it waits) until both sums are 0. Sends are fixed once every proxy has its order (no new
//     call is served) and receives only grow, so a zero sum taken at different moments still
//     proves that every message sent was received.
//  3. Freeze the application (rank supervisor "freeze"), write the lower-half state
//     (Server::serialize) to DIR/rank-R/mpi-lower.state (fsynced), dump the images into
//     DIR/rank-R ("dump GEN DIR/rank-R"). From here the proxy only tests its own ctl requests:
//     nothing of the application's may change after its state was written.
//  4. Report {failed, image bytes, memory bytes, why} to rank 0, which reports the sums to the
//     front end ("dumped ROUND FAILED IMAGE_BYTES MEMORY_BYTES [WHY]"); the front end commits
//     the generation (job manifest, rename) and answers "resume|stop|abort ROUND"; rank 0 sends
//     the decision to every proxy; each applies it through its rank supervisor (abort: resume
//     and delete its rank directory); rank 0 tells the front end "done ROUND".
//
// A round that cannot complete (issue 5 section 6): rank 0 gives it up when a phase has not
// heard from every rank by its deadline (or the front end sent "cancel ROUND"): it sends
// "abort" to every proxy, thaws its own application if frozen, and tells the front end
// "timeout ROUND PHASE TIMEOUT_MS RANKS" (the ranks that did not answer). A proxy that gets
// "abort", or whose own deadline passes first (rank 0 is the one that hangs), leaves the round
// the same way. Leaving changes nothing of the lower half: messages already drained stay in
// the drained queue and are delivered by the next receives, collectives finished by the drain
// are finished, and the proxy goes back to serving its application. An application frozen and
// dumped whose decision never came is only resumed (its directory is left to the front end,
// which removes the partial generation unless it committed it). A proxy that was stopped and
// continues later finds its round's "abort" waiting and leaves at once; a rank 0 whose order
// the front end already cancelled never starts it (poll_front). The supervisor's control
// requests are bounded by the same deadline (a rank supervisor that never answers).
// A rank computing outside MPI needs nothing of this: its proxy drains on its behalf, and the
// freeze stops it wherever it is.
//
// FERRY_TEST_CHECKPOINT_HANG="R:PHASE[:PATH][,R:PHASE[:PATH]...]" (tests): the proxy of rank R
// stops itself (SIGSTOP) once when it enters PHASE (agreement, drain, dump), as a hung process
// would; with PATH, only in a checkpoint that starts once PATH exists.
#include "checkpoint.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <thread>

namespace ferry::mpi::proxy {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kCtlTag = 7301;     // rank 0 -> every other proxy
constexpr int kReportTag = 7302;  // every other proxy -> rank 0
constexpr std::int64_t kLateMarginMs = 10'000;  // the others wait that much longer than rank 0
constexpr long kApplyTimeoutMs = 30'000;        // resume/stop/abort through the rank supervisor

// Message kinds.
constexpr std::int32_t kOrder = 1, kAgreed = 2, kVerdict = 3, kDecisionMsg = 4, kAbort = 5, kReport = 10;
// Phases (reports, "timeout" lines).
constexpr int kAgree = 1, kDrain = 2, kDump = 3, kCommit = 4;

const char* phase_name(int phase) {
  switch (phase) {
    case kAgree: return "agreement";
    case kDrain: return "drain";
    case kDump: return "dump";
    default: return "commit";
  }
}

struct WireHeader {
  std::int32_t kind, phase;
  std::uint64_t round;
  std::int64_t a, b, c;
};

bool write_file_synced(const std::string& path, const std::string& bytes, std::string* why) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *why = "create " + path + ": " + std::strerror(errno);
    return false;
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *why = "write " + path + ": " + std::strerror(errno);
      close(fd);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  bool ok = fsync(fd) == 0;
  if (!ok) *why = "fsync " + path + ": " + std::strerror(errno);
  close(fd);
  return ok;
}

void backoff(unsigned& idle) {
  if (++idle < 64) {
    sched_yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(idle < 256 ? 50 : 500));
  }
}

std::string encode_counts(const std::vector<std::uint64_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(std::uint64_t));
}

std::vector<std::uint64_t> decode_counts(const std::string& s) {
  std::vector<std::uint64_t> v(s.size() / sizeof(std::uint64_t));
  if (!v.empty()) std::memcpy(v.data(), s.data(), v.size() * sizeof(std::uint64_t));
  return v;
}

}  // namespace

Checkpointer::Checkpointer(Server& server, RankSupervisor& supervisor, FrontLink* front, MPI_Comm ctl,
                           std::function<void()> pump)
    : server_(server), supervisor_(supervisor), front_(front), ctl_(ctl), pump_(std::move(pump)) {
  MPI_Comm_rank(ctl_, &rank_);
  MPI_Comm_size(ctl_, &size_);
}

void Checkpointer::progress_all() {
  pump_();
  server_.progress_requests();
  server_.drain_network();
}

void Checkpointer::send(int dest, int tag, const Message& m) {
  WireHeader h{m.kind, m.phase, m.round, m.a, m.b, m.c};
  auto bytes = std::make_shared<std::vector<char>>(sizeof h + m.payload.size());
  std::memcpy(bytes->data(), &h, sizeof h);
  if (!m.payload.empty()) std::memcpy(bytes->data() + sizeof h, m.payload.data(), m.payload.size());
  MPI_Request req;
  MPI_Isend(bytes->data(), static_cast<int>(bytes->size()), MPI_BYTE, dest, tag, ctl_, &req);
  sends_.emplace_back(req, std::move(bytes));
}

bool Checkpointer::receive(int source, int tag, Message& m) {
  int flag = 0;
  MPI_Status st{};
  MPI_Iprobe(source, tag, ctl_, &flag, &st);
  if (!flag) return false;
  int bytes = 0;
  MPI_Get_count(&st, MPI_BYTE, &bytes);
  std::vector<char> buf(static_cast<std::size_t>(std::max(bytes, 0)));
  MPI_Recv(buf.data(), bytes, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, ctl_, MPI_STATUS_IGNORE);
  m = Message{};
  m.source = st.MPI_SOURCE;
  if (buf.size() < sizeof(WireHeader)) return true;  // kind 0: matches nothing
  WireHeader h;
  std::memcpy(&h, buf.data(), sizeof h);
  m.kind = h.kind;
  m.phase = h.phase;
  m.round = h.round;
  m.a = h.a;
  m.b = h.b;
  m.c = h.c;
  m.payload.assign(buf.data() + sizeof h, buf.size() - sizeof h);
  return true;
}

// Control sends complete whenever their receiver gets to them (a stopped proxy: once it
// continues); they are tested here, never waited for.
void Checkpointer::reap_sends() {
  for (std::size_t i = 0; i < sends_.size();) {
    int done = 0;
    MPI_Test(&sends_[i].first, &done, MPI_STATUS_IGNORE);
    if (done) {
      sends_[i] = std::move(sends_.back());
      sends_.pop_back();
    } else {
      ++i;
    }
  }
}

void Checkpointer::release_sends() {
  reap_sends();
  for (auto& s : sends_) MPI_Request_free(&s.first);
  sends_.clear();
}

bool Checkpointer::poll_order(Order& order) {
  reap_sends();
  Message m;
  while (receive(0, kCtlTag, m)) {
    if (m.kind != kOrder) continue;  // a message of a round that is over
    order.round = m.round;
    order.generation = static_cast<std::uint64_t>(m.a);
    order.timeout_ms = m.b;
    order.dir = m.payload;
    return true;
  }
  return false;
}

bool Checkpointer::poll_front(Order& order) {
  reap_sends();
  if (front_ == nullptr) return false;
  for (std::string line = front_->poll_line(); !line.empty(); line = front_->poll_line()) {
    char dir[4096] = {};
    unsigned long long gen = 0, round = 0;
    long long timeout_ms = 0;
    if (std::sscanf(line.c_str(), "checkpoint %llu %4095s %lld %llu", &gen, dir, &timeout_ms, &round) != 4) continue;
    std::string cancel = "cancel " + std::to_string(round);
    if (!front_->take_line([&](const std::string& l) { return l == cancel; }).empty()) {
      std::fprintf(stderr, "ferry-mpi-proxy: checkpoint round %llu was cancelled by ferry mpirun before it started\n", round);
      continue;
    }
    order.round = round;
    order.generation = gen;
    order.timeout_ms = timeout_ms;
    order.dir = dir;
    return true;
  }
  return false;
}

void Checkpointer::test_hang(int phase) const {
  static std::set<std::string> fired;
  const char* spec = std::getenv("FERRY_TEST_CHECKPOINT_HANG");
  if (spec == nullptr) return;
  std::string want = std::to_string(rank_) + ":" + phase_name(phase);
  std::string all = std::string(",") + spec + ",";
  auto at = all.find("," + want + ",");
  if (at == std::string::npos) {
    at = all.find("," + want + ":");
    if (at == std::string::npos) return;
    auto from = at + want.size() + 2;
    std::string path = all.substr(from, all.find(',', from) - from);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;
  }
  if (!fired.insert(want).second) return;
  std::fprintf(stderr, "ferry-mpi-proxy: rank %d stops itself in the checkpoint's %s (FERRY_TEST_CHECKPOINT_HANG)\n",
               rank_, phase_name(phase));
  raise(SIGSTOP);
}

std::string Checkpointer::control(const std::string& line) const {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
  return supervisor_.control(line, std::max<long>(static_cast<long>(left), 2000));
}

bool Checkpointer::gather(int phase, std::int64_t iteration, std::vector<Message>& got, bool pump) {
  got.assign(static_cast<std::size_t>(size_), Message{});
  got[0].kind = kReport;
  int have = 1;
  std::string cancel = "cancel " + std::to_string(round_);
  unsigned idle = 0;
  for (;;) {
    // Deadline first: a rank 0 that was stopped past it finds every report waiting, but the
    // others may have left already.
    if (past_deadline()) {
      outcome_ = Outcome::timed_out;
      return false;
    }
    if (front_ != nullptr && !front_->take_line([&](const std::string& l) { return l == cancel; }).empty()) {
      outcome_ = Outcome::aborted;
      return false;
    }
    Message m;
    while (have < size_ && receive(MPI_ANY_SOURCE, kReportTag, m)) {
      auto& slot = got[static_cast<std::size_t>(m.source)];
      if (m.kind != kReport || m.round != round_ || m.phase != phase || slot.kind != 0) continue;
      if (phase == kDrain && m.a != iteration) continue;
      slot = std::move(m);
      ++have;
    }
    if (have == size_) return true;
    if (pump) progress_all();
    reap_sends();
    backoff(idle);
  }
}

bool Checkpointer::await(int kind, Message& m, bool pump) {
  unsigned idle = 0;
  for (;;) {
    if (past_deadline()) {
      outcome_ = Outcome::timed_out;
      return false;
    }
    while (receive(0, kCtlTag, m)) {
      if (m.round != round_) continue;  // a round that is over
      if (m.kind == kAbort) {
        outcome_ = Outcome::aborted;
        return false;
      }
      if (m.kind == kind) return true;
    }
    if (pump) progress_all();
    reap_sends();
    backoff(idle);
  }
}

bool Checkpointer::abort_pending() {
  Message m;
  while (receive(0, kCtlTag, m))
    if (m.round == round_ && m.kind == kAbort) {
      outcome_ = Outcome::aborted;
      return true;
    }
  if (past_deadline()) {
    outcome_ = Outcome::timed_out;
    return true;
  }
  return false;
}

Decision Checkpointer::give_up(int phase, const std::vector<int>& missing, const std::string& frozen_dir) {
  Message abort;
  abort.kind = kAbort;
  abort.phase = phase;
  abort.round = round_;
  for (int r = 1; r < size_; ++r) send(r, kCtlTag, abort);
  std::string ranks;
  for (int r : missing) ranks += (ranks.empty() ? "" : ",") + std::to_string(r);
  if (ranks.empty()) ranks = "-";
  std::fprintf(stderr, "ferry-mpi-proxy: checkpoint round %llu given up in the %s after %lld ms (%s; ranks not answering: %s)\n",
               static_cast<unsigned long long>(round_), phase_name(phase), static_cast<long long>(timeout_ms_),
               outcome_ == Outcome::aborted ? "cancelled by ferry mpirun" : "deadline passed", ranks.c_str());
  if (!frozen_dir.empty()) {
    std::string r = control("abort " + frozen_dir);
    if (r.rfind("ok", 0) != 0) std::fprintf(stderr, "ferry-mpi-proxy: rank 0: abort after the checkpoint: %s\n", r.c_str());
  }
  if (front_ != nullptr)
    front_->send_line("timeout " + std::to_string(round_) + " " + phase_name(phase) + " " + std::to_string(timeout_ms_) +
                      " " + ranks);
  reap_sends();
  return Decision::abort;
}

Decision Checkpointer::leave(const std::string& frozen_dir, bool dumped) {
  std::fprintf(stderr, "ferry-mpi-proxy: rank %d: checkpoint round %llu %s; the rank continues\n", rank_,
               static_cast<unsigned long long>(round_),
               outcome_ == Outcome::aborted ? "given up by rank 0" : "given up (no word from rank 0 in time)");
  if (!frozen_dir.empty()) {
    // Dumped but no decision (rank 0 hangs): resume only; the front end removes the partial
    // generation unless it committed it (then this directory is part of it).
    std::string r = dumped && outcome_ == Outcome::timed_out ? control("resume") : control("abort " + frozen_dir);
    if (r.rfind("ok", 0) != 0)
      std::fprintf(stderr, "ferry-mpi-proxy: rank %d: leaving the checkpoint: %s\n", rank_, r.c_str());
  }
  reap_sends();
  return Decision::abort;
}

Decision Checkpointer::run(const Order& order) {
  round_ = order.round;
  timeout_ms_ = order.timeout_ms > 0 ? order.timeout_ms : 120'000;
  deadline_ = Clock::now() + std::chrono::milliseconds(timeout_ms_ + (rank_ == 0 ? 0 : kLateMarginMs));
  outcome_ = Outcome::ok;
  if (rank_ == 0) {
    Message m;
    m.kind = kOrder;
    m.round = round_;
    m.a = static_cast<std::int64_t>(order.generation);
    m.b = timeout_ms_;
    m.payload = order.dir;
    for (int r = 1; r < size_; ++r) send(r, kCtlTag, m);
  }
  // FERRY_TEST_BREAK=mpi-drain skips steps 1 and 2: the tests check they fail without them.
  const char* broken = std::getenv("FERRY_TEST_BREAK");
  if (broken != nullptr && std::strcmp(broken, "mpi-drain") == 0) return dump_and_decide(order);
  return run_steps(order);
}

Decision Checkpointer::run_steps(const Order& order) {
  test_hang(kAgree);
  // 1. Collective agreement.
  std::vector<std::uint64_t> mine;
  for (auto& [k, e] : server_.entered_counts()) {
    mine.push_back(k);
    mine.push_back(e);
  }
  std::vector<std::map<std::uint64_t, std::uint64_t>> reported(static_cast<std::size_t>(size_));
  std::vector<std::uint64_t> all;  // per rank: number of values, then key, entered, ...
  Message m;
  if (rank_ == 0) {
    std::vector<Message> got;
    if (!gather(kAgree, 0, got, true)) {
      std::vector<int> missing;
      for (int r = 1; r < size_; ++r)
        if (got[static_cast<std::size_t>(r)].kind == 0) missing.push_back(r);
      return give_up(kAgree, missing, "");
    }
    for (int r = 0; r < size_; ++r) {
      auto values = r == 0 ? mine : decode_counts(got[static_cast<std::size_t>(r)].payload);
      all.push_back(values.size());
      all.insert(all.end(), values.begin(), values.end());
    }
    Message agreed;
    agreed.kind = kAgreed;
    agreed.round = round_;
    agreed.payload = encode_counts(all);
    for (int r = 1; r < size_; ++r) send(r, kCtlTag, agreed);
  } else {
    Message report;
    report.kind = kReport;
    report.phase = kAgree;
    report.round = round_;
    report.payload = encode_counts(mine);
    send(0, kReportTag, report);
    if (!await(kAgreed, m, true)) return leave("", false);
    all = decode_counts(m.payload);
  }
  for (std::size_t at = 0, r = 0; at < all.size() && r < reported.size(); ++r) {
    std::size_t end = std::min(all.size(), at + 1 + static_cast<std::size_t>(all[at]));
    for (++at; at + 2 <= end; at += 2) reported[r][all[at]] = all[at + 1];
    at = end;
  }
  std::vector<EnteredCount> targets;
  for (std::uint64_t key : server_.live_keys()) {
    const CommEntry* c = server_.comm_by_key(key);
    std::uint64_t target = UINT64_MAX;
    for (int member : c->world_ranks) {
      const auto& rep = reported[static_cast<std::size_t>(member)];
      auto it = rep.find(key);
      target = std::min(target, it == rep.end() ? 0 : it->second);
    }
    targets.emplace_back(key, target);
  }

  // 2. Drain.
  test_hang(kDrain);
  for (std::int64_t iteration = 0;; ++iteration) {
    progress_all();
    std::int64_t in_flight = server_.sent() - server_.received();
    std::int64_t unsettled = server_.settled(targets) ? 0 : 1;
    bool drained = false;
    if (rank_ == 0) {
      std::vector<Message> got;
      if (!gather(kDrain, iteration, got, true)) {
        std::vector<int> missing;
        for (int r = 1; r < size_; ++r)
          if (got[static_cast<std::size_t>(r)].kind == 0) missing.push_back(r);
        return give_up(kDrain, missing, "");
      }
      for (int r = 1; r < size_; ++r) {
        in_flight += got[static_cast<std::size_t>(r)].b;
        unsettled += got[static_cast<std::size_t>(r)].c;
      }
      drained = in_flight == 0 && unsettled == 0;
      Message verdict;
      verdict.kind = kVerdict;
      verdict.round = round_;
      verdict.a = iteration;
      verdict.b = drained ? 1 : 0;
      for (int r = 1; r < size_; ++r) send(r, kCtlTag, verdict);
      if (iteration > 0 && iteration % 2000 == 0)
        std::fprintf(stderr, "ferry-mpi-proxy: checkpoint drain: %lld messages in flight, %lld ranks unsettled\n",
                     static_cast<long long>(in_flight), static_cast<long long>(unsettled));
    } else {
      Message report;
      report.kind = kReport;
      report.phase = kDrain;
      report.round = round_;
      report.a = iteration;
      report.b = in_flight;
      report.c = unsettled;
      send(0, kReportTag, report);
      do {
        if (!await(kVerdict, m, true)) return leave("", false);
      } while (m.a != iteration);
      drained = m.b != 0;
    }
    if (drained) break;
  }

  return dump_and_decide(order);
}

Decision Checkpointer::dump_and_decide(const Order& order) {
  test_hang(kDump);
  // A proxy that was stopped before this point finds its round given up: nothing is frozen.
  if (rank_ != 0 && abort_pending()) return leave("", false);
  if (rank_ == 0 && past_deadline()) {
    outcome_ = Outcome::timed_out;
    return give_up(kDump, {0}, "");
  }
  // 3. Freeze, state, dump.
  std::string rank_dir = order.dir + "/rank-" + std::to_string(rank_);
  std::string failure;
  std::int64_t image_bytes = 0, memory_bytes = 0;
  std::string r = control("freeze");
  if (r.rfind("ok", 0) != 0) {
    failure = "freeze: " + r;
  } else if (mkdir(rank_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    failure = "create " + rank_dir + ": " + std::strerror(errno);
  } else if (!write_file_synced(rank_dir + "/mpi-lower.state", server_.serialize(), &failure)) {
    // failure set
  } else {
    r = control("dump " + std::to_string(order.generation) + " " + rank_dir);
    if (r.rfind("ok ", 0) != 0) {
      failure = "dump: " + r;
    } else {
      unsigned long long img = 0, mem = 0;
      std::sscanf(r.c_str(), "ok %llu %llu", &img, &mem);
      image_bytes = static_cast<std::int64_t>(img);
      memory_bytes = static_cast<std::int64_t>(mem);
    }
  }
  if (!failure.empty()) std::fprintf(stderr, "ferry-mpi-proxy: rank %d: checkpoint failed: %s\n", rank_, failure.c_str());

  // 4. Report, decide, apply.
  std::int32_t decision = static_cast<std::int32_t>(Decision::abort);
  if (rank_ == 0) {
    std::vector<Message> got;
    if (!gather(kDump, 0, got, false)) {
      std::vector<int> missing;
      for (int k = 1; k < size_; ++k)
        if (got[static_cast<std::size_t>(k)].kind == 0) missing.push_back(k);
      return give_up(kDump, missing, rank_dir);
    }
    std::int64_t failed = failure.empty() ? 0 : 1, image = image_bytes, memory = memory_bytes;
    std::string first = failure.empty() ? "" : "rank 0: " + failure;
    for (int k = 1; k < size_; ++k) {
      const Message& g = got[static_cast<std::size_t>(k)];
      failed += g.a;
      image += g.b;
      memory += g.c;
      if (g.a != 0 && first.empty()) first = "rank " + std::to_string(k) + ": " + g.payload;
    }
    if (front_ != nullptr) {
      std::string id = std::to_string(round_);
      front_->send_line("dumped " + id + " " + std::to_string(failed) + " " + std::to_string(image) + " " +
                        std::to_string(memory) + (first.empty() ? "" : " " + first));
      // The front end commits (job manifest, fsync, rename) and answers at once.
      auto until = deadline_ + std::chrono::milliseconds(kLateMarginMs);
      std::string answer;
      unsigned idle = 0;
      while (answer.empty() && Clock::now() < until && front_->connected()) {
        answer = front_->take_line([&](const std::string& l) {
          return l == "resume " + id || l == "stop " + id || l == "abort " + id || l == "cancel " + id;
        });
        reap_sends();
        if (answer.empty()) backoff(idle);
      }
      if (answer.rfind("resume ", 0) == 0) decision = static_cast<std::int32_t>(Decision::resume);
      if (answer.rfind("stop ", 0) == 0) decision = static_cast<std::int32_t>(Decision::stop);
      if (answer.empty())
        std::fprintf(stderr, "ferry-mpi-proxy: no decision from ferry mpirun for checkpoint round %s: abort\n", id.c_str());
    }
    Message d;
    d.kind = kDecisionMsg;
    d.round = round_;
    d.a = decision;
    for (int k = 1; k < size_; ++k) send(k, kCtlTag, d);
  } else {
    Message report;
    report.kind = kReport;
    report.phase = kDump;
    report.round = round_;
    report.a = failure.empty() ? 0 : 1;
    report.b = image_bytes;
    report.c = memory_bytes;
    report.payload = failure.substr(0, 1000);
    send(0, kReportTag, report);
    Message m;
    if (!await(kDecisionMsg, m, false)) return leave(rank_dir, failure.empty());
    decision = static_cast<std::int32_t>(m.a);
  }
  auto d = static_cast<Decision>(decision);
  std::string applied;
  if (d == Decision::resume) {
    applied = supervisor_.control("resume", kApplyTimeoutMs);
  } else if (d == Decision::stop) {
    applied = supervisor_.control("stop", kApplyTimeoutMs);
  } else {
    applied = supervisor_.control("abort " + rank_dir, kApplyTimeoutMs);
  }
  if (applied.rfind("ok", 0) != 0)
    std::fprintf(stderr, "ferry-mpi-proxy: rank %d: %s after the checkpoint: %s\n", rank_,
                 d == Decision::resume ? "resume" : d == Decision::stop ? "stop" : "abort", applied.c_str());
  if (rank_ == 0 && front_ != nullptr) front_->send_line("done " + std::to_string(round_));
  reap_sends();
  return d;
}

}  // namespace ferry::mpi::proxy
