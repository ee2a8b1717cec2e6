#include "security/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <zmq.h>

namespace trainyard::security {
namespace {

bool z85_char(char c) {
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  return kAlphabet.find(c) != std::string_view::npos;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

Result<std::string> read_small_file(const std::filesystem::path& path, bool secret) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::not_found(path.string() + ": " + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::invalid(path.string() + ": not a regular file");
  }
  if (secret && (st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::permission_denied(path.string() + ": bad permissions " + mode +
                                     ": a secret key must be readable by its owner only (chmod 600)");
  }
  if (st.st_size > (1 << 20)) {
    ::close(fd);
    return Status::invalid(path.string() + ": over 1 MiB; not a key file");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (n < 0) return Status::unavailable(path.string() + ": " + std::strerror(errno));
  text.resize(static_cast<size_t>(n));
  return text;
}

}  // namespace

KeyPair generate_keypair() {
  std::array<char, 41> pub{}, sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) {
    throw std::runtime_error(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()) +
                             " (libzmq built without CURVE?)");
  }
  return KeyPair{std::string(pub.data(), 40), std::string(sec.data(), 40)};
}

Status check_principal(std::string_view p) {
  auto colon = p.find(':');
  if (colon == std::string_view::npos) {
    return Status::invalid("principal \"" + std::string(p) + "\": expected service:NAME, agent:NAME or user:NAME");
  }
  auto kind = p.substr(0, colon);
  if (kind != "service" && kind != "agent" && kind != "user") {
    return Status::invalid("principal \"" + std::string(p) + "\": kind \"" + std::string(kind) +
                           "\" is none of service, agent, user");
  }
  auto name = p.substr(colon + 1);
  if (name.empty() || name.size() > 64) {
    return Status::invalid("principal \"" + std::string(p) + "\": the name must have 1 to 64 characters");
  }
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return Status::invalid("principal \"" + std::string(p) + "\": the name may hold only letters, digits, '.', '_', '-'");
    }
  }
  return Status::success();
}

std::string_view principal_name(std::string_view p) {
  auto colon = p.find(':');
  return colon == std::string_view::npos ? std::string_view{} : p.substr(colon + 1);
}

std::string_view principal_kind(std::string_view p) {
  auto colon = p.find(':');
  return colon == std::string_view::npos ? std::string_view{} : p.substr(0, colon);
}

Status check_z85_key(std::string_view key, std::string_view what) {
  if (key.size() != 40) {
    return Status::invalid(std::string(what) + ": a key has 40 Z85 characters, this one " + std::to_string(key.size()));
  }
  for (char c : key) {
    if (!z85_char(c)) return Status::invalid(std::string(what) + ": not a Z85 key (character '" + c + "')");
  }
  return Status::success();
}

Result<Identity> read_identity(const std::filesystem::path& path) {
  auto text = read_small_file(path, /*secret=*/true);
  if (!text) return text.status();
  Identity id;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    auto t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto eq = t.find('=');
    if (eq == std::string::npos) return Status::invalid(path.string() + ": expected KEY = VALUE, got \"" + t + "\"");
    auto k = trim(std::string_view(t).substr(0, eq));
    auto v = trim(std::string_view(t).substr(eq + 1));
    if (k == "principal") id.principal = v;
    else if (k == "public") id.keys.public_key = v;
    else if (k == "secret") id.keys.secret_key = v;
    else return Status::invalid(path.string() + ": unknown entry \"" + k + "\" (principal, public, secret)");
  }
  if (auto s = check_principal(id.principal); !s) return Status::invalid(path.string() + ": " + s.message());
  if (auto s = check_z85_key(id.keys.public_key, path.string() + ": public"); !s) return s;
  if (auto s = check_z85_key(id.keys.secret_key, path.string() + ": secret"); !s) return s;
  std::array<char, 41> derived{};
  if (zmq_curve_public(derived.data(), id.keys.secret_key.c_str()) != 0 ||
      std::string_view(derived.data(), 40) != id.keys.public_key) {
    return Status::invalid(path.string() + ": the public key does not belong to the secret key");
  }
  return id;
}

Status write_identity(const std::filesystem::path& path, const Identity& id) {
  if (auto s = check_principal(id.principal); !s) return s;
  auto tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::unavailable(tmp + ": " + std::strerror(errno));
  std::string body = format_identity(id);
  bool ok = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::unavailable(path.string() + ": " + std::strerror(errno));
  }
  auto pub = path;
  pub.replace_extension(".pub");
  std::ofstream(pub) << public_line(id) << "\n";
  return Status::success();
}

std::string format_identity(const Identity& id) {
  return "# Trainyard CURVE key of " + id.principal + ". Keep it secret: mode 0600.\n" + "principal = " + id.principal +
         "\npublic = " + id.keys.public_key + "\nsecret = " + id.keys.secret_key + "\n";
}

std::string public_line(const Identity& id) { return id.principal + " " + id.keys.public_key; }

Result<Keyring> Keyring::parse(std::string_view text, std::string_view source) {
  Keyring ring;
  size_t line_no = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    auto line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    auto where = std::string(source) + ":" + std::to_string(line_no) + ": ";
    auto sp = line.find_first_of(" \t");
    if (sp == std::string::npos) return Status::invalid(where + "expected \"PRINCIPAL KEY\"");
    std::string principal = line.substr(0, sp);
    std::string key = trim(std::string_view(line).substr(sp + 1));
    if (auto s = check_principal(principal); !s) return Status::invalid(where + s.message());
    if (auto s = check_z85_key(key, principal); !s) return Status::invalid(where + s.message());
    if (ring.by_principal_.count(principal)) return Status::invalid(where + principal + " is listed twice");
    if (auto it = ring.by_key_.find(key); it != ring.by_key_.end()) {
      return Status::invalid(where + "the key of " + principal + " is already the key of " + it->second);
    }
    if (principal_kind(principal) != "user") {
      std::string instance(principal_name(principal));
      if (auto it = ring.by_instance_.find(instance); it != ring.by_instance_.end()) {
        return Status::invalid(where + principal + " and " + it->second +
                               " share the instance name \"" + instance + "\"; stream names need it unique");
      }
      ring.by_instance_.emplace(instance, principal);
    }
    ring.by_principal_.emplace(principal, key);
    ring.by_key_.emplace(key, principal);
  }
  return ring;
}

Result<Keyring> Keyring::read(const std::filesystem::path& path) {
  auto text = read_small_file(path, /*secret=*/false);
  if (!text) return text.status();
  return parse(*text, path.string());
}

std::optional<std::string> Keyring::principal_of(std::string_view key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Keyring::key_of(std::string_view principal) const {
  auto it = by_principal_.find(principal);
  if (it == by_principal_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Keyring::publisher(std::string_view instance) const {
  auto it = by_instance_.find(instance);
  if (it == by_instance_.end()) return std::nullopt;
  return it->second;
}

std::string format_keyring(const std::map<std::string, std::string, std::less<>>& principals) {
  std::string out = "# Trainyard authorized keys: one \"PRINCIPAL PUBLIC-KEY\" per line.\n";
  for (auto& [p, k] : principals) out += p + " " + k + "\n";
  return out;
}

}  // namespace trainyard::security
