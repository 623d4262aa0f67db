// SPDX-License-Identifier: Apache-2.0
// Boost.Log sinks and the line format of the coordinator (see log.hpp).
#include "log.hpp"

#include <boost/core/null_deleter.hpp>
#include <boost/log/attributes/constant.hpp>
#include <boost/log/core.hpp>
#include <boost/log/expressions.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/sinks/text_ostream_backend.hpp>
#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_channel_logger.hpp>
#include <boost/log/support/date_time.hpp>
#include <boost/log/utility/setup/common_attributes.hpp>
#include <boost/make_shared.hpp>
#include <fstream>
#include <iostream>
#include <stdexcept>

namespace ferry::coord {
namespace logging = boost::log;
namespace expr = boost::log::expressions;
namespace sinks = boost::log::sinks;

BOOST_LOG_ATTRIBUTE_KEYWORD(a_severity, "Severity", Severity)
BOOST_LOG_ATTRIBUTE_KEYWORD(a_channel, "Channel", std::string)
BOOST_LOG_ATTRIBUTE_KEYWORD(a_context, "Context", std::string)

namespace {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::debug: return "debug";
    case Severity::info: return "info ";
    case Severity::warning: return "warn ";
    case Severity::error: return "error";
  }
  return "?    ";
}

using Logger = logging::sources::severity_channel_logger<Severity, std::string>;

Logger& logger() {
  static Logger lg;
  return lg;
}

auto line_format() {
  return expr::stream << expr::format_date_time<boost::posix_time::ptime>("TimeStamp", "%Y-%m-%d %H:%M:%S.%f")
                      << " " << expr::attr<std::string>("SeverityName") << " " << a_channel << " "
                      << a_context << ": " << expr::smessage;
}

}  // namespace

void init_logging(const std::string& log_file, Severity min_file_severity) {
  logging::add_common_attributes();
  auto file = boost::make_shared<std::ofstream>(log_file, std::ios::app);
  if (!*file) throw std::runtime_error("cannot open log file " + log_file);
  auto file_backend = boost::make_shared<sinks::text_ostream_backend>();
  file_backend->add_stream(file);
  file_backend->auto_flush(true);
  auto file_sink = boost::make_shared<sinks::synchronous_sink<sinks::text_ostream_backend>>(file_backend);
  file_sink->set_formatter(line_format());
  file_sink->set_filter(a_severity >= min_file_severity);
  logging::core::get()->add_sink(file_sink);

  auto err_backend = boost::make_shared<sinks::text_ostream_backend>();
  err_backend->add_stream(boost::shared_ptr<std::ostream>(&std::clog, boost::null_deleter()));
  err_backend->auto_flush(true);
  auto err_sink = boost::make_shared<sinks::synchronous_sink<sinks::text_ostream_backend>>(err_backend);
  err_sink->set_formatter(line_format());
  err_sink->set_filter(a_severity >= Severity::warning);
  logging::core::get()->add_sink(err_sink);
}

void log(Severity sev, const char* channel, const LogCtx& ctx, const std::string& message) {
  std::string c = "job=" + (ctx.job.empty() ? std::string("-") : ctx.job) +
                  " node=" + (ctx.node.empty() ? std::string("-") : ctx.node) +
                  " rank=" + (ctx.rank ? std::to_string(*ctx.rank) : std::string("-")) +
                  " gen=" + (ctx.generation ? std::to_string(*ctx.generation) : std::string("-"));
  Logger& lg = logger();
  logging::record rec = lg.open_record((logging::keywords::severity = sev, logging::keywords::channel = std::string(channel)));
  if (!rec) return;
  rec.attribute_values().insert("Context", logging::attributes::make_attribute_value(c));
  rec.attribute_values().insert("SeverityName", logging::attributes::make_attribute_value(std::string(severity_name(sev))));
  logging::record_ostream strm(rec);
  strm << message;
  strm.flush();
  lg.push_record(boost::move(rec));
}

}  // namespace ferry::coord
