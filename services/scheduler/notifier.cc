#include "notifier.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <mutex>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "storage/keys.h"

namespace trainyard::scheduler {
namespace {

using json = nlohmann::json;

int64_t monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::once_flag curl_once;

// Reads a prepared mail out to libcurl's SMTP upload.
struct Upload {
  const std::string* text;
  size_t at = 0;
};
size_t read_upload(char* buf, size_t size, size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  size_t take = std::min(size * n, u->text->size() - u->at);
  std::copy_n(u->text->data() + u->at, take, buf);
  u->at += take;
  return take;
}
size_t discard(char*, size_t size, size_t n, void*) { return size * n; }

std::string rfc2822_date(int64_t ns) {
  std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

// A curl handle for one attempt, freed with its header lists.
struct Easy {
  CURL* h = curl_easy_init();
  curl_slist* list = nullptr;
  ~Easy() {
    if (list) curl_slist_free_all(list);
    if (h) curl_easy_cleanup(h);
  }
  std::string perform() {
    char err[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) return err[0] ? err : curl_easy_strerror(rc);
    return "";
  }
};

}  // namespace

Result<NotifyOptions> NotifyOptions::from_config(const Config& c) {
  NotifyOptions o;
  try {
    o.smtp_url = c.get_string("notify.smtp_url", "");
    if (!o.smtp_url.empty() && o.smtp_url.rfind("smtp://", 0) != 0 && o.smtp_url.rfind("smtps://", 0) != 0) {
      return Status::invalid("notify.smtp_url: '" + o.smtp_url + "' is not smtp://HOST[:PORT] or smtps://HOST[:PORT]");
    }
    o.from = c.get_string("notify.from", o.from);
    o.mail_domain = c.get_string("notify.mail_domain", "");
    o.webhook_hosts = c.get_strings("notify.webhook_hosts");
    o.timeout_ms = c.get_int("notify.timeout_s", 10, 1, 300) * 1000;
    o.retry_ms = c.get_int("notify.retry_s", 30, 1, 3600) * 1000;
    o.max_attempts = static_cast<int>(c.get_int("notify.max_attempts", 8, 1, 100));
  } catch (const std::exception& e) {
    return Status::invalid(e.what());
  }
  return o;
}

Notifier::Notifier(NotifyOptions options, storage::Store& store, storage::Cf outbox)
    : options_(std::move(options)), outbox_(outbox) {
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  // What a killed scheduler had not delivered goes out again.
  value_or_throw(store.scan(outbox_, "", "", [&](std::string_view k, std::string_view v) {
    Message m;
    m.key = storage::decode_u64(k);
    auto j = json::parse(v, nullptr, false);
    if (j.is_object() && j.contains("to") && j["to"].is_string()) {
      m.to = j["to"].get<std::string>();
      m.json = std::string(v);
      queue_.push_back(std::move(m));
    } else {
      done_.push_back(m.key);  // unreadable: dropped at the next reap
    }
    next_key_ = std::max(next_key_, m.key + 1);
    return true;
  }));
  counts_.pending = queue_.size();
  if (!queue_.empty()) spdlog::info("{} job notifications not yet delivered: sending them again", queue_.size());
  thread_ = std::thread([this] { run(); });
}

Notifier::~Notifier() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Notifier::add(const Notice& n, storage::Batch& batch) {
  for (const std::string& dest : n.to) {
    Message m;
    m.key = next_key_++;
    m.to = dest;
    if (dest.find('@') == std::string::npos && dest.find("://") == std::string::npos) {
      if (options_.mail_domain.empty()) {
        spdlog::warn("job {}: notification to user {} not sent: notify.mail_domain is not set", n.job_text, dest);
        continue;
      }
      m.to = dest + "@" + options_.mail_domain;
    }
    json j{{"to", m.to},          {"job_id", n.job},         {"job", n.job_text},     {"name", n.name},
           {"user", n.user},      {"account", n.account},    {"event", n.event},      {"state", n.state},
           {"exit_code", n.exit_code}, {"reason", n.reason}, {"time_ns", n.time_ns},  {"seconds", n.seconds},
           {"text", n.subject}};
    m.json = j.dump(-1, ' ', false, json::error_handler_t::replace);
    batch.put(outbox_, storage::encode_u64(m.key), m.json);
    fresh_.push_back(std::move(m));
  }
}

void Notifier::committed() {
  if (fresh_.empty()) return;
  {
    std::lock_guard lock(mu_);
    counts_.pending += fresh_.size();
    for (auto& m : fresh_) queue_.push_back(std::move(m));
  }
  fresh_.clear();
  wake_.notify_one();
}

void Notifier::reap(storage::Batch& batch) {
  std::vector<uint64_t> done;
  {
    std::lock_guard lock(mu_);
    done.swap(done_);
  }
  for (uint64_t k : done) batch.del(outbox_, storage::encode_u64(k));
}

Notifier::Counts Notifier::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

void Notifier::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    // The message due first (a few pending at most: a linear look is fine).
    auto next = std::min_element(queue_.begin(), queue_.end(),
                                 [](const Message& a, const Message& b) { return a.due_ms < b.due_ms; });
    if (next == queue_.end()) {
      wake_.wait(lock);
      continue;
    }
    int64_t wait = next->due_ms - monotonic_ms();
    if (wait > 0) {
      wake_.wait_for(lock, std::chrono::milliseconds(wait));
      continue;
    }
    Message m = std::move(*next);
    queue_.erase(next);
    lock.unlock();
    std::string error = deliver(m);
    ++m.attempts;
    lock.lock();
    if (error.empty()) {
      ++counts_.sent;
      --counts_.pending;
      done_.push_back(m.key);
    } else if (m.attempts >= options_.max_attempts) {
      spdlog::error("job notification to {} given up after {} attempts: {}", m.to, m.attempts, error);
      ++counts_.failed;
      --counts_.pending;
      done_.push_back(m.key);
    } else {
      int64_t delay = std::min<int64_t>(options_.retry_ms << std::min(m.attempts - 1, 10), 15 * 60 * 1000);
      spdlog::warn("job notification to {} failed (attempt {} of {}): {}; again in {} s", m.to, m.attempts,
                   options_.max_attempts, error, delay / 1000);
      m.due_ms = monotonic_ms() + delay;
      queue_.push_back(std::move(m));
    }
  }
}

std::string Notifier::deliver(const Message& m) {
  if (m.to.rfind("http://", 0) == 0 || m.to.rfind("https://", 0) == 0) {
    // Checked at submit; checked again: the site's list may have changed since.
    if (std::find(options_.webhook_hosts.begin(), options_.webhook_hosts.end(), url_host(m.to)) ==
        options_.webhook_hosts.end()) {
      return "its host is not in notify.webhook_hosts";
    }
    return post_webhook(m.to, m.json);
  }
  return send_mail(m.to, m.json);
}

std::string Notifier::send_mail(const std::string& to, const std::string& stored) {
  if (options_.smtp_url.empty()) return "mail is not configured (notify.smtp_url)";
  auto j = json::parse(stored, nullptr, false);
  std::string subject = j.value("text", "Trainyard job notification");
  std::string body = subject + "\r\n\r\nJob " + j.value("job", "") + " (" + j.value("name", "") + ") of " +
                     j.value("user", "") + ", account " + j.value("account", "") + ": " + j.value("state", "") +
                     "\r\n";
  if (std::string reason = j.value("reason", ""); !reason.empty()) body += "Reason: " + reason + "\r\n";
  for (auto& c : body) {
    if (c == '\n' || c == '\r') continue;
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  std::string text = "Date: " + rfc2822_date(j.value("time_ns", int64_t{0})) + "\r\nFrom: " + options_.from +
                     "\r\nTo: " + to + "\r\nSubject: " + subject +
                     "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body;
  Easy e;
  if (!e.h) return "curl_easy_init failed";
  Upload up{&text};
  e.list = curl_slist_append(nullptr, to.c_str());
  curl_easy_setopt(e.h, CURLOPT_URL, options_.smtp_url.c_str());
  curl_easy_setopt(e.h, CURLOPT_MAIL_FROM, options_.from.c_str());
  curl_easy_setopt(e.h, CURLOPT_MAIL_RCPT, e.list);
  curl_easy_setopt(e.h, CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(e.h, CURLOPT_READDATA, &up);
  curl_easy_setopt(e.h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(e.h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);
  return e.perform();
}

std::string Notifier::post_webhook(const std::string& url, const std::string& stored) {
  Easy e;
  if (!e.h) return "curl_easy_init failed";
  e.list = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(e.h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.list);
  curl_easy_setopt(e.h, CURLOPT_POSTFIELDS, stored.c_str());
  curl_easy_setopt(e.h, CURLOPT_POSTFIELDSIZE, static_cast<long>(stored.size()));
  curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(e.h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e.h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect could lead off the allowed hosts
  std::string error = e.perform();
  if (!error.empty()) return error;
  long status = 0;
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) return "HTTP " + std::to_string(status);
  return "";
}

}  // namespace trainyard::scheduler
