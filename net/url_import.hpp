#pragma once

// Downloads a video source from an http(s) URL into a file, safely:
// - only http and https, no user names or passwords in the URL;
// - no server-side request forgery: the host is resolved here, every address
//   it resolves to must be public (or exempted by `allow`), and the
//   connection goes to the vetted address, not to the name again (a DNS
//   answer that changes between check and connect cannot redirect it);
//   https still sends the name for SNI and verifies the certificate for it;
// - redirects are followed here, each hop checked the same way;
// - the body streams to the file (never held in memory), counted against a
//   size limit and hashed on the way, under one deadline for the whole
//   download.

#include "ops/error.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace reel {

struct import_options {
  /// Bodies larger than this are refused, by Content-Length before the body
  /// or counted while streaming. Default: 20 GiB (as max-upload-bytes).
  int64_t max_bytes = int64_t{20} << 30;
  /// Seconds the whole download (all redirects included) may take.
  /// Default: 600.
  int timeout_s = 600;
  /// Redirects followed before giving up. Default: 5.
  int max_redirects = 5;
  /// CIDRs ("127.0.0.0/8", "fd00::/8"), single addresses or host names
  /// ("media.internal") exempt from the private-address rule. A host name
  /// exempts whatever it resolves to, for that name only: a redirect to
  /// another name or an address literal is checked again. Default: none.
  std::vector<std::string> allow;
  /// Extra request headers (e.g. an origin's authentication headers). Sent
  /// to the URL's own origin (scheme, host, port) only, not to another one a
  /// redirect leads to. Host, and any CR, LF or NUL, are refused.
  /// Default: none.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct import_result {
  /// Bytes written to the file.
  int64_t bytes = 0;
  /// Hex SHA-256 of those bytes.
  std::string sha256;
  /// Last path segment of the URL (else of the final URL after redirects),
  /// percent-decoded, without slashes or control characters; "source" when
  /// there is none.
  std::string filename;
  /// The Content-Type the server sent, as sent (may be empty).
  std::string content_type;
  /// The URL the body came from, after redirects.
  std::string final_url;
};

/// Downloads `url` to `dest` (created or truncated; removed again on any
/// failure). Errors carry a message a user can read:
/// - ec::invalid_argument: a bad URL, an unsupported scheme, a refused
///   address, too many redirects, a bad allow entry or header;
/// - ec::too_large: the body is over `max_bytes`;
/// - ec::timeout: the deadline passed;
/// - ec::unavailable: the host cannot be resolved or reached, TLS or the
///   certificate failed, the connection broke, or the server answered other
///   than 2xx (the status is in the message);
/// - ec::storage_error: `dest` cannot be written.
caf::expected<import_result> import_url(const std::string& url,
                                        const std::string& dest,
                                        const import_options& opts);

/// POSTs `body` to `url` under the same address rules as an import
/// (private addresses refused unless `allow` names them; the connection
/// pinned to the vetted address; no redirects followed) and answers the
/// HTTP status the server gave. For webhook deliveries.
caf::expected<int>
post_url(const std::string& url, const std::string& body,
         const std::string& content_type,
         const std::vector<std::pair<std::string, std::string>>& headers,
         const std::vector<std::string>& allow, int timeout_s);

/// Whether `ip` (textual IPv4 or IPv6) is in a private, loopback,
/// link-local, unique-local, CGNAT, multicast, unspecified, documentation,
/// benchmarking or otherwise reserved (non-public) range. IPv4-mapped,
/// IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are
/// judged by the IPv4 address they carry; IPv6 outside 2000::/3 is never
/// public. Text that is not an address counts as private.
bool is_private_address(const std::string& ip);

} // namespace reel
