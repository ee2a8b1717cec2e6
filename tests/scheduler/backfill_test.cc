// Unit tests of the backfill reservation book (Reservations): where and when
// a waiting job is due to start, and which later jobs may still take the
// GPUs it reserves, without a Scheduler.
#define BOOST_TEST_MODULE scheduler_backfill
#include <boost/test/unit_test.hpp>

#include "core/backfill.h"
#include "test_nodes.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using namespace trainyard::scheduler::testing;

namespace {

// n1 and n2, 4 GPUs each. On n1 two GPUs are held until 100 s, on n2 all
// four until 200 s: a 4-GPU job can start on n1 at 100 s.
struct Fixture {
  Cluster cluster{std::vector<PartitionConfig>{}};
  NodeIdx n1, n2;
  Fixture() {
    n1 = cluster.upsert(make_node("n1", 4));
    n2 = cluster.upsert(make_node("n2", 4));
    cluster.add_lease(1, "n1", {0, 1}, 1, 0, 901, 1, 100 * kSecond);
    cluster.add_lease(2, "n2", {0, 1, 2, 3}, 1, 0, 902, 1, 200 * kSecond);
  }
  static QueueEntry waiting(JobId id, uint32_t gpus, uint32_t nodes = 1) {
    QueueEntry e;
    e.id = id;
    e.shape.gpus = gpus;
    e.shape.nodes = nodes;
    return e;
  }
  // May job `job`, due to end at `end_s`, take GPUs `gpus` of node n?
  static bool may_take(Reservations& book, NodeIdx n, uint64_t gpus, JobId job, int64_t end_s) {
    return (*book.filter_for(job, end_s * kSecond))(n, gpus);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_job_is_reserved_the_nodes_that_free_first, Fixture) {
  Reservations book(cluster);
  bool reused = true;
  auto r = book.find(waiting(7, 4), 10 * kSecond, &reused);
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(!reused);
  BOOST_TEST(r->job == 7u);
  BOOST_TEST(r->start_ns == 100 * kSecond);
  BOOST_TEST((r->nodes == std::vector<NodeIdx>{n1}));
  BOOST_TEST((r->need == std::vector<uint32_t>{4}));
  BOOST_TEST((r->avail == std::vector<uint32_t>{4}));
  BOOST_TEST(book.empty());  // found, not booked
  BOOST_TEST(book.pool_reserved(0, 0));
  BOOST_TEST(!book.pool_reserved(0, 1));
}

BOOST_FIXTURE_TEST_CASE(a_gang_starts_when_its_last_node_frees, Fixture) {
  Reservations book(cluster);
  bool reused = false;
  auto r = book.find(waiting(7, 4, 2), 10 * kSecond, &reused);
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->start_ns == 200 * kSecond);
  BOOST_TEST(r->nodes.size() == 2u);
  BOOST_TEST(!book.find(waiting(8, 4, 3), 10 * kSecond, &reused).has_value());  // 3 nodes: never
  BOOST_TEST(!book.find(waiting(9, 0), 10 * kSecond, &reused).has_value());     // no GPUs: nothing to reserve
}

BOOST_FIXTURE_TEST_CASE(only_jobs_that_end_before_the_start_may_take_reserved_gpus, Fixture) {
  Reservations book(cluster);
  bool reused = false;
  BOOST_TEST(book.add(*book.find(waiting(7, 4), 10 * kSecond, &reused)));
  BOOST_TEST(book.holds(n1));
  BOOST_TEST(!book.holds(n2));
  uint64_t free_pair = 0b1100;
  BOOST_TEST(may_take(book, n1, free_pair, 8, 90));    // gone by 100 s
  BOOST_TEST(!may_take(book, n1, free_pair, 8, 150));  // would delay job 7
  BOOST_TEST(may_take(book, n1, free_pair, 7, 150));   // job 7 itself
  BOOST_TEST(may_take(book, n2, 0b1, 8, 1000));        // n2 is not reserved
  // Through placement: a 2-GPU job that outlives the start finds no room.
  Shape two;
  two.gpus = 2;
  std::vector<NodePick> picks;
  BOOST_TEST(!cluster.place(two, &picks, book.filter_for(8, 150 * kSecond)));
  BOOST_TEST(cluster.place(two, &picks, book.filter_for(8, 90 * kSecond)));
}

BOOST_FIXTURE_TEST_CASE(a_backfilled_job_that_outlives_the_start_takes_from_what_it_keeps, Fixture) {
  Reservations book(cluster);
  bool reused = false;
  book.add(*book.find(waiting(7, 4), 10 * kSecond, &reused));
  book.charge({NodePick{n1, 0b1100}}, 8, 90 * kSecond);  // ends in time: takes nothing
  BOOST_TEST(book.all().at(0).avail.at(0) == 4u);
  book.charge({NodePick{n1, 0b1000}}, 8, 150 * kSecond);
  BOOST_TEST(book.all().at(0).avail.at(0) == 3u);
  book.charge({NodePick{n1, 0b0100}}, 7, 150 * kSecond);  // its own job
  BOOST_TEST(book.all().at(0).avail.at(0) == 3u);
  BOOST_TEST(!may_take(book, n1, 0b0100, 9, 150));  // 3 left < 4 needed
}

BOOST_FIXTURE_TEST_CASE(a_new_cycle_reuses_last_cycles_reservation_until_told_to_recompute, Fixture) {
  Reservations book(cluster);
  bool reused = false;
  book.begin_cycle();  // a new book computes everything in its first cycle
  book.add(*book.find(waiting(7, 4), 10 * kSecond, &reused));
  book.begin_cycle();
  BOOST_TEST(book.empty());
  BOOST_TEST(!book.holds(n1));
  BOOST_TEST(!book.pool_reserved(0, 0));
  auto again = book.find(waiting(7, 4), 20 * kSecond, &reused);
  BOOST_REQUIRE(again.has_value());
  BOOST_TEST(reused);
  BOOST_TEST(again->start_ns == 100 * kSecond);
  book.add(std::move(*again));
  book.recompute();
  book.begin_cycle();
  again = book.find(waiting(7, 4), 20 * kSecond, &reused);
  BOOST_REQUIRE(again.has_value());
  BOOST_TEST(!reused);
}

BOOST_FIXTURE_TEST_CASE(reserved_nodes_are_not_reserved_twice_and_empty_reservations_are_dropped, Fixture) {
  Reservations book(cluster);
  bool reused = false;
  book.add(*book.find(waiting(7, 4), 10 * kSecond, &reused));
  auto second = book.find(waiting(8, 4), 10 * kSecond, &reused);
  BOOST_REQUIRE(second.has_value());
  BOOST_TEST((second->nodes == std::vector<NodeIdx>{n2}));
  BOOST_TEST(second->start_ns == 200 * kSecond);
  BOOST_TEST(!book.add(Reservation{}));
  BOOST_TEST(book.size() == 1u);
}
