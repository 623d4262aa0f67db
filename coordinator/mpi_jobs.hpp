// SPDX-License-Identifier: Apache-2.0
// MPI jobs driven by the coordinator (docs/mpi.md "Through the coordinator"), the parts
// without I/O: what a job was launched with (saved as STORE/jobs/<id>/mpi-launch.json, the
// input of every restart), the placement (ranks in contiguous blocks over nodes, as mpirun's
// --host h1:k1,h2:k2 fills them), the launcher's command line, the proxies' outcome events
// (rank-R.event files, sent as MPI_RUN_ENDED) and their folding into the incarnation's record,
// shared with `ferry mpirun` alone (cli/mpi_job.cpp).
//
// Folding (the rules of `ferry mpirun` alone, cli/mpi_job.hpp): a rank whose restore failed
// makes the record restart_failed (the earliest, with its phase, rank, node, reason); a
// committed `checkpoint --stop` makes it exited 75; otherwise the earliest abnormal end is the
// application's outcome (the ranks mpirun kills because of it end later): signaled, MPI_Abort
// (exited CODE, reason "MPI_Abort") or a non-zero exit; else exited 0. With no event at all
// the launcher's status decides (a rank lost without a report; the reason says so).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/proto/messages.hpp"

namespace ferry::coord {

struct MpiLaunch {
  std::vector<std::string> program;
  std::vector<std::string> mpirun_options;  // the user's, host options and -np removed
  std::string proxy;                        // ferry-mpi-proxy
  std::string cwd;
  std::vector<std::string> env;
};
std::string to_json(const MpiLaunch& l);
Result<MpiLaunch> mpi_launch_from_json(const std::string& text);
// The user's options without those the placement decides (--host, -H, --hostfile, -np...).
std::vector<std::string> strip_placement_options(const std::vector<std::string>& opts);

// Nodes of a launch or restart -> (node, ranks) blocks in rank order. Entries are "NODE" (the
// ranks spread evenly, the first nodes getting one more) or all "NODE:COUNT" (counts summing
// to ntasks; a count of 0 leaves the node out). Errors name the problem.
Result<std::vector<std::pair<std::string, std::uint32_t>>> mpi_blocks(const std::vector<std::string>& nodes,
                                                                      std::uint32_t ntasks);
// rank -> node of those blocks.
std::map<std::uint32_t, std::string> mpi_placement(const std::vector<std::pair<std::string, std::uint32_t>>& blocks);

// `MPIRUN OPTIONS -np N --host H1:K1,... -x FERRY_MPI_STORE -x FERRY_MPI_JOB -x FERRY_CLI_PATH
// PROXY [--restore DIR] -- PROGRAM`; hosts: node -> its name for mpirun (AGENT_REGISTER
// hostname). The launcher is $MPIRUN of the job's environment, else "mpirun".
std::vector<std::string> mpi_command(const MpiLaunch& l, const std::vector<std::pair<std::string, std::uint32_t>>& blocks,
                                     const std::map<std::string, std::string>& hosts, std::uint32_t ntasks,
                                     const std::string& restore_dir);

// "TIME_NS NODE KIND VALUE [REASON]" (a proxy's rank-R.event, mpi/proxy/main.cpp) of rank
// `rank` -> its end; nullopt if malformed.
std::optional<proto::MpiRankEnd> parse_mpi_event(std::uint32_t rank, const std::string& line);
// Every rank-K.event of a run directory, earliest first (read by the head agent for
// MPI_RUN_ENDED and by `ferry mpirun` without a coordinator: both fold them with fold_mpi_run).
std::vector<proto::MpiRankEnd> read_mpi_events(const std::string& run_dir);

// The record of a finished MPI incarnation (see the top of this file). `placement` names each
// rank's node when known (else the node its event names).
proto::RestartRecordWire fold_mpi_run(std::uint64_t restart_id, const std::string& job,
                                      const std::map<std::uint32_t, std::string>& placement, const proto::MpiRunEnded& m,
                                      std::optional<std::uint64_t> stopped_generation);

}  // namespace ferry::coord
