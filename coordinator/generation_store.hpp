// SPDX-License-Identifier: Apache-2.0
// The coordinator's view of the shared store (STORE/jobs/<id>/): creates a job's directory
// and job.json, creates gen-N.partial for a round, writes the job-level MANIFEST.json last
// and renames gen-N.partial -> gen-N (the commit point), discards or deletes generations,
// and checks a committed generation before a restart. The ranks' images inside
// gen-N[.partial]/rank-<R>/ are written by the agents' rank supervisors, never here.
//
//   STORE/jobs/7/job.json                 {"coordinator": "host:port", "uid": .., ...}
//   STORE/jobs/7/gen-000003.partial/rank-0/{rank-0.h5, MANIFEST.json}   (agents)
//   STORE/jobs/7/gen-000003.partial/MANIFEST.json                       (here, last)
//   STORE/jobs/7/gen-000003/              after the rename: committed
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "checkpoint_round.hpp"
#include "ferry/common/result.hpp"
#include "state_db.hpp"

namespace ferry::coord {

class GenerationStore {
public:
  // root: the store directory (created if missing); coordinator: "host:port" for job.json.
  static Result<GenerationStore> open(const std::string& root, std::string coordinator);

  const std::string& root() const noexcept { return root_; }
  void set_coordinator(std::string address) { coordinator_ = std::move(address); }
  std::string job_dir(const std::string& job) const;
  std::string generation_dir(const std::string& job, std::uint64_t gen) const;  // committed name
  std::string partial_dir(const std::string& job, std::uint64_t gen) const;

  // Allocates a job id and directory (owned by the job's uid:gid) and writes job.json.
  Result<std::string> create_job(const JobRow& job);
  // Rewrites job.json's state (running, exited, stopped, failed).
  Result<void> save_job_state(const JobRow& job, const std::string& state);
  // mkdir gen-N.partial owned by uid:gid (a leftover one of the same number is removed first).
  Result<std::string> begin_generation(const JobRow& job, std::uint64_t gen);
  // MANIFEST.json (kind "job") into the partial directory, fsync, rename, fsync the job dir.
  Result<void> commit(const JobRow& job, const CommitManifest& c, std::int64_t started_ns,
                      std::uint64_t duration_ns);
  void discard(const std::string& partial_dir);
  void remove_generation(const std::string& job, std::uint64_t gen);
  void remove_job(const std::string& job);
  // True when gen-N exists under its final name with a readable job manifest; *bytes is
  // the size it records. (Crash recovery: the rename happened, so the generation stays.)
  bool committed_on_disk(const std::string& job, std::uint64_t gen, std::uint64_t* bytes) const;
  // Before a restart: the job manifest reads and names every rank, and every rank's
  // directory holds its MANIFEST.json. The error names the first bad rank (*bad_rank).
  Result<void> check_restorable(const JobRow& job, std::uint64_t gen, std::uint32_t* bad_rank) const;

private:
  GenerationStore(std::string root, std::string coordinator)
      : root_(std::move(root)), coordinator_(std::move(coordinator)) {}
  std::string root_;
  std::string coordinator_;
};

}  // namespace ferry::coord
