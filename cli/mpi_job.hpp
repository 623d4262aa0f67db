// SPDX-License-Identifier: Apache-2.0
// MPI jobs (`ferry mpirun`) as ferry jobs: their runs and outcome records, so that `ferry
// restart`, `ferry wait` and `ferry status` treat them like other jobs (docs/mpi.md).
//
// Every `ferry mpirun` (launch or restart) is one *run* of the job, numbered 1, 2, ... in
// STORE/jobs/ID/mpi-runs/N/. Its proxies write there (mpi/proxy/main.cpp): rank-R.host (the
// rank's node) at start, and rank-R.event when the rank ends, one line
// "TIME_NS NODE KIND VALUE [REASON]", KIND = exited STATUS | signaled SIGNAL | aborted CODE |
// restart_failed PHASE REASON. Once mpirun has exited, `ferry mpirun` folds the events into the
// run's outcome, with the fields and vocabulary of a coordinator restart record
// (protocol/PROTOCOL.md "ferry wait"; restart_id = the run number), and writes it to
// record.json. Folding: a rank whose restore failed makes the run restart_failed (the earliest
// such event, naming phase, rank, node and reason); otherwise the earliest abnormal event is the
// application's outcome (ranks killed because of it end later): signaled SIGNAL, or exited CODE
// (MPI_Abort: reason "MPI_Abort"), or a non-zero exit; else exited 0. With no event at all, the
// outcome comes from mpirun's status (a rank lost without a report: signaled, reason says so).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "ferry/proto/messages.hpp"
#include "job_store.hpp"

namespace ferry::cli::mpi_job {

bool is_mpi_job(const store::JobStore& store, const std::string& id);
std::string runs_dir(const store::JobStore& store, const std::string& id);
// Creates the next run directory: {number, path}.
Result<std::pair<std::uint64_t, std::string>> begin_run(const store::JobStore& store, const std::string& id);
// Run numbers present, ascending.
std::vector<std::uint64_t> runs(const store::JobStore& store, const std::string& id);
std::string run_dir(const store::JobStore& store, const std::string& id, std::uint64_t run);

// rank -> node of the ranks that started in a run (from rank-R.host).
std::vector<std::string> rank_nodes(const std::string& run_dir, std::uint32_t ntasks);

// The outcome of a finished run. `mpirun_status`: mpirun's exit status (0..255) if known;
// `stopped_generation`: the run ended by `ferry checkpoint --stop` of that generation.
proto::RestartRecordWire fold_run(const std::string& run_dir, std::uint64_t run, const std::string& job,
                                  std::optional<int> mpirun_status, std::optional<std::uint64_t> stopped_generation);
Result<void> write_record(const std::string& run_dir, const proto::RestartRecordWire& record);
std::optional<proto::RestartRecordWire> read_record(const std::string& run_dir);
// The record of a run: its record.json, or (run still going) running, or (its `ferry mpirun`
// is gone without writing one) folded from the events with reason saying so.
proto::RestartRecordWire current_record(const store::JobStore& store, const store::JobRecord& job, std::uint64_t run);

// `ferry wait JOB` for an MPI job: waits for the newest run's record (timeout_s 0: forever).
int wait(const store::JobStore& store, const store::JobRecord& job, bool json, double timeout_s);

// Where a restart puts the ranks (ferry restart's placement options), applied to mpirun options.
struct Placement {
  std::optional<std::string> nodes;     // "n1,n2,..." or a count
  std::optional<std::string> host;      // mpirun --host value
  std::optional<std::string> hostfile;  // mpirun --hostfile value
  bool any() const { return nodes || host || hostfile; }
};
// The saved mpirun options with their host options replaced as `placement` says, for `ntasks`
// ranks. Errors name the problem (errc::usage).
Result<Args> apply_placement(const Args& saved, const Placement& placement, std::uint32_t ntasks);

// A `ferry mpirun` front end run (cmd_mpirun.cpp).
struct MpiRun {
  std::optional<std::string> store, name, restart;
  std::optional<std::uint64_t> generation;
  Args mpirun_opts;     // ferry mpirun: given options (on --restart they replace the saved ones)
  Placement placement;  // ferry restart: replaces only the saved host options
  Args program;
  bool json = false;    // print the run's record as JSON on stdout at the end
  bool wait_status = false;  // exit as `ferry wait` would (restart_failed -> 86 + stderr line)
};
int run_mpi_job(MpiRun run);

}  // namespace ferry::cli::mpi_job
