// SPDX-License-Identifier: Apache-2.0
// The coordinator's persistent state in one SQLite file: jobs, nodes, generations, the
// in-flight checkpoint round of each job, and restart records (what `ferry wait` reports).
// Every mutation is one transaction; kill -9 at any moment leaves the last committed state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/proto/messages.hpp"

struct sqlite3;

namespace ferry::coord {

struct JobRow {
  std::string id;                   // "1", "2", ...: given, or assigned by create_job
  std::string name;                 // may be empty; unique per owner when set
  std::uint32_t owner_uid = 0;
  std::uint32_t owner_gid = 0;
  std::vector<std::string> argv;
  std::string cwd;
  std::uint32_t ntasks = 0;
  std::vector<std::string> nodes;   // rank r runs on nodes[r % nodes.size()] (the coordinator
                                    // stores one entry per rank: its current placement)
  std::string state = "running";   // running, stopped, exited, failed
  std::uint32_t interval_s = 0;
  std::uint32_t keep = 0;
  std::int64_t created_ns = 0;
};

struct NodeRow {
  std::string name;
  std::int64_t last_heartbeat_ns = 0;
};

struct GenerationRow {
  std::string job;
  std::uint64_t number = 0;
  std::int64_t time_ns = 0;         // when the round started
  std::uint64_t bytes = 0;
  std::uint64_t duration_ns = 0;
  bool committed = false;
};

// A checkpoint round between begin_round() and commit_generation()/abort_round(). A
// coordinator that finds one at start-up sends ABORT to `nodes` and removes the partial
// directory (unless the store shows the generation committed: then commit_generation()).
struct RoundRow {
  std::uint64_t round_id = 0;       // assigned by begin_round
  std::string job;
  std::uint64_t generation = 0;
  std::string generation_dir;
  std::vector<std::string> nodes;
  std::int64_t started_ns = 0;
};

struct RestartRow {
  std::uint64_t restart_id = 0;     // assigned by create_restart
  std::string job;
  std::uint64_t generation = 0;
  proto::Outcome outcome = proto::Outcome::running;
  std::optional<std::int32_t> exit_status;
  std::optional<std::int32_t> signal;
  std::optional<proto::RestartPhase> phase;  // while running: progress; if failed: where
  std::optional<std::uint32_t> rank;
  std::optional<std::string> node;
  std::optional<std::string> reason;
  std::int64_t started_ns = 0;
  std::optional<std::int64_t> ended_ns;
};

// How one rank of a restart ended (the job's exit record lists each rank).
struct RankExitRow {
  std::uint32_t rank = 0;
  std::string node;
  std::optional<std::int32_t> exit_status;
  std::optional<std::int32_t> signal;
  std::int64_t time_ns = 0;
};

// Owns one sqlite3 connection; move-only; not thread-safe (the coordinator's io_context
// thread owns it). Every method returns an Error naming the statement on failure.
class StateDb {
public:
  static constexpr int kSchemaVersion = 1;

  // Opens or creates path (mode 0600), enables WAL + synchronous=FULL + foreign keys, and
  // creates or checks the schema. A newer schema than kSchemaVersion is refused.
  static Result<StateDb> open(const std::string& path);
  StateDb(StateDb&& o) noexcept;
  StateDb& operator=(StateDb&& o) noexcept;
  StateDb(const StateDb&) = delete;
  StateDb& operator=(const StateDb&) = delete;
  ~StateDb();

  Result<int> schema_version();
  // Runs fn inside BEGIN IMMEDIATE ... COMMIT; rolls back if fn fails. Nestable: inside
  // another transaction it uses a savepoint, so the outer one commits or rolls back all.
  Result<void> transaction(const std::function<Result<void>()>& fn);

  // ---- jobs
  // Returns the job's id: job.id if set (a decimal id allocated by the shared store), else
  // a new one.
  Result<std::string> create_job(const JobRow& job);
  Result<JobRow> job(const std::string& id_or_name, std::optional<std::uint32_t> owner = {});
  Result<std::vector<JobRow>> jobs(std::optional<std::uint32_t> owner = {});
  Result<void> set_job_state(const std::string& id, const std::string& state);
  Result<void> set_job_nodes(const std::string& id, const std::vector<std::string>& nodes);
  // Deletes the job and its generations; restart records stay (ferry wait after deletion).
  Result<void> delete_job(const std::string& id);

  // ---- nodes
  Result<void> node_heartbeat(const std::string& name, std::int64_t now_ns);
  Result<std::vector<NodeRow>> nodes();

  // ---- generations and rounds
  // Next generation number of the job (after every committed or begun one).
  Result<std::uint64_t> next_generation(const std::string& job);
  // Records generation `round.generation` (uncommitted) and the in-flight round, atomically.
  // errc::busy if the job already has a round in flight.
  Result<RoundRow> begin_round(RoundRow round);
  // Marks the generation committed with its size and duration and ends the round.
  Result<void> commit_generation(const std::string& job, std::uint64_t generation,
                                 std::uint64_t bytes, std::uint64_t duration_ns);
  // Forgets the uncommitted generation and ends the round.
  Result<void> abort_round(const std::string& job, std::uint64_t generation);
  Result<std::vector<RoundRow>> rounds_in_flight();
  Result<std::vector<GenerationRow>> generations(const std::string& job, bool committed_only = true);
  Result<void> delete_generation(const std::string& job, std::uint64_t generation);

  // ---- restarts
  Result<std::uint64_t> create_restart(const std::string& job, std::uint64_t generation,
                                       std::int64_t now_ns);
  Result<void> set_restart_phase(std::uint64_t restart_id, proto::RestartPhase phase);
  // Stores a final outcome. errc::busy if the record is already final (outcomes never change)
  // and errc::not_found for an unknown id.
  Result<void> finish_restart(const RestartRow& final_row);
  Result<void> record_rank_exit(std::uint64_t restart_id, const RankExitRow& exit);
  Result<RestartRow> restart(std::uint64_t restart_id);
  Result<std::vector<RestartRow>> restarts(const std::string& job);
  Result<std::vector<RankExitRow>> rank_exits(std::uint64_t restart_id);

  sqlite3* handle() noexcept { return db_; }  // for tests (integrity_check)

private:
  explicit StateDb(sqlite3* db) : db_(db) {}
  Result<void> migrate();
  sqlite3* db_ = nullptr;
};

}  // namespace ferry::coord
