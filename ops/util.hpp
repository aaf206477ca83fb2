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

/// Video ids are plain random UUIDs (make_uuid). Releases before this one
/// made ids whose first 48 bits were the video's integer id (Gcore's) and
/// whose other bits followed from it: the integer id of such a video, for
/// records of those releases that do not carry their number (0 for
/// anything that is not a UUID). Never a way to find or make an id.
uint64_t legacy_number_of_id(std::string_view id);

/// The largest integer id a new video gets: number * 16 + rung (Gcore's
/// converted_videos ids) stays below 2^53, exact in JavaScript.
constexpr uint64_t max_new_video_number = (uint64_t{1} << 49) - 1;
/// The largest integer id there may be (2^53 - 1: exact in JavaScript).
constexpr uint64_t max_video_number = (uint64_t{1} << 53) - 1;
/// A random integer id for a new video: 1 to max_new_video_number, from a
/// cryptographic source.
uint64_t random_video_number();

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
