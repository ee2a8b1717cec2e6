#include "core/notify.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace trainyard::scheduler {
namespace {

std::string hms(uint64_t s) {
  char buf[48];
  if (s >= 86400) {
    std::snprintf(buf, sizeof buf, "%llu-%02llu:%02llu:%02llu", static_cast<unsigned long long>(s / 86400),
                  static_cast<unsigned long long>(s / 3600 % 24), static_cast<unsigned long long>(s / 60 % 60),
                  static_cast<unsigned long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%02llu:%02llu:%02llu", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s / 60 % 60), static_cast<unsigned long long>(s % 60));
  }
  return buf;
}

uint64_t seconds_between(int64_t from_ns, int64_t to_ns) {
  return from_ns > 0 && to_ns > from_ns ? static_cast<uint64_t>((to_ns - from_ns) / 1'000'000'000) : 0;
}

// Slurm's word for an ended job's state, as its mail says it.
const char* ended_word(JobState s) {
  switch (s) {
    case JobState::Succeeded: return "COMPLETED";
    case JobState::Failed: return "FAILED";
    case JobState::Cancelled: return "CANCELLED";
    case JobState::TimedOut: return "TIMEOUT";
    case JobState::NodeFailure: return "NODE_FAIL";
    default: return "UNKNOWN";
  }
}

bool plain_user_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

// local@domain: printable, no spaces, quotes, angle brackets or a second @
// (the address goes into a mail header and an SMTP command).
bool mail_address(const std::string& s) {
  auto at = s.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == s.size() || s.find('@', at + 1) != std::string::npos) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return c > 0x20 && c < 0x7f && c != '<' && c != '>' && c != '"' && c != '\\' && c != ',' && c != ';';
  });
}

}  // namespace

std::string url_host(const std::string& url) {
  std::string rest;
  for (const char* scheme : {"http://", "https://"}) {
    if (url.rfind(scheme, 0) == 0) rest = url.substr(std::string(scheme).size());
  }
  if (rest.empty()) return "";
  auto end = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, end);
  if (authority.find('@') != std::string::npos) return "";  // no user info: it hides the real host
  if (!authority.empty() && authority[0] == '[') return authority.substr(0, authority.find(']') + 1);
  return authority.substr(0, authority.find(':'));
}

Status check_notify(const std::vector<std::string>& notify, const std::vector<std::string>& webhook_hosts) {
  for (size_t i = 0; i < notify.size(); ++i) {
    const std::string& d = notify[i];
    std::string field = "notify[" + std::to_string(i) + "]: ";
    if (d.rfind("http://", 0) == 0 || d.rfind("https://", 0) == 0) {
      std::string host = url_host(d);
      if (host.empty() || std::any_of(d.begin(), d.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; })) {
        return Status::invalid(field + "'" + d + "' is not a URL Trainyard posts to");
      }
      if (std::find(webhook_hosts.begin(), webhook_hosts.end(), host) == webhook_hosts.end()) {
        return Status::invalid(field + "webhooks to " + host +
                               " are not allowed here; the site lists the hosts it posts to in notify.webhook_hosts");
      }
    } else if (!mail_address(d) && !plain_user_name(d)) {
      return Status::invalid(field + "'" + d + "' is neither a mail address, a user name nor an http(s) URL");
    }
  }
  return Status::success();
}

std::optional<Notice> notice_for(const Job& j, JobState from, JobState to, const std::string& reason, int32_t exit_code,
                                 int64_t now_ns) {
  const fb::JobSpecT& spec = *j.spec;
  if (spec.notify.empty() || spec.notify_on == fb::NotifyOn::NONE) return std::nullopt;
  auto asks = [&spec](fb::NotifyOn bit) { return (spec.notify_on & bit) != fb::NotifyOn::NONE; };
  Notice n;
  const char* verb = nullptr;
  bool ended = is_terminal(to);
  if (to == JobState::Running && from != JobState::Running && asks(fb::NotifyOn::Begin)) {
    n.event = "begin";
    verb = "Began";
    n.state = "RUNNING";
    n.seconds = seconds_between(j.submit_time_ns, now_ns);
  } else if (ended) {
    bool failed = to != JobState::Succeeded && to != JobState::Cancelled;
    if (to == JobState::TimedOut && asks(fb::NotifyOn::TimeLimit)) {
      n.event = "time_limit";
    } else if (failed && asks(fb::NotifyOn::Fail)) {
      n.event = "fail";
    } else if (asks(fb::NotifyOn::End)) {
      n.event = "end";
    } else {
      return std::nullopt;
    }
    verb = n.event == "end" ? "Ended" : n.event == "fail" ? "Failed" : "Reached time limit";
    n.state = ended_word(to);
    n.seconds = seconds_between(j.start_time_ns, now_ns);
  } else if (to == JobState::Pending && (from == JobState::Running || from == JobState::Scheduled) &&
             asks(fb::NotifyOn::Requeue)) {
    n.event = "requeue";
    verb = "Requeued";
    n.state = "REQUEUED";
    n.seconds = seconds_between(j.start_time_ns, now_ns);
  } else {
    return std::nullopt;
  }
  n.job = j.id;
  n.job_text = j.array_job_id ? std::to_string(j.array_job_id) + "_" + std::to_string(j.array_index)
                              : std::to_string(j.id);
  n.name = spec.name;
  n.user = spec.user;
  n.account = spec.account;
  n.exit_code = exit_code;
  n.reason = reason;
  n.time_ns = now_ns;
  n.to = spec.notify;
  n.subject = "Trainyard Job_id=" + n.job_text + " Name=" + spec.name + " " + verb;
  if (n.event == "begin") {
    n.subject += ", Queued time " + hms(n.seconds);
  } else {
    n.subject += ", Run time " + hms(n.seconds) + ", " + n.state;
    if (ended) n.subject += ", ExitCode " + std::to_string(exit_code);
  }
  // A job's name may hold line breaks: never in a mail header.
  for (auto& c : n.subject) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return n;
}

}  // namespace trainyard::scheduler
