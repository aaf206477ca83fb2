#pragma once

// Structured logs: one line per event on stderr, logfmt-style:
//   ts=2026-11-25T19:00:00.123Z level=info node=n1 event=video.ready video=ID msg="..."

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace reel::log {

enum class level { debug, info, warn, error };

/// Sets the node name and the lowest level printed.
void init(std::string node, level min_level);
level parse_level(std::string_view s);

using field = std::pair<std::string_view, std::string>;

void write(level lvl, std::string_view event, std::initializer_list<field> fields);

inline void debug(std::string_view ev, std::initializer_list<field> f = {}) { write(level::debug, ev, f); }
inline void info(std::string_view ev, std::initializer_list<field> f = {}) { write(level::info, ev, f); }
inline void warn(std::string_view ev, std::initializer_list<field> f = {}) { write(level::warn, ev, f); }
inline void error(std::string_view ev, std::initializer_list<field> f = {}) { write(level::error, ev, f); }

} // namespace reel::log
