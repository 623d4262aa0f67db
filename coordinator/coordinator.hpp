// SPDX-License-Identifier: Apache-2.0
// The coordinator daemon's core: it authenticates every frame, keeps the jobs it drives
// (their current incarnation, in-flight checkpoint round and periodic-checkpoint timer),
// answers agents (coordinator.cpp) and users (user_requests.cpp), and recovers its state
// from the StateDb at start-up (recovery.cpp). Single-threaded: everything runs on one
// io_context. Owns the StateDb, the GenerationStore and the AgentRegistry.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent_registry.hpp"
#include "ferry/proto/auth.hpp"
#include "generation_store.hpp"
#include "incarnation.hpp"
#include "mpi_jobs.hpp"
#include "round_driver.hpp"
#include "session.hpp"
#include "state_db.hpp"

namespace ferry::coord {

struct CoordinatorConfig {
  std::string cluster_secret;                    // the secret itself (agents' HMAC key)
  std::optional<std::string> user_secret_dir;    // DIR/<uid> instead of ~user/.ferry/secret
  std::optional<std::string> own_user_secret;    // the secret of the uid we run as (embedded mode)
  std::chrono::milliseconds heartbeat{2000};
  std::chrono::milliseconds lost_after{10000};
  std::chrono::milliseconds prepare_timeout{10'000};
  std::chrono::milliseconds quiesce_timeout{30'000};
  std::chrono::milliseconds dump_timeout{30 * 60'000};
  std::chrono::milliseconds finish_timeout{30'000};
  // MPI jobs: how long a non-head node's agent may stay lost before the job counts its node as
  // down and ends (the ranks there belong to mpirun, not to that agent: they run on meanwhile).
  std::chrono::milliseconds node_down_after{60'000};
};

class Coordinator final : public SessionHandler {
public:
  Coordinator(boost::asio::io_context& io, CoordinatorConfig cfg, StateDb db, GenerationStore store);

  // host:port written into the job.json of the jobs it creates.
  void set_address(const std::string& address) { store_.set_coordinator(address); }
  // Aborts rounds a previous coordinator left in flight, reloads running jobs (recovery.cpp).
  Result<void> recover();
  // True while a job runs or a round, a WAIT or a foreground RESTART is pending (the
  // embedded coordinator does not exit when idle then).
  bool busy() const;

  void on_frame(const std::shared_ptr<Session>& s, const proto::Frame& frame, proto::AnyMessage&& msg) override;
  void on_closed(const std::shared_ptr<Session>& s, const std::string& why) override;

private:
  // Where a reply goes once it is ready (the CLI's connection and its request id).
  struct ReplyTo {
    std::weak_ptr<Session> session;
    std::uint64_t request_id = 0;
  };
  struct Waiter {
    ReplyTo to;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  struct Job {
    JobRow row;
    std::unique_ptr<Incarnation> inc;
    std::unique_ptr<RoundDriver> round;
    std::optional<ReplyTo> checkpoint_reply;  // the CHECKPOINT that started the round
    std::unique_ptr<boost::asio::steady_timer> interval;
    bool stop_committed = false;               // a stop round committed: exits mean "stopped"
    // An agent of the running job was lost: its ranks count as killed (SIGKILL) and the
    // surviving ranks are stopped so the job ends (once a round in flight has aborted).
    std::optional<std::string> ending;
    // An MPI job (mpi_jobs.cpp): its launcher runs on `head` (rank 0's node), which takes
    // every step of its rounds; `stopped_generation` is the generation of a committed stop.
    bool mpi = false;
    std::string head;
    std::optional<std::uint64_t> stopped_generation;
    // MPI: nodes of the running incarnation whose agent is lost (why, the lost agent's pid, and
    // the timer that declares the node down after node_down_after unless the agent registers
    // again). The head's agent is mpirun's parent: a head agent back with another pid means the
    // run ended with the old one (mpirun gets SIGTERM when its agent dies).
    struct AgentAway {
      std::string why;
      std::int32_t agent_pid = 0;  // 0: not known (registered with an earlier coordinator)
      std::unique_ptr<boost::asio::steady_timer> timer;
    };
    std::map<std::string, AgentAway> agents_away;
  };

  // ---- coordinator.cpp: agents
  void on_agent_message(const std::shared_ptr<Session>& s, const proto::Frame& f, proto::AnyMessage& msg);
  void on_agent_joined(const std::string& node);
  void on_agent_lost(const std::string& node, const std::string& why);
  void on_launch_result(const std::string& node, const proto::LaunchResult& m);
  void on_restore_result(const std::string& node, const proto::RestoreResult& m);
  void on_rank_exited(const std::string& node, const proto::RankExited& m);
  void on_mpi_run_ended(const std::string& node, const proto::MpiRunEnded& m);
  // mpi_requests.cpp: the agent of a non-head node of a running MPI job is lost: the job goes
  // on (Open MPI ends it if the node is really gone) unless the agent stays away too long.
  void on_mpi_agent_away(Job& job, const std::string& node, const std::string& why);
  // mpi_requests.cpp: the head's agent of a running MPI job is gone for good (not back in time, or
  // back as another process): mpirun went with it, so the record is written here, naming the head.
  void end_mpi_job_head_lost(Job& job);
  void on_round_reply(const std::string& node, const proto::RoundReply& m);
  void on_incarnation_final(Job& job);
  void stop_ranks(const Job& job, const std::string& why);
  // Stops the ranks on the nodes still alive (job.ending says why): a half-dead job ends.
  void end_half_dead_job(Job& job);
  template <class M>
  void send_to_agent(const std::string& node, const M& msg) {
    if (!agents_.send(node, proto::encode_signed(msg, next_request_id(), 0, cfg_.cluster_secret)))
      warn_unsent(msg.job, node, proto::name(M::kType));
  }
  template <class M>
  proto::Bytes signed_for_agent(const M& msg, std::uint64_t request_id);
  void warn_unsent(const std::string& job, const std::string& node, std::string_view what);

  // ---- user_requests.cpp: the CLI
  void on_user_request(const std::shared_ptr<Session>& s, const proto::Frame& f, proto::AnyMessage& msg);
  void on_launch_job(const ReplyTo& to, std::uint32_t uid, const proto::LaunchJob& m);
  // ---- mpi_requests.cpp: MPI jobs (launch, restart through the head agent)
  void on_launch_mpi_job(const ReplyTo& to, std::uint32_t uid, const proto::LaunchMpiJob& m);
  // RESTART of an MPI job (job.row and the restart record already set up by on_restart).
  void restart_mpi_job(const ReplyTo& to, Job& job, const proto::Restart& m, std::uint64_t gen);
  Result<MpiLaunch> load_mpi_launch(const std::string& job) const;
  // LAUNCH_MPI to the head node of the job's current incarnation.
  void send_mpi_launch(Job& job, const MpiLaunch& l, const std::vector<std::pair<std::string, std::uint32_t>>& blocks,
                       const std::string& restore_dir);
  void on_checkpoint(const ReplyTo& to, std::uint32_t uid, const proto::Checkpoint& m);
  void on_restart(const ReplyTo& to, std::uint32_t uid, const proto::Restart& m);
  // A restart's new incarnation of `job` from generation `gen` (MPI or not): its restart record,
  // the job running with that placement (state db and store), Incarnation in phase place.
  // Returns the restart id.
  Result<std::uint64_t> begin_incarnation(Job& job, std::uint64_t gen,
                                          const std::map<std::uint32_t, std::string>& placement);
  void on_wait(const ReplyTo& to, std::uint32_t uid, const proto::Wait& m);
  void on_status(const ReplyTo& to, std::uint32_t uid, const proto::Status& m);
  void on_delete(const ReplyTo& to, std::uint32_t uid, const proto::DeleteJob& m);
  // The job (loaded into jobs_ if needed) when uid may act on it; else the error to reply.
  Result<Job*> job_for(const std::string& id_or_name, std::uint32_t uid);
  void answer_waiters(std::uint64_t restart_id, const proto::RestartRecordWire& rec);

  // ---- rounds.cpp: checkpoints, retention, periodic timer
  Result<void> start_round(Job& job, RoundMode mode, std::optional<ReplyTo> reply_to, std::uint32_t timeout_ms = 0);
  void on_round_finished(const std::string& job_id, RoundOutcome outcome);
  void apply_retention(Job& job);
  void arm_interval(Job& job);

  template <class M>
  void reply(const ReplyTo& to, const M& msg) {
    if (auto s = to.session.lock()) s->send(proto::encode(msg, to.request_id));
  }
  std::uint64_t next_request_id() { return next_request_id_++; }

  boost::asio::io_context& io_;
  CoordinatorConfig cfg_;
  StateDb db_;
  GenerationStore store_;
  AgentRegistry agents_;
  proto::AuthChecker auth_;
  std::map<std::string, Job> jobs_;                   // by job id; running ones, loaded on use
  std::multimap<std::uint64_t, Waiter> waiters_;       // restart id -> WAITs
  std::map<std::uint64_t, ReplyTo> restart_replies_;  // restart id -> RESTART without --detach
  std::map<std::string, std::vector<proto::RoundStep>> pending_aborts_;  // node -> ABORTs
  std::uint64_t next_request_id_ = 1;
  std::map<std::string, std::int32_t> agent_pids_;  // node -> pid its agent registered with
  std::map<std::string, std::string> mpi_hosts_;  // node -> its name in mpirun's --host (AGENT_REGISTER hostname)
};

}  // namespace ferry::coord
