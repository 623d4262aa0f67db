// SPDX-License-Identifier: Apache-2.0
// ferry-agent: the per-node daemon (runs as root). Parses the command line, reads the cluster
// secret, sets up logging, and runs the Session (session.hpp) on one single-threaded Asio loop
// until SIGTERM/SIGINT. Ranks it started keep running when the agent ends.
#include <signal.h>
#include <unistd.h>

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it (C++20)
#include <boost/asio.hpp>
#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>

#include "ferry/common/fs.hpp"
#include "ferry/common/huge_buffer.hpp"
#include "ferry/proto/auth.hpp"
#include "log.hpp"
#include "session.hpp"

namespace po = boost::program_options;
using namespace ferry;

namespace {

constexpr int kExitUsage = 64;
constexpr int kExitConfig = 78;

// --ferry, else $FERRY_CLI_PATH, else `ferry` beside this executable (installed layout), else
// ../cli/ferry (build tree).
std::string find_ferry(const std::string& given) {
  if (!given.empty()) return std::filesystem::absolute(given).string();
  if (const char* e = std::getenv("FERRY_CLI_PATH"); e && *e) return std::filesystem::absolute(e).string();
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "ferry";
  for (auto candidate : {self.parent_path() / "ferry", self.parent_path().parent_path() / "cli" / "ferry"})
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  return (self.parent_path() / "ferry").string();
}

}  // namespace

int main(int argc, char** argv) {
  ferry::use_huge_pages_for_heap();  // it writes and reads images (huge_buffer.hpp)
  po::options_description opts("ferry-agent --coordinator HOST:PORT --node NAME --store DIR [options]");
  opts.add_options()("help,h", "show this help")("coordinator", po::value<std::string>(), "the coordinator's HOST:PORT")(
      "node", po::value<std::string>(), "this node's name in placements (unique in the cluster)")(
      "store", po::value<std::string>(), "the shared job store (the same directory on every node)")(
      "cluster-secret", po::value<std::string>()->default_value(proto::kDefaultClusterSecret),
      "root-only file holding the secret shared with the coordinator")(
      "log-dir", po::value<std::string>(), "directory of agent-NODE.log (default: STORE/logs)")(
      "ferry", po::value<std::string>()->default_value(""), "the ferry command (default: $FERRY_CLI_PATH, else beside ferry-agent)")(
      "mpi-host", po::value<std::string>()->default_value(""),
      "MPI jobs: this node's name or address in mpirun's --host list (default: the hostname)")(
      "debug", "log debug lines to the log file");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "ferry-agent: " << e.what() << "\n" << opts;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  for (const char* required : {"coordinator", "node", "store"})
    if (!vm.count(required)) {
      std::cerr << "ferry-agent: --" << required << " is required\n" << opts;
      return kExitUsage;
    }
  std::string coord = vm["coordinator"].as<std::string>();
  auto colon = coord.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == coord.size()) {
    std::cerr << "ferry-agent: --coordinator must be HOST:PORT, not '" << coord << "'\n";
    return kExitUsage;
  }
  std::string store = std::filesystem::absolute(vm["store"].as<std::string>()).lexically_normal().string();
  if (!store.empty() && store.size() > 1 && store.back() == '/') store.pop_back();
  const std::string node = vm["node"].as<std::string>();
  auto secret = proto::read_secret(vm["cluster-secret"].as<std::string>());
  if (!secret) {
    std::cerr << "ferry-agent: cluster secret: " << secret.error().message() << "\n";
    return kExitConfig;
  }
  std::string log_dir = vm.count("log-dir") ? vm["log-dir"].as<std::string>() : store + "/logs";
  if (auto r = fs::make_dirs(log_dir, 0700); !r) {
    std::cerr << "ferry-agent: log directory: " << r.error().message() << "\n";
    return kExitConfig;
  }
  try {
    agent::init_logging(node, log_dir + "/agent-" + node + ".log",
                        vm.count("debug") ? agent::Severity::debug : agent::Severity::info);
  } catch (const std::exception& e) {
    std::cerr << "ferry-agent: " << e.what() << "\n";
    return kExitConfig;
  }

  ::signal(SIGPIPE, SIG_IGN);
  boost::asio::io_context io;
  agent::SessionConfig cfg;
  cfg.node = node;
  cfg.store = store;
  cfg.ferry = find_ferry(vm["ferry"].as<std::string>());
  agent::LinkConfig link{coord.substr(0, colon), coord.substr(colon + 1), node, *secret,
                         vm["mpi-host"].as<std::string>()};
  if (link.host.size() > 2 && link.host.front() == '[' && link.host.back() == ']')
    link.host = link.host.substr(1, link.host.size() - 2);  // [::1]:7000
  agent::Session session(io, cfg, link);
  boost::asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  stop_signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    agent::log(agent::Severity::info, "agent.main", {}, "signal " + std::to_string(sig) + ": stopping (ranks keep running)");
    session.stop();
    io.stop();
  });
  agent::log(agent::Severity::info, "agent.main", {},
             "ferry-agent " FERRY_VERSION " pid " + std::to_string(::getpid()) + " node " + node + ", coordinator " +
                 coord + ", store " + store + ", ferry " + cfg.ferry);
  session.start();
  io.run();
  return 0;
}
