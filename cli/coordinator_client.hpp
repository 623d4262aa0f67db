// SPDX-License-Identifier: Apache-2.0
// The CLI's side of the coordinator protocol: a blocking TCP connection that sends one
// signed request (MUNGE where munged runs, else HMAC with the user's secret,
// ~/.ferry/secret, created on first use) and reads its reply. Which coordinator: --coordinator, else $FERRY_COORDINATOR, else the
// "coordinator" of the job's job.json (a job launched through a coordinator).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "ferry/common/result.hpp"
#include "ferry/common/unique_fd.hpp"
#include "ferry/proto/codec.hpp"
#include "ferry/proto/status.hpp"

namespace ferry::cli {

// The coordinator to talk to for `job` (may be empty), or nullopt for the single-process
// path. In order: --coordinator, the job's job.json, $FERRY_COORDINATOR, `coordinator=` in
// STORE_ROOT/config (the ferry home's, ~/.ferry/config by default), then in
// /etc/ferry/ferry.conf. "local" means the embedded daemons of the ferry home
// (local_cluster.hpp); a non-empty store_root is also recorded as that home.
std::optional<std::string> coordinator_for(const std::optional<std::string>& flag, const std::string& store_root,
                                           const std::string& job);

class CoordinatorClient {
public:
  // Connects to "host:port" ("local": the embedded coordinator, started if needed).
  // errc::not_found-free: failures are system errors (exit 69).
  static Result<CoordinatorClient> connect(const std::string& address);
  // Only whether something accepts a TCP connection at host:port.
  static Result<void> probe(const std::string& address);

  // Sends req and waits for the reply of type Rep (an ACK error reply becomes an Error).
  // The reply's own code is left to the caller.
  template <class Req, class Rep>
  Result<Rep> call(const Req& req) {
    FERRY_TRY(auth, sign_next(Req::kType, proto::encode_payload(req)));
    FERRY_TRY_VOID(write_all(proto::encode(req, next_id_, auth)));
    FERRY_TRY(frame, read_frame());
    auto f = proto::decode_frame(frame);
    if (!f) return fail(f.error());
    if (f->env.type == proto::MsgType::ack && Rep::kType != proto::MsgType::ack) {
      auto ack = proto::decode_payload<proto::Ack>(*f);
      if (!ack) return fail(ack.error());
      return fail(proto::error_from_wire(ack->code, ack->message));
    }
    return proto::decode_payload<Rep>(*f);
  }

  const std::string& address() const noexcept { return address_; }

private:
  // Takes the next request id and signs payload for it: with MUNGE where munged runs
  // (unless $FERRY_AUTH=hmac), else with the user's secret; if munged stops answering
  // during the command, with the user's secret from then on.
  Result<proto::Auth> sign_next(proto::MsgType type, const proto::Bytes& payload);
  Result<void> write_all(const proto::Bytes& b);
  Result<proto::Bytes> read_frame();

  CoordinatorClient(UniqueFd fd, std::string address) : fd_(std::move(fd)), address_(std::move(address)) {}
  UniqueFd fd_;
  std::string address_;
  std::string secret_;   // empty when signing with MUNGE
  bool munge_ = false;
  std::uint64_t next_id_ = 1;
};

// The exit status for a reply code (docs/exit-status.md): auth_failed 77, bad_state/busy 73,
// agent_lost 69, else as exit_status_for() maps the error.
int exit_for_reply(std::uint16_t code, const std::string& message);
// "ferry: cannot reach the coordinator at ADDR: ..." + 69.
int unreachable(const std::string& address, const Error& e);

}  // namespace ferry::cli

namespace ferry::cli {

// `ferry wait`'s core, also used by launch and restart in the foreground: WAIT for the
// record, print it (--json on stdout; the "ferry:" line of a failure or timeout on stderr)
// and return the exit status of PROTOCOL.md's `ferry wait` contract.
int wait_for_record(CoordinatorClient& client, std::uint64_t restart_id, bool json, std::uint32_t timeout_ms);

}  // namespace ferry::cli
