// How the shell reads what it stored: one series' points and rollups for a
// query or a retention pass (StoreSeriesRows), and the check that a name may
// be part of a key (storage::Key refuses a NUL).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/query.h"
#include "core/rows.h"
#include "storage/keys.h"
#include "storage/store.h"

namespace trainyard::metrics {

inline bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// Reads a single series' rows for a query, straight from RocksDB. Each call
// opens its own iterator, so oneTBB tasks may call it concurrently. The
// core's SeriesRows cannot fail; a failed read stops the rows there and is
// kept for the caller to ask after the query (status()).
class StoreSeriesRows final : public SeriesRows {
 public:
  StoreSeriesRows(storage::Store& store, storage::Cf points, storage::Cf rollups, std::string series)
      : db_(store.raw()), points_(points), rollups_(rollups), series_(std::move(series)) {}

  void points(int64_t lo, int64_t hi, const std::function<void(const Point&)>& fn) const override {
    std::string begin = point_key(series_, lo);
    std::string end = point_key(series_, hi);
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, points_.h));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      auto k = it->key();
      if (k.compare(rocksdb::Slice(end)) > 0) break;
      if (k.size() != series_.size() + 8) continue;
      int64_t step = storage::KeyReader(std::string_view(k.data() + series_.size(), 8)).i64();
      auto v = decode_point(std::string_view(it->value().data(), it->value().size()));
      if (v) fn(Point{step, v->first});
    }
    note(*it);
  }

  void blocks(int level, int64_t b_lo, int64_t b_hi, const std::function<void(const Aggregate&)>& fn) const override {
    std::string begin = rollup_key(series_, level, b_lo);
    std::string end = rollup_key(series_, level, b_hi);
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, rollups_.h));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      auto k = it->key();
      if (k.compare(rocksdb::Slice(end)) > 0) break;
      auto a = decode_aggregate(std::string_view(it->value().data(), it->value().size()));
      if (a) fn(*a);
    }
    note(*it);
  }

  // The first read that failed, if any (then the rows given were partial).
  Status status() const {
    std::lock_guard lock(mu_);
    return failed_;
  }

 private:
  void note(const rocksdb::Iterator& it) const {
    if (it.status().ok()) return;
    std::lock_guard lock(mu_);
    if (failed_.ok()) failed_ = Status::internal("read of series rows failed: " + it.status().ToString());
  }

  mutable std::mutex mu_;
  mutable Status failed_;
  rocksdb::DB* db_;
  storage::Cf points_;
  storage::Cf rollups_;
  std::string series_;
};

}  // namespace trainyard::metrics
