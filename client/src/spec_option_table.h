// The table of submission options (private to client/src): each option as
// sbatch spells it (plus a few of ty's own), what kind it is, and the handler
// that applies it to a SpecBuilder. spec_option_table.cc holds the table;
// spec_options.cc looks options up in it.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "trainyard/job_spec.h"

namespace trainyard::client {

using ArgKind = OptionArg;
enum class OptionKind {
  kSpec,      // changes the spec
  kIgnored,   // a Slurm option with no meaning here: accepted with a warning
  kRefused,   // a Slurm option whose meaning Trainyard cannot honour
};

struct OptionDef {
  std::string_view long_name;
  char short_name;
  ArgKind arg;
  OptionKind kind;
  std::string_view help;  // for kRefused: why
  Status (*apply)(SpecBuilder&, const std::string&);  // kSpec only
};

// Friend of SpecBuilder: holds the table whose handlers fill it in.
struct OptionTable {
  // Every option, in the order --help lists them and a short name or a
  // long prefix is looked up.
  static std::span<const OptionDef> get();

 private:
  static const OptionDef kOptions[];
};

}  // namespace trainyard::client
