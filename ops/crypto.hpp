#pragma once

// Keys derived from one secret, sealed secrets at rest, and password
// hashes. Everything here is OpenSSL (libcrypto); nothing is hand-rolled
// but the framing of what it returns.
//
// One root secret per cluster (--cluster-secret) or per lone node (a random
// one kept in its store) gives every key reel needs, each for one purpose
// (HKDF-SHA256 with a label), so that knowing one says nothing of another:
//   "reel cluster ca v1"  -> the CA key that admits members (ops/pki.hpp)
//   "reel at-rest v1"     -> the AES-256-GCM key of sealed values
//   "reel token digest v1" -> the HMAC key whose digests of upload tokens
//                            name their rows (docs/security.md)
// Token signing keeps its own derivation (actors/node.cpp) for tokens
// already handed out.

#include "ops/error.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace reel {

/// HKDF-SHA256 (RFC 5869) of `secret` with `label` as its info: `n` raw
/// bytes.
std::string hkdf_sha256(std::string_view secret, std::string_view label,
                        size_t n = 32);

/// Seals and opens short secrets kept at rest (upload tokens, webhook
/// signing secrets) with AES-256-GCM: "s1:" + base64url(nonce | ciphertext
/// | tag). A value sealed under any of the keys opens; new values are
/// sealed under the first.
class sealer {
public:
  sealer() = default;
  /// Keys are 32 raw bytes each (hkdf_sha256(root, "reel at-rest v1")).
  explicit sealer(std::vector<std::string> keys);

  std::string seal(std::string_view plaintext) const;
  /// The plaintext; ec::unauthorized when no key opens it (tampered, or
  /// sealed by another cluster), ec::invalid_argument when it is not a
  /// sealed value at all.
  caf::expected<std::string> open(std::string_view sealed) const;
  /// The same, and which key opened it (0: the one new values are sealed
  /// under; a value opened by another is worth sealing again).
  caf::expected<std::string> open(std::string_view sealed,
                                  size_t* key_index) const;
  /// Whether `value` has the form seal() gives (legacy rows do not).
  static bool is_sealed(std::string_view value);

  bool empty() const { return keys_.empty(); }

private:
  std::vector<std::string> keys_;
};

/// A password hash for storage: "scrypt$N$r$p$<salt b64>$<hash b64>"
/// (OpenSSL's scrypt, N = 2^15, r = 8, p = 1: about 32 MiB and a few
/// tens of milliseconds per try).
std::string hash_password(std::string_view password);

/// Whether `password` matches `stored`, in time independent of where it
/// differs. Also reads the legacy form "<salt>$<sha256(salt+password)>".
bool check_password(std::string_view stored, std::string_view password);

/// Whether `stored` is in a form hash_password no longer makes.
bool password_needs_rehash(std::string_view stored);

/// URL-safe base64 without padding, and back.
std::string base64url(std::string_view bytes);
std::string base64url_decode(std::string_view text, bool* ok);

} // namespace reel
