// SPDX-License-Identifier: Apache-2.0
// Control-socket requests (connect, write, read one line, with a deadline timer that closes
// the socket) and the parsing of replies and status lines.
#include "rank_control.hpp"

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it (C++20)
#include <boost/asio.hpp>
#include <memory>
#include <sstream>

#include "ferry/proto/status.hpp"

namespace ferry::agent {
namespace asio = boost::asio;
using local_stream = asio::local::stream_protocol;

namespace {

struct ControlOp : std::enable_shared_from_this<ControlOp> {
  explicit ControlOp(asio::io_context& io) : sock(io), timer(io) {}
  local_stream::socket sock;
  asio::steady_timer timer;
  asio::streambuf buf{1 << 16};
  std::string request;
  std::function<void(Result<std::string>)> done;
  bool finished = false;

  void finish(Result<std::string> r) {
    if (finished) return;
    finished = true;
    timer.cancel();
    boost::system::error_code ec;
    sock.close(ec);
    auto cb = std::move(done);
    cb(std::move(r));
  }
  static Error sys(const boost::system::error_code& ec, const std::string& what) {
    return Error(std::error_code(ec.value(), std::system_category()), what);
  }
};

}  // namespace

void control_request(asio::io_context& io, const std::string& path, const std::string& line,
                     std::chrono::milliseconds timeout, std::function<void(Result<std::string>)> done) {
  auto op = std::make_shared<ControlOp>(io);
  op->request = line + "\n";
  op->done = std::move(done);
  op->timer.expires_after(timeout);
  op->timer.async_wait([op, timeout](boost::system::error_code ec) {
    if (ec) return;
    op->finish(fail(Error(make_error_code(proto::perr::timeout),
                          "no reply from the rank supervisor within " + std::to_string(timeout.count()) + " ms")));
  });
  op->sock.async_connect(local_stream::endpoint(path), [op, path](boost::system::error_code ec) {
    if (ec) return op->finish(fail(ControlOp::sys(ec, "connect to rank supervisor " + path)));
    asio::async_write(op->sock, asio::buffer(op->request), [op](boost::system::error_code ec, std::size_t) {
      if (ec) return op->finish(fail(ControlOp::sys(ec, "send to rank supervisor")));
      asio::async_read_until(op->sock, op->buf, '\n', [op](boost::system::error_code ec, std::size_t n) {
        if (ec)
          return op->finish(fail(Error(errc::process_gone, "rank supervisor closed the connection without a reply (" +
                                                               ec.message() + ")")));
        std::string reply(asio::buffers_begin(op->buf.data()), asio::buffers_begin(op->buf.data()) + n - 1);
        op->finish(reply);
      });
    });
  });
}

std::optional<std::string> control_line(proto::RoundPhase phase, std::uint64_t generation,
                                        const std::string& generation_dir, std::uint32_t rank) {
  const std::string rank_dir = generation_dir.empty() ? "" : generation_dir + "/rank-" + std::to_string(rank);
  switch (phase) {
    case proto::RoundPhase::prepare:
    case proto::RoundPhase::commit: return std::nullopt;
    case proto::RoundPhase::quiesce: return "freeze";
    case proto::RoundPhase::dump: return "dump " + std::to_string(generation) + " " + rank_dir;
    case proto::RoundPhase::resume: return "resume";
    case proto::RoundPhase::stop: return "stop";
    case proto::RoundPhase::abort: return rank_dir.empty() ? "abort" : "abort " + rank_dir;
  }
  return std::nullopt;
}

proto::RankResult rank_result(std::uint32_t rank, proto::RoundPhase phase, const std::string& reply,
                              std::uint64_t elapsed_ns) {
  proto::RankResult r;
  r.rank = rank;
  r.duration_ns = elapsed_ns;
  std::istringstream in(reply);
  std::string word;
  in >> word;
  if (word == "ok") {
    if (phase == proto::RoundPhase::dump) {
      std::uint64_t bytes = 0, memory = 0, ns = 0;
      in >> bytes >> memory >> ns;
      if (!in) {
        r.code = static_cast<std::uint16_t>(proto::perr::internal);
        r.message = "malformed dump reply '" + reply + "'";
        return r;
      }
      r.bytes = bytes;
      r.duration_ns = ns;
    }
    return r;
  }
  if (word == "error") {
    unsigned code = 0;
    in >> code;
    std::string msg;
    std::getline(in >> std::ws, msg);
    if (in.bad() || code == 0 || code > 65535) code = static_cast<unsigned>(proto::perr::internal);
    r.code = static_cast<std::uint16_t>(code);
    r.message = msg.empty() ? "rank supervisor reported an error" : msg;
    return r;
  }
  r.code = static_cast<std::uint16_t>(proto::perr::internal);
  r.message = "unexpected reply from the rank supervisor: '" + reply + "'";
  return r;
}

std::optional<StatusLine> parse_status_line(const std::string& line) {
  std::istringstream in(line);
  StatusLine s;
  std::string verdict;
  in >> s.phase >> verdict;
  if (s.phase != "launch" && s.phase != "validate" && s.phase != "restore") return std::nullopt;
  if (verdict == "ok") {
    s.ok = true;
    long pid = 0;
    if (in >> pid) s.pid = static_cast<std::int32_t>(pid);
    if (s.phase != "validate" && s.pid <= 0) return std::nullopt;
    return s;
  }
  if (verdict != "error") return std::nullopt;
  unsigned code = 0;
  if (!(in >> code) || code == 0 || code > 65535) return std::nullopt;
  s.code = static_cast<std::uint16_t>(code);
  std::getline(in >> std::ws, s.message);
  return s;
}

}  // namespace ferry::agent
