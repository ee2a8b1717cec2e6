// Command lines and batch scripts: splitting options the way sbatch's getopt
// does, reading #SBATCH directives, and putting a whole `ty submit` together.
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "paths.h"
#include "trainyard/job_spec.h"

namespace trainyard::client {

using detail::absolute;
using detail::basename_of;

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid("cannot read " + path + ": no such file or not readable");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// Splits a directive's text into words: whitespace separates, quotes group,
// a '#' at the start of a word begins a comment.
Result<std::vector<std::string>> words_of(std::string_view text, const std::string& where) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : text) {
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        cur += c;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else if (c == '#' && !in_word) {
      break;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) return Status::invalid(where + ": unbalanced " + std::string(1, quote) + " quote");
  if (in_word) out.push_back(std::move(cur));
  return out;
}

// Adds an option as the command line gave it: an extra (by its long name)
// or a spec option (by the name given).
void add_option(SplitCommandLine& out, const ExtraOption* extra, const std::string& name,
                std::optional<std::string> value) {
  (extra ? out.extra_options : out.spec_options)
      .push_back(SpecOption{extra ? extra->long_name : name, std::move(value), "command line"});
}

// What a long option's name means. `extra` is null for a spec option;
// `name` is the extra's whole name when a prefix named it.
struct LongOption {
  const ExtraOption* extra = nullptr;
  OptionArg arg = OptionArg::kNone;
  std::string name;
};

// Extras by exact name, then spec options (exact or prefix), then
// unique prefixes of extras.
Result<LongOption> find_long_option(std::string name, const std::vector<ExtraOption>& extras) {
  const ExtraOption* extra = nullptr;
  for (auto& e : extras) {
    if (e.long_name == name) extra = &e;
  }
  if (extra) return LongOption{extra, extra->arg, std::move(name)};
  if (auto arg = spec_option_arg(name)) return LongOption{nullptr, *arg, std::move(name)};
  int matches = 0;
  for (auto& e : extras) {
    if (e.long_name.rfind(name, 0) == 0) {
      extra = &e;
      ++matches;
    }
  }
  if (matches != 1) return Status::invalid("unknown option --" + name);
  return LongOption{extra, extra->arg, extra->long_name};
}

// args[i] is "--name=value", "--name value" or "--flag"; i moves past a
// value taken from the next argument.
Status split_long_option(const std::vector<std::string>& args, size_t& i, const std::vector<ExtraOption>& extras,
                         SplitCommandLine& out) {
  const std::string& a = args[i];
  auto eq = a.find('=');
  std::optional<std::string> value;
  if (eq != std::string::npos) value = a.substr(eq + 1);
  auto found = find_long_option(a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2), extras);
  if (!found) return found.status();
  const std::string& name = found->name;
  if (found->arg == OptionArg::kRequired && !value) {
    if (i + 1 >= args.size()) return Status::invalid("option --" + name + " needs a value");
    value = args[++i];
  }
  if (found->arg == OptionArg::kNone && value) {
    return Status::invalid("option --" + name + " takes no value (got '" + *value + "')");
  }
  add_option(out, found->extra, name, std::move(value));
  return Status::success();
}

// Short options, bundled flags allowed: -H, -Jname, -J name, -Hv; i moves
// past a value taken from the next argument.
Status split_short_options(const std::vector<std::string>& args, size_t& i, const std::vector<ExtraOption>& extras,
                           SplitCommandLine& out) {
  const std::string& a = args[i];
  for (size_t k = 1; k < a.size(); ++k) {
    std::string name(1, a[k]);
    const ExtraOption* extra = nullptr;
    for (auto& e : extras) {
      if (e.short_name == a[k]) extra = &e;
    }
    auto arg = extra ? std::optional<OptionArg>(extra->arg) : spec_option_arg(name);
    if (!arg) return Status::invalid("unknown option -" + name);
    if (*arg == OptionArg::kNone) {
      add_option(out, extra, name, std::nullopt);
      continue;
    }
    std::optional<std::string> value;
    if (k + 1 < a.size()) {
      value = a.substr(k + 1);
    } else if (*arg == OptionArg::kRequired) {
      if (i + 1 >= args.size()) return Status::invalid("option -" + name + " needs a value");
      value = args[++i];
    }
    add_option(out, extra, name, std::move(value));
    break;
  }
  return Status::success();
}

}  // namespace

Result<SplitCommandLine> split_command_line(const std::vector<std::string>& args, const std::vector<ExtraOption>& extras) {
  SplitCommandLine out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.positionals.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.rfind("--", 0) == 0) {
      if (auto s = split_long_option(args, i, extras, out); !s) return s;
      continue;
    }
    if (a.size() >= 2 && a[0] == '-') {
      if (auto s = split_short_options(args, i, extras, out); !s) return s;
      continue;
    }
    out.positionals.assign(args.begin() + static_cast<long>(i), args.end());
    break;
  }
  return out;
}

Result<std::vector<SpecOption>> read_directives(std::string_view script, const std::string& path) {
  std::vector<SpecOption> out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < script.size()) {
    auto nl = script.find('\n', pos);
    std::string_view line = script.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? script.size() : nl + 1;
    ++line_no;
    if (line_no == 1 && line.substr(0, 2) == "#!") continue;
    std::string_view body;
    bool directive = false;
    for (std::string_view tag : {std::string_view("#SBATCH"), std::string_view("#TY")}) {
      if (line.substr(0, tag.size()) == tag &&
          (line.size() == tag.size() || line[tag.size()] == ' ' || line[tag.size()] == '\t')) {
        body = line.substr(tag.size());
        directive = true;
      }
    }
    if (!directive) {
      auto first = line.find_first_not_of(" \t\r");
      if (first == std::string_view::npos || line[first] == '#') continue;
      break;  // the first command: directives end here, as in sbatch
    }
    std::string where = path + " line " + std::to_string(line_no);
    auto words = words_of(body, where);
    if (!words) return words.status();
    if (words->empty()) continue;
    auto split = split_command_line(*words);
    std::string quoted = " (in \"" + std::string(line) + "\")";
    if (!split) return Status::invalid(where + ": " + split.status().message() + quoted);
    if (!split->positionals.empty()) {
      return Status::invalid(where + ": '" + split->positionals.front() + "' is not an option" + quoted);
    }
    for (auto& o : split->spec_options) {
      o.where = where;
      out.push_back(std::move(o));
    }
  }
  return out;
}

bool looks_like_batch_script(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  for (auto ext : {".sh", ".sbatch", ".slurm", ".bash"}) {
    if (ends_with(path, ext)) return true;
  }
  std::ifstream in(path, std::ios::binary);
  char head[2] = {0, 0};
  in.read(head, 2);
  return in.gcount() == 2 && head[0] == '#' && head[1] == '!';
}

Result<SubmitArgs> build_job_request(const std::vector<std::string>& args, const SubmitContext& ctx,
                                     const std::vector<ExtraOption>& extras) {
  auto all_extras = extras;
  all_extras.push_back({"file", 0, OptionArg::kRequired});
  auto split = split_command_line(args, all_extras);
  if (!split) return split.status();

  SubmitArgs out;
  for (auto& e : split->extra_options) out.extras[e.name] = e.value.value_or("");
  SpecBuilder builder(ctx);
  if (auto it = out.extras.find("file"); it != out.extras.end()) {
    auto spec = load_spec_file(absolute(ctx.cwd, it->second));
    if (!spec) return spec.status();
    builder.set_base(std::move(*spec));
    out.extras.erase(it);
  }
  const auto& pos = split->positionals;
  if (!pos.empty()) {
    std::string full = absolute(ctx.cwd, pos.front());
    if (looks_like_batch_script(full)) {
      auto text = read_whole_file(full);
      if (!text) return text.status();
      auto directives = read_directives(*text, pos.front());
      if (!directives) return directives.status();
      for (auto& d : *directives) {
        if (auto s = builder.apply(d); !s) return s;
      }
      // Run by its #! interpreter (bash when it has none), with the script's
      // text as of now: the agent runs a copy (JobSpec.script), as sbatch
      // does, so editing the file later changes nothing.
      std::string shebang;
      if (text->rfind("#!", 0) == 0) shebang = text->substr(2, text->find('\n') - 2);
      std::istringstream interp(shebang);
      std::vector<std::string> command;
      for (std::string w; interp >> w;) command.push_back(w);
      if (command.empty()) command.push_back("bash");
      auto script_arg = static_cast<uint32_t>(command.size());
      command.push_back(full);
      command.insert(command.end(), pos.begin() + 1, pos.end());
      builder.set_command(std::move(command));
      builder.set_script(std::move(*text), script_arg);
      builder.set_default_export("ALL");
      builder.set_default_name(basename_of(pos.front()));
      builder.set_batch_script(true);
      out.script_path = full;
    } else {
      builder.set_command(pos);
    }
  }
  for (auto& o : split->spec_options) {
    if (auto s = builder.apply(o); !s) return s;
  }
  auto request = builder.finish();
  if (!request) return request.status();
  out.request = std::move(*request);
  return out;
}

}  // namespace trainyard::client
