// SPDX-License-Identifier: Apache-2.0
// The `ferry` subcommands. Each takes its own arguments (after the subcommand name) and
// returns the process exit status.
#pragma once

#include <string>
#include <vector>

namespace ferry::cli {

using Args = std::vector<std::string>;

int cmd_launch(const Args& args);
int cmd_mpirun(const Args& args);  // cmd_mpirun.cpp: MPI jobs through ferry-mpi-proxy
int cmd_checkpoint(const Args& args);
int cmd_restart(const Args& args);
int cmd_inspect(const Args& args);
int cmd_wait(const Args& args);
int cmd_status(const Args& args);
int cmd_slurm_run(const Args& args);  // cmd_slurm.cpp: the step of a Slurm batch script
// Hidden: the rank supervisor that ferry-agent starts per rank (cmd_rank.cpp).
int cmd_rank_launch(const Args& args);
int cmd_rank_restore(const Args& args);

}  // namespace ferry::cli
