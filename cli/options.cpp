// SPDX-License-Identifier: Apache-2.0
#include "options.hpp"

#include <iostream>

namespace ferry::cli {

std::pair<Args, Args> split_at_dashdash(const Args& args) {
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--") return {Args(args.begin(), args.begin() + i), Args(args.begin() + i + 1, args.end())};
  return {args, {}};
}

bool parse(const char* command, const Args& args, const po::options_description& opts,
           const po::positional_options_description& pos, po::variables_map& vm) {
  try {
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
    po::notify(vm);
    return true;
  } catch (const std::exception& e) {
    std::cerr << "ferry " << command << ": " << e.what() << "\n" << opts;
    return false;
  }
}

void complain(const std::string& message) { std::cerr << "ferry: " << message << "\n"; }

}  // namespace ferry::cli
