#include "storage/store.h"

#include <filesystem>
#include <stdexcept>

#include <rocksdb/merge_operator.h>
#include <rocksdb/table.h>

#include "storage/keys.h"

namespace trainyard::storage {
namespace {

// Big-endian int64 addition for counter families.
class Int64Add : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    int64_t base = 0;
    if (existing && existing->size() == 8) base = static_cast<int64_t>(decode_u64({existing->data(), 8}));
    int64_t delta = value.size() == 8 ? static_cast<int64_t>(decode_u64({value.data(), 8})) : 0;
    *new_value = encode_u64(static_cast<uint64_t>(base + delta));
    return true;
  }
  const char* Name() const override { return "trainyard.Int64Add"; }
};

}  // namespace

Result<Durability> parse_durability(std::string_view key, std::string_view value) {
  if (value == "wal") return Durability::kWal;
  if (value == "fsync") return Durability::kFsync;
  return Status::invalid(std::string(key) + ": '" + std::string(value) + "' is not \"wal\" or \"fsync\"");
}

void Batch::add(Cf cf, std::string_view key, int64_t delta) {
  b_.Merge(cf.h, key, encode_u64(static_cast<uint64_t>(delta)));
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path, const Options& options) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::internal("cannot create data directory " + path + ": " + ec.message());

  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  dbo.IncreaseParallelism(2);
  dbo.max_background_jobs = 2;
  dbo.keep_log_file_num = 3;

  auto merge = std::make_shared<Int64Add>();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  auto family = [&](const std::string& name) {
    rocksdb::ColumnFamilyOptions co;
    co.write_buffer_size = 32 << 20;
    for (auto& c : options.counter_families) {
      if (c == name) co.merge_operator = merge;
    }
    cfs.emplace_back(name, co);
  };
  family(rocksdb::kDefaultColumnFamilyName);
  for (auto& n : options.column_families) family(n);
  for (auto& n : options.counter_families) {
    bool declared = false;
    for (auto& c : options.column_families) declared |= (c == n);
    if (!declared) family(n);
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(dbo, path, cfs, &handles, &db);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::unavailable("data directory " + path +
                                 " is in use by another process (its RocksDB lock is held); stop that process or "
                                 "give this one another data directory");
    }
    if (s.IsCorruption()) {
      return Status::internal("data directory " + path + " is corrupt: " + s.ToString() +
                              "; restore it from a backup or move it aside");
    }
    if (s.IsInvalidArgument()) {
      return Status::internal("data directory " + path + " cannot be opened: " + s.ToString());
    }
    return Status::internal("cannot open data directory " + path + ": " + s.ToString());
  }
  std::unique_ptr<Store> store(new Store());
  store->path_ = path;
  store->durability_ = options.durability;
  store->db_.reset(db);
  store->handles_ = handles;
  for (auto& d : cfs) store->names_.push_back(d.name);
  return store;
}

Store::~Store() {
  if (db_) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }
}

Cf Store::cf(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return Cf{handles_[i]};
  }
  throw std::invalid_argument("column family '" + std::string(name) + "' was not declared when opening " + path_);
}

Status Store::commit(Batch& batch) {
  if (batch.empty()) return Status::success();
  rocksdb::WriteOptions wo;
  wo.sync = durability_ == Durability::kFsync;
  auto s = db_->Write(wo, &batch.raw());
  if (!s.ok()) return Status::internal("write to " + path_ + " failed: " + s.ToString());
  batch.clear();
  return Status::success();
}

Result<std::optional<std::string>> Store::get(Cf cf, std::string_view key) const {
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), cf.h, key, &v);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return read_failed(s);
  return std::optional<std::string>(std::move(v));
}

Result<int64_t> Store::get_counter(Cf cf, std::string_view key) const {
  auto v = get(cf, key);
  if (!v) return v.status();
  if (!*v || (*v)->size() != 8) return int64_t{0};
  return static_cast<int64_t>(decode_u64(**v));
}

Status Store::scan(Cf cf, std::string_view begin, std::string_view end,
                   const std::function<bool(std::string_view, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(end.data(), end.size());
  if (!end.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf.h));
  for (it->Seek(rocksdb::Slice(begin.data(), begin.size())); it->Valid(); it->Next()) {
    auto k = it->key();
    auto v = it->value();
    if (!fn({k.data(), k.size()}, {v.data(), v.size()})) break;
  }
  if (!it->status().ok()) return read_failed(it->status());
  return Status::success();
}

Status Store::scan_prefix(Cf cf, std::string_view prefix,
                          const std::function<bool(std::string_view, std::string_view)>& fn) const {
  auto end = prefix_end(std::string(prefix));
  return scan(cf, prefix, end, fn);
}

Result<std::optional<std::pair<std::string, std::string>>> Store::last_in(Cf cf, std::string_view begin,
                                                                          std::string_view end) const {
  using Found = std::optional<std::pair<std::string, std::string>>;
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf.h));
  if (end.empty()) {
    it->SeekToLast();
  } else {
    it->SeekForPrev(rocksdb::Slice(end.data(), end.size()));
    if (it->Valid() && it->key().compare(rocksdb::Slice(end.data(), end.size())) >= 0) it->Prev();
  }
  if (!it->status().ok()) return read_failed(it->status());
  if (!it->Valid()) return Found();
  if (it->key().compare(rocksdb::Slice(begin.data(), begin.size())) < 0) return Found();
  return Found(std::make_pair(it->key().ToString(), it->value().ToString()));
}

Status Store::read_failed(const rocksdb::Status& s) const {
  return Status::internal("read from " + path_ + " failed: " + s.ToString());
}

std::unique_ptr<rocksdb::Iterator> Store::iterator(Cf cf) const {
  return std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(rocksdb::ReadOptions(), cf.h));
}

}  // namespace trainyard::storage
