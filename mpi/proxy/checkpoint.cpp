// SPDX-License-Identifier: Apache-2.0
// A job checkpoint, one rank's part (checkpoint.hpp). Every proxy runs the same steps; the
// proxy serves no new call of its application from the moment it gets the order (the call in
// progress, if any, keeps being advanced, and its reply is posted if it completes: the
// application then runs until its next MPI call, where it waits unserved - a safe point).
//
//  1. Agree on collectives. Each proxy publishes, for every communicator it knows (and every
//     one it freed), how many collectives its application entered (Iallgather + Iallgatherv on
//     ctl). target(C) = the minimum over C's members (a member that does not know C yet counts
//     0). Since every collective starts with a barrier (server.hpp), a collective entered by all
//     members (entered <= target) will complete and must, before the dump; one entered by only
//     some (entered > target) cannot complete and stays pending, to be re-issued by a restart.
//  2. Drain point-to-point. Rounds of: advance the active call and every request, receive
//     every unmatched message on every communicator into the drained queue (MPI_Iprobe +
//     MPI_Recv as MPI_PACKED), then Iallreduce(SUM) of {sent - received, unsettled ranks}
//     (waiting for it while still draining) until both are 0. Sends are fixed once every proxy
//     has its order (no new call is served) and receives only grow, so a zero sum taken at
//     different moments still proves that every message sent was received.
//  3. Freeze the application (rank supervisor "freeze"), write the lower-half state
//     (Server::serialize) to DIR/rank-R/mpi-lower.state (fsynced), dump the images into
//     DIR/rank-R ("dump GEN DIR/rank-R"). From here the proxy only tests its own ctl requests:
//     nothing of the application's may change after its state was written.
//  4. Iallreduce(SUM) of {failed ranks, image bytes, memory bytes}; rank 0 reports it to the
//     front end ("dumped FAILED IMAGE_BYTES MEMORY_BYTES"), which commits the generation (job
//     manifest, rename) and answers resume | stop | abort; Ibcast of that decision; each proxy
//     applies it through its rank supervisor (abort: resume and delete its rank directory).
#include "checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

namespace ferry::mpi::proxy {
namespace {

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

void Checkpointer::wait(MPI_Request& req, bool pump) {
  unsigned idle = 0;
  for (;;) {
    int done = 0;
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (pump) progress_all();
    backoff(idle);
  }
}

void Checkpointer::broadcast(const Order& order) {
  std::vector<MPI_Request> reqs;
  for (int r = 1; r < size_; ++r) {
    reqs.emplace_back();
    MPI_Isend(&order, sizeof order, MPI_BYTE, r, kOrderTag, ctl_, &reqs.back());
  }
  for (auto& r : reqs) wait(r, true);
}

Decision Checkpointer::run(const Order& order) {
  // FERRY_TEST_BREAK=mpi-drain skips steps 1 and 2: the tests check they fail without them.
  const char* broken = std::getenv("FERRY_TEST_BREAK");
  if (broken != nullptr && std::strcmp(broken, "mpi-drain") == 0) return dump_and_decide(order);
  // 1. Collective agreement.
  std::vector<EnteredCount> mine = server_.entered_counts();
  int count = static_cast<int>(mine.size() * 2);
  std::vector<int> counts(static_cast<std::size_t>(size_));
  MPI_Request req;
  MPI_Iallgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, ctl_, &req);
  wait(req, true);
  std::vector<int> displs(static_cast<std::size_t>(size_));
  int total = 0;
  for (int r = 0; r < size_; ++r) {
    displs[static_cast<std::size_t>(r)] = total;
    total += counts[static_cast<std::size_t>(r)];
  }
  std::vector<std::uint64_t> flat;
  for (auto& [k, e] : mine) {
    flat.push_back(k);
    flat.push_back(e);
  }
  std::vector<std::uint64_t> all(static_cast<std::size_t>(total));
  MPI_Iallgatherv(flat.data(), count, MPI_UINT64_T, all.data(), counts.data(), displs.data(), MPI_UINT64_T, ctl_,
                  &req);
  wait(req, true);
  std::vector<std::map<std::uint64_t, std::uint64_t>> reported(static_cast<std::size_t>(size_));
  for (int r = 0; r < size_; ++r)
    for (int i = 0; i < counts[static_cast<std::size_t>(r)]; i += 2) {
      auto at = static_cast<std::size_t>(displs[static_cast<std::size_t>(r)] + i);
      reported[static_cast<std::size_t>(r)][all[at]] = all[at + 1];
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
  for (unsigned round = 0;; ++round) {
    progress_all();
    std::int64_t local[2] = {server_.sent() - server_.received(), server_.settled(targets) ? 0 : 1};
    std::int64_t sum[2] = {0, 0};
    MPI_Iallreduce(local, sum, 2, MPI_INT64_T, MPI_SUM, ctl_, &req);
    wait(req, true);
    if (sum[0] == 0 && sum[1] == 0) break;
    if (round > 0 && round % 2000 == 0 && rank_ == 0)
      std::fprintf(stderr, "ferry-mpi-proxy: checkpoint drain: %lld messages in flight, %lld ranks unsettled\n",
                   static_cast<long long>(sum[0]), static_cast<long long>(sum[1]));
  }

  return dump_and_decide(order);
}

Decision Checkpointer::dump_and_decide(const Order& order) {
  MPI_Request req;
  // 3. Freeze, state, dump.
  std::string rank_dir = std::string(order.dir) + "/rank-" + std::to_string(rank_);
  std::string failure;
  std::int64_t image_bytes = 0, memory_bytes = 0;
  bool frozen = false;
  std::string r = supervisor_.control("freeze");
  if (r.rfind("ok", 0) != 0) {
    failure = "freeze: " + r;
  } else {
    frozen = true;
    if (mkdir(rank_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      failure = "create " + rank_dir + ": " + std::strerror(errno);
    } else if (!write_file_synced(rank_dir + "/mpi-lower.state", server_.serialize(), &failure)) {
      // failure set
    } else {
      r = supervisor_.control("dump " + std::to_string(order.generation) + " " + rank_dir);
      if (r.rfind("ok ", 0) != 0) {
        failure = "dump: " + r;
      } else {
        unsigned long long img = 0, mem = 0;
        std::sscanf(r.c_str(), "ok %llu %llu", &img, &mem);
        image_bytes = static_cast<std::int64_t>(img);
        memory_bytes = static_cast<std::int64_t>(mem);
      }
    }
  }
  if (!failure.empty()) std::fprintf(stderr, "ferry-mpi-proxy: rank %d: checkpoint failed: %s\n", rank_, failure.c_str());

  // 4. Report, decide, apply.
  std::int64_t local[3] = {failure.empty() ? 0 : 1, image_bytes, memory_bytes};
  std::int64_t sum[3] = {0, 0, 0};
  MPI_Iallreduce(local, sum, 3, MPI_INT64_T, MPI_SUM, ctl_, &req);
  wait(req, false);
  std::int32_t decision = static_cast<std::int32_t>(Decision::abort);
  if (rank_ == 0 && front_ != nullptr) {
    front_->send_line("dumped " + std::to_string(sum[0]) + " " + std::to_string(sum[1]) + " " + std::to_string(sum[2]));
    std::string answer = front_->read_line();
    if (answer == "resume") decision = static_cast<std::int32_t>(Decision::resume);
    if (answer == "stop") decision = static_cast<std::int32_t>(Decision::stop);
  }
  MPI_Ibcast(&decision, 1, MPI_INT32_T, 0, ctl_, &req);
  wait(req, false);
  auto d = static_cast<Decision>(decision);
  std::string applied;
  if (d == Decision::resume) {
    applied = supervisor_.control("resume");
  } else if (d == Decision::stop) {
    applied = supervisor_.control("stop");
  } else {
    applied = supervisor_.control("abort " + rank_dir);
  }
  if (applied.rfind("ok", 0) != 0)
    std::fprintf(stderr, "ferry-mpi-proxy: rank %d: %s after the checkpoint: %s\n", rank_,
                 d == Decision::resume ? "resume" : d == Decision::stop ? "stop" : "abort", applied.c_str());
  (void)frozen;
  if (rank_ == 0 && front_ != nullptr) front_->send_line("done");
  return d;
}

}  // namespace ferry::mpi::proxy
