// Where `ty local` keeps its data and how plain ty commands find it: the
// data directory a command acts on, and the registry of running local
// Trainyards (client::local_registry_path(), read by
// client::running_local_config()).
#pragma once

#include <optional>
#include <string>

namespace trainyard::ty {

// An environment variable; nullopt when unset or empty.
std::optional<std::string> env(const char* name);
std::string home_dir();

// The data directory a command acts on: --data (`flag`), else (status,
// down: `prefer_running`) the running local Trainyard plain ty commands
// reach, else the default one.
std::string choose_dir(const std::string& flag, bool prefer_running);

// `dir` becomes the first running local Trainyard of the registry (up), or
// leaves it (down).
void register_dir(const std::string& dir);
void unregister_dir(const std::string& dir);

}  // namespace trainyard::ty
