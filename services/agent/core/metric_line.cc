#include "core/metric_line.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

namespace trainyard::agent {
namespace {

// A hand-written reader for the one shape we accept (a flat object of
// numbers): it is several times faster than a general JSON parser, which
// matters for a job writing 100k points a second, and it can tell Python's
// NaN/Infinity tokens from garbage.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  MetricLine parse() {
    MetricLine out;
    bool has_step = false;
    bool step_ok = false;
    BadLine semantic = BadLine::kNone;
    auto note = [&](BadLine k) {
      if (semantic == BadLine::kNone) semantic = k;
    };
    ws();
    if (!eat('{')) return bad(BadLine::kNotJson);
    ws();
    if (!eat('}')) {
      while (true) {
        std::string key;
        ws();
        if (!string(&key)) return bad(BadLine::kNotJson);
        ws();
        if (!eat(':')) return bad(BadLine::kNotJson);
        ws();
        Value v = value(0);
        if (v.kind == Value::kSyntax) return bad(BadLine::kNotJson);
        if (key == "step") {
          has_step = true;
          if (v.kind == Value::kNumber && v.integral) {
            out.step = v.as_int;
            step_ok = true;
          } else if (v.kind == Value::kNotFinite) {
            note(BadLine::kNotFinite);
          } else if (v.kind == Value::kOther) {
            note(BadLine::kNotNumber);
          }
        } else if (v.kind == Value::kNotFinite) {
          note(BadLine::kNotFinite);
        } else if (v.kind == Value::kOther) {
          note(BadLine::kNotNumber);
        } else if (key == "time") {
          out.has_time = true;
          out.time_s = v.number;
        } else {
          out.values.emplace_back(std::move(key), v.number);
        }
        ws();
        if (eat(',')) continue;
        if (eat('}')) break;
        return bad(BadLine::kNotJson);
      }
    }
    ws();
    if (i_ != s_.size()) return bad(BadLine::kNotJson);
    if (semantic != BadLine::kNone) return bad(semantic);
    if (!has_step || !step_ok) return bad(BadLine::kNoStep);
    return out;
  }

 private:
  struct Value {
    enum Kind { kNumber, kNotFinite, kOther, kSyntax } kind = kSyntax;
    double number = 0;
    bool integral = false;
    int64_t as_int = 0;
  };

  static MetricLine bad(BadLine k) {
    MetricLine m;
    m.bad = k;
    return m;
  }

  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static void utf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool hex4(uint32_t* cp) {
    if (i_ + 4 > s_.size()) return false;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      int h = hex(s_[i_ + k]);
      if (h < 0) return false;
      v = v * 16 + static_cast<uint32_t>(h);
    }
    i_ += 4;
    *cp = v;
    return true;
  }
  // A JSON string; `out` may be null to only skip it.
  bool string(std::string* out) {
    if (!eat('"')) return false;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        if (out) out->push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return false;
      char e = s_[i_++];
      char plain = 0;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(i_, 2) == "\\u") {
            i_ += 2;
            uint32_t lo;
            if (!hex4(&lo)) return false;
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          if (out) utf8(out, cp);
          continue;
        }
        default: return false;
      }
      if (out) out->push_back(plain);
    }
    return false;
  }
  Value number() {
    Value v;
    size_t start = i_;
    eat('-');
    if (i_ >= s_.size()) return v;
    if (s_[i_] == '0') {
      ++i_;
    } else if (s_[i_] >= '1' && s_[i_] <= '9') {
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    } else {
      return v;
    }
    bool integer = true;
    if (eat('.')) {
      integer = false;
      size_t d = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      if (i_ == d) return v;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      integer = false;
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      size_t d = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      if (i_ == d) return v;
    }
    const char* b = s_.data() + start;
    const char* e = s_.data() + i_;
    double d = 0;
    auto r = std::from_chars(b, e, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Overflow (1e999) is not finite; underflow (1e-999) is a fine zero.
      d = std::strtod(std::string(b, e).c_str(), nullptr);
    } else if (r.ec != std::errc()) {
      return v;
    }
    if (!std::isfinite(d)) {
      v.kind = Value::kNotFinite;
      return v;
    }
    v.kind = Value::kNumber;
    v.number = d;
    if (integer) {
      int64_t n = 0;
      auto ri = std::from_chars(b, e, n);
      if (ri.ec == std::errc()) {
        v.integral = true;
        v.as_int = n;
      }
    } else if (std::floor(d) == d && std::fabs(d) < 9.0e18) {
      v.integral = true;
      v.as_int = static_cast<int64_t>(d);
    }
    return v;
  }
  Value value(int depth) {
    Value v;
    if (i_ >= s_.size() || depth > 64) return v;
    char c = s_[i_];
    if (c == '"') {
      if (string(nullptr)) v.kind = Value::kOther;
      return v;
    }
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i_;
      ws();
      if (eat(close)) {
        v.kind = Value::kOther;
        return v;
      }
      while (true) {
        ws();
        if (c == '{') {
          if (!string(nullptr)) return v;
          ws();
          if (!eat(':')) return v;
          ws();
        }
        if (value(depth + 1).kind == Value::kSyntax) return v;
        ws();
        if (eat(',')) continue;
        if (eat(close)) break;
        return v;
      }
      v.kind = Value::kOther;
      return v;
    }
    if (literal("true") || literal("false") || literal("null")) {
      v.kind = Value::kOther;
      return v;
    }
    // Python's json module writes these for float('nan') and float('inf').
    if (literal("NaN") || literal("Infinity") || literal("-Infinity")) {
      v.kind = Value::kNotFinite;
      return v;
    }
    return number();
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

const char* describe(BadLine kind) {
  switch (kind) {
    case BadLine::kNone: return "a good line";
    case BadLine::kNotJson: return "not a JSON object";
    case BadLine::kNoStep: return "no integer \"step\"";
    case BadLine::kNotNumber: return "a value that is not a number";
    case BadLine::kNotFinite: return "a NaN or infinite value";
    case BadLine::kTooLong: return "longer than 1 MiB";
  }
  return "bad";
}

MetricLine parse_metric_line(std::string_view line) {
  size_t k = 0;
  while (k < line.size() && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) ++k;
  if (k == line.size()) return MetricLine{};
  if (line.size() > kMaxMetricLineBytes) {
    MetricLine m;
    m.bad = BadLine::kTooLong;
    return m;
  }
  return Reader(line).parse();
}

}  // namespace trainyard::agent
