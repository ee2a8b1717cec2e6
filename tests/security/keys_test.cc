// Key files and the site's keyring: what an admin gets wrong is refused
// with a message naming it.
#define BOOST_TEST_MODULE keys
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include "process.h"
#include "security/keys.h"

using namespace trainyard;
using namespace trainyard::security;
using trainyard::testing::TempDir;

BOOST_AUTO_TEST_CASE(a_key_file_round_trips_and_refuses_loose_permissions) {
  TempDir dir;
  std::string path = dir / "user-alice.key";
  Identity id{"user:alice", generate_keypair()};
  BOOST_REQUIRE(write_identity(path, id).ok());
  struct stat st{};
  BOOST_REQUIRE_EQUAL(::stat(path.c_str(), &st), 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  auto back = read_identity(path);
  BOOST_REQUIRE_MESSAGE(back.ok(), back.status().to_string());
  BOOST_TEST(back->principal == "user:alice");
  BOOST_TEST(back->keys.public_key == id.keys.public_key);
  ::chmod(path.c_str(), 0640);
  auto loose = read_identity(path);
  BOOST_REQUIRE(!loose.ok());
  BOOST_TEST((loose.status().code() == ErrorCode::PermissionDenied));
  BOOST_TEST(loose.status().message().find("bad permissions 0640") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_key_whose_halves_do_not_belong_together_is_refused) {
  TempDir dir;
  std::string path = dir / "k.key";
  Identity id{"service:scheduler", generate_keypair()};
  id.keys.public_key = generate_keypair().public_key;
  BOOST_REQUIRE(write_identity(path, id).ok());
  auto r = read_identity(path);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("does not belong") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_keyring_maps_both_ways_and_refuses_ambiguity) {
  auto a = generate_keypair().public_key, b = generate_keypair().public_key, c = generate_keypair().public_key;
  auto ring = Keyring::parse("# site\nservice:scheduler " + a + "\n\nagent:gpu1 " + b + "\nuser:alice " + c + "\n", "ak");
  BOOST_REQUIRE_MESSAGE(ring.ok(), ring.status().to_string());
  BOOST_TEST(ring->principal_of(b).value() == "agent:gpu1");
  BOOST_TEST(ring->key_of("user:alice").value() == c);
  BOOST_TEST(ring->publisher("gpu1").value() == "agent:gpu1");
  BOOST_TEST(!ring->publisher("alice").has_value());  // users publish nothing

  auto twice = Keyring::parse("user:alice " + a + "\nuser:bob " + a + "\n", "ak");
  BOOST_REQUIRE(!twice.ok());
  BOOST_TEST(twice.status().message().find("ak:2: the key of user:bob is already the key of user:alice") !=
             std::string::npos);
  auto clash = Keyring::parse("service:x " + a + "\nagent:x " + b + "\n", "ak");
  BOOST_REQUIRE(!clash.ok());
  BOOST_TEST(clash.status().message().find("share the instance name") != std::string::npos);
  auto bad = Keyring::parse("admin:it " + a + "\n", "ak");
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.status().message().find("ak:1: principal \"admin:it\": kind \"admin\"") != std::string::npos);
  auto short_key = Keyring::parse("user:alice abc\n", "ak");
  BOOST_REQUIRE(!short_key.ok());
  BOOST_TEST(short_key.status().message().find("40 Z85 characters") != std::string::npos);
}
