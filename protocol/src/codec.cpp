// SPDX-License-Identifier: Apache-2.0
// Frame header/envelope parsing, message dispatch by type, names for logs and the signing
// input of credentials.
#include "ferry/proto/codec.hpp"

#include <cstdio>
#include <string_view>

namespace ferry::proto {

std::string_view name(MsgType t) {
  switch (t) {
    case MsgType::ack: return "ACK";
    case MsgType::agent_register: return "AGENT_REGISTER";
    case MsgType::agent_register_reply: return "AGENT_REGISTER_REPLY";
    case MsgType::heartbeat: return "HEARTBEAT";
    case MsgType::launch_ranks: return "LAUNCH_RANKS";
    case MsgType::launch_result: return "LAUNCH_RESULT";
    case MsgType::round_step: return "ROUND_STEP";
    case MsgType::round_reply: return "ROUND_REPLY";
    case MsgType::restore_ranks: return "RESTORE_RANKS";
    case MsgType::restore_result: return "RESTORE_RESULT";
    case MsgType::rank_exited: return "RANK_EXITED";
    case MsgType::launch_mpi: return "LAUNCH_MPI";
    case MsgType::mpi_run_ended: return "MPI_RUN_ENDED";
    case MsgType::launch_mpi_job: return "LAUNCH_MPI_JOB";
    case MsgType::launch_job: return "LAUNCH_JOB";
    case MsgType::launch_job_reply: return "LAUNCH_JOB_REPLY";
    case MsgType::checkpoint: return "CHECKPOINT";
    case MsgType::checkpoint_reply: return "CHECKPOINT_REPLY";
    case MsgType::restart: return "RESTART";
    case MsgType::restart_reply: return "RESTART_REPLY";
    case MsgType::wait: return "WAIT";
    case MsgType::wait_reply: return "WAIT_REPLY";
    case MsgType::status: return "STATUS";
    case MsgType::status_reply: return "STATUS_REPLY";
    case MsgType::delete_job: return "DELETE_JOB";
  }
  return "UNKNOWN";
}

bool known(MsgType t) { return name(t) != "UNKNOWN"; }

std::string_view name(RoundPhase p) {
  switch (p) {
    case RoundPhase::prepare: return "prepare";
    case RoundPhase::quiesce: return "quiesce";
    case RoundPhase::dump: return "dump";
    case RoundPhase::commit: return "commit";
    case RoundPhase::resume: return "resume";
    case RoundPhase::stop: return "stop";
    case RoundPhase::abort: return "abort";
  }
  return "unknown";
}

std::string_view name(RestartPhase p) {
  switch (p) {
    case RestartPhase::place: return "place";
    case RestartPhase::validate: return "validate";
    case RestartPhase::restore: return "restore";
    case RestartPhase::resume: return "resume";
  }
  return "unknown";
}

std::string_view name(Outcome o) {
  switch (o) {
    case Outcome::running: return "running";
    case Outcome::restart_failed: return "restart_failed";
    case Outcome::exited: return "exited";
    case Outcome::signaled: return "signaled";
  }
  return "unknown";
}

Result<std::size_t> frame_size(ByteView first4) {
  if (first4.size() < 4) return fail(errc::protocol, "frame: fewer than 4 bytes of length");
  Reader r(first4.first(4));
  std::uint32_t len = r.u32();
  if (len < 8 + kMinBodyBytes)
    return fail(errc::protocol, "frame: length " + std::to_string(len) + " below minimum");
  if (len > 8 + kMaxFrameBody)
    return fail(errc::protocol, "frame: length " + std::to_string(len) + " exceeds limit " +
                                    std::to_string(8 + kMaxFrameBody));
  return std::size_t{len} + 4;
}

Result<Frame> decode_frame(ByteView bytes) {
  auto size = frame_size(bytes);
  if (!size) return fail(size.error());
  if (*size != bytes.size())
    return fail(errc::protocol, "frame: length field says " + std::to_string(*size) +
                                    " bytes, have " + std::to_string(bytes.size()));
  Reader r(bytes);
  r.u32();
  std::uint32_t magic = r.u32();
  std::uint16_t version = r.u16();
  auto type = static_cast<MsgType>(r.u16());
  if (magic != kMagic) return fail(errc::protocol, "frame: bad magic (not a ferry peer?)");
  if (version != kVersion)
    return fail(errc::protocol, "frame: protocol version " + std::to_string(version) +
                                    " not supported (this build speaks " +
                                    std::to_string(kVersion) + ")");
  if (!known(type))
    return fail(errc::protocol,
                "frame: unknown message type 0x" + [&] {
                  char buf[8];
                  std::snprintf(buf, sizeof buf, "%04x", static_cast<unsigned>(type));
                  return std::string(buf);
                }());
  Frame f;
  f.env.type = type;
  f.env.request_id = r.u64();
  detail::Decoder dec{r};
  dec.get(f.env.auth.scheme);
  f.env.auth.uid = r.u32();
  f.env.auth.issued_ns = r.i64();
  f.env.auth.nonce = r.u64();
  f.env.auth.credential = r.str(kMaxCredential);
  if (!r.ok()) return fail(errc::protocol, "frame envelope: " + r.error());
  f.payload = r.rest();
  return f;
}

Bytes signing_input(const Envelope& env, ByteView payload) {
  static constexpr std::string_view kDomain = "ferry-auth-v1";  // separates from other uses of a key
  Bytes out;
  Writer w(out);
  w.raw(ByteView(reinterpret_cast<const std::uint8_t*>(kDomain.data()), kDomain.size()));
  w.u16(kVersion);
  w.u16(static_cast<std::uint16_t>(env.type));
  w.u64(env.request_id);
  w.u8(static_cast<std::uint8_t>(env.auth.scheme));
  w.u32(env.auth.uid);
  w.i64(env.auth.issued_ns);
  w.u64(env.auth.nonce);
  w.raw(payload);
  return out;
}

namespace {

template <class M>
Result<AnyMessage> as_any(const Frame& f) {
  auto m = decode_payload<M>(f);
  if (!m) return fail(m.error());
  return AnyMessage(std::move(*m));
}

}  // namespace

Result<AnyMessage> decode_message(const Frame& f) {
  switch (f.env.type) {
    case MsgType::ack: return as_any<Ack>(f);
    case MsgType::agent_register: return as_any<AgentRegister>(f);
    case MsgType::agent_register_reply: return as_any<AgentRegisterReply>(f);
    case MsgType::heartbeat: return as_any<Heartbeat>(f);
    case MsgType::launch_ranks: return as_any<LaunchRanks>(f);
    case MsgType::launch_result: return as_any<LaunchResult>(f);
    case MsgType::round_step: return as_any<RoundStep>(f);
    case MsgType::round_reply: return as_any<RoundReply>(f);
    case MsgType::restore_ranks: return as_any<RestoreRanks>(f);
    case MsgType::restore_result: return as_any<RestoreResult>(f);
    case MsgType::rank_exited: return as_any<RankExited>(f);
    case MsgType::launch_mpi: return as_any<LaunchMpi>(f);
    case MsgType::mpi_run_ended: return as_any<MpiRunEnded>(f);
    case MsgType::launch_mpi_job: return as_any<LaunchMpiJob>(f);
    case MsgType::launch_job: return as_any<LaunchJob>(f);
    case MsgType::launch_job_reply: return as_any<LaunchJobReply>(f);
    case MsgType::checkpoint: return as_any<Checkpoint>(f);
    case MsgType::checkpoint_reply: return as_any<CheckpointReply>(f);
    case MsgType::restart: return as_any<Restart>(f);
    case MsgType::restart_reply: return as_any<RestartReply>(f);
    case MsgType::wait: return as_any<Wait>(f);
    case MsgType::wait_reply: return as_any<WaitReply>(f);
    case MsgType::status: return as_any<Status>(f);
    case MsgType::status_reply: return as_any<StatusReply>(f);
    case MsgType::delete_job: return as_any<DeleteJob>(f);
  }
  return fail(errc::protocol, "decode: unknown message type");
}

Result<std::pair<Envelope, AnyMessage>> decode(ByteView bytes) {
  auto f = decode_frame(bytes);
  if (!f) return fail(f.error());
  auto m = decode_message(*f);
  if (!m) return fail(m.error());
  return std::pair<Envelope, AnyMessage>(f->env, std::move(*m));
}

}  // namespace ferry::proto
