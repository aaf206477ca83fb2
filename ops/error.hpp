#pragma once

// The project's one error enum. Library errors are converted once, at the
// edge (storage: to_error(rocksdb::Status); codec: av_error(int, what)), into
// a caf::error whose context carries a message a person can read.

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <cstdint>
#include <ostream>
#include <string>

namespace reel {

enum class ec : uint8_t {
  none = 0,
  unspecified,
  invalid_argument, // a request or value a client sent is wrong
  unauthorized,     // no or a bad credential
  forbidden,        // a credential without the needed scope
  not_found,        // no such video, folder, file, ...
  conflict,         // the thing exists already / wrong state for the action
  too_large,        // a body or file over a configured limit
  range_not_satisfiable,
  storage_error,    // RocksDB or the file system failed
  media_error,      // the media could not be probed/decoded/encoded
  timeout,          // an actor did not answer in time
  unavailable,      // shutting down, overloaded
  no_space,         // the disk is full
  rate_limited,     // a key made more requests than its tenant may
};

/// A short stable name for `x`, e.g. "not_found".
const char* to_string(ec x);

inline std::ostream& operator<<(std::ostream& out, ec x) {
  return out << to_string(x);
}

/// Builds an error of category "reel" with `what` as its message.
caf::error make_error(ec code, std::string what);

/// A file system failure with errno `errnum`: ec::no_space for a full disk
/// (ENOSPC, EDQUOT), which work waits out, else ec::storage_error. The
/// message is `what` and the system's words for it.
caf::error file_error(int errnum, const std::string& what);

/// Whether work that failed with `err` may succeed later without any change
/// to its input: a full disk (space returns), a node or peer unavailable,
/// a timeout. Bad media, bad requests and refusals are not.
bool is_transient(const caf::error& err);

/// The project code of `err`, or ec::unspecified for foreign errors.
ec code_of(const caf::error& err);

/// The message a person reads for `err` (the context string, or a rendering
/// of foreign errors).
std::string message_of(const caf::error& err);

} // namespace reel
