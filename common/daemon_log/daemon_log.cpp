// SPDX-License-Identifier: Apache-2.0
// Boost.Log sinks and the line format of the daemons (see daemon_log.hpp).
#include "daemon_log.hpp"

#include <boost/core/null_deleter.hpp>
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

namespace ferry::daemon_log {
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

using Sink = sinks::synchronous_sink<sinks::text_ostream_backend>;

void add_sink(boost::shared_ptr<std::ostream> stream, Severity min) {
  auto backend = boost::make_shared<sinks::text_ostream_backend>();
  backend->add_stream(std::move(stream));
  backend->auto_flush(true);
  auto sink = boost::make_shared<Sink>(backend);
  sink->set_formatter(line_format());
  sink->set_filter(a_severity >= min);
  logging::core::get()->add_sink(sink);
}

std::string or_dash(const std::string& s) { return s.empty() ? std::string("-") : s; }

}  // namespace

void init(const std::string& log_file, Severity min_file_severity) {
  logging::add_common_attributes();
  auto file = boost::make_shared<std::ofstream>(log_file, std::ios::app);
  if (!*file) throw std::runtime_error("cannot open log file " + log_file);
  add_sink(file, min_file_severity);
  add_sink(boost::shared_ptr<std::ostream>(&std::clog, boost::null_deleter()), Severity::warning);
}

std::string context(const std::string& job, const std::string& node, std::optional<std::uint32_t> rank,
                    std::optional<std::uint64_t> generation) {
  return "job=" + or_dash(job) + " node=" + or_dash(node) +
         " rank=" + (rank ? std::to_string(*rank) : std::string("-")) +
         " gen=" + (generation ? std::to_string(*generation) : std::string("-"));
}

void emit(Severity sev, const char* channel, const std::string& context, const std::string& message) {
  Logger& lg = logger();
  logging::record rec =
      lg.open_record((logging::keywords::severity = sev, logging::keywords::channel = std::string(channel)));
  if (!rec) return;
  rec.attribute_values().insert("Context", logging::attributes::make_attribute_value(context));
  rec.attribute_values().insert("SeverityName",
                                logging::attributes::make_attribute_value(std::string(severity_name(sev))));
  logging::record_ostream strm(rec);
  strm << message;
  strm.flush();
  lg.push_record(boost::move(rec));
}

}  // namespace ferry::daemon_log
