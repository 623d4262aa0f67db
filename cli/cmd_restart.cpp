// SPDX-License-Identifier: Apache-2.0
// `ferry restart JOB [--generation N] [--lazy]`: validate the image completely (nothing is created when
// a check fails; with --lazy the chunk checksums are checked as the pages are read), then restore the process (or the process tree: every image of the manifest)
// with its old pids and tids in a fresh PID namespace below this command and supervise it like
// `ferry launch` does, exiting with its status. An MPI job (mpi.json in its directory) is
// restarted by `ferry mpirun`'s front end instead (mpi_job.hpp: --nodes/--host/--hostfile
// replace the saved placement), exiting as `ferry wait` would on that run's record.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "cluster_commands.hpp"
#include "commands.hpp"
#include "coordinator_client.hpp"
#include "exit_status.hpp"
#include "ferry/image/chain.hpp"
#include "ferry/image/reader.hpp"
#include "generation_lookup.hpp"
#include "job_store.hpp"
#include "launch/pid_namespace.hpp"
#include "launch/user_namespace.hpp"
#include "mpi_job.hpp"
#include "options.hpp"
#include "restore/lazy_pages.hpp"
#include "restore/restore.hpp"
#include "restore/time_namespace.hpp"
#include "supervisor.hpp"

namespace ferry::cli {

namespace {

// A job-record write on a thread of its own; join() (or the destructor) waits for it.
class BackgroundSave {
public:
  BackgroundSave() = default;
  BackgroundSave(const BackgroundSave&) = delete;
  BackgroundSave& operator=(const BackgroundSave&) = delete;
  ~BackgroundSave() { (void)join(); }
  void start(std::function<Result<void>()> save) {
    thread_ = std::thread([this, save = std::move(save)] { result_ = save(); });
  }
  Result<void> join() {
    if (thread_.joinable()) thread_.join();
    return result_;
  }

private:
  std::thread thread_;
  Result<void> result_;
};

// True when job_arg names an MPI job of the local store.
bool mpi_job_named(const po::variables_map& vm, const std::string& job_arg) {
  auto root = store::default_root(opt<std::string>(vm, "store"));
  if (::access((root + "/jobs").c_str(), F_OK) != 0) return false;
  auto store = store::JobStore::open(root);
  if (!store) return false;
  auto job = store->find(job_arg);
  return job && mpi_job::is_mpi_job(*store, job->id);
}

// An MPI job of the local store: restarted through `ferry mpirun`'s front end.
std::optional<int> restart_if_mpi_job(const po::variables_map& vm, const std::string& job_arg) {
  auto root = store::default_root(opt<std::string>(vm, "store"));
  if (::access((root + "/jobs").c_str(), F_OK) != 0) return std::nullopt;
  auto store = store::JobStore::open(root);
  if (!store) return std::nullopt;
  auto job = store->find(job_arg);
  if (!job || !mpi_job::is_mpi_job(*store, job->id)) return std::nullopt;
  if (vm.count("detach")) {
    complain("restart: --detach is not supported for MPI jobs yet (run 'ferry restart " + job_arg + " &' and 'ferry wait')");
    return kExitUsage;
  }
  mpi_job::MpiRun run;
  run.store = opt<std::string>(vm, "store");
  run.restart = job->id;
  run.generation = opt<uint64_t>(vm, "generation");
  run.placement.nodes = opt<std::string>(vm, "nodes");
  run.placement.host = opt<std::string>(vm, "host");
  run.placement.hostfile = opt<std::string>(vm, "hostfile");
  run.json = vm.count("json") > 0;
  run.wait_status = true;
  return mpi_job::run_mpi_job(std::move(run));
}

}  // namespace

int cmd_restart(const Args& args) {
  const auto started = std::chrono::steady_clock::now();
  po::options_description opts("ferry restart [--store DIR] JOB [--generation N]");
  opts.add_options()("help,h", "show this help")("store", po::value<std::string>(), "job store directory")(
      "generation", po::value<uint64_t>(), "restore this generation instead of the newest")(
      "job", po::value<std::string>(), "job id or name")(
      "nodes", po::value<std::string>(), "cluster or MPI job: restore the ranks on these nodes (n1,n2; MPI: or a count)")(
      "host", po::value<std::string>(), "MPI job: mpirun --host list (h1:slots,h2:slots)")(
      "hostfile", po::value<std::string>(), "MPI job: mpirun --hostfile")(
      "detach", "cluster job: print the restart id and return once the restart is under way")(
      "lazy", "resume the program at once; its memory is streamed in behind (FERRY_RESTORE_LAZY=1 too)")(
      "json", "cluster job: print the final record as JSON (as ferry wait --json)")(
      "coordinator", po::value<std::string>(), "coordinator HOST:PORT (default: the job's, or $FERRY_COORDINATOR)");
  po::positional_options_description pos;
  pos.add("job", 1);
  po::variables_map vm;
  if (!parse("restart", args, opts, pos, vm)) return kExitUsage;
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  auto job_arg = opt<std::string>(vm, "job");
  if (!job_arg) {
    complain("restart: no job given");
    return kExitUsage;
  }
  if (vm.count("lazy") && (mpi_job_named(vm, *job_arg) ||
                           coordinator_for(opt<std::string>(vm, "coordinator"),
                                           store::default_root(opt<std::string>(vm, "store")), *job_arg)))
    complain("warning: --lazy is for local single-process jobs: the ranks of job " + *job_arg + " restart eagerly");
  if (auto mpi = restart_if_mpi_job(vm, *job_arg)) return *mpi;
  if (vm.count("host") || vm.count("hostfile")) {
    complain("restart: --host/--hostfile are for MPI jobs (job " + *job_arg + " was not started by 'ferry mpirun')");
    return kExitUsage;
  }
  if (auto address = coordinator_for(opt<std::string>(vm, "coordinator"),
                                     store::default_root(opt<std::string>(vm, "store")), *job_arg)) {
    ClusterRestart r;
    r.address = *address;
    r.job = *job_arg;
    r.generation = opt<uint64_t>(vm, "generation").value_or(0);
    if (vm.count("nodes")) r.nodes = split_nodes(vm["nodes"].as<std::string>());
    r.detach = vm.count("detach") > 0;
    r.json = vm.count("json") > 0;
    return cluster_restart(r);
  }
  if (vm.count("nodes") || vm.count("detach")) {
    complain("restart: --nodes/--detach are for cluster jobs (job " + *job_arg + " has no coordinator)");
    return kExitUsage;
  }
  auto store = store::JobStore::open(store::default_root(opt<std::string>(vm, "store")));
  if (!store) {
    complain("restart: " + store.error().message());
    return exit_status_for(store.error());
  }
  auto job = store->find(*job_arg);
  if (!job) {
    complain("restart: " + job.error().message());
    return exit_status_for(job.error());
  }
  auto refuse = [&](const Error& e) {
    complain("restart job " + job->id + " refused: " + e.message());
    return exit_status_for(e);
  };
  if (job->uid != ::getuid() && ::getuid() != 0)
    return refuse(Error(errc::permission, "the job belongs to uid " + std::to_string(job->uid)));
  if (job->state == "running" && store::supervisor_alive(*job))
    return refuse(Error(errc::busy, "it is still running (pid " + std::to_string(job->pid) +
                                        "); stop it first with 'ferry checkpoint " + job->id + " --stop'"));

  // From here every failed attempt is recorded in the job (a new run number with the reason),
  // so that `ferry wait JOB` tells a failed restart (86) from the application's own status.
  const store::JobRecord before = *job;
  auto record_failure = [&](const Error& e, const char* phase) {
    store::JobRecord failed = before;
    failed.run = before.run + 1;
    failed.restart_failure = e.message();
    failed.restart_failure_phase = phase;
    (void)store->save(failed);
  };
  auto refuse_invalid = [&](const Error& e) {  // nothing was started or changed
    record_failure(e, "validate");
    return refuse(e);
  };
  restore::RestoreOptions ropts;
  // FERRY_RESTORE_TRACE=1: the restore's steps on stderr, with the time since the command started.
  if (const char* tr = std::getenv("FERRY_RESTORE_TRACE"); tr && std::string(tr) == "1") {
    ropts.log = [started](const std::string& line) {
      std::chrono::duration<double> d = std::chrono::steady_clock::now() - started;
      std::cerr << "ferry: [" + std::to_string(d.count()) + " s] " + line + "\n";
    };
  }
  auto gen = find_generation(*store, *job, opt<uint64_t>(vm, "generation"));
  if (!gen) return refuse_invalid(gen.error());
  auto reader = image::open_image_chain(gen->image_path);  // an incremental image: with its bases
  if (!reader) return refuse_invalid(reader.error());
  if (ropts.log) ropts.log("restart: image opened (" + std::to_string((*reader)->image().bases.size()) + " earlier images)");
  // One image: its chunks are checked while the child is filled (read once, still before the
  // point of no return and before any file is touched); a tree's images are checked here.
  ropts.checksums_while_filling = gen->manifest.images.size() <= 1;
  if (auto v = restore::validate_for_restore(**reader, ropts); !v) return refuse_invalid(v.error());
  if (ropts.log) ropts.log("restart: image validated");
  // A process tree: every other process's image (manifest order: parents before children).
  std::vector<std::unique_ptr<image::ImageReader>> others;
  std::vector<restore::TreeProcess> tree;
  if (gen->manifest.images.size() > 1) {
    for (size_t i = 0; i < gen->manifest.images.size(); ++i) {
      const auto& mi = gen->manifest.images[i];
      image::ImageSource* src = reader->get();
      if (i > 0) {
        auto r = image::ImageReader::open(gen->dir + "/" + mi.file);
        if (!r) return refuse_invalid(r.error());
        if (auto v = restore::validate_for_restore(**r, ropts); !v) return refuse_invalid(v.error().wrap(mi.file));
        others.push_back(std::move(*r));
        src = others.back().get();
      }
      tree.push_back({src, mi.pid, mi.ppid, mi.pgid, mi.sid, mi.shared_fds});
    }
  }

  job->restored_from = gen->generation;
  job->run = before.run + 1;
  Supervisor sup(*store, *job);
  if (auto r = sup.listen(); !r) return refuse(r.error());
  // From here this command owns the job: leftovers of killed checkpoints go, and the record
  // says "restarting" (so `ferry checkpoint` waits for the restored process rather than
  // acting on the old pid) until the supervisor records the new pid.
  store->remove_partials(job->id);
  // The record is written (and fsynced: 0.1 s on a busy disk) while the restore runs; the
  // restore waits for it before its point of no return (RestoreOptions::before_ponr), and so
  // does every other write of the record here.
  BackgroundSave claim;
  {
    store::JobRecord restarting = *job;
    restarting.state = "restarting";
    restarting.pid = 0;
    restarting.supervisor_pid = ::getpid();
    claim.start([&st = *store, restarting] { return st.save(restarting); });
  }
  ropts.before_ponr = [&claim] { return claim.join(); };
  // A failure from here gives the job back: its record as before, plus why this attempt failed.
  auto unclaim = [&](const Error& e) {
    (void)claim.join();
    record_failure(e, "restore");
  };
  ropts.validate = false;  // done above, before the supervisor was set up
  // A fresh PID namespace (ferry init as PID 1) in which the process and its threads get
  // their old ids back, and a time namespace (monotonic clocks continue from the
  // checkpoint). As root we make the time namespace first, so that init and everything it
  // creates start in it; a non-root user's is made by init inside the job's user namespace.
  // Where no PID namespace can be had, the process is our child with new ids (a warning).
  const image::ProcessImage& root_image = (*reader)->image();
  const bool own_user_ns = !launch::can_own_pid_namespace();
  launch::NamespaceOptions nsopt;
  if (!own_user_ns) {
    if (auto t = restore::prepare_time_namespace(root_image); !t) {
      unclaim(t.error());
      return refuse(t.error());
    }
  } else if (auto off = restore::time_offsets_for(root_image)) {
    nsopt.time_offsets = off->text();
  }
  auto ns = launch::PidNamespace::create(nullptr, nsopt);
  if (!ns && !ns.error().is(errc::unsupported)) {
    unclaim(ns.error());
    return refuse(ns.error());
  }
  Result<void> clocks;
  if (!ns) {
    complain("warning: job " + job->id + " restarts without its own PID namespace, so it gets new process and " +
             "thread ids (" + ns.error().message() + ")");
    if (own_user_ns) {
      auto t = restore::prepare_time_namespace(root_image);  // refused here: fine unless clocks go back
      if (!t) clocks = fail(t.error());
    }
  } else if (const auto& why = (*ns)->time_namespace_error(); !why.empty()) {
    if (auto off = restore::time_offsets_for(root_image))
      clocks = restore::check_without_time_namespace(*off, Error(errc::unsupported, why));
  }
  if (!clocks) {
    unclaim(clocks.error());
    return refuse(clocks.error());
  }
  if (ns) {
    ropts.spawner = ns->get();
    ropts.same_tids = true;
  }
  // Lazy restore (docs/user-guide.md): one process, in its own PID namespace (whose init is
  // killed if this command dies while pages are still missing).
  restore::LazyPages lazy;
  const char* lazy_env = std::getenv("FERRY_RESTORE_LAZY");
  const bool want_lazy = vm.count("lazy") > 0 || (lazy_env && std::string(lazy_env) == "1");
  if (want_lazy) {
    if (!tree.empty()) {
      complain("warning: job " + job->id + " is a process tree: lazy restore is for one process, restoring eagerly");
    } else if (!ns) {
      complain("warning: job " + job->id + " restarts without a PID namespace: restoring eagerly, not lazily");
    } else if (auto k = lazy.kill_on_failure((*ns)->init_pid()); !k) {
      complain("warning: lazy restore not possible (" + k.error().message() + "): restoring eagerly");
    } else {
      lazy.set_report([](const std::string& line) { std::cerr << "ferry: " + line + "\n"; });
      ropts.lazy = &lazy;
    }
  }
  auto pid = tree.empty() ? restore::restore_process(**reader, ropts) : restore::restore_tree(tree, ropts);
  if (!pid) {
    complain("restart job " + job->id + " from generation " + std::to_string(gen->generation) +
             " failed: " + pid.error().message());
    unclaim(pid.error());
    return exit_status_for(pid.error());  // ~PidNamespace ends init and the namespace
  }
  if (auto r = claim.join(); !r) return refuse(r.error());  // joined before the PONR: its result
  tree.clear();
  others.clear();
  if (want_lazy && !lazy.lazy() && ropts.lazy)
    complain("warning: job " + job->id + " was restored eagerly, not lazily: " + lazy.why_not());
  if (!lazy.lazy()) reader->reset();  // release the image files while the job runs (lazy: after the fill)
  std::cerr << "ferry: job " << job->id << " restarted from generation " << gen->generation << " (pid " << *pid
            << ")\n";
  if (!ns) return sup.run(*pid);
  (*ns)->release();  // the supervisor waits for init from now on
  if (lazy.lazy()) sup.set_lazy(&lazy);
  return sup.run((*ns)->init_pid(), *pid);
}

}  // namespace ferry::cli
