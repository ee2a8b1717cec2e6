#include "format.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace trainyard::ty {

std::string Table::render() const {
  std::vector<size_t> width;
  auto display_width = [](const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // count UTF-8 code points
    return n;
  };
  for (auto& row : rows_) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], display_width(row[i]));
  }
  std::string out;
  for (auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - display_width(row[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string format_duration(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  int64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60;
  char buf[64];
  if (d > 0) {
    std::snprintf(buf, sizeof buf, "%lld-%02lld:%02lld:%02lld", static_cast<long long>(d), static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s));
  } else if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(h), static_cast<long long>(m),
                  static_cast<long long>(s));
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(m), static_cast<long long>(s));
  }
  return buf;
}

std::string format_time(int64_t ns) {
  if (ns <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string format_money(int64_t micros) {
  bool neg = micros < 0;
  uint64_t m = neg ? static_cast<uint64_t>(-(micros + 1)) + 1 : static_cast<uint64_t>(micros);
  std::string frac = std::to_string(m % 1'000'000);
  frac = std::string(6 - frac.size(), '0') + frac;
  while (frac.size() > 2 && frac.back() == '0') frac.pop_back();
  return (neg ? "-" : "") + std::to_string(m / 1'000'000) + "." + frac;
}

bool parse_money(const std::string& text, int64_t* micros) {
  if (text.empty()) return false;
  auto dot = text.find('.');
  std::string whole = text.substr(0, dot);
  std::string frac = dot == std::string::npos ? "" : text.substr(dot + 1);
  if (whole.empty() && frac.empty()) return false;
  if (frac.size() > 6) return false;
  for (char c : whole + frac) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  if (whole.size() > 12) return false;
  frac += std::string(6 - frac.size(), '0');
  *micros = (whole.empty() ? 0 : std::stoll(whole)) * 1'000'000 + std::stoll(frac);
  return true;
}

std::string format_hours(uint64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(ms) / 3'600'000.0);
  return buf;
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

bool parse_date(const std::string& text, int64_t* ns) {
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char tail = 0;
  int n = std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &mo, &d, &tail);
  if (n == 3) {
    // date only
  } else if (n == 4 && (tail == 'T' || tail == ' ')) {
    int m = std::sscanf(text.c_str() + 11, "%2d:%2d:%2d", &h, &mi, &s);
    if (m < 2) return false;
  } else {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  *ns = static_cast<int64_t>(timegm(&tm)) * 1'000'000'000;
  return true;
}

bool parse_time_or_age(const std::string& text, int64_t now_ns, int64_t* ns) {
  if (text == "now") {
    *ns = now_ns;
    return true;
  }
  if (text.size() >= 2 && text.find_first_not_of("0123456789") == text.size() - 1 && text.size() <= 10) {
    int64_t unit = 0;
    switch (text.back()) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3'600; break;
      case 'd': unit = 86'400; break;
      case 'w': unit = 7 * 86'400; break;
      default: return false;
    }
    int64_t n = std::stoll(text.substr(0, text.size() - 1));  // at most 9 digits: n * unit fits
    if (n * unit > 100LL * 366 * 86'400) return false;         // past a century: a typo
    *ns = now_ns - n * unit * 1'000'000'000;
    return true;
  }
  return parse_date(text, ns);
}

namespace {

// The dots of a braille plot: 2 x 4 dots per character.
class BrailleCanvas {
 public:
  BrailleCanvas(int width, int height)
      : pw_(width * 2), ph_(height * 4),
        dots_(static_cast<size_t>(ph_), std::vector<bool>(static_cast<size_t>(pw_), false)) {}
  int dot_width() const { return pw_; }
  int dot_height() const { return ph_; }

  void set(int x, int y) {
    if (x >= 0 && x < pw_ && y >= 0 && y < ph_) dots_[static_cast<size_t>(y)][static_cast<size_t>(x)] = true;
  }

  // A straight line from (x0, y0) to (x1, y1), both ends included (Bresenham).
  void line(int x0, int y0, int x1, int y1) {
    int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    while (true) {
      set(x0, y0);
      if (x0 == x1 && y0 == y1) break;
      int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }

  // The character at text row `row`, column `col`: its 2 x 4 dots.
  std::string character(int row, int col) const {
    static const int kBits[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
    int bits = 0;
    for (int dy = 0; dy < 4; ++dy) {
      for (int dx = 0; dx < 2; ++dx) {
        if (dots_[static_cast<size_t>(row * 4 + dy)][static_cast<size_t>(col * 2 + dx)]) bits |= kBits[dy][dx];
      }
    }
    // U+2800 + bits, as UTF-8.
    int cp = 0x2800 + bits;
    std::string out;
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
    return out;
  }

 private:
  int pw_, ph_;
  std::vector<std::vector<bool>> dots_;
};

// The value axis's label of each text row: the highest value at the top,
// the lowest at the bottom, the middle one when there are 5 rows or more.
std::vector<std::string> axis_labels(double lo, double hi, int height) {
  std::vector<std::string> labels(static_cast<size_t>(height));
  labels.front() = format_number(hi);
  labels.back() = format_number(lo);
  if (height >= 5) labels[static_cast<size_t>(height / 2)] = format_number((hi + lo) / 2);
  return labels;
}

}  // namespace

std::string render_plot(const std::vector<int64_t>& steps, const std::vector<double>& values, int width, int height) {
  size_t n = std::min(steps.size(), values.size());
  if (n == 0) return "(no points)\n";
  width = std::max(width, 10);
  height = std::max(height, 3);
  double lo = values[0], hi = values[0];
  for (size_t i = 0; i < n; ++i) {
    lo = std::min(lo, values[i]);
    hi = std::max(hi, values[i]);
  }
  if (hi == lo) {
    hi += 0.5;
    lo -= 0.5;
  }
  int64_t s0 = steps[0], s1 = steps[n - 1];
  BrailleCanvas canvas(width, height);
  const int pw = canvas.dot_width(), ph = canvas.dot_height();
  auto px = [&](size_t i) {
    if (s1 == s0) return 0;
    return static_cast<int>(std::lround(static_cast<double>(steps[i] - s0) / static_cast<double>(s1 - s0) * (pw - 1)));
  };
  auto py = [&](size_t i) { return static_cast<int>(std::lround((hi - values[i]) / (hi - lo) * (ph - 1))); };
  canvas.set(px(0), py(0));
  // A straight line from each point to the next.
  for (size_t i = 1; i < n; ++i) canvas.line(px(i - 1), py(i - 1), px(i), py(i));
  auto labels = axis_labels(lo, hi, height);
  size_t label_w = 0;
  for (auto& l : labels) label_w = std::max(label_w, l.size());
  std::string out;
  for (int row = 0; row < height; ++row) {
    auto& l = labels[static_cast<size_t>(row)];
    out += std::string(label_w - l.size(), ' ') + l + " ┤";
    for (int col = 0; col < width; ++col) out += canvas.character(row, col);
    out += "\n";
  }
  std::string first = "step " + std::to_string(s0), last = std::to_string(s1);
  out += std::string(label_w + 2, ' ') + first;
  int gap = width - static_cast<int>(first.size()) - static_cast<int>(last.size());
  out += std::string(static_cast<size_t>(std::max(1, gap)), ' ') + last + "\n";
  return out;
}

bool parse_state(const std::string& text, fb::JobState* out) {
  auto s = trainyard::parse_state(text);
  if (s) *out = *s;
  return s.has_value();
}

nlohmann::json to_json(const fb::JobRecordT& job) { return records::job_json(job, records::JobView::kFull); }

nlohmann::json to_json(const fb::NodeStatusT& node) { return records::node_json(node); }

}  // namespace trainyard::ty
