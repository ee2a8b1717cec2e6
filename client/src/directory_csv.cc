// A directory as CSV: a header naming columns among user, account, default,
// coordinator, roles, then one row per membership (an LDAP group export,
// `sacctmgr -P list assoc format=user,account`, whose '|' separator is read
// too). Every error names the file, the line and the column.
#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <sstream>

#include "directory_draft.h"
#include "trainyard/directory_file.h"

namespace trainyard::client {
namespace {

constexpr const char* kColumns = "user, account, default, coordinator, roles";

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One line's fields; "a ""quoted"" field" and separators inside quotes as
// RFC 4180 writes them. Empty when a quote is never closed.
std::optional<std::vector<std::string>> split_fields(std::string_view line, char sep) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      out.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == sep && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  if (quoted) return std::nullopt;
  for (auto& f : out) f = trim(f);
  return out;
}

class CsvReader {
 public:
  CsvReader(const std::string& file, DirectoryDraft& draft) : file_(file), draft_(draft) {}

  Status error(int line, const std::string& what) const {
    return Status::invalid(file_ + " line " + std::to_string(line) + ": " + what);
  }

  Status header(int line, const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      std::string name = lower(cells[i]);
      if (name.empty() && i + 1 == cells.size() && i > 0) continue;  // sacctmgr -p ends each line with '|'
      if (name != "user" && name != "account" && name != "default" && name != "coordinator" && name != "roles") {
        return error(line, "unknown column '" + cells[i] + "' (columns: " + kColumns + ")");
      }
      if (!column_.emplace(name, i).second) return error(line, "column '" + name + "' appears twice");
    }
    width_ = cells.size();
    for (const char* needed : {"user", "account"}) {
      if (!column_.count(needed)) {
        return error(line, std::string("no '") + needed + "' column: the header names user and account (and "
                                                          "optionally default, coordinator, roles)");
      }
    }
    return Status::success();
  }

  Status row(int line, const std::vector<std::string>& cells) const {
    if (cells.size() != width_) {
      return error(line, std::to_string(cells.size()) + " fields where the header has " + std::to_string(width_));
    }
    auto cell = [&](const char* name) {
      auto it = column_.find(name);
      return it == column_.end() ? std::string() : cells[it->second];
    };
    std::string user = cell("user"), account = cell("account");
    if (account.empty()) return error(line, "column 'account' is empty");
    if (auto s = check_directory_name("account", account); !s) return error(line, "column 'account': " + s.message());
    auto is_default = yes_no(line, "default", cell("default"));
    if (!is_default) return is_default.status();
    auto coordinator = yes_no(line, "coordinator", cell("coordinator"));
    if (!coordinator) return coordinator.status();
    std::string roles = cell("roles");
    if (user.empty()) {  // an account's own row (sacctmgr lists one per account)
      if (*is_default || *coordinator || !roles.empty()) {
        return error(line, "column 'user' is empty, yet default, coordinator or roles is set");
      }
      draft_.add_account(account);
      return Status::success();
    }
    if (auto s = check_directory_name("user", user); !s) return error(line, "column 'user': " + s.message());
    draft_.add_member(user, account);
    if (*is_default) {
      if (auto s = draft_.set_default(user, account); !s) return error(line, "column 'default': " + s.message());
    }
    if (*coordinator) draft_.add_coordinator(account, user);
    return read_roles(line, user, account, roles);
  }

 private:
  Result<bool> yes_no(int line, const char* column, const std::string& v) const {
    std::string s = lower(v);
    if (s.empty() || s == "no" || s == "false" || s == "0" || s == "n") return false;
    if (s == "yes" || s == "true" || s == "1" || s == "y") return true;
    return error(line, std::string("column '") + column + "': '" + v +
                           "' is not yes, no, true, false, 1, 0 or empty");
  }

  // "admin;operator": coordinator means of this row's account.
  Status read_roles(int line, const std::string& user, const std::string& account, const std::string& roles) const {
    std::istringstream in(roles);
    for (std::string r; std::getline(in, r, ';');) {
      r = lower(trim(r));
      if (r.empty()) continue;
      if (auto s = check_role(r); !s) return error(line, "column 'roles': " + s.message());
      if (r == "coordinator") draft_.add_coordinator(account, user);
      else draft_.add_role(user, r);
    }
    return Status::success();
  }

  const std::string& file_;
  DirectoryDraft& draft_;
  std::map<std::string, size_t> column_;
  size_t width_ = 0;
};

}  // namespace

Result<DirectoryDraft> read_directory_csv(std::string_view text, const std::string& name) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a spreadsheet's byte-order mark
  DirectoryDraft draft;
  CsvReader reader(name, draft);
  std::istringstream in{std::string(text)};
  char sep = 0;
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    bool first = sep == 0;
    if (first) sep = t.find(',') == std::string::npos && t.find('|') != std::string::npos ? '|' : ',';
    auto cells = split_fields(t, sep);
    if (!cells) return reader.error(n, "a quote (\") is never closed");
    if (auto s = first ? reader.header(n, *cells) : reader.row(n, *cells); !s) return s;
  }
  if (sep == 0) return Status::invalid(name + ": is empty (a CSV file starts with a header: " + kColumns + ")");
  return draft;
}

}  // namespace trainyard::client
