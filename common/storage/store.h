// A service's one RocksDB: named column families, atomic batches, clean
// errors for a locked or corrupt data directory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "util/status.h"

namespace trainyard::storage {

// kWal: every commit is in the write-ahead log before it returns (survives a
// process crash). kFsync: also fsync'd (survives a power cut); commit many
// changes per batch to amortise the fsync (group commit).
enum class Durability { kWal, kFsync };

// The durability a config value names: "wal" or "fsync". InvalidArgument
// naming `key` (the config key it came from) for anything else.
Result<Durability> parse_durability(std::string_view key, std::string_view value);

struct Options {
  std::vector<std::string> column_families;  // besides "default"
  // Column families whose values are int64 counters (8 bytes, big-endian)
  // that Batch::add() increments through a merge operator.
  std::vector<std::string> counter_families;
  Durability durability = Durability::kWal;
};

class Store;

// A column family handle: cheap to copy, valid while its Store lives.
struct Cf {
  rocksdb::ColumnFamilyHandle* h = nullptr;
};

// One logical change: everything in it is committed atomically or not at all.
class Batch {
 public:
  void put(Cf cf, std::string_view key, std::string_view value) { b_.Put(cf.h, key, value); }
  void del(Cf cf, std::string_view key) { b_.Delete(cf.h, key); }
  // Deletes [begin, end).
  void del_range(Cf cf, std::string_view begin, std::string_view end) { b_.DeleteRange(cf.h, begin, end); }
  // Adds `delta` to an int64 counter in a counter family.
  void add(Cf cf, std::string_view key, int64_t delta);
  size_t count() const { return static_cast<size_t>(b_.Count()); }
  bool empty() const { return b_.Count() == 0; }
  void clear() { b_.Clear(); }
  rocksdb::WriteBatch& raw() { return b_; }

 private:
  rocksdb::WriteBatch b_;
};

class Store {
 public:
  // Opens (creating if needed) the database at `path` with every family in
  // `options`. Unavailable if another process holds it; Internal with the
  // path if it is corrupt or unreadable.
  static Result<std::unique_ptr<Store>> open(const std::string& path, const Options& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The family named `name`; throws std::invalid_argument if it was not
  // declared at open (a programming error).
  Cf cf(std::string_view name) const;

  // Commits the batch with this store's durability, then clears it.
  Status commit(Batch& batch);

  // Reads return what failed (an I/O error, a corrupt block) as an Internal
  // Status naming this store's path, never by throwing. What a caller does
  // with it (docs/conventions.md): a request handler answers it; a
  // constructor restoring state throws it (`value_or_throw`: the service
  // does not start, exit 3); code applying a bus event or ingesting rows
  // stops the service (`read_or_abort`, util/runtime.h), as a failed commit does,
  // so that nothing is derived from a read that failed.

  // The value at `key`; nullopt when there is none.
  Result<std::optional<std::string>> get(Cf cf, std::string_view key) const;
  // Reads a counter written by Batch::add (0 when absent).
  Result<int64_t> get_counter(Cf cf, std::string_view key) const;

  // Calls fn(key, value) for keys in [begin, end) in order (end empty: to the
  // last key) until fn returns false.
  Status scan(Cf cf, std::string_view begin, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) const;
  Status scan_prefix(Cf cf, std::string_view prefix,
                     const std::function<bool(std::string_view, std::string_view)>& fn) const;
  // The last key in [begin, end) and its value, if any.
  Result<std::optional<std::pair<std::string, std::string>>> last_in(Cf cf, std::string_view begin,
                                                                     std::string_view end) const;

  std::unique_ptr<rocksdb::Iterator> iterator(Cf cf) const;
  // The error a failed read answers, naming this store: "read from <path>
  // failed: <RocksDB's status>" (for a caller reading with iterator()).
  Status read_failed(const rocksdb::Status& s) const;
  rocksdb::DB* raw() { return db_.get(); }
  const std::string& path() const { return path_; }
  Durability durability() const { return durability_; }

 private:
  Store() = default;
  std::string path_;
  Durability durability_ = Durability::kWal;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<std::string> names_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace trainyard::storage
