// Job notifications end to end: the real scheduler mails through a real SMTP
// server (aiosmtpd, Debian's python3-aiosmtpd) and posts to a real HTTP
// receiver, both started by the test on loopback; a receiver that is down or
// hangs delays nothing else, and what was not delivered survives a SIGKILL
// of the scheduler.
#define BOOST_TEST_MODULE notify_e2e
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "cluster.h"
#include "process.h"

using namespace std::chrono_literals;
using trainyard::testing::Cluster;
using trainyard::testing::ClusterOptions;
using trainyard::testing::free_loopback_port;
using trainyard::testing::Process;
using trainyard::testing::read_file;
using trainyard::testing::TempDir;
using trainyard::testing::wait_until;

namespace {

// Debian's python3, which has aiosmtpd (scripts/deps), whatever python3 is first on PATH.
const char* kPython = "/usr/bin/python3";

// A real HTTP server that appends each POST body to a file, one a line.
// With "hang": accepts connections and never answers.
const char* kReceiver = R"(import http.server, socket, sys, time
port, out, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "hang":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(16)
    while True: time.sleep(60)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "ab") as f: f.write(body + b"\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
)";

struct Receivers {
  TempDir dir;
  int smtp_port = free_loopback_port();  // below the ephemeral range: no connection takes it meanwhile
  int http_port = free_loopback_port();
  std::string mail_log = dir / "smtp.log";
  std::string posts = dir / "posts.jsonl";
  std::unique_ptr<Process> smtp, http;

  Receivers() {
    std::ofstream(dir / "receiver.py") << kReceiver;
    smtp = std::make_unique<Process>(
        std::vector<std::string>{kPython, "-u", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:" + std::to_string(smtp_port)},
        mail_log);
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return listening(smtp_port); }, 15s),
                          "aiosmtpd did not start (scripts/deps installs python3-aiosmtpd): " << smtp->log());
  }
  void start_http(const std::string& mode = "serve") {
    http = std::make_unique<Process>(
        std::vector<std::string>{kPython, dir / "receiver.py", std::to_string(http_port), posts, mode}, dir / "http.log");
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return listening(http_port); }, 15s), "receiver: " << http->log());
  }
  static bool listening(int port) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
  }
  std::string hook() const { return "http://127.0.0.1:" + std::to_string(http_port) + "/hook"; }
  std::string mail() const { return read_file(mail_log); }
  std::string post_lines() const { return read_file(posts); }
};

ClusterOptions notifying(const Receivers& r) {
  ClusterOptions o;
  o.agents = {{"node-a", 2}};
  o.scheduler_sets = {"notify.smtp_url=\"smtp://127.0.0.1:" + std::to_string(r.smtp_port) + "\"",
                      "notify.from=\"trainyard@lab.org\"", "notify.mail_domain=\"lab.org\"",
                      "notify.webhook_hosts=[\"127.0.0.1\"]", "notify.retry_s=1", "notify.timeout_s=1"};
  return o;
}

uint64_t submit(Cluster& c, std::vector<std::string> args) {
  args.insert(args.begin(), {"submit", "--json", "--gpus", "1", "--time", "5"});
  auto [rc, out] = c.ty(args);
  BOOST_REQUIRE_MESSAGE(rc == 0, out << c.logs());
  return nlohmann::json::parse(out.substr(out.find('{')))["job_ids"][0].get<uint64_t>();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(mail_and_webhooks_tell_what_the_job_asked_for) {
  Receivers r;
  r.start_http();
  Cluster c(notifying(r));
  uint64_t ok = submit(c, {"--mail-type=BEGIN,END", "--mail-user=ada@lab.org", "--job-name", "good", "--wrap", "true"});
  uint64_t bad = submit(c, {"--notify", r.hook(), "--job-name", "bad", "--wrap", "exit 3"});
  uint64_t own = submit(c, {"--mail-type=FAIL", "--job-name", "mine", "--wrap", "exit 1"});  // to the submitting user
  std::string began = "Subject: Trainyard Job_id=" + std::to_string(ok) + " Name=good Began, Queued time";
  std::string ended = "Subject: Trainyard Job_id=" + std::to_string(ok) + " Name=good Ended, Run time";
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return contains(r.mail(), ended); }, 30s), r.mail() << c.logs());
  std::string mail = r.mail();
  BOOST_TEST(contains(mail, began));
  BOOST_TEST(contains(mail, ", COMPLETED, ExitCode 0"));
  BOOST_TEST(contains(mail, "To: ada@lab.org"));
  BOOST_TEST(contains(mail, "From: trainyard@lab.org"));
  // The webhook: one JSON post, Slack's "text" included, for the failure only.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return !r.post_lines().empty(); }, 30s), c.logs());
  auto post = nlohmann::json::parse(r.post_lines().substr(0, r.post_lines().find('\n')));
  BOOST_TEST(post["job_id"].get<uint64_t>() == bad);
  BOOST_TEST(post["event"] == "fail");
  BOOST_TEST(post["exit_code"] == 3);
  BOOST_TEST(post["text"].get<std::string>().find("Name=bad Failed") != std::string::npos);
  // --mail-type alone: the submitting user, at the site's mail domain.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return contains(r.mail(), "Job_id=" + std::to_string(own) + " Name=mine Failed"); }, 30s),
                        r.mail());
  BOOST_TEST(contains(r.mail(), "@lab.org"));
  // A webhook to a host the site does not list is refused at submit.
  auto [rc, out] = c.ty({"submit", "--notify", "https://example.com/x", "--time", "5", "--wrap", "true"});
  BOOST_TEST(rc != 0);
  BOOST_TEST(contains(out, "notify.webhook_hosts"));
}

BOOST_AUTO_TEST_CASE(a_receiver_that_hangs_or_is_down_delays_nothing_and_a_sigkill_loses_nothing) {
  Receivers r;
  r.start_http("hang");
  Cluster c(notifying(r));
  // Each attempt hangs until notify.timeout_s: the jobs still run one after another.
  uint64_t first = submit(c, {"--notify", r.hook(), "--wrap", "exit 2"});
  auto [wrc, wout] = c.ty({"wait", std::to_string(first), "--timeout", "30"}, 40s);
  BOOST_TEST(wrc == 1, wout);  // it failed, as it should
  auto t0 = std::chrono::steady_clock::now();
  uint64_t second = submit(c, {"--wrap", "true"});
  auto [src, sout] = c.ty({"wait", std::to_string(second), "--timeout", "30"}, 40s);
  BOOST_TEST(src == 0, sout);
  bool prompt = std::chrono::steady_clock::now() - t0 < 10s;
  BOOST_TEST(prompt);
  // Not delivered yet; the scheduler dies; the receiver comes up; the notice arrives.
  BOOST_TEST(r.post_lines().empty());
  c.kill9("scheduler");
  r.http->kill9();
  r.http->wait(5s);
  r.start_http();
  c.start("scheduler");
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return !r.post_lines().empty(); }, 40s), c.logs());
  auto post = nlohmann::json::parse(r.post_lines().substr(0, r.post_lines().find('\n')));
  BOOST_TEST(post["job_id"].get<uint64_t>() == first);
  BOOST_TEST(post["exit_code"] == 2);
}
