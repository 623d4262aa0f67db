// SPDX-License-Identifier: Apache-2.0
// Connection, framing, authentication, registration and heartbeats of the agent (see
// coordinator_link.hpp for the state machine).
#include "coordinator_link.hpp"

#include <unistd.h>

#include <thread>

#include "ferry/proto/status.hpp"
#include "log.hpp"

namespace ferry::agent {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);
constexpr auto kMinBackoff = std::chrono::milliseconds(200);

void info(const std::string& m) { log(Severity::info, "agent.link", {}, m); }
void warn(const std::string& m) { log(Severity::warning, "agent.link", {}, m); }
}  // namespace

CoordinatorLink::CoordinatorLink(asio::io_context& io, LinkConfig cfg, RequestHandler on_request,
                                 std::function<std::uint32_t()> live_ranks)
    : io_(io),
      cfg_(std::move(cfg)),
      on_request_(std::move(on_request)),
      live_ranks_(std::move(live_ranks)),
      resolver_(io),
      sock_(io),
      retry_timer_(io),
      heartbeat_timer_(io) {}

void CoordinatorLink::start() { connect(); }

void CoordinatorLink::stop() {
  stopped_ = true;
  boost::system::error_code ec;
  sock_.close(ec);
  retry_timer_.cancel();
  heartbeat_timer_.cancel();
  resolver_.cancel();
}

void CoordinatorLink::connect() {
  if (stopped_) return;
  resolver_.async_resolve(cfg_.host, cfg_.port, [this](boost::system::error_code ec, tcp::resolver::results_type rs) {
    if (ec) return drop("resolve " + cfg_.host + ":" + cfg_.port + ": " + ec.message());
    asio::async_connect(sock_, rs, [this](boost::system::error_code ec, const tcp::endpoint&) {
      if (ec) return drop("connect to coordinator " + cfg_.host + ":" + cfg_.port + ": " + ec.message());
      on_connected();
    });
  });
}

void CoordinatorLink::on_connected() {
  ++epoch_;
  connected_ = true;
  registered_ = false;
  boost::system::error_code ec;
  sock_.set_option(tcp::no_delay(true), ec);
  info("connected to coordinator " + cfg_.host + ":" + cfg_.port);
  send_register();
  read_header();
}

void CoordinatorLink::send_register() {
  proto::AgentRegister reg;
  reg.node = cfg_.node;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  reg.hostname = cfg_.mpi_host.empty() ? std::string(host) : cfg_.mpi_host;
  reg.cpus = std::thread::hardware_concurrency();
  reg.agent_pid = ::getpid();
  reg.build = FERRY_VERSION;
  register_id_ = next_id_++;
  send(proto::encode_signed(reg, register_id_, 0, cfg_.secret));
}

void CoordinatorLink::read_header() {
  asio::async_read(sock_, asio::buffer(header_), [this, epoch = epoch_](boost::system::error_code ec, std::size_t) {
    if (epoch != epoch_) return;
    if (ec) return drop("read from coordinator: " + ec.message());
    auto size = proto::frame_size(proto::ByteView(header_, 4));
    if (!size) return drop("malformed frame from coordinator: " + size.error().message());
    read_body(*size);
  });
}

void CoordinatorLink::read_body(std::size_t size) {
  body_.assign(header_, header_ + 4);
  body_.resize(size);
  asio::async_read(sock_, asio::buffer(body_.data() + 4, size - 4),
                   [this, epoch = epoch_](boost::system::error_code ec, std::size_t) {
                     if (epoch != epoch_) return;
                     if (ec) return drop("read from coordinator: " + ec.message());
                     auto f = proto::decode_frame(body_);
                     if (!f) return drop("malformed frame from coordinator: " + f.error().message());
                     // Requests must carry the cluster secret's HMAC. Replies (AGENT_REGISTER_REPLY,
                     // ACK) may use scheme none on this connection (PROTOCOL.md): they cannot
                     // make the agent act on a rank; when signed, they must verify too.
                     const bool reply = f->env.type == proto::MsgType::ack ||
                                        f->env.type == proto::MsgType::agent_register_reply;
                     if (!(reply && f->env.auth.scheme == proto::AuthScheme::none))
                       if (auto a = auth_.verify(*f, cfg_.secret, proto::realtime_ns()); !a)
                         return drop("unauthenticated " + std::string(proto::name(f->env.type)) +
                                     " from coordinator refused: " + a.error().message());
                     on_frame(*f);
                     if (epoch == epoch_ && connected_) read_header();
                   });
}

void CoordinatorLink::on_frame(const proto::Frame& f) {
  auto msg = proto::decode_message(f);
  if (!msg) return drop("malformed " + std::string(proto::name(f.env.type)) + " from coordinator: " + msg.error().message());
  const std::uint64_t id = f.env.request_id;
  if (auto* r = std::get_if<proto::AgentRegisterReply>(&*msg)) {
    if (id != register_id_) return warn("ignored an AGENT_REGISTER_REPLY for request " + std::to_string(id));
    if (r->code != 0) return drop("coordinator refused registration: " + proto::error_from_wire(r->code, r->message).message());
    registered_ = true;
    session_id_ = r->session_id;
    if (r->heartbeat_interval_ms > 0) heartbeat_interval_ = std::chrono::milliseconds(r->heartbeat_interval_ms);
    backoff_ = kMinBackoff;
    info("registered as node " + cfg_.node + " (session " + std::to_string(session_id_) + ", heartbeat every " +
         std::to_string(heartbeat_interval_.count()) + " ms)");
    // Notifications not acknowledged on the previous connection or registration go again.
    for (auto& [rid, m] : in_flight_) pending_.push_front(std::move(m));
    in_flight_.clear();
    send_pending();
    heartbeat_timer_.cancel();
    send_heartbeat();
    return;
  }
  if (auto* a = std::get_if<proto::Ack>(&*msg)) {
    if (id == heartbeat_id_ && a->code == static_cast<std::uint16_t>(proto::perr::not_registered)) {
      warn("coordinator does not know this agent's session any more: registering again");
      registered_ = false;
      return send_register();
    }
    if (auto it = in_flight_.find(id); it != in_flight_.end()) {
      if (a->code != 0)
        std::visit([&](const auto& n) {
          log(Severity::warning, "agent.link", {n.job, {}, {}},
              "coordinator refused " + std::string(proto::name(n.kType)) + ": " +
                  proto::error_from_wire(a->code, a->message).message());
        }, it->second);
      in_flight_.erase(it);
    }
    return;
  }
  if (std::holds_alternative<proto::LaunchRanks>(*msg) || std::holds_alternative<proto::RoundStep>(*msg) ||
      std::holds_alternative<proto::RestoreRanks>(*msg) || std::holds_alternative<proto::LaunchMpi>(*msg)) {
    on_request_(epoch_, id, std::move(*msg));
    return;
  }
  warn("ignored unexpected " + std::string(proto::name(f.env.type)) + " from coordinator");
  proto::Ack nack{static_cast<std::uint16_t>(proto::perr::unknown_message),
                  "agent does not handle " + std::string(proto::name(f.env.type))};
  send(proto::encode_signed(nack, id, 0, cfg_.secret));
}

void CoordinatorLink::send_heartbeat() {
  if (!connected_ || !registered_) return;
  proto::Heartbeat hb{session_id_, ++heartbeat_seq_, live_ranks_ ? live_ranks_() : 0};
  heartbeat_id_ = next_id_++;
  send(proto::encode_signed(hb, heartbeat_id_, 0, cfg_.secret));
  heartbeat_timer_.expires_after(heartbeat_interval_);
  heartbeat_timer_.async_wait([this, epoch = epoch_](boost::system::error_code ec) {
    if (ec || epoch != epoch_) return;
    send_heartbeat();
  });
}

void CoordinatorLink::notify(Notice msg) {
  pending_.push_back(std::move(msg));
  send_pending();
}

void CoordinatorLink::send_pending() {
  if (!connected_ || !registered_) return;
  while (!pending_.empty()) {
    std::uint64_t id = next_id_++;
    std::visit([&](const auto& n) { send(proto::encode_signed(n, id, 0, cfg_.secret)); }, pending_.front());
    in_flight_.emplace(id, std::move(pending_.front()));
    pending_.pop_front();
  }
}

void CoordinatorLink::send(proto::Bytes frame) {
  if (!connected_) return;
  out_.push_back(std::move(frame));
  if (!writing_) write_next();
}

void CoordinatorLink::write_next() {
  if (out_.empty() || !connected_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  asio::async_write(sock_, asio::buffer(out_.front()), [this, epoch = epoch_](boost::system::error_code ec, std::size_t) {
    if (epoch != epoch_) return;
    writing_ = false;
    if (ec) return drop("write to coordinator: " + ec.message());
    out_.pop_front();
    write_next();
  });
}

void CoordinatorLink::drop(const std::string& why) {
  if (stopped_) return;
  if (connected_) warn(why + "; reconnecting");
  else log(Severity::debug, "agent.link", {}, why);
  ++epoch_;  // outstanding handlers of the old connection see a stale epoch
  connected_ = false;
  registered_ = false;
  writing_ = false;
  out_.clear();
  boost::system::error_code ec;
  sock_.close(ec);
  heartbeat_timer_.cancel();
  retry_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(kMaxBackoff));
  retry_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    connect();
  });
}

}  // namespace ferry::agent
