#include "ops/crypto.hpp"

#include "ops/util.hpp"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>

namespace reel {

namespace {

constexpr size_t nonce_bytes = 12;
constexpr size_t tag_bytes = 16;
constexpr std::string_view sealed_prefix = "s1:";

// scrypt parameters of new password hashes.
constexpr uint64_t scrypt_n = uint64_t{1} << 15;
constexpr uint64_t scrypt_r = 8;
constexpr uint64_t scrypt_p = 1;
constexpr size_t scrypt_out = 32;

struct ctx_free {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

std::string random_raw(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return out;
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

/// scrypt of `password` with `salt`; empty when OpenSSL refuses.
std::string scrypt(std::string_view password, std::string_view salt, uint64_t n,
                   uint64_t r, uint64_t p) {
  std::string out(scrypt_out, '\0');
  // Room for 128 * r * N bytes and OpenSSL's own overhead.
  uint64_t maxmem = 128 * r * n + (uint64_t{16} << 20);
  if (EVP_PBE_scrypt(password.data(), password.size(), bytes(salt), salt.size(),
                     n, r, p, maxmem,
                     reinterpret_cast<unsigned char*>(out.data()),
                     out.size()) != 1)
    return {};
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto at = s.find(sep, start);
    out.emplace_back(s.substr(start, at - start));
    if (at == std::string_view::npos)
      return out;
    start = at + 1;
  }
}

} // namespace

std::string hkdf_sha256(std::string_view secret, std::string_view label,
                        size_t n) {
  std::unique_ptr<EVP_PKEY_CTX, ctx_free> ctx{
      EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr)};
  static constexpr std::string_view salt = "reel";
  std::string out(n, '\0');
  size_t len = n;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), bytes(salt),
                                  static_cast<int>(salt.size())) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), bytes(secret),
                                 static_cast<int>(secret.size())) <= 0 ||
      EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), bytes(label),
                                  static_cast<int>(label.size())) <= 0 ||
      EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()),
                      &len) <= 0 ||
      len != n)
    throw std::runtime_error("HKDF failed"); // OpenSSL without HKDF: fatal
  return out;
}

sealer::sealer(std::vector<std::string> keys) : keys_(std::move(keys)) {}

std::string sealer::seal(std::string_view plaintext) const {
  if (keys_.empty())
    throw std::logic_error("sealer without a key");
  auto nonce = random_raw(nonce_bytes);
  std::string out = nonce;
  out.resize(nonce_bytes + plaintext.size() + tag_bytes);
  std::unique_ptr<EVP_CIPHER_CTX, ctx_free> c{EVP_CIPHER_CTX_new()};
  int len = 0;
  auto* ct = reinterpret_cast<unsigned char*>(out.data()) + nonce_bytes;
  if (!c ||
      EVP_EncryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr,
                         bytes(keys_.front()), bytes(nonce)) != 1 ||
      EVP_EncryptUpdate(c.get(), ct, &len, bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(c.get(), ct + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_GET_TAG, tag_bytes,
                          ct + plaintext.size()) != 1)
    throw std::runtime_error("AES-GCM failed");
  return std::string{sealed_prefix} + base64url(out);
}

bool sealer::is_sealed(std::string_view value) {
  return value.substr(0, sealed_prefix.size()) == sealed_prefix;
}

caf::expected<std::string> sealer::open(std::string_view sealed) const {
  return open(sealed, nullptr);
}

caf::expected<std::string> sealer::open(std::string_view sealed,
                                        size_t* key_index) const {
  if (!is_sealed(sealed))
    return make_error(ec::invalid_argument, "not a sealed value");
  bool ok = false;
  auto raw = base64url_decode(sealed.substr(sealed_prefix.size()), &ok);
  if (!ok || raw.size() < nonce_bytes + tag_bytes)
    return make_error(ec::invalid_argument, "not a sealed value");
  auto n = raw.size() - nonce_bytes - tag_bytes;
  auto* ct = bytes(raw) + nonce_bytes;
  for (size_t k = 0; k < keys_.size(); ++k) {
    auto& key = keys_[k];
    std::string out(n, '\0');
    std::unique_ptr<EVP_CIPHER_CTX, ctx_free> c{EVP_CIPHER_CTX_new()};
    int len = 0;
    auto* pt = reinterpret_cast<unsigned char*>(out.data());
    std::string tag = raw.substr(nonce_bytes + n);
    if (c &&
        EVP_DecryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr, bytes(key),
                           bytes(raw)) == 1 &&
        EVP_DecryptUpdate(c.get(), pt, &len, ct, static_cast<int>(n)) == 1 &&
        EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_TAG, tag_bytes,
                            tag.data()) == 1 &&
        EVP_DecryptFinal_ex(c.get(), pt + len, &len) == 1) {
      if (key_index)
        *key_index = k;
      return out;
    }
  }
  return make_error(ec::unauthorized, "the sealed value does not open with "
                                      "this cluster's keys");
}

std::string hash_password(std::string_view password) {
  auto salt = random_raw(16);
  auto h = scrypt(password, salt, scrypt_n, scrypt_r, scrypt_p);
  if (h.empty())
    throw std::runtime_error("scrypt failed");
  return "scrypt$" + std::to_string(scrypt_n) + "$" + std::to_string(scrypt_r) +
         "$" + std::to_string(scrypt_p) + "$" + base64url(salt) + "$" +
         base64url(h);
}

bool check_password(std::string_view stored, std::string_view password) {
  auto parts = split(stored, '$');
  if (parts.size() == 6 && parts[0] == "scrypt") {
    uint64_t n = 0, r = 0, p = 0;
    try {
      n = std::stoull(parts[1]);
      r = std::stoull(parts[2]);
      p = std::stoull(parts[3]);
    } catch (const std::exception&) {
      return false;
    }
    // Only parameters this code would have written: a stored value must
    // not make a check cost gigabytes.
    if (n < 2 || n > (uint64_t{1} << 20) || (n & (n - 1)) != 0 || r == 0 ||
        r > 32 || p == 0 || p > 4)
      return false;
    bool ok1 = false, ok2 = false;
    auto salt = base64url_decode(parts[4], &ok1);
    auto want = base64url_decode(parts[5], &ok2);
    if (!ok1 || !ok2 || want.size() != scrypt_out)
      return false;
    auto got = scrypt(password, salt, n, r, p);
    return !got.empty() && equal_secrets(got, want);
  }
  // Legacy: "<salt>$<hex sha256(salt + password)>".
  if (parts.size() == 2)
    return equal_secrets(sha256_hex(parts[0] + std::string{password}),
                         parts[1]);
  return false;
}

bool password_needs_rehash(std::string_view stored) {
  return stored.substr(0, 7) != "scrypt$";
}

std::string base64url(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           bytes(in), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=')
    out.pop_back();
  for (auto& c : out)
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string base64url_decode(std::string_view text, bool* ok) {
  *ok = false;
  if (text.size() % 4 == 1)
    return {};
  std::string padded{text};
  for (auto& c : padded) {
    if (c == '+' || c == '/' || c == '=')
      return {}; // not the URL-safe alphabet
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  size_t pad = (4 - padded.size() % 4) % 4;
  padded.append(pad, '=');
  std::string out(padded.size() / 4 * 3, '\0');
  auto n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           bytes(padded), static_cast<int>(padded.size()));
  if (n < 0)
    return {};
  out.resize(static_cast<size_t>(n) - pad);
  *ok = true;
  return out;
}

} // namespace reel
