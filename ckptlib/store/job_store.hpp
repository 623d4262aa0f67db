// SPDX-License-Identifier: Apache-2.0
// The local job store: one directory per job under <store>/jobs/<id>/ holding job.json, the
// control socket of its supervisor and its generations (gen-NNNNNN/ with MANIFEST.json).
// A generation exists only once its directory has its final name: it is assembled in
// gen-NNNNNN.partial/ and renamed after every file and the manifest are durable.
//
//   <store>/jobs/7/job.json
//   <store>/jobs/7/control.sock
//   <store>/jobs/7/gen-000001/{rank-0.h5, MANIFEST.json}
//   <store>/jobs/7/gen-000002.partial/...     (in progress, or left by a killed checkpoint)
//   <store>/names/<name> -> ../jobs/7         (symlink, replaced atomically)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"

namespace ferry::store {

// --store if given, else $FERRY_HOME, else $HOME/.ferry.
std::string default_root(const std::optional<std::string>& cli_store);

struct JobRecord {
  std::string id;
  std::string name;                // may be empty
  uint32_t uid = 0;
  std::vector<std::string> argv;
  std::string cwd;
  int64_t created_ns = 0;
  std::string state;               // "running", "exited", "stopped", "failed"
  int32_t pid = 0;                 // the checkpointed process (launcher's pid namespace)
  int32_t supervisor_pid = 0;      // `ferry launch` / `ferry restart` serving control.sock
  int32_t exit_status = -1;        // wait status as 0..255 or 128+signal, when ended
  uint64_t run = 0;                // 1: the launch; each restart attempt adds one
  std::string restart_failure;     // why the newest restart attempt failed; empty: it did not
  std::string restart_failure_phase;  // "validate" (nothing was started) or "restore"
  uint64_t restored_from = 0;      // generation the current incarnation was restored from
  std::string coordinator;         // host:port of the coordinator running it; empty: a local job
};

class JobStore {
public:
  static Result<JobStore> open(const std::string& root);  // creates root (mode 0700)

  const std::string& root() const noexcept { return root_; }
  std::string job_dir(const std::string& id) const;
  std::string control_socket(const std::string& id) const;

  // Allocates the next numeric id and creates the job's directory.
  Result<JobRecord> create_job(const std::string& name, const std::vector<std::string>& argv);
  // JOB is an id or a name. errc::not_found names what was looked for.
  Result<JobRecord> find(const std::string& job) const;
  Result<void> save(const JobRecord& job) const;

  // Committed generations of a job, ascending.
  Result<std::vector<uint64_t>> generations(const std::string& id) const;
  std::string generation_dir(const std::string& id, uint64_t gen) const;
  // Creates gen-NNNNNN.partial for the next generation number (after every committed and
  // partial one) and removes partial directories left by killed checkpoints.
  Result<std::pair<uint64_t, std::string>> begin_generation(const std::string& id) const;
  // Renames the partial directory to its final name and fsyncs the job directory.
  Result<std::string> commit_generation(const std::string& id, uint64_t gen) const;
  void abandon_generation(const std::string& id, uint64_t gen) const;
  // Removes gen-*.partial directories left by killed checkpoints. Only while no checkpoint
  // of the job can be running (begin_generation, restart).
  void remove_partials(const std::string& id) const;
  // Retention: removes every committed generation but the newest `keep` and the earlier ones
  // those need (MANIFEST.json "needs", followed transitively: an incremental generation's
  // chain). Removes nothing when a kept generation's manifest cannot be read (its needs are
  // unknown). A removed generation is first renamed to gen-N.partial, so a crash mid-way
  // never leaves a half-deleted committed generation. Returns the removed generations.
  Result<std::vector<uint64_t>> prune_generations(const std::string& id, uint32_t keep) const;

private:
  explicit JobStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

// True while the job's supervisor process is alive.
bool supervisor_alive(const JobRecord& job);

}  // namespace ferry::store
