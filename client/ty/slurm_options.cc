// The Slurm shims' own small getopt, their error exits and list values.
#include <cctype>
#include <iostream>
#include <sstream>

#include "slurm_shim.h"

namespace trainyard::ty::slurm {

Result<Parsed> parse_options(const std::vector<std::string>& args, const std::vector<Opt>& table) {
  Parsed out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.positionals.insert(out.positionals.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.rfind("--", 0) == 0) {
      auto eq = a.find('=');
      std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const Opt* o = nullptr;
      for (auto& t : table) {
        if (t.long_name == name) o = &t;
      }
      if (!o) return Status::invalid("unrecognized option '--" + name + "'");
      std::string v;
      if (o->value) {
        if (eq != std::string::npos) {
          v = a.substr(eq + 1);
        } else if (i + 1 < args.size()) {
          v = args[++i];
        } else {
          return Status::invalid("option '--" + name + "' requires an argument");
        }
      } else if (eq != std::string::npos) {
        return Status::invalid("option '--" + name + "' doesn't allow an argument");
      }
      out.opts[o->long_name].push_back(v);
      continue;
    }
    if (a.size() >= 2 && a[0] == '-') {
      for (size_t k = 1; k < a.size(); ++k) {
        const Opt* o = nullptr;
        for (auto& t : table) {
          if (t.short_name == a[k]) o = &t;
        }
        if (!o) return Status::invalid("invalid option -- '" + std::string(1, a[k]) + "'");
        if (!o->value) {
          out.opts[o->long_name].push_back("");
          continue;
        }
        if (k + 1 < a.size()) {
          out.opts[o->long_name].push_back(a.substr(k + 1));
        } else if (i + 1 < args.size()) {
          out.opts[o->long_name].push_back(args[++i]);
        } else {
          return Status::invalid("option requires an argument -- '" + std::string(1, a[k]) + "'");
        }
        break;
      }
      continue;
    }
    out.positionals.push_back(a);
  }
  return out;
}

std::vector<std::string> split_list(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<std::string> all_values(const Parsed& p, const std::string& name) {
  std::vector<std::string> out;
  if (!p.has(name)) return out;
  for (auto& v : p.opts.at(name)) {
    for (auto& item : split_list(v)) out.push_back(item);
  }
  return out;
}

int usage_error(const std::string& cmd, const Status& s) {
  std::cerr << cmd << ": error: " << s.message() << "\n";
  return kExitUsage;
}

int service_error(const std::string& cmd, const Status& s) {
  std::cerr << cmd << ": error: " << s.message() << "\n";
  if (s.code() == ErrorCode::InvalidArgument) return kExitUsage;  // a spec the scheduler refused
  return s.code() == ErrorCode::Unavailable ? kExitUnavailable : kSlurmError;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace trainyard::ty::slurm
