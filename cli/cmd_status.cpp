// SPDX-License-Identifier: Apache-2.0
// `ferry status [JOB] [--json]`: jobs (state, ranks, nodes), their generations (time, size,
// duration) and restart records, and the coordinator's nodes. On a terminal, while a job
// checkpoints, a live progress line (bytes written of the estimated total, rate, the nodes
// still dumping) is redrawn until the round ends. Without a coordinator, the local store's
// job records are listed; an MPI job's entry also has its ranks, their nodes (newest run) and a
// record per run (cli/mpi_job.hpp), as a coordinator job's restarts.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "coordinator_client.hpp"
#include "exit_status.hpp"
#include "job_store.hpp"
#include "mpi_job.hpp"
#include "options.hpp"
#include "restart_outcome.hpp"

namespace ferry::cli {
namespace {

std::string human_bytes(std::uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream o;
  o << std::fixed << std::setprecision(u ? 1 : 0) << v << " " << units[u];
  return o.str();
}

std::string clock_time(std::int64_t ns) {
  if (ns <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

nlohmann::ordered_json to_json(const proto::StatusReply& r) {
  nlohmann::ordered_json out;
  out["jobs"] = nlohmann::ordered_json::array();
  for (const auto& j : r.jobs) {
    nlohmann::ordered_json job{{"job", j.job}, {"name", j.name}, {"uid", j.uid}, {"state", j.state},
                               {"ntasks", j.ntasks}, {"nodes", j.nodes}};
    job["generations"] = nlohmann::ordered_json::array();
    for (const auto& g : j.generations)
      job["generations"].push_back({{"generation", g.number}, {"time_ns", g.time_ns}, {"bytes", g.bytes},
                                    {"duration_ns", g.duration_ns}});
    job["restarts"] = nlohmann::ordered_json::array();
    for (const auto& rec : j.restarts) job["restarts"].push_back(nlohmann::ordered_json::parse(coord::wait_json(rec)));
    out["jobs"].push_back(job);
  }
  out["nodes"] = nlohmann::ordered_json::array();
  for (const auto& n : r.nodes)
    out["nodes"].push_back({{"node", n.node}, {"alive", n.alive != 0}, {"last_heartbeat_ns", n.last_heartbeat_ns}});
  return out;
}

void print_text(const proto::StatusReply& r) {
  for (const auto& j : r.jobs) {
    std::cout << "job " << j.job << (j.name.empty() ? "" : " (" + j.name + ")") << "  uid " << j.uid << "  "
              << j.state << "  " << j.ntasks << " ranks on";
    for (const auto& n : j.nodes) std::cout << " " << n;
    std::cout << "\n";
    for (const auto& g : j.generations)
      std::cout << "  generation " << g.number << "  " << clock_time(g.time_ns) << "  " << human_bytes(g.bytes) << "  "
                << std::fixed << std::setprecision(2) << g.duration_ns / 1e9 << " s\n";
    for (const auto& rec : j.restarts) {
      std::cout << "  record " << rec.restart_id << "  " << proto::name(rec.outcome);
      if (rec.exit_status) std::cout << " status " << *rec.exit_status;
      if (rec.signal) std::cout << " signal " << *rec.signal;
      if (rec.phase) std::cout << " phase " << proto::name(*rec.phase);
      if (rec.rank) std::cout << " rank " << *rec.rank;
      if (rec.node) std::cout << " node " << *rec.node;
      if (rec.reason) std::cout << ": " << *rec.reason;
      std::cout << "\n";
    }
  }
  for (const auto& n : r.nodes)
    std::cout << "node " << n.node << "  " << (n.alive ? "alive" : "lost") << "  last heard " << clock_time(n.last_heartbeat_ns)
              << "\n";
}

int local_status(const std::string& root, const std::optional<std::string>& job, bool json) {
  auto store = store::JobStore::open(root);
  if (!store) {
    complain("status: " + store.error().message());
    return exit_status_for(store.error());
  }
  std::vector<store::JobRecord> recs;
  if (job) {
    auto r = store->find(*job);
    if (!r) {
      complain("status: " + r.error().message());
      return exit_status_for(r.error());
    }
    recs.push_back(*r);
  } else {
    std::vector<std::uint64_t> ids;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(store->root() + "/jobs", ec)) {
      std::string n = e.path().filename().string();
      if (!n.empty() && n.find_first_not_of("0123456789") == std::string::npos) ids.push_back(std::stoull(n));
    }
    std::sort(ids.begin(), ids.end());
    for (auto id : ids)
      if (auto r = store->find(std::to_string(id))) recs.push_back(*r);
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : recs) {
    auto gens = store->generations(r.id);
    // A job whose ferry launch/restart/mpirun was killed still says "running" in its record.
    bool gone = (r.state == "running" || r.state == "restarting" || r.state == "created") && !store::supervisor_alive(r);
    std::string state = gone ? "lost" : r.state;
    nlohmann::ordered_json entry{{"job", r.id}, {"name", r.name}, {"uid", r.uid}, {"state", state}, {"pid", r.pid},
                                 {"generations", gens ? *gens : std::vector<std::uint64_t>{}}};
    if (!r.restart_failure.empty())
      entry["restart_failed"] = {{"run", r.run}, {"phase", r.restart_failure_phase}, {"reason", r.restart_failure}};
    if (!json) {
      std::cout << "job " << r.id << (r.name.empty() ? "" : " (" + r.name + ")") << "  uid " << r.uid << "  " << state
                << "  pid " << r.pid << "  " << (gens ? gens->size() : 0) << " generations\n";
      if (gone)
        std::cout << "  its ferry command (pid " << r.supervisor_pid << ") ended without recording the outcome\n";
      if (!r.restart_failure.empty())
        std::cout << "  restart attempt " << r.run << " failed (" << r.restart_failure_phase << "): " << r.restart_failure
                  << "\n";
    }
    if (mpi_job::is_mpi_job(*store, r.id)) {
      // Ranks and nodes of the newest run, and one record per run.
      auto runs = mpi_job::runs(*store, r.id);
      std::vector<std::string> nodes;
      std::uint32_t ntasks = 0;
      if (!runs.empty()) {
        std::string dir = mpi_job::run_dir(*store, r.id, runs.back());
        while (::access((dir + "/rank-" + std::to_string(ntasks) + ".host").c_str(), F_OK) == 0) ++ntasks;
        nodes = mpi_job::rank_nodes(dir, ntasks);
      }
      entry["ntasks"] = ntasks;
      entry["nodes"] = nodes;
      entry["restarts"] = nlohmann::ordered_json::array();
      if (!json) {
        std::cout << "  " << ntasks << " ranks on";
        for (const auto& n : nodes) std::cout << " " << n;
        std::cout << "\n";
      }
      for (auto run : runs) {
        auto rec = mpi_job::current_record(*store, r, run);
        entry["restarts"].push_back(nlohmann::ordered_json::parse(coord::wait_json(rec)));
        if (json) continue;
        std::cout << "  record " << rec.restart_id << "  " << proto::name(rec.outcome);
        if (rec.exit_status) std::cout << " status " << *rec.exit_status;
        if (rec.signal) std::cout << " signal " << *rec.signal;
        if (rec.phase) std::cout << " phase " << proto::name(*rec.phase);
        if (rec.rank) std::cout << " rank " << *rec.rank;
        if (rec.node) std::cout << " node " << *rec.node;
        if (rec.reason) std::cout << ": " << *rec.reason;
        std::cout << "\n";
      }
    }
    out.push_back(entry);
  }
  if (json) std::cout << nlohmann::ordered_json{{"jobs", out}}.dump() << "\n";
  return 0;
}

}  // namespace

int cmd_status(const Args& args) {
  po::options_description opts("ferry status [JOB] [--json] [--store DIR] [--coordinator HOST:PORT]");
  opts.add_options()("help,h", "show this help")("json", "print JSON on stdout")(
      "store", po::value<std::string>(), "job store directory")(
      "coordinator", po::value<std::string>(), "coordinator address (default: $FERRY_COORDINATOR)")(
      "job", po::value<std::string>(), "job id or name");
  po::positional_options_description pos;
  pos.add("job", 1);
  po::variables_map vm;
  if (!parse("status", args, opts, pos, vm)) return kExitUsage;
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  auto job = opt<std::string>(vm, "job");
  std::string root = store::default_root(opt<std::string>(vm, "store"));
  bool json = vm.count("json") > 0;
  auto address = coordinator_for(opt<std::string>(vm, "coordinator"), root, job.value_or(""));
  if (!address) return local_status(root, job, json);
  auto client = CoordinatorClient::connect(*address);
  if (!client) return unreachable(*address, client.error());
  proto::Status req{job.value_or("")};
  auto r = client->call<proto::Status, proto::StatusReply>(req);
  if (!r) return unreachable(*address, r.error());
  if (r->code != proto::kWireOk) {
    complain("status: " + r->message);
    return exit_for_reply(r->code, r->message);
  }
  // A terminal and a round in flight: redraw its progress until it ends (bounded: 1 hour).
  auto checkpointing = [](const proto::StatusReply& s) -> const proto::JobInfo* {
    for (const auto& j : s.jobs)
      if (j.state.rfind("checkpointing", 0) == 0) return &j;
    return nullptr;
  };
  if (!json && ::isatty(STDOUT_FILENO)) {
    auto until = std::chrono::steady_clock::now() + std::chrono::hours(1);
    bool drew = false;
    while (const proto::JobInfo* j = checkpointing(*r)) {
      std::cout << "\r\033[K" << "job " << j->job << ": " << j->state << std::flush;
      drew = true;
      if (std::chrono::steady_clock::now() > until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      auto again = client->call<proto::Status, proto::StatusReply>(req);
      if (!again || again->code != proto::kWireOk) break;
      *r = std::move(*again);
    }
    if (drew) std::cout << "\r\033[K";
  }
  if (json) std::cout << to_json(*r).dump() << "\n";
  else print_text(*r);
  return 0;
}

}  // namespace ferry::cli
