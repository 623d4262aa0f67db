// SPDX-License-Identifier: Apache-2.0
// Every ferry protocol message as a plain struct. The FERRY_PROTO_FIELDS list of a struct IS
// its wire schema: fields are encoded in that order with the primitives of wire.hpp. Change
// a list only together with PROTOCOL.md, kVersion and the golden tests (protocol_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::proto {

// Declares the ordered wire fields of a message or record (used by codec.hpp for both
// encoding and decoding, so the two can never disagree on the order).
#define FERRY_PROTO_FIELDS(...)                          \
  template <class V>                                     \
  void fields(V& v) {                                    \
    v(__VA_ARGS__);                                      \
  }                                                      \
  template <class V>                                     \
  void fields(V& v) const {                              \
    v(__VA_ARGS__);                                      \
  }

// clang-format off
enum class MsgType : std::uint16_t {
  ack                  = 0x0001,  // generic reply: code + message
  // agent <-> coordinator
  agent_register       = 0x0101,
  agent_register_reply = 0x0102,
  heartbeat            = 0x0103,
  launch_ranks         = 0x0110,
  launch_result        = 0x0111,
  round_step           = 0x0120,
  round_reply          = 0x0121,
  restore_ranks        = 0x0130,
  restore_result       = 0x0131,
  rank_exited          = 0x0140,
  launch_mpi           = 0x0112,  // MPI job: the head agent runs the launcher (mpirun)
  mpi_run_ended        = 0x0141,  // MPI job: the launcher ended; every rank's end
  // CLI <-> coordinator
  launch_job           = 0x0201,
  launch_job_reply     = 0x0202,
  checkpoint           = 0x0203,
  checkpoint_reply     = 0x0204,
  restart              = 0x0205,
  restart_reply        = 0x0206,
  wait                 = 0x0207,
  wait_reply           = 0x0208,
  status               = 0x0209,
  status_reply         = 0x020A,
  delete_job           = 0x020B,
  launch_mpi_job       = 0x020D,  // reply: launch_job_reply
};

// Phases of a checkpoint round, in order (abort may follow any phase before commit).
enum class RoundPhase : std::uint8_t { prepare = 1, quiesce = 2, dump = 3, commit = 4,
                                       resume = 5, stop = 6, abort = 7 };
// Phases of a restart, in order; a restart_failed outcome names one of them.
enum class RestartPhase : std::uint8_t { place = 1, validate = 2, restore = 3, resume = 4 };
// Outcome of a restart record; running is the only non-final one.
enum class Outcome : std::uint8_t { running = 0, restart_failed = 1, exited = 2, signaled = 3 };
enum class AuthScheme : std::uint8_t { none = 0, munge = 1, hmac_sha256 = 2 };
// clang-format on

// Range checks used by the decoder: an out-of-range enum byte is a malformed message.
constexpr bool wire_valid(RoundPhase p) { return p >= RoundPhase::prepare && p <= RoundPhase::abort; }
constexpr bool wire_valid(RestartPhase p) { return p >= RestartPhase::place && p <= RestartPhase::resume; }
constexpr bool wire_valid(Outcome o) { return o <= Outcome::signaled; }
constexpr bool wire_valid(AuthScheme s) { return s <= AuthScheme::hmac_sha256; }

std::string_view name(MsgType t);      // "ROUND_STEP"; "UNKNOWN" for others
bool known(MsgType t);
std::string_view name(RoundPhase p);   // "prepare"
std::string_view name(RestartPhase p); // "validate"
std::string_view name(Outcome o);      // "restart_failed"

// ---- generic ---------------------------------------------------------------------------

struct Ack {
  static constexpr MsgType kType = MsgType::ack;
  std::uint16_t code = 0;  // 0 = ok; see status.hpp
  std::string message;
  FERRY_PROTO_FIELDS(code, message)
  bool operator==(const Ack&) const = default;
};

// ---- agent <-> coordinator -------------------------------------------------------------

struct AgentRegister {  // agent -> coordinator, first message of a connection
  static constexpr MsgType kType = MsgType::agent_register;
  std::string node;      // name used in placements ("n1"); unique in the cluster
  std::string hostname;
  std::uint32_t cpus = 0;
  std::int32_t agent_pid = 0;
  std::string build;     // ferry version of the agent, for the log
  FERRY_PROTO_FIELDS(node, hostname, cpus, agent_pid, build)
  bool operator==(const AgentRegister&) const = default;
};

struct AgentRegisterReply {
  static constexpr MsgType kType = MsgType::agent_register_reply;
  std::uint16_t code = 0;
  std::string message;
  std::uint64_t session_id = 0;
  std::uint32_t heartbeat_interval_ms = 0;
  std::uint32_t lost_after_ms = 0;  // no heartbeat for this long: the agent is declared lost
  FERRY_PROTO_FIELDS(code, message, session_id, heartbeat_interval_ms, lost_after_ms)
  bool operator==(const AgentRegisterReply&) const = default;
};

struct Heartbeat {  // agent -> coordinator; reply: Ack (code not_registered: register again)
  static constexpr MsgType kType = MsgType::heartbeat;
  std::uint64_t session_id = 0;
  std::uint64_t seq = 0;
  std::uint32_t live_ranks = 0;
  FERRY_PROTO_FIELDS(session_id, seq, live_ranks)
  bool operator==(const Heartbeat&) const = default;
};

struct LaunchRanks {  // coordinator -> agent; reply: LaunchResult
  static constexpr MsgType kType = MsgType::launch_ranks;
  std::string job;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t ntasks = 0;               // FERRY_NTASKS
  std::vector<std::uint32_t> ranks;       // FERRY_RANK of each process to start on this node
  std::vector<std::string> argv;
  std::string cwd;
  std::vector<std::string> env;           // "KEY=VALUE"
  FERRY_PROTO_FIELDS(job, uid, gid, ntasks, ranks, argv, cwd, env)
  bool operator==(const LaunchRanks&) const = default;
};

struct RankStarted {
  std::uint32_t rank = 0;
  std::int32_t pid = 0;       // 0 when code != 0
  std::uint16_t code = 0;
  std::string message;
  FERRY_PROTO_FIELDS(rank, pid, code, message)
  bool operator==(const RankStarted&) const = default;
};

struct LaunchResult {
  static constexpr MsgType kType = MsgType::launch_result;
  std::string job;
  std::vector<RankStarted> ranks;
  FERRY_PROTO_FIELDS(job, ranks)
  bool operator==(const LaunchResult&) const = default;
};

struct RoundStep {  // coordinator -> agent; reply: RoundReply with the same round_id and phase
  static constexpr MsgType kType = MsgType::round_step;
  std::string job;
  std::uint64_t generation = 0;
  std::uint64_t round_id = 0;             // unique per coordinator; replies echo it
  RoundPhase phase = RoundPhase::prepare;
  std::vector<std::uint32_t> ranks;       // the ranks of this job on this agent
  std::string generation_dir;             // shared-store gen-NNNNNN.partial (prepare, dump)
  std::uint32_t deadline_ms = 0;          // the coordinator's timeout for this phase
  // MPI jobs (quiesce): the user's bound for the proxies' whole round (`ferry checkpoint
  // --timeout`), which the head agent hands to rank 0's proxy; 0: derived from deadline_ms.
  std::uint32_t round_timeout_ms = 0;
  FERRY_PROTO_FIELDS(job, generation, round_id, phase, ranks, generation_dir, deadline_ms, round_timeout_ms)
  bool operator==(const RoundStep&) const = default;
};

struct RankResult {
  std::uint32_t rank = 0;
  std::uint16_t code = 0;           // 0 = ok
  std::string message;              // the reason when code != 0
  std::uint64_t bytes = 0;          // dump: image bytes written and fsynced
  std::uint64_t duration_ns = 0;    // time this rank spent in the phase
  FERRY_PROTO_FIELDS(rank, code, message, bytes, duration_ns)
  bool operator==(const RankResult&) const = default;
};

struct RoundReply {  // agent -> coordinator
  static constexpr MsgType kType = MsgType::round_reply;
  std::string job;
  std::uint64_t generation = 0;
  std::uint64_t round_id = 0;
  RoundPhase phase = RoundPhase::prepare;
  std::vector<RankResult> results;  // one per rank of the RoundStep
  FERRY_PROTO_FIELDS(job, generation, round_id, phase, results)
  bool operator==(const RoundReply&) const = default;
};

struct RestoreRanks {  // coordinator -> agent; reply: RestoreResult
  static constexpr MsgType kType = MsgType::restore_ranks;
  std::string job;
  std::uint64_t generation = 0;
  std::uint64_t restart_id = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t ntasks = 0;
  std::string generation_dir;             // committed gen-NNNNNN in the shared store
  std::vector<std::uint32_t> ranks;       // ranks to restore on this node
  FERRY_PROTO_FIELDS(job, generation, restart_id, uid, gid, ntasks, generation_dir, ranks)
  bool operator==(const RestoreRanks&) const = default;
};

struct RankRestored {
  std::uint32_t rank = 0;
  std::int32_t pid = 0;
  std::uint16_t code = 0;
  RestartPhase phase = RestartPhase::restore;  // where it failed when code != 0
  std::string message;
  FERRY_PROTO_FIELDS(rank, pid, code, phase, message)
  bool operator==(const RankRestored&) const = default;
};

struct RestoreResult {
  static constexpr MsgType kType = MsgType::restore_result;
  std::string job;
  std::uint64_t restart_id = 0;
  std::vector<RankRestored> ranks;
  FERRY_PROTO_FIELDS(job, restart_id, ranks)
  bool operator==(const RestoreResult&) const = default;
};

struct RankExited {  // agent -> coordinator, unsolicited; reply: Ack
  static constexpr MsgType kType = MsgType::rank_exited;
  std::string job;
  std::uint64_t restart_id = 0;           // 0: the incarnation started by a launch
  std::uint32_t rank = 0;
  std::int32_t pid = 0;
  std::optional<std::int32_t> exit_status;  // set if the rank exited
  std::optional<std::int32_t> signal;       // set if a signal killed it
  std::int64_t time_ns = 0;                 // CLOCK_REALTIME on the agent
  FERRY_PROTO_FIELDS(job, restart_id, rank, pid, exit_status, signal, time_ns)
  bool operator==(const RankExited&) const = default;
};

// An MPI job (docs/mpi.md "Through the coordinator"): the head agent (the node of rank 0) runs
// the launcher, `argv` (mpirun ... ferry-mpi-proxy [--restore DIR] -- PROGRAM), adding the
// address and token of its link to rank 0's proxy (FERRY_MPI_FRONT, FERRY_MPI_TOKEN) and
// FERRY_MPI_RUN_DIR = run_dir. Reply: LaunchResult (restart_id 0) or RestoreResult, every rank
// ok once rank 0's proxy connected (every proxy passed MPI_Init) or the launcher ended.
struct LaunchMpi {  // coordinator -> head agent
  static constexpr MsgType kType = MsgType::launch_mpi;
  std::string job;
  std::uint64_t restart_id = 0;     // 0: the launch
  std::uint64_t generation = 0;     // restored generation (0: the launch)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t ntasks = 0;
  std::vector<std::string> argv;    // the launcher's command line
  std::string cwd;
  std::vector<std::string> env;
  std::string run_dir;              // where the proxies write rank-R.host / rank-R.event
  FERRY_PROTO_FIELDS(job, restart_id, generation, uid, gid, ntasks, argv, cwd, env, run_dir)
  bool operator==(const LaunchMpi&) const = default;
};

enum class MpiEnd : std::uint8_t { exited = 1, signaled = 2, aborted = 3, restart_failed = 4 };
constexpr bool wire_valid(MpiEnd e) { return e >= MpiEnd::exited && e <= MpiEnd::restart_failed; }

struct MpiRankEnd {  // one rank's event (mpi/proxy/main.cpp rank-R.event)
  std::uint32_t rank = 0;
  std::string node;                 // where the proxy ran (its hostname)
  MpiEnd kind = MpiEnd::exited;
  std::int32_t value = 0;           // exit status, signal, MPI_Abort code
  std::optional<RestartPhase> phase;  // restart_failed: validate or restore
  std::string reason;
  std::int64_t time_ns = 0;
  FERRY_PROTO_FIELDS(rank, node, kind, value, phase, reason, time_ns)
  bool operator==(const MpiRankEnd&) const = default;
};

struct MpiRunEnded {  // head agent -> coordinator, unsolicited; reply: Ack
  static constexpr MsgType kType = MsgType::mpi_run_ended;
  std::string job;
  std::uint64_t restart_id = 0;
  std::int32_t launcher_status = 0;  // mpirun's exit status (128+N: killed by signal N)
  std::vector<MpiRankEnd> ranks;     // the ranks that reported an end, earliest first
  FERRY_PROTO_FIELDS(job, restart_id, launcher_status, ranks)
  bool operator==(const MpiRunEnded&) const = default;
};

// ---- CLI <-> coordinator ---------------------------------------------------------------

// `ferry mpirun` with a coordinator: the job's ranks are placed block-wise on `nodes` (empty:
// every registered node), `mpirun_options` are the user's (host options are replaced by the
// placement, -np by ntasks), `proxy` is ferry-mpi-proxy's path (same on every node).
struct LaunchMpiJob {  // reply: LaunchJobReply
  static constexpr MsgType kType = MsgType::launch_mpi_job;
  std::string name;
  std::vector<std::string> program;
  std::vector<std::string> mpirun_options;
  std::string proxy;
  std::string cwd;
  std::vector<std::string> env;
  std::vector<std::string> nodes;
  std::uint32_t ntasks = 1;
  std::uint32_t interval_s = 0;
  std::uint32_t keep = 0;
  FERRY_PROTO_FIELDS(name, program, mpirun_options, proxy, cwd, env, nodes, ntasks, interval_s, keep)
  bool operator==(const LaunchMpiJob&) const = default;
};

struct LaunchJob {  // reply: LaunchJobReply
  static constexpr MsgType kType = MsgType::launch_job;
  std::string name;
  std::vector<std::string> argv;
  std::string cwd;
  std::vector<std::string> env;
  std::vector<std::string> nodes;   // empty: every registered node
  std::uint32_t ntasks = 1;
  std::uint32_t interval_s = 0;     // periodic checkpoints; 0 = off
  std::uint32_t keep = 0;           // retention: newest K committed generations; 0 = all
  FERRY_PROTO_FIELDS(name, argv, cwd, env, nodes, ntasks, interval_s, keep)
  bool operator==(const LaunchJob&) const = default;
};

struct LaunchJobReply {
  static constexpr MsgType kType = MsgType::launch_job_reply;
  std::uint16_t code = 0;
  std::string message;
  std::string job;
  FERRY_PROTO_FIELDS(code, message, job)
  bool operator==(const LaunchJobReply&) const = default;
};

struct Checkpoint {  // reply: CheckpointReply, once the round has ended
  static constexpr MsgType kType = MsgType::checkpoint;
  std::string job;
  std::uint8_t stop = 0;  // 1: stop the job after commit (migration, preemption)
  std::uint32_t timeout_ms = 0;  // MPI jobs: give the round up after this long (0: the coordinator's step timeouts)
  FERRY_PROTO_FIELDS(job, stop, timeout_ms)
  bool operator==(const Checkpoint&) const = default;
};

struct CheckpointReply {
  static constexpr MsgType kType = MsgType::checkpoint_reply;
  std::uint16_t code = 0;
  std::string message;
  std::uint64_t generation = 0;                 // committed generation when code == 0
  std::uint64_t bytes = 0;
  std::uint64_t duration_ns = 0;
  std::optional<RoundPhase> failed_phase;       // set when the round aborted
  std::optional<std::uint32_t> failed_rank;
  std::optional<std::string> failed_node;
  FERRY_PROTO_FIELDS(code, message, generation, bytes, duration_ns, failed_phase, failed_rank,
                     failed_node)
  bool operator==(const CheckpointReply&) const = default;
};

struct Placement {
  std::uint32_t rank = 0;
  std::string node;
  FERRY_PROTO_FIELDS(rank, node)
  bool operator==(const Placement&) const = default;
};

struct Restart {  // reply: RestartReply
  static constexpr MsgType kType = MsgType::restart;
  std::string job;
  std::uint64_t generation = 0;           // 0: newest committed
  std::vector<std::string> nodes;         // empty: the job's nodes
  std::vector<Placement> placement;       // empty: round-robin over nodes
  std::uint8_t detach = 0;                // 1: reply once the record exists
  FERRY_PROTO_FIELDS(job, generation, nodes, placement, detach)
  bool operator==(const Restart&) const = default;
};

struct RestartReply {
  static constexpr MsgType kType = MsgType::restart_reply;
  std::uint16_t code = 0;
  std::string message;
  std::uint64_t restart_id = 0;
  std::uint64_t generation = 0;           // the generation actually restored
  FERRY_PROTO_FIELDS(code, message, restart_id, generation)
  bool operator==(const RestartReply&) const = default;
};

struct Wait {  // reply: WaitReply, when the outcome is final or the timeout passes
  static constexpr MsgType kType = MsgType::wait;
  std::uint64_t restart_id = 0;
  std::uint32_t timeout_ms = 0;           // 0: no timeout
  FERRY_PROTO_FIELDS(restart_id, timeout_ms)
  bool operator==(const Wait&) const = default;
};

// One restart record as `ferry wait --json` shows it (unset optionals print as null).
struct RestartRecordWire {
  std::uint64_t restart_id = 0;
  std::string job;
  Outcome outcome = Outcome::running;
  std::optional<std::int32_t> exit_status;
  std::optional<std::int32_t> signal;
  std::optional<RestartPhase> phase;
  std::optional<std::uint32_t> rank;
  std::optional<std::string> node;
  std::optional<std::string> reason;
  FERRY_PROTO_FIELDS(restart_id, job, outcome, exit_status, signal, phase, rank, node, reason)
  bool operator==(const RestartRecordWire&) const = default;
};

struct WaitReply {
  static constexpr MsgType kType = MsgType::wait_reply;
  std::uint16_t code = 0;                 // timeout (102) when the outcome is still running
  std::string message;
  RestartRecordWire record;
  FERRY_PROTO_FIELDS(code, message, record)
  bool operator==(const WaitReply&) const = default;
};

struct Status {  // reply: StatusReply
  static constexpr MsgType kType = MsgType::status;
  std::string job;  // empty: every job the caller may see
  FERRY_PROTO_FIELDS(job)
  bool operator==(const Status&) const = default;
};

struct GenerationInfo {
  std::uint64_t number = 0;
  std::int64_t time_ns = 0;
  std::uint64_t bytes = 0;
  std::uint64_t duration_ns = 0;
  FERRY_PROTO_FIELDS(number, time_ns, bytes, duration_ns)
  bool operator==(const GenerationInfo&) const = default;
};

struct JobInfo {
  std::string job;
  std::string name;
  std::uint32_t uid = 0;
  std::string state;
  std::uint32_t ntasks = 0;
  std::vector<std::string> nodes;
  std::vector<GenerationInfo> generations;
  std::vector<RestartRecordWire> restarts;
  FERRY_PROTO_FIELDS(job, name, uid, state, ntasks, nodes, generations, restarts)
  bool operator==(const JobInfo&) const = default;
};

struct NodeInfo {
  std::string node;
  std::int64_t last_heartbeat_ns = 0;
  std::uint8_t alive = 0;
  FERRY_PROTO_FIELDS(node, last_heartbeat_ns, alive)
  bool operator==(const NodeInfo&) const = default;
};

struct StatusReply {
  static constexpr MsgType kType = MsgType::status_reply;
  std::uint16_t code = 0;
  std::string message;
  std::vector<JobInfo> jobs;
  std::vector<NodeInfo> nodes;
  FERRY_PROTO_FIELDS(code, message, jobs, nodes)
  bool operator==(const StatusReply&) const = default;
};

struct DeleteJob {  // reply: Ack
  static constexpr MsgType kType = MsgType::delete_job;
  std::string job;
  FERRY_PROTO_FIELDS(job)
  bool operator==(const DeleteJob&) const = default;
};

}  // namespace ferry::proto
