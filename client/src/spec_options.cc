// Looking up the options of a submission (spec_option_table.cc's table), and
// the SpecBuilder that applies them to a JobSpec. The same table serves
// #SBATCH directives and `ty submit` flags, so both mean the same.
#include <string>

#include "spec_option_table.h"
#include "trainyard/job_spec.h"

namespace trainyard::client {

namespace {

// Finds an option by exact long name, unique long prefix, or short name.
Result<const OptionDef*> find_option(std::string_view name) {
  auto table = OptionTable::get();
  if (name.size() == 1) {
    for (auto& d : table) {
      if (d.short_name == name[0]) return &d;
    }
    return Status::invalid("unknown option -" + std::string(name));
  }
  const OptionDef* prefix_match = nullptr;
  int prefix_matches = 0;
  for (auto& d : table) {
    if (d.long_name == name) return &d;
    if (d.long_name.substr(0, name.size()) == name) {
      prefix_match = &d;
      ++prefix_matches;
    }
  }
  if (prefix_matches == 1) return prefix_match;
  if (prefix_matches > 1) return Status::invalid("option --" + std::string(name) + " is ambiguous");
  return Status::invalid("unknown option --" + std::string(name));
}

std::string dashed(const OptionDef& d) { return "--" + std::string(d.long_name); }

}  // namespace

std::optional<OptionArg> spec_option_arg(std::string_view name) {
  auto d = find_option(name);
  if (!d) return std::nullopt;
  return (*d)->arg;
}

std::string spec_options_help() {
  std::string out;
  for (const auto& d : OptionTable::get()) {
    if (d.kind != OptionKind::kSpec) continue;
    std::string flag = d.short_name ? std::string("-") + d.short_name + ", " : "    ";
    flag += dashed(d);
    auto help = std::string(d.help);
    std::string arg;
    if (d.arg != ArgKind::kNone) {
      auto sp = help.find("  ");
      if (sp != std::string::npos) {
        arg = help.substr(0, sp);
        help = help.substr(sp + 2);
      }
      flag += d.arg == ArgKind::kOptional ? "[=" + arg + "]" : " " + arg;
    }
    out += "  " + flag;
    out += flag.size() < 34 ? std::string(34 - flag.size(), ' ') : std::string("\n") + std::string(36, ' ');
    out += help + "\n";
  }
  out += "  (other sbatch options such as --reservation, --licenses or --hint are accepted and ignored, with a warning)\n";
  return out;
}

SpecBuilder::SpecBuilder(SubmitContext ctx) : ctx_(std::move(ctx)) {}

Status SpecBuilder::apply(const SpecOption& option) {
  auto where = option.where.empty() ? std::string() : option.where + ": ";
  auto found = find_option(option.name);
  if (!found) return Status::invalid(where + found.status().message());
  const OptionDef& d = **found;
  if (d.arg == ArgKind::kRequired && !option.value) {
    return Status::invalid(where + "option " + dashed(d) + " needs a value");
  }
  if (d.arg == ArgKind::kNone && option.value) {
    return Status::invalid(where + "option " + dashed(d) + " takes no value (got '" + *option.value + "')");
  }
  switch (d.kind) {
    case OptionKind::kIgnored:
      request_.warnings.push_back({option.where, "option " + dashed(d) + " has no meaning in Trainyard and is ignored"});
      return Status::success();
    case OptionKind::kRefused:
      return Status::invalid(where + "option " + dashed(d) + " is not supported: " + std::string(d.help));
    case OptionKind::kSpec:
      break;
  }
  where_ = option.where;
  auto s = d.apply(*this, option.value.value_or(""));
  if (!s) return Status(s.code(), where + s.message());
  return s;
}

}  // namespace trainyard::client
