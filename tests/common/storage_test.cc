// Storage: ordered keys, atomic batches, counters, and clean errors for a
// locked or corrupt data directory and for a read that fails.
#define BOOST_TEST_MODULE storage
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "process.h"
#include "storage/keys.h"
#include "storage/store.h"

using namespace trainyard;
using namespace trainyard::storage;
using trainyard::testing::TempDir;

namespace {
std::unique_ptr<Store> open_store(const std::string& path) {
  auto s = Store::open(path, Options{{"jobs"}, {"counters"}, Durability::kWal});
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  return std::move(s).value();
}
}  // namespace

BOOST_AUTO_TEST_CASE(big_endian_keys_sort_like_their_values) {
  std::vector<uint64_t> values = {0, 1, 255, 256, 65535, 1ull << 40, ~0ull};
  for (size_t i = 1; i < values.size(); ++i) {
    BOOST_CHECK(Key().u64(values[i - 1]).bytes() < Key().u64(values[i]).bytes());
  }
  BOOST_CHECK(Key().i64(-5).bytes() < Key().i64(-1).bytes());
  BOOST_CHECK(Key().i64(-1).bytes() < Key().i64(0).bytes());
  BOOST_CHECK(Key().i64(0).bytes() < Key().i64(7).bytes());
  // A string part ends before what follows it, so "a" < "ab" for any suffix.
  BOOST_CHECK(Key().str("a").u64(~0ull).bytes() < Key().str("ab").u64(0).bytes());
  std::string key = Key().str("job").u64(42).i64(-3).bytes();
  KeyReader r(key);  // reads a view: the key must outlive it
  BOOST_CHECK_EQUAL(r.str(), "job");
  BOOST_CHECK_EQUAL(r.u64(), 42u);
  BOOST_CHECK_EQUAL(r.i64(), -3);
  BOOST_CHECK(r.done());
  BOOST_CHECK_THROW(Key().str(std::string("a\0b", 3)), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_batch_commits_all_or_nothing_and_survives_reopen) {
  TempDir dir;
  {
    auto store = open_store(dir / "db");
    Batch b;
    for (uint64_t i = 1; i <= 100; ++i) b.put(store->cf("jobs"), Key().u64(i).bytes(), "job" + std::to_string(i));
    b.add(store->cf("counters"), "total", 100);
    b.add(store->cf("counters"), "total", -1);
    BOOST_CHECK(store->commit(b).ok());
    BOOST_CHECK(b.empty());
  }
  auto store = open_store(dir / "db");
  auto total = store->get_counter(store->cf("counters"), "total");
  BOOST_REQUIRE(total.ok());
  BOOST_CHECK_EQUAL(*total, 99);
  std::vector<std::string> seen;
  auto scanned = store->scan(store->cf("jobs"), Key().u64(10).bytes(), Key().u64(13).bytes(),
                             [&](std::string_view, std::string_view v) {
                               seen.emplace_back(v);
                               return true;
                             });
  BOOST_CHECK(scanned.ok());
  BOOST_CHECK_EQUAL(seen.size(), 3u);
  BOOST_CHECK_EQUAL(seen.front(), "job10");
  auto last = store->last_in(store->cf("jobs"), Key().u64(0).bytes(), Key().u64(50).bytes());
  BOOST_REQUIRE(last.ok() && last->has_value());
  BOOST_CHECK_EQUAL((*last)->second, "job49");
  auto missing = store->get(store->cf("jobs"), Key().u64(1000).bytes());
  BOOST_REQUIRE(missing.ok());
  BOOST_CHECK(!missing->has_value());
  auto found = store->get(store->cf("jobs"), Key().u64(7).bytes());
  BOOST_REQUIRE(found.ok() && found->has_value());
  BOOST_CHECK_EQUAL(**found, "job7");
}

// A read that fails (here a data block whose checksum no longer matches) is
// a Status naming the store, for the caller to answer or stop on; it is not
// thrown, and it is not "not found".
BOOST_AUTO_TEST_CASE(a_failed_read_is_a_status_naming_the_store_not_an_exception) {
  TempDir dir;
  {
    auto store = open_store(dir / "db");
    Batch b;
    for (uint64_t i = 1; i <= 100; ++i) b.put(store->cf("jobs"), Key().u64(i).bytes(), "job" + std::to_string(i));
    BOOST_REQUIRE(store->commit(b).ok());
    // Into a table file, whose data blocks (first in the file) are then clobbered.
    BOOST_REQUIRE(store->raw()->Flush(rocksdb::FlushOptions(), store->cf("jobs").h).ok());
  }
  int tables = 0;
  for (auto& e : std::filesystem::directory_iterator(dir / "db")) {
    if (e.path().extension() != ".sst" || std::filesystem::file_size(e.path()) < 200) continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f << std::string(100, '\x5a');
    ++tables;
  }
  BOOST_REQUIRE_GT(tables, 0);
  auto store = open_store(dir / "db");
  auto got = store->get(store->cf("jobs"), Key().u64(7).bytes());
  BOOST_REQUIRE(!got.ok());
  BOOST_CHECK(got.status().code() == ErrorCode::Internal);
  BOOST_CHECK_NE(got.status().message().find(dir / "db"), std::string::npos);
  BOOST_TEST_MESSAGE(got.status().message());
  size_t visited = 0;
  auto scanned = store->scan(store->cf("jobs"), "", "", [&](std::string_view, std::string_view) {
    ++visited;
    return true;
  });
  BOOST_CHECK(!scanned.ok());
  BOOST_CHECK_NE(scanned.message().find(dir / "db"), std::string::npos);
  BOOST_CHECK(!store->get_counter(store->cf("jobs"), Key().u64(7).bytes()).ok());
}

BOOST_AUTO_TEST_CASE(a_database_held_by_another_process_gives_a_clear_error) {
  TempDir dir;
  auto holder = open_store(dir / "db");
  auto second = Store::open(dir / "db", Options{{"jobs"}, {"counters"}, Durability::kWal});
  BOOST_REQUIRE(!second.ok());
  BOOST_CHECK(second.status().code() == ErrorCode::Unavailable);
  BOOST_CHECK_NE(second.status().message().find("in use by another process"), std::string::npos);
  BOOST_CHECK_NE(second.status().message().find(dir / "db"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_corrupt_database_gives_a_clear_error_naming_it) {
  TempDir dir;
  { open_store(dir / "db"); }
  // Clobber the manifest pointer: RocksDB can no longer find its state.
  for (auto& e : std::filesystem::directory_iterator(dir / "db")) {
    if (e.path().filename().string().rfind("MANIFEST", 0) == 0) {
      std::ofstream(e.path(), std::ios::trunc) << "this is not a manifest";
    }
  }
  auto s = Store::open(dir / "db", Options{{"jobs"}, {"counters"}, Durability::kWal});
  BOOST_REQUIRE(!s.ok());
  BOOST_CHECK_NE(s.status().message().find(dir / "db"), std::string::npos);
  BOOST_TEST_MESSAGE(s.status().message());
}

BOOST_AUTO_TEST_CASE(an_undeclared_column_family_is_a_programming_error) {
  TempDir dir;
  auto store = open_store(dir / "db");
  BOOST_CHECK_THROW(store->cf("nope"), std::invalid_argument);
}
