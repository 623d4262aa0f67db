// SPDX-License-Identifier: Apache-2.0
// `ferry`: the command line. Dispatches to one subcommand per file (cmd_*.cpp).
#include <cstring>
#include <iostream>

#include "commands.hpp"
#include "ferry/common/huge_buffer.hpp"
#include "exit_status.hpp"

namespace {

const char* kUsage = R"(usage: ferry COMMAND [OPTIONS]

Commands:
  launch     [--store DIR] [--name NAME] [--keep-fd N]... -- PROGRAM [ARGS...]
             run PROGRAM under checkpoint control, in the foreground
  mpirun     [--store DIR] [--name NAME] [mpirun options] -- PROGRAM [ARGS...]
             run an Open MPI program, one ferry-mpi-proxy per rank (docs/mpi.md);
             --restart JOB [--generation N] [mpirun options]: restart it
  checkpoint [--store DIR] JOB [--stop]
             take a new generation of a running job (--stop: end it once committed)
  restart    [--store DIR] JOB [--generation N]
             restore the newest (or given) generation and run it in the foreground
  inspect    [--store DIR] [--json] [--generation N] IMAGE|JOB
             print and validate an image

Cluster jobs (through a coordinator: --coordinator HOST:PORT or FERRY_COORDINATOR):
  launch     --nodes n1,n2 --ntasks N [--interval 10m] [--keep K] [--detach] -- PROGRAM [ARGS...]
             run N ranks over the nodes' agents; wait for the job unless --detach
  checkpoint JOB [--stop]          a new generation of every rank (committed whole or not at all)
  restart    JOB [--generation N] [--nodes n1,n2] [--detach]
             restore every rank on these nodes; wait unless --detach (prints the restart id)
  wait       RESTART_ID [--json] [--timeout S]
             wait for a restart's outcome (exit: the job's status, 86 restart failed, 124 timeout)
  status     [JOB] [--json]        jobs, generations, restarts, nodes

Slurm (docs/slurm-user.md):
  slurm-run  [--store DIR] [--max-restart-failures N] -- PROGRAM [ARGS...]
             the batch script's step: launch, or restart on a requeued run; on SIGUSR1
             checkpoint, requeue and exit (exit 86: the restart failed)

JOB is a job id or the NAME given at launch. The store is --store, else $FERRY_HOME,
else ~/.ferry. Exit statuses: see docs/exit-status.md.
)";

}  // namespace

int main(int argc, char** argv) {
  ferry::use_huge_pages_for_heap();
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? ferry::cli::kExitUsage : 0;
  }
  std::string cmd = argv[1];
  ferry::cli::Args args(argv + 2, argv + argc);
  if (cmd == "launch") return ferry::cli::cmd_launch(args);
  if (cmd == "mpirun") return ferry::cli::cmd_mpirun(args);
  if (cmd == "checkpoint") return ferry::cli::cmd_checkpoint(args);
  if (cmd == "restart") return ferry::cli::cmd_restart(args);
  if (cmd == "inspect") return ferry::cli::cmd_inspect(args);
  if (cmd == "wait") return ferry::cli::cmd_wait(args);
  if (cmd == "status") return ferry::cli::cmd_status(args);
  if (cmd == "slurm-run") return ferry::cli::cmd_slurm_run(args);
  if (cmd == "rank-launch") return ferry::cli::cmd_rank_launch(args);  // hidden: ferry-agent's
  if (cmd == "rank-restore") return ferry::cli::cmd_rank_restore(args);
  if (cmd == "--version" || cmd == "version") {
    std::cout << "ferry " << FERRY_VERSION << "\n";
    return 0;
  }
  std::cerr << "ferry: unknown command '" << cmd << "'\n" << kUsage;
  return ferry::cli::kExitUsage;
}
