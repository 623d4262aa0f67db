// SPDX-License-Identifier: Apache-2.0
// Option parsing shared by the subcommands (Boost.Program_options), and the `--` split.
#pragma once

#include <boost/program_options.hpp>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"

namespace ferry::cli {

namespace po = boost::program_options;

// Splits ARGS at the first "--": what comes before (ferry's options) and after (the program).
std::pair<Args, Args> split_at_dashdash(const Args& args);

// Parses `args` into `vm`. Prints the error and usage on failure and returns false.
bool parse(const char* command, const Args& args, const po::options_description& opts,
           const po::positional_options_description& pos, po::variables_map& vm);

template <typename T>
std::optional<T> opt(const po::variables_map& vm, const char* name) {
  if (!vm.count(name)) return std::nullopt;
  return vm[name].as<T>();
}

// Prints "ferry: MESSAGE" on stderr.
void complain(const std::string& message);

}  // namespace ferry::cli
