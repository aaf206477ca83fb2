#pragma once

// Small helpers every layer uses: ids, secrets, digests, time.

#include "ops/error.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace reel {

/// A random RFC 4122 version-4 UUID, lower case.
std::string make_uuid();

/// `n` random characters from [A-Za-z0-9], from a cryptographic source.
std::string random_token(size_t n);

/// Video ids are UUIDs (v4 layout) whose first 48 bits are a number, the
/// integer id of dialects that want one (Gcore), and whose other bits
/// follow from that number: each gives the other.
std::string uuid_of_number(uint64_t n);
/// The number in the first 48 bits of a UUID (0 for anything else).
uint64_t number_of_uuid(std::string_view id);
/// A new video id (a random number).
std::string make_video_id();
/// The video id named by a client's key (e.g. Flare's s3Key within a
/// tenant): the same key always gives the same id.
std::string video_id_for_key(std::string_view key);

/// True when `s` is a well-formed UUID (any version), e.g. from a URL.
bool is_uuid(std::string_view s);

/// Milliseconds since the Unix epoch.
int64_t now_ms();

/// ISO 8601 in UTC with a Z, e.g. "2024-08-11T10:00:00Z".
std::string iso8601(int64_t ms);

/// The same with milliseconds, e.g. "2024-08-11T10:00:00.250Z".
std::string iso8601_ms(int64_t ms);

/// Incremental SHA-256 (OpenSSL EVP), hex digest.
class sha256 {
public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  void update(const void* data, size_t len);
  std::string hex_digest(); // finishes; the object is then spent

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Hex SHA-256 of a string.
std::string sha256_hex(std::string_view data);

/// SHA-256 of a file's contents, hex (read in 64 KiB pieces).
caf::expected<std::string> file_sha256(const std::string& path);

/// HMAC-SHA256 of `data` under `key`: 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);

/// Lower-case hex of raw bytes.
std::string hex(std::string_view bytes);

/// Decodes standard base64 (padding optional); nothing for invalid input.
std::optional<std::string> base64_decode(std::string_view in);

/// Compares two secrets in time independent of where they differ.
bool equal_secrets(std::string_view a, std::string_view b);

} // namespace reel
