// SPDX-License-Identifier: Apache-2.0
// Starting a rank supervisor (`ferry rank-launch` / `ferry rank-restore`, cli/cmd_rank.cpp)
// for one rank: what to run (pure functions of the coordinator's message, unit-tested), and
// the fork/exec that runs it as the job's user.
//
// The child, between fork and exec (only async-signal-safe calls): setsid; supplementary
// groups cleared, setgid, setuid (privileges dropped before anything is opened); chdir to the
// job's cwd; stdin /dev/null; stdout/stderr STORE/jobs/<id>/rank-<R>.out/.err opened
// O_WRONLY|O_APPEND|O_CREAT as the user (a restart truncates them back to the checkpoint's
// size, so output is exactly-once); fd 3 the status pipe (cli/cmd_rank.cpp's status lines);
// fd 5 the read end of the agent's liveness pipe (EOF once the agent is gone: the supervisor
// then resumes a frozen rank); signal mask and SIGPIPE back to default; execve. A failure before exec comes back through a
// close-on-exec pipe as {step, errno}.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/common/unique_fd.hpp"
#include "ferry/proto/messages.hpp"

namespace ferry::agent {

struct SpawnSpec {
  std::string exe;                  // absolute path of `ferry`
  std::vector<std::string> argv;    // argv[0] included
  std::vector<std::string> env;     // the complete environment
  std::string cwd;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string stdout_path, stderr_path;
  int agent_fd = -1;  // read end of the agent's liveness pipe: fd 5 in the child (--agent-fd 5)
  // The child gets SIGTERM when the agent dies (PR_SET_PDEATHSIG; the agent is one thread): for
  // mpirun, which nothing could supervise, checkpoint or report on without its agent.
  bool end_with_agent = false;
};

// Where a job's files live in the shared store (see agent/README.md).
struct StorePaths {
  std::string root;  // the store (absolute)
  std::string job_dir(const std::string& job) const { return root + "/jobs/" + job; }
  std::string rank_file(const std::string& job, std::uint32_t rank, const char* ext) const {
    return job_dir(job) + "/rank-" + std::to_string(rank) + ext;
  }
  std::string control_socket(const std::string& job, std::uint32_t rank) const {
    return rank_file(job, rank, ".sock");
  }
};

// `ferry rank-launch ... -- ARGV` for one rank of LAUNCH_RANKS. The environment is the
// message's with FERRY_RANK, FERRY_NTASKS and FERRY_JOB set (replacing any given).
SpawnSpec rank_launch_spec(const std::string& ferry, const StorePaths& store, const proto::LaunchRanks& m,
                           std::uint32_t rank);
// `ferry rank-restore ... --dir GENERATION_DIR/rank-R` for one rank of RESTORE_RANKS.
SpawnSpec rank_restore_spec(const std::string& ferry, const StorePaths& store, const proto::RestoreRanks& m,
                            std::uint32_t rank);

struct SpawnedRank {
  pid_t pid = -1;     // the rank supervisor, our child
  UniqueFd status;    // read end of its status pipe
  UniqueFd pidfd;     // readable once it has exited
};

// Forks and execs spec (see the top of this file). Fails, with nothing left running, when
// fork, pidfd_open or any step in the child before exec fails (the step is named).
Result<SpawnedRank> spawn_rank(const SpawnSpec& spec);

// Makes `dir` (and missing parents) exist; directories this call creates are chowned to
// uid:gid, so the job's user can write into them.
Result<void> make_dirs_owned(const std::string& dir, uid_t uid, gid_t gid);

}  // namespace ferry::agent
