// Job notifications, sent: mail through the site's SMTP server and JSON
// posts to webhooks (Slack-compatible: the text is in "text"), with libcurl.
//
// Durable and never in the loop's way: a notice is stored (column family
// `notify`) in the batch of the transition it tells, handed to the sender
// thread once that batch is committed, and deleted when it was delivered or
// given up after notify.max_attempts tries (backing off from
// notify.retry_s, doubling, at most 15 minutes apart). A restart sends what
// is stored again: delivery is at least once (a notice can come twice when
// the scheduler was killed between sending and deleting it).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/notify.h"
#include "storage/store.h"
#include "util/config.h"

namespace trainyard::scheduler {

struct NotifyOptions {
  std::string smtp_url;       // notify.smtp_url: smtp://host:25 or smtps://host:465 ("": mail is not sent)
  std::string from = "trainyard@localhost";  // notify.from
  std::string mail_domain;    // notify.mail_domain: a user name is mailed at <name>@<this>
  std::vector<std::string> webhook_hosts;  // notify.webhook_hosts: the only hosts webhooks may post to
  int64_t timeout_ms = 10'000;  // notify.timeout_s: one delivery attempt
  int64_t retry_ms = 30'000;    // notify.retry_s: the first retry's delay
  int max_attempts = 8;         // notify.max_attempts

  static Result<NotifyOptions> from_config(const Config& c);
};

class Notifier {
 public:
  Notifier(NotifyOptions options, storage::Store& store, storage::Cf outbox);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Stores one message per destination of `n` in `batch` (the loop's).
  void add(const Notice& n, storage::Batch& batch);
  // After the commit: what add() stored goes to the sender thread.
  void committed();
  // Deletes, in `batch`, what the sender delivered or gave up.
  void reap(storage::Batch& batch);

  struct Counts {
    uint64_t sent = 0, failed = 0, pending = 0;
  };
  Counts counts() const;

 private:
  struct Message {
    uint64_t key = 0;
    std::string to;    // a mail address or a webhook URL
    std::string json;  // the stored form: the notice's fields
    int attempts = 0;
    int64_t due_ms = 0;  // monotonic
  };
  void run();
  // One attempt; the error when it failed.
  std::string deliver(const Message& m);
  std::string send_mail(const std::string& to, const std::string& json);
  std::string post_webhook(const std::string& url, const std::string& json);

  NotifyOptions options_;
  uint64_t next_key_ = 1;
  std::vector<Message> fresh_;  // stored in the batch under way
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Message> queue_;     // the thread's (guarded by mu_)
  std::vector<uint64_t> done_;    // delivered or given up (guarded by mu_)
  Counts counts_;                 // guarded by mu_
  bool stop_ = false;
  storage::Cf outbox_;
  std::thread thread_;
};

}  // namespace trainyard::scheduler
