#include "ops/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace reel::log {

namespace {
std::string node_name = "-";
std::atomic<int> min_lvl{static_cast<int>(level::info)};
std::mutex out_mtx;

const char* name_of(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

bool is_control(char c) {
  return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
}

/// A value as logfmt wants it: bare when it can be, else quoted with
/// escapes, and never a raw control character (a line stays one line).
void append_value(std::string& out, std::string_view v) {
  bool quote = v.empty();
  for (char c : v)
    quote = quote || c == ' ' || c == '"' || c == '=' || c == '\\'
            || is_control(c);
  if (!quote) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (is_control(c)) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += hex;
    } else {
      out += c;
    }
  }
  out += '"';
}
} // namespace

void init(std::string node, level min_level) {
  node_name = std::move(node);
  min_lvl = static_cast<int>(min_level);
}

level parse_level(std::string_view s) {
  if (s == "debug") return level::debug;
  if (s == "warn") return level::warn;
  if (s == "error") return level::error;
  return level::info;
}

void write(level lvl, std::string_view event,
           std::initializer_list<field> fields) {
  if (static_cast<int>(lvl) < min_lvl.load())
    return;
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  std::string line = "ts=";
  line += ts;
  line += " level=";
  line += name_of(lvl);
  line += " node=";
  append_value(line, node_name);
  line += " event=";
  line += event;
  for (auto& [k, v] : fields) {
    line += ' ';
    line += k;
    line += '=';
    append_value(line, v);
  }
  line += '\n';
  std::lock_guard<std::mutex> guard{out_mtx};
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

} // namespace reel::log
