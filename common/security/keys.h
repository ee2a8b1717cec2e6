// CURVE keys and the principals they stand for.
//
// A principal names who is at the other end of a connection:
// "service:<instance>", "agent:<node>" or "user:<name>". Every key file
// holds one principal's keypair; the site's authorized-keys file lists
// the public key of every principal the site trusts, one per line
// ("service:scheduler <z85 public key>"), so the same file tells a server
// who a client is (the ZAP handler) and tells a client which key the
// server it dials must prove it holds.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace trainyard::security {

// A CURVE keypair in Z85 (40 characters each).
struct KeyPair {
  std::string public_key;
  std::string secret_key;
};

// One principal and its keypair: what a key file holds.
struct Identity {
  std::string principal;
  KeyPair keys;
};

// A fresh keypair from libzmq (libsodium underneath).
KeyPair generate_keypair();

// "service:NAME", "agent:NAME" or "user:NAME" with NAME 1-64 of
// [A-Za-z0-9._-]; InvalidArgument names what is wrong otherwise.
Status check_principal(std::string_view principal);
// The part after the colon: "agent:node-a" -> "node-a".
std::string_view principal_name(std::string_view principal);
std::string_view principal_kind(std::string_view principal);  // "agent"
// A Z85 public or secret key: 40 characters of the Z85 alphabet.
Status check_z85_key(std::string_view key, std::string_view what);

// Reads a key file. Refuses a file that group or others may read or write
// (as ssh does: "bad permissions"), one that is not a regular file, and one
// whose keys do not belong together.
Result<Identity> read_identity(const std::filesystem::path& path);
// Writes a key file with mode 0600 (a temporary file, then a rename), and
// its public line next to it as PATH with ".pub" instead of ".key".
Status write_identity(const std::filesystem::path& path, const Identity& identity);
// A key file's text (what write_identity writes and read_identity reads).
std::string format_identity(const Identity& identity);
// "service:scheduler Z85PUBLICKEY": one line of an authorized-keys file.
std::string public_line(const Identity& identity);

// The site's authorized keys: principal <-> public key, both ways unique.
class Keyring {
 public:
  // Parses the authorized-keys format: one "PRINCIPAL KEY" per line, '#'
  // comments and blank lines ignored. InvalidArgument names `source`, the
  // line and what is wrong (a malformed key, a principal listed twice, a
  // key given to two principals, or an instance name that a service and an
  // agent both claim: streams are named by instance alone).
  static Result<Keyring> parse(std::string_view text, std::string_view source);
  static Result<Keyring> read(const std::filesystem::path& path);

  std::optional<std::string> principal_of(std::string_view public_key) const;
  std::optional<std::string> key_of(std::string_view principal) const;
  // The publisher principal ("service:X" or "agent:X") whose instance is X.
  std::optional<std::string> publisher(std::string_view instance) const;
  size_t size() const { return by_principal_.size(); }
  const std::map<std::string, std::string, std::less<>>& principals() const { return by_principal_; }

 private:
  std::map<std::string, std::string, std::less<>> by_principal_;  // principal -> key
  std::map<std::string, std::string, std::less<>> by_key_;        // key -> principal
  std::map<std::string, std::string, std::less<>> by_instance_;   // instance -> service:/agent: principal
};

// Renders a keyring back to the authorized-keys format (sorted).
std::string format_keyring(const std::map<std::string, std::string, std::less<>>& principals);

}  // namespace trainyard::security
