// SPDX-License-Identifier: Apache-2.0
// The coordinator branches of `ferry launch`, `ferry checkpoint` and `ferry restart`: a job
// of several ranks over the agents of a cluster. The cmd_*.cpp files choose this path when a
// coordinator is given (--coordinator, $FERRY_COORDINATOR, the job's job.json, or
// --nodes/--ntasks for launch) and keep their local single-process path otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ferry::cli {

struct ClusterLaunch {
  std::string address;
  std::string name;
  std::vector<std::string> argv;
  std::vector<std::string> nodes;
  std::uint32_t ntasks = 0;     // 0: one per node
  std::uint32_t interval_s = 0;
  std::uint32_t keep = 0;
  bool detach = false;
  bool json = false;            // print the final record as JSON (like ferry wait --json)
};
// LAUNCH_JOB; with detach prints the job id on stdout and returns 0, else waits for the
// launch's record and exits like `ferry wait`.
int cluster_launch(const ClusterLaunch& l);

// timeout_ms: `--timeout` (MPI jobs: the round's bound; 0: the coordinator's step timeouts).
int cluster_checkpoint(const std::string& address, const std::string& job, bool stop, std::uint32_t timeout_ms = 0);

struct ClusterRestart {
  std::string address;
  std::string job;
  std::uint64_t generation = 0;
  std::vector<std::string> nodes;
  bool detach = false;
  bool json = false;
};
int cluster_restart(const ClusterRestart& r);

// "10m" -> 600, "90" or "90s" -> 90, "2h" -> 7200; nullopt if malformed.
std::optional<std::uint32_t> parse_duration_s(const std::string& s);
// "n1,n2" -> {"n1", "n2"} (empty parts dropped).
std::vector<std::string> split_nodes(const std::string& s);

}  // namespace ferry::cli
