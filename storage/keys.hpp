#pragma once

// Every RocksDB key is built here, so the layout lives in one place.

#include <cstdint>
#include <cstdio>
#include <string>

namespace reel::keys {

constexpr char sep = '\x1f';

/// videos: the id itself.
inline std::string video(const std::string& id) { return id; }

/// video_index: tenant, then created time inverted (newest first), then id.
inline std::string video_index(const std::string& tenant, int64_t created_ms,
                               const std::string& id) {
  char inv[17];
  std::snprintf(inv, sizeof(inv), "%016llx",
                static_cast<unsigned long long>(INT64_MAX - created_ms));
  return tenant + sep + inv + sep + id;
}
inline std::string video_index_prefix(const std::string& tenant) {
  return tenant + sep;
}
/// The id at the end of a video_index key.
inline std::string id_of_index(const std::string& key) {
  return key.substr(key.rfind(sep) + 1);
}

/// video_numbers: a video's integer id (Gcore's), 16 hex digits (so the
/// keys sort by number).
inline std::string video_number(uint64_t n) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(n));
  return buf;
}

/// client_keys: tenant, then the key a client named the video by (Flare's
/// s3Key).
inline std::string client_key(const std::string& tenant,
                              const std::string& key) {
  return tenant + sep + key;
}

inline std::string folder(const std::string& tenant, const std::string& path) {
  return tenant + sep + path;
}
inline std::string folder_prefix(const std::string& tenant) {
  return tenant + sep;
}

/// keys: the SHA-256 of the key.
inline std::string api_key(const std::string& key_hash) { return key_hash; }
/// keys: the mark a revoked key leaves, kept and replicated like the keys,
/// so that a node that missed the revocation cannot bring the key back.
inline std::string revoked_key(const std::string& key_hash) {
  return std::string{"revoked"} + sep + key_hash;
}
inline std::string revoked_key_prefix() { return std::string{"revoked"} + sep; }

/// tokens: upload tokens by the digest of their value
/// (at_rest_keys::token_digest, 64 hex digits). Releases before secrets
/// were sealed named them by the value itself; those rows are rewritten at
/// start (at_rest_form).
inline std::string upload_token(const std::string& digest) {
  return std::string{"upload"} + sep + digest;
}
inline std::string upload_token_prefix() { return std::string{"upload"} + sep; }

/// tokens, webhooks: the mark a deleted row leaves under its key, kept and
/// replicated like the rows, so that a node that missed the deletion
/// cannot bring the row back. ('~' is in no tenant name or token prefix.)
inline std::string gone(const std::string& key) {
  return std::string{"~gone"} + sep + key;
}
inline std::string gone_prefix() { return std::string{"~gone"} + sep; }

/// webhooks: tenant, then the subscription's id.
inline std::string webhook(const std::string& tenant, const std::string& id) {
  return tenant + sep + id;
}
inline std::string webhook_prefix(const std::string& tenant) {
  return tenant + sep;
}

/// outbox: the delivery's id (time-ordered: created ms in hex, then random).
inline std::string delivery(const std::string& id) { return id; }

} // namespace reel::keys
