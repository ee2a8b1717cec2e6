// What a directory file says, before it becomes ops: users in the order
// first named, their accounts, default and roles; accounts and their
// coordinators. The TOML and CSV readers fill one; ops() emits the
// EditDirectory ops in the order the billing service accepts them.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "trainyard/fb/directory_generated.h"
#include "util/status.h"

namespace trainyard::client {

class DirectoryDraft {
 public:
  // Adds (once) and returns nothing: names are checked by the readers.
  void add_user(const std::string& user);
  void add_account(const std::string& account);
  void add_member(const std::string& user, const std::string& account);  // adds both
  void add_role(const std::string& user, const std::string& role);        // admin, operator
  void add_coordinator(const std::string& account, const std::string& user);  // a member too
  // The user's default account (a member of it); FailedPrecondition with
  // the account already set when it is another.
  Status set_default(const std::string& user, const std::string& account);

  std::vector<fb::DirectoryOpT> ops() const;

 private:
  struct User {
    std::string name, default_account;
    std::vector<std::string> accounts, roles;
  };
  struct Account {
    std::string name;
    std::vector<std::string> coordinators;
  };
  User& user(const std::string& name);
  Account& account(const std::string& name);

  std::vector<User> users_;
  std::vector<Account> accounts_;
  std::map<std::string, size_t, std::less<>> user_at_, account_at_;
};

// The readers: `name` stands for the file in messages.
Result<DirectoryDraft> read_directory_toml(std::string_view text, const std::string& name);
Result<DirectoryDraft> read_directory_csv(std::string_view text, const std::string& name);

}  // namespace trainyard::client
