// A directory as TOML: [users.NAME] default_account, accounts, roles and
// [accounts.NAME] members, coordinators (docs/directory.md). Every error
// names the file, the line and the field.
#include <toml++/toml.h>

#include "directory_draft.h"
#include "trainyard/directory_file.h"

namespace trainyard::client {
namespace {

class TomlReader {
 public:
  TomlReader(const std::string& file, DirectoryDraft& draft) : file_(file), draft_(draft) {}

  Status error(const toml::node& at, const std::string& field, const std::string& what) const {
    return Status::invalid(file_ + " line " + std::to_string(at.source().begin.line) + ": field '" + field + "' " +
                           what);
  }

  // A table of NAME = table, each read by `one`.
  template <typename ReadOne>
  Status tables(const toml::node& node, const std::string& field, ReadOne one) const {
    auto* t = node.as_table();
    if (!t) return error(node, field, "must be a table of [" + field + ".NAME] tables");
    for (auto&& [k, v] : *t) {
      std::string name(k.str());
      std::string path = field + "." + name;
      if (auto s = check_directory_name(field == "users" ? "user" : "account", name); !s) {
        return error(v, path, "names " + s.message());
      }
      if (!v.is_table()) return error(v, path, "must be a table ([" + path + "])");
      if (auto s = one(name, path, *v.as_table()); !s) return s;
    }
    return Status::success();
  }

  // An array of user or account names.
  Result<std::vector<std::string>> names(const toml::node& node, const std::string& field, const char* what) const {
    auto* a = node.as_array();
    if (!a) return error(node, field, std::string("must be an array of ") + what + " names");
    std::vector<std::string> out;
    for (auto& item : *a) {
      auto s = item.value<std::string>();
      if (!item.is_string() || !s) return error(item, field, std::string("must hold only ") + what + " names (strings)");
      if (auto ok = check_directory_name(what, *s); !ok) return error(item, field, "holds " + ok.message());
      out.push_back(*s);
    }
    return out;
  }

  Status user(const std::string& name, const std::string& path, const toml::table& t) const {
    draft_.add_user(name);
    for (auto&& [k, v] : t) {
      std::string key(k.str()), field = path + "." + key;
      if (key == "accounts") {
        auto accounts = names(v, field, "account");
        if (!accounts) return accounts.status();
        for (auto& a : *accounts) draft_.add_member(name, a);
      } else if (key == "default_account") {
        auto s = v.value<std::string>();
        if (!v.is_string() || !s) return error(v, field, "must be an account name (a string)");
        if (auto ok = check_directory_name("account", *s); !ok) return error(v, field, "names " + ok.message());
        (void)draft_.set_default(name, *s);  // one key: never set twice
      } else if (key == "roles") {
        if (auto s = roles(name, field, v); !s) return s;
      } else {
        return error(v, field, "is not a user field (default_account, accounts, roles)");
      }
    }
    return Status::success();
  }

  Status roles(const std::string& user, const std::string& field, const toml::node& v) const {
    auto* a = v.as_array();
    if (!a) return error(v, field, "must be an array of roles (\"admin\", \"operator\")");
    for (auto& item : *a) {
      auto r = item.value<std::string>();
      if (!item.is_string() || !r) return error(item, field, "must hold only roles (strings: \"admin\", \"operator\")");
      if (*r == "coordinator") {
        return error(item, field, "holds 'coordinator', which is of an account: list the user in [accounts.NAME] "
                                  "coordinators");
      }
      if (*r != "admin" && *r != "operator") {
        return error(item, field, "holds unknown role '" + *r + "' (admin, operator; coordinators are per account)");
      }
      draft_.add_role(user, *r);
    }
    return Status::success();
  }

  Status account(const std::string& name, const std::string& path, const toml::table& t) const {
    draft_.add_account(name);
    for (auto&& [k, v] : t) {
      std::string key(k.str()), field = path + "." + key;
      if (key != "members" && key != "coordinators") {
        return error(v, field, "is not an account field (members, coordinators)");
      }
      auto users = names(v, field, "user");
      if (!users) return users.status();
      for (auto& u : *users) {
        if (key == "members") draft_.add_member(u, name);
        else draft_.add_coordinator(name, u);
      }
    }
    return Status::success();
  }

 private:
  const std::string& file_;
  DirectoryDraft& draft_;
};

}  // namespace

Result<DirectoryDraft> read_directory_toml(std::string_view text, const std::string& name) {
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return Status::invalid(name + " line " + std::to_string(e.source().begin.line) + ": not valid TOML: " +
                           std::string(e.description()));
  }
  DirectoryDraft draft;
  TomlReader r(name, draft);
  for (auto&& [k, v] : root) {
    std::string key(k.str());
    Status s;
    if (key == "users") {
      s = r.tables(v, key, [&r](auto& n, auto& p, auto& t) { return r.user(n, p, t); });
    } else if (key == "accounts") {
      s = r.tables(v, key, [&r](auto& n, auto& p, auto& t) { return r.account(n, p, t); });
    } else {
      s = r.error(v, key, "is not a directory field ([users.NAME], [accounts.NAME])");
    }
    if (!s) return s;
  }
  return draft;
}

}  // namespace trainyard::client
