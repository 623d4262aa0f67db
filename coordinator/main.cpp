// SPDX-License-Identifier: Apache-2.0
// ferry-coordinator: the cluster's coordinator daemon.
//   ferry-coordinator --listen HOST:PORT --state DIR --store DIR [--cluster-secret FILE]
// Opens DIR/state.db, recovers what a previous instance left (rounds in flight, running
// jobs), listens, and runs one Asio loop until SIGTERM/SIGINT. Startup errors print one
// "ferry-coordinator: ..." line and exit 78 (configuration) or 71 (system).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "session.hpp"  // includes Asio the Boost 1.74 way (see there)
#include <boost/program_options.hpp>
#include <iostream>

#include "coordinator.hpp"
#include "ferry/common/fs.hpp"
#include "listener.hpp"
#include "local_mode.hpp"
#include "log.hpp"

namespace po = boost::program_options;
using namespace ferry;
using namespace ferry::coord;

namespace {

int die(int code, const std::string& msg) {
  std::cerr << "ferry-coordinator: " << msg << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description opts("ferry-coordinator --listen HOST:PORT --state DIR --store DIR [options]");
  opts.add_options()("help,h", "show this help")("listen", po::value<std::string>()->default_value("127.0.0.1:7420"),
                                                 "address to accept agents and users on (port 0: any; the port is printed)")(
      "state", po::value<std::string>(), "directory of the state database and coordinator.log")(
      "store", po::value<std::string>(), "the shared job store (every node mounts it)")(
      "cluster-secret", po::value<std::string>()->default_value(proto::kDefaultClusterSecret),
      "root-only file with the secret shared with the agents")(
      "user-secrets", po::value<std::string>(), "read uid U's secret from DIR/U instead of ~U/.ferry/secret")(
      "heartbeat-ms", po::value<unsigned>()->default_value(2000), "agents' heartbeat interval")(
      "lost-after-ms", po::value<unsigned>()->default_value(10000), "an agent silent this long is lost")(
      "node-down-after-s", po::value<unsigned>()->default_value(60),
      "an MPI job whose non-head node's agent stays lost this long ends (node down)")(
      "dump-timeout-s", po::value<unsigned>()->default_value(1800), "deadline of a round's dump phase")(
      "step-timeout-s", po::value<unsigned>()->default_value(30), "deadline of the other round phases")(
      "debug", "log debug lines too")(
      "user-secret", po::value<std::string>(), "the secret file of the uid this coordinator runs as (embedded mode)")(
      "job-address", po::value<std::string>(), "what job.json records as the coordinator (default HOST:PORT bound)")(
      "address-file", po::value<std::string>(), "write HOST:PORT into FILE once listening (removed at an idle exit)")(
      "spawn-agent", po::value<std::string>(), "start a ferry-agent for node NAME as a child (embedded mode)")(
      "agent", po::value<std::string>(), "the ferry-agent binary for --spawn-agent")(
      "ferry", po::value<std::string>(), "the ferry command the spawned agent runs per rank")(
      "idle-exit-s", po::value<unsigned>(), "exit after this many seconds with no job running and no client "
                                            "holding --idle-lock (embedded mode)")(
      "idle-lock", po::value<std::string>(), "the clients' lock file for --idle-exit-s");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "ferry-coordinator: " << e.what() << "\n" << opts;
    return 64;
  }
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  if (!vm.count("state") || !vm.count("store")) return die(64, "--state and --store are required");
  std::string listen = vm["listen"].as<std::string>();
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return die(64, "--listen wants HOST:PORT");
  std::string host = listen.substr(0, colon);
  unsigned long port = std::strtoul(listen.c_str() + colon + 1, nullptr, 10);
  if (port > 65535) return die(64, "bad port in --listen");

  std::string state_dir = vm["state"].as<std::string>();
  if (auto r = fs::make_dirs(state_dir, 0700); !r) return die(71, r.error().message());
  try {
    init_logging(state_dir + "/coordinator.log", vm.count("debug") ? Severity::debug : Severity::info);
  } catch (const std::exception& e) {
    return die(71, e.what());
  }
  CoordinatorConfig cfg;
  auto secret = proto::read_secret(vm["cluster-secret"].as<std::string>());
  if (!secret) return die(78, "cluster secret: " + secret.error().message());
  cfg.cluster_secret = *secret;
  if (vm.count("user-secrets")) cfg.user_secret_dir = vm["user-secrets"].as<std::string>();
  if (vm.count("user-secret")) cfg.own_user_secret = vm["user-secret"].as<std::string>();
  if (vm.count("idle-exit-s") != vm.count("idle-lock")) return die(64, "--idle-exit-s and --idle-lock go together");
  if (vm.count("spawn-agent") && !vm.count("agent")) return die(64, "--spawn-agent needs --agent PATH");
  cfg.heartbeat = std::chrono::milliseconds(vm["heartbeat-ms"].as<unsigned>());
  cfg.lost_after = std::chrono::milliseconds(vm["lost-after-ms"].as<unsigned>());
  cfg.node_down_after = std::chrono::seconds(vm["node-down-after-s"].as<unsigned>());
  cfg.dump_timeout = std::chrono::seconds(vm["dump-timeout-s"].as<unsigned>());
  cfg.prepare_timeout = cfg.quiesce_timeout = cfg.finish_timeout =
      std::chrono::seconds(vm["step-timeout-s"].as<unsigned>());

  auto db = StateDb::open(state_dir + "/state.db");
  if (!db) return die(71, db.error().message());
  boost::asio::io_context io;
  auto store = GenerationStore::open(vm["store"].as<std::string>(), listen);
  if (!store) return die(71, store.error().message());
  Coordinator coord(io, cfg, std::move(*db), std::move(*store));
  Listener listener(io, coord);
  if (auto r = listener.listen(host, static_cast<std::uint16_t>(port)); !r) return die(71, r.error().message());
  // The job.json of coordinator jobs names where to find us (the port actually bound).
  const std::string bound = host + ":" + std::to_string(listener.port());
  coord.set_address(vm.count("job-address") ? vm["job-address"].as<std::string>() : bound);
  if (auto r = coord.recover(); !r) return die(71, "recover state: " + r.error().message());
  ::signal(SIGPIPE, SIG_IGN);
  boost::asio::signal_set stop(io, SIGTERM, SIGINT);
  stop.async_wait([&](boost::system::error_code, int sig) {
    log(Severity::info, "coord.main", {}, "signal " + std::to_string(sig) + ": stopping");
    io.stop();
  });
  if (vm.count("address-file"))
    if (auto r = fs::write_file_atomic(vm["address-file"].as<std::string>(), bound + "\n", 0600); !r)
      return die(71, r.error().message());
  // Embedded mode: this machine's agent is our child; it gets SIGTERM when we end.
  pid_t agent = -1;
  if (vm.count("spawn-agent")) {
    std::vector<std::string> argv{vm["agent"].as<std::string>(), "--coordinator", bound, "--node",
                                  vm["spawn-agent"].as<std::string>(), "--store", vm["store"].as<std::string>(),
                                  "--cluster-secret", vm["cluster-secret"].as<std::string>()};
    if (vm.count("ferry")) argv.insert(argv.end(), {"--ferry", vm["ferry"].as<std::string>()});
    agent = spawn_child(argv, state_dir + "/agent.out");
    if (agent < 0) return die(71, "start the agent: " + std::string(std::strerror(errno)));
    log(Severity::info, "coord.main", {}, "agent for node " + vm["spawn-agent"].as<std::string>() + " started (pid " +
                                              std::to_string(agent) + ")");
  }
  std::unique_ptr<IdleExit> idle;
  if (vm.count("idle-exit-s")) {
    idle = std::make_unique<IdleExit>(
        io, std::chrono::seconds(vm["idle-exit-s"].as<unsigned>()), vm["idle-lock"].as<std::string>(),
        vm.count("address-file") ? vm["address-file"].as<std::string>() : "", [&coord] { return coord.busy(); },
        [&io] { io.stop(); });
    idle->start();
  }
  log(Severity::info, "coord.main", {}, "listening on " + bound + " (pid " + std::to_string(::getpid()) + ")");
  std::cout << "listening " << bound << std::endl;
  io.run();
  if (agent > 0) {
    ::kill(agent, SIGTERM);
    for (int i = 0; i < 100 && ::waitpid(agent, nullptr, WNOHANG) == 0; ++i) ::usleep(50 * 1000);
    if (::waitpid(agent, nullptr, WNOHANG) == 0) {
      ::kill(agent, SIGKILL);
      ::waitpid(agent, nullptr, 0);
    }
  }
  return 0;
}
