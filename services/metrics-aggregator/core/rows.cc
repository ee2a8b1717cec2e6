#include "core/rows.h"

#include <bit>
#include <stdexcept>

#include "storage/keys.h"

namespace trainyard::metrics {

using storage::Key;
using storage::KeyReader;

namespace {

void put_u64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}
void put_i64(std::string& out, int64_t v) { put_u64(out, static_cast<uint64_t>(v)); }
void put_f64(std::string& out, double v) { put_u64(out, std::bit_cast<uint64_t>(v)); }

struct Reader {
  std::string_view s;
  size_t pos = 0;
  bool ok = true;
  uint64_t u64() {
    if (pos + 8 > s.size()) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(s[pos + i]);
    pos += 8;
    return v;
  }
  int64_t i64() { return static_cast<int64_t>(u64()); }
  double f64() { return std::bit_cast<double>(u64()); }
};

void put_point(std::string& out, const Point& p) {
  put_i64(out, p.step);
  put_f64(out, p.value);
}
Point get_point(Reader& r) {
  Point p;
  p.step = r.i64();
  p.value = r.f64();
  return p;
}

// Better = smaller value, or the same value at an earlier step.
bool lower(double v, int64_t step, const Point& than) { return v < than.value || (v == than.value && step < than.step); }
bool higher(double v, int64_t step, const Point& than) { return v > than.value || (v == than.value && step < than.step); }

}  // namespace

void Aggregate::add(int64_t step, double value, int64_t time_ns) {
  if (count == 0) {
    first = last = min = max = Point{step, value};
  } else {
    if (step < first.step) first = Point{step, value};
    if (step > last.step) last = Point{step, value};
    if (lower(value, step, min)) min = Point{step, value};
    if (higher(value, step, max)) max = Point{step, value};
  }
  ++count;
  if (time_ns > newest_time_ns) newest_time_ns = time_ns;
}

void Aggregate::overwrite(int64_t step, double value, int64_t time_ns) {
  if (count == 0) {
    add(step, value, time_ns);
    return;
  }
  if (step == first.step) first.value = value;
  if (step == last.step) last.value = value;
  if (lower(value, step, min)) min = Point{step, value};
  if (higher(value, step, max)) max = Point{step, value};
  if (time_ns > newest_time_ns) newest_time_ns = time_ns;
}

void Aggregate::merge(const Aggregate& o) {
  if (o.count == 0) return;
  if (count == 0) {
    *this = o;
    return;
  }
  if (o.first.step < first.step) first = o.first;
  if (o.last.step > last.step) last = o.last;
  if (lower(o.min.value, o.min.step, min)) min = o.min;
  if (higher(o.max.value, o.max.step, max)) max = o.max;
  count += o.count;
  if (o.newest_time_ns > newest_time_ns) newest_time_ns = o.newest_time_ns;
}

std::string encode_aggregate(const Aggregate& a) {
  std::string out;
  out.reserve(80);
  put_u64(out, a.count);
  put_point(out, a.first);
  put_point(out, a.last);
  put_point(out, a.min);
  put_point(out, a.max);
  put_i64(out, a.newest_time_ns);
  return out;
}

std::optional<Aggregate> decode_aggregate(std::string_view s) {
  Reader r{s};
  Aggregate a;
  a.count = r.u64();
  a.first = get_point(r);
  a.last = get_point(r);
  a.min = get_point(r);
  a.max = get_point(r);
  a.newest_time_ns = r.i64();
  if (!r.ok) return std::nullopt;
  return a;
}

std::string encode_summary(const Summary& s) {
  std::string out = encode_aggregate(s.all);
  put_i64(out, s.raw_from);
  return out;
}

std::optional<Summary> decode_summary(std::string_view s) {
  auto a = decode_aggregate(s);
  if (!a || s.size() < 88) return std::nullopt;
  Summary out;
  out.all = *a;
  Reader r{s.substr(80)};
  out.raw_from = r.i64();
  return out;
}

std::string encode_point(double value, int64_t time_ns) {
  std::string out;
  encode_point_into(out, value, time_ns);
  return out;
}

void encode_point_into(std::string& out, double value, int64_t time_ns) {
  out.clear();
  put_f64(out, value);
  put_i64(out, time_ns);
}

std::optional<std::pair<double, int64_t>> decode_point(std::string_view s) {
  Reader r{s};
  double v = r.f64();
  int64_t t = r.i64();
  if (!r.ok) return std::nullopt;
  return std::make_pair(v, t);
}

std::string series_key(uint64_t job, std::string_view name) { return Key().u64(job).str(name).bytes(); }

std::string point_key(std::string_view series, int64_t step) {
  std::string k(series);
  k.append(Key().i64(step).bytes());
  return k;
}

std::string rollup_key(std::string_view series, int level, int64_t block) {
  std::string k(series);
  k.append(Key().u32(static_cast<uint32_t>(level)).i64(block).bytes());
  return k;
}

bool parse_series_key(std::string_view key, uint64_t* job, std::string_view* name) {
  try {
    KeyReader r(key);
    *job = r.u64();
    *name = r.str();
    return r.done();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace trainyard::metrics
