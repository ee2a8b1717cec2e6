// Every service's copy of the site directory: the config's part joined with
// the newest durable directory its owner (billing) published as
// directory.changed, kept in the service's own store so a restart enforces
// the same view before the bus has said anything.
#pragma once

#include <string>
#include <string_view>

#include "bus/event.h"
#include "security/directory.h"
#include "storage/store.h"

namespace trainyard::security {

// The topic prefix and the event's topic.
inline constexpr std::string_view kDirectoryPrefix = "directory.";
inline constexpr std::string_view kDirectoryTopic = "directory.changed";

class DirectoryFeed {
 public:
  // The column family a service adds to its store for it.
  static constexpr const char* kColumnFamily = "directory";

  // `owner`: the instance whose directory.changed events are believed
  // ("billing"); others' are counted and dropped. Reads the stored view;
  // throws std::runtime_error when it is unreadable.
  DirectoryFeed(storage::Store& store, Directory config, std::string owner);

  // What the rules read: config joined with the durable directory.
  const Directory& current() const { return view_; }
  const Directory& durable() const { return durable_; }
  const Directory& config() const { return config_; }

  // A directory.changed event: a newer view from the owner is kept (and
  // written into `batch`). Returns true when the event was a directory
  // event (kept, stale or refused): the caller has nothing more to do.
  bool apply(const bus::Event& e, storage::Batch& batch);
  // The owner's own edit.
  void set(Directory durable, storage::Batch& batch);
  uint64_t refused() const { return refused_; }

 private:
  void adopt(Directory durable);

  storage::Store& store_;
  storage::Cf cf_;
  Directory config_;
  Directory durable_;
  Directory view_;
  std::string stream_;
  uint64_t refused_ = 0;
};

// The bytes of a view as stored and as a snapshot event body.
std::string serialize(const Directory& d);

}  // namespace trainyard::security
