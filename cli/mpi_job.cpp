// SPDX-License-Identifier: Apache-2.0
// MPI job runs, their outcome records, `ferry wait` for MPI jobs and restart placement
// (mpi_job.hpp explains the run directory and the folding rules).
#include "mpi_job.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "exit_status.hpp"
#include "mpi_jobs.hpp"
#include "ferry/common/fs.hpp"
#include "options.hpp"
#include "restart_outcome.hpp"
#include "wait_outcome.hpp"

namespace ferry::cli::mpi_job {
namespace {

std::optional<proto::Outcome> outcome_named(const std::string& s) {
  for (auto o : {proto::Outcome::running, proto::Outcome::restart_failed, proto::Outcome::exited, proto::Outcome::signaled})
    if (proto::name(o) == s) return o;
  return std::nullopt;
}

std::optional<proto::RestartPhase> phase_named(const std::string& s) {
  for (auto p : {proto::RestartPhase::place, proto::RestartPhase::validate, proto::RestartPhase::restore,
                 proto::RestartPhase::resume})
    if (proto::name(p) == s) return p;
  return std::nullopt;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// "h1:2,h2" -> {"h1", "h2"}
std::vector<std::string> host_names(const std::string& list) {
  std::vector<std::string> out;
  for (const auto& h : split(list, ',')) out.push_back(h.substr(0, h.find(':')));
  return out;
}

// Block distribution of ntasks over the hosts: "h1:k1,h2:k2" (the first hosts get one more).
std::string spread(const std::vector<std::string>& hosts, std::uint32_t ntasks) {
  std::string out;
  auto n = static_cast<std::uint32_t>(hosts.size());
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t k = ntasks / n + (i < ntasks % n ? 1 : 0);
    if (k == 0) continue;
    out += (out.empty() ? "" : ",") + hosts[i] + ":" + std::to_string(k);
  }
  return out;
}

bool is_host_option(const std::string& a) {
  return a == "--host" || a == "-host" || a == "-H" || a == "--hostfile" || a == "-hostfile" ||
         a == "--machinefile" || a == "-machinefile" || a == "--default-hostfile";
}

}  // namespace

std::string runs_dir(const store::JobStore& store, const std::string& id) { return store.job_dir(id) + "/mpi-runs"; }

std::string run_dir(const store::JobStore& store, const std::string& id, std::uint64_t run) {
  return runs_dir(store, id) + "/" + std::to_string(run);
}

bool is_mpi_job(const store::JobStore& store, const std::string& id) {
  return ::access((store.job_dir(id) + "/mpi.json").c_str(), F_OK) == 0;
}

std::vector<std::uint64_t> runs(const store::JobStore& store, const std::string& id) {
  std::vector<std::uint64_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(runs_dir(store, id), ec)) {
    std::string n = e.path().filename().string();
    if (!n.empty() && n.find_first_not_of("0123456789") == std::string::npos) out.push_back(std::stoull(n));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::pair<std::uint64_t, std::string>> begin_run(const store::JobStore& store, const std::string& id) {
  std::string base = runs_dir(store, id);
  if (::mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno("create " + base);
  auto existing = runs(store, id);
  std::uint64_t next = existing.empty() ? 1 : existing.back() + 1;
  for (;; ++next) {
    std::string dir = run_dir(store, id, next);
    if (::mkdir(dir.c_str(), 0755) == 0) return std::pair{next, dir};
    if (errno != EEXIST) return fail_errno("create " + dir);
  }
}

std::vector<std::string> rank_nodes(const std::string& dir, std::uint32_t ntasks) {
  std::vector<std::string> out(ntasks);
  for (std::uint32_t r = 0; r < ntasks; ++r) {
    std::ifstream in(dir + "/rank-" + std::to_string(r) + ".host");
    std::getline(in, out[r]);
  }
  return out;
}

proto::RestartRecordWire fold_run(const std::string& dir, std::uint64_t run, const std::string& job,
                                  std::optional<int> mpirun_status, std::optional<std::uint64_t> stopped_generation) {
  // The same rules as a coordinator's MPI job (coordinator/mpi_jobs.hpp), on the same events.
  proto::MpiRunEnded ended;
  ended.job = job;
  ended.restart_id = run;
  ended.launcher_status = mpirun_status.value_or(0);
  ended.ranks = coord::read_mpi_events(dir);
  return coord::fold_mpi_run(run, job, {}, ended, stopped_generation);
}

Result<void> write_record(const std::string& dir, const proto::RestartRecordWire& record) {
  return fs::write_file_atomic(dir + "/record.json", coord::wait_json(record) + "\n", 0644);
}

std::optional<proto::RestartRecordWire> read_record(const std::string& dir) {
  auto text = fs::read_file(dir + "/record.json");
  if (!text) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(*text);
    proto::RestartRecordWire r;
    r.restart_id = j.at("restart_id").get<std::uint64_t>();
    r.job = j.at("job").get<std::string>();
    r.outcome = outcome_named(j.at("outcome").get<std::string>()).value_or(proto::Outcome::running);
    if (!j["exit_status"].is_null()) r.exit_status = j["exit_status"].get<std::int32_t>();
    if (!j["signal"].is_null()) r.signal = j["signal"].get<std::int32_t>();
    if (!j["phase"].is_null()) r.phase = phase_named(j["phase"].get<std::string>());
    if (!j["rank"].is_null()) r.rank = j["rank"].get<std::uint32_t>();
    if (!j["node"].is_null()) r.node = j["node"].get<std::string>();
    if (!j["reason"].is_null()) r.reason = j["reason"].get<std::string>();
    return r;
  } catch (...) {
    return std::nullopt;
  }
}

proto::RestartRecordWire current_record(const store::JobStore& store, const store::JobRecord& job, std::uint64_t run) {
  std::string dir = run_dir(store, job.id, run);
  if (auto r = read_record(dir)) return *r;
  auto newest = runs(store, job.id);
  bool current = !newest.empty() && newest.back() == run;
  if (current && job.state == "running" && store::supervisor_alive(job)) {
    proto::RestartRecordWire r;
    r.restart_id = run;
    r.job = job.id;
    return r;  // running
  }
  // Its `ferry mpirun` is gone without a record (killed): the events tell what they can.
  auto r = fold_run(dir, run, job.id, 128 + 9, std::nullopt);
  if (!r.reason) r.reason = "ferry mpirun ended without recording the outcome";
  else if (r.outcome == proto::Outcome::signaled && !r.rank)
    r.reason = "ferry mpirun ended without recording the outcome and no rank reported its end";
  return r;
}

int wait(const store::JobStore& store, const store::JobRecord& job_in, bool json, double timeout_s) {
  auto all = runs(store, job_in.id);
  if (all.empty()) {
    complain("wait: MPI job " + job_in.id + " has no run record (started by an older ferry?)");
    return kExitNotFound;
  }
  std::uint64_t run = all.back();
  return wait_until_final(
      [&] {
        auto job = store.find(job_in.id);
        return current_record(store, job ? *job : job_in, run);
      },
      json, timeout_s);
}

Result<Args> apply_placement(const Args& saved, const Placement& p, std::uint32_t ntasks) {
  if (!p.any()) return saved;
  if ((p.nodes ? 1 : 0) + (p.host ? 1 : 0) + (p.hostfile ? 1 : 0) > 1)
    return fail(errc::protocol, "give one of --nodes, --host, --hostfile");
  Args out;
  std::optional<std::string> saved_hosts;
  for (std::size_t i = 0; i < saved.size(); ++i) {
    if (is_host_option(saved[i]) && i + 1 < saved.size()) {
      if (saved[i] == "--host" || saved[i] == "-host" || saved[i] == "-H") saved_hosts = saved[i + 1];
      ++i;
      continue;
    }
    out.push_back(saved[i]);
  }
  if (p.host) {
    out.insert(out.end(), {"--host", *p.host});
  } else if (p.hostfile) {
    out.insert(out.end(), {"--hostfile", *p.hostfile});
  } else {
    const std::string& v = *p.nodes;
    if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos) {
      std::uint32_t n = static_cast<std::uint32_t>(std::stoul(v));
      if (n == 0 || n > ntasks)
        return fail(errc::protocol, "--nodes " + v + ": between 1 and the job's " + std::to_string(ntasks) + " ranks");
      if (saved_hosts) {
        auto hosts = host_names(*saved_hosts);
        if (hosts.size() < n)
          return fail(errc::protocol, "--nodes " + v + ": the job's host list " + *saved_hosts + " names " +
                                          std::to_string(hosts.size()) + " hosts");
        hosts.resize(n);
        out.insert(out.end(), {"--host", spread(hosts, ntasks)});
      } else {
        // No host list: mpirun's own allocation (Slurm, or this host), n ranks-per-node groups.
        out.insert(out.end(), {"--map-by", "ppr:" + std::to_string((ntasks + n - 1) / n) + ":node"});
      }
    } else {
      auto hosts = split(v, ',');
      if (hosts.empty()) return fail(errc::protocol, "--nodes: no node given");
      out.insert(out.end(), {"--host", spread(hosts, ntasks)});
    }
  }
  return out;
}

}  // namespace ferry::cli::mpi_job
