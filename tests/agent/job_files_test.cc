// The files the agent opens as root for a job (job_files.h): an interactive
// run's transcript is a new file given to the job's user, or that user's
// own regular file; never a symlink, a FIFO, or a hard link, through which
// a job could make root append its session to a file it does not own.
#define BOOST_TEST_MODULE agent_job_files
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "job_files.h"
#include "process.h"

using namespace trainyard::agent;
namespace tt = trainyard::testing;

BOOST_AUTO_TEST_CASE(a_transcript_is_a_new_file_or_the_users_own_never_a_link_or_fifo) {
  tt::TempDir dir;
  uid_t me = ::getuid();
  gid_t group = ::getgid();

  // New: created, appended to.
  auto fd = open_transcript(dir / "new", true, me, group);
  BOOST_REQUIRE_MESSAGE(fd.ok(), fd.status().message());
  BOOST_TEST(::write(*fd, "a", 1) == 1);
  ::close(*fd);
  // The user's own, already there (a second session with the same --output): appended.
  fd = open_transcript(dir / "new", true, me, group);
  BOOST_REQUIRE_MESSAGE(fd.ok(), fd.status().message());
  BOOST_TEST(::write(*fd, "b", 1) == 1);
  ::close(*fd);
  BOOST_TEST(tt::read_file(dir / "new") == "ab");

  // Someone else's file: refused (as root the agent could write it).
  fd = open_transcript(dir / "new", true, me + 1, group);
  BOOST_TEST(!fd.ok());
  BOOST_TEST(fd.status().message().find("not the job user's own file") != std::string::npos, fd.status().message());

  // A symbolic link to a file: refused, the target untouched.
  std::string target = dir / "target";
  { int t = ::open(target.c_str(), O_WRONLY | O_CREAT, 0644); ::close(t); }
  BOOST_REQUIRE_EQUAL(::symlink(target.c_str(), (dir / "link").c_str()), 0);
  fd = open_transcript(dir / "link", true, me, group);
  BOOST_TEST(!fd.ok());
  BOOST_TEST(fd.status().message().find("is a symbolic link") != std::string::npos, fd.status().message());

  // A hard link to it: refused (two links).
  BOOST_REQUIRE_EQUAL(::link(target.c_str(), (dir / "hard").c_str()), 0);
  fd = open_transcript(dir / "hard", true, me, group);
  BOOST_TEST(!fd.ok());
  BOOST_TEST(fd.status().message().find("one link") != std::string::npos, fd.status().message());

  // A FIFO: refused at once, never waited on.
  BOOST_REQUIRE_EQUAL(::mkfifo((dir / "fifo").c_str(), 0644), 0);
  BOOST_TEST(!open_transcript(dir / "fifo", true, me, group).ok());
  BOOST_TEST(tt::read_file(target).empty());
}

// The errno a caller decides by travels as the Status's code: an absent
// metrics file or log is not a refusal, an existing transcript is reopened.
BOOST_AUTO_TEST_CASE(a_failed_open_says_absent_or_taken_by_its_code) {
  tt::TempDir dir;
  auto absent = open_job_file(dir / "absent", O_RDONLY);
  BOOST_TEST(!absent.ok());
  BOOST_TEST((absent.status().code() == trainyard::ErrorCode::NotFound), absent.status().to_string());

  auto made = open_job_file(dir / "made", O_WRONLY | O_CREAT | O_EXCL);
  BOOST_REQUIRE_MESSAGE(made.ok(), made.status().message());
  ::close(*made);
  auto taken = open_job_file(dir / "made", O_WRONLY | O_CREAT | O_EXCL);
  BOOST_TEST((taken.status().code() == trainyard::ErrorCode::AlreadyExists), taken.status().to_string());

  BOOST_REQUIRE_EQUAL(::symlink((dir / "made").c_str(), (dir / "link").c_str()), 0);
  auto link = open_job_file(dir / "link", O_RDONLY);
  BOOST_TEST((link.status().code() == trainyard::ErrorCode::FailedPrecondition), link.status().to_string());
  BOOST_TEST(link.status().message().find("is a symbolic link") != std::string::npos, link.status().message());
}
