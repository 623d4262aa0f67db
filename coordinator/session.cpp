// SPDX-License-Identifier: Apache-2.0
// Frame reading and writing of one connection (see session.hpp). Reads are two steps: the
// 4-byte length, checked against the limits before anything is allocated (frame_size), then
// the rest of the frame. Writes go out one at a time from a queue.
#include "session.hpp"

namespace ferry::coord {

namespace asio = boost::asio;

Session::Session(asio::ip::tcp::socket socket, SessionHandler& handler, std::uint64_t id)
    : socket_(std::move(socket)), handler_(handler), id_(id) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  peer_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
}

void Session::start() { read_header(); }

void Session::read_header() {
  in_.resize(4);
  asio::async_read(socket_, asio::buffer(in_), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
    if (!self->open_) return;
    if (ec) return self->close(ec == asio::error::eof ? "closed by peer" : "read: " + ec.message());
    auto size = proto::frame_size(self->in_);
    if (!size) return self->close(size.error().message());
    self->read_body(*size);
  });
}

void Session::read_body(std::size_t total) {
  in_.resize(total);
  asio::async_read(socket_, asio::buffer(in_.data() + 4, total - 4),
                   [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                     if (!self->open_) return;
                     if (ec) return self->close("read: " + ec.message());
                     auto frame = proto::decode_frame(self->in_);
                     if (!frame) return self->close(frame.error().message());
                     auto msg = proto::decode_message(*frame);
                     if (!msg) return self->close(msg.error().message());
                     self->handler_.on_frame(self, *frame, std::move(*msg));
                     if (self->open_) self->read_header();
                   });
}

void Session::send(proto::Bytes frame) {
  if (!open_) return;
  out_.push_back(std::move(frame));
  if (out_.size() == 1) write_next();
}

void Session::write_next() {
  asio::async_write(socket_, asio::buffer(out_.front()), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
    if (!self->open_) return;
    if (ec) return self->close("write: " + ec.message());
    self->out_.pop_front();
    if (!self->out_.empty()) self->write_next();
  });
}

void Session::close(const std::string& why) {
  if (!open_) return;
  open_ = false;
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  out_.clear();
  handler_.on_closed(shared_from_this(), why);
}

}  // namespace ferry::coord
