#include "cluster/pki.hpp"

#include "ops/crypto.hpp"
#include "ops/util.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>

namespace reel::cluster {

namespace {

struct ossl_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};

using pkey_ptr = std::unique_ptr<EVP_PKEY, ossl_free>;
using x509_ptr = std::unique_ptr<X509, ossl_free>;

constexpr const char* ca_name = "reel cluster CA";

caf::error failed(const std::string& what) {
  return make_error(ec::unspecified, "cluster credentials: " + what);
}

pkey_ptr ca_key(std::string_view secret) {
  auto seed = hkdf_sha256(secret, "reel cluster ca v1", 32);
  return pkey_ptr{EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(seed.data()), seed.size())};
}

bool add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  auto* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext)
    return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

bool set_name(X509_NAME* name, const std::string& cn) {
  return X509_NAME_add_entry_by_txt(
             name, "O", MBSTRING_UTF8,
             reinterpret_cast<const unsigned char*>("reel"), -1, -1, 0) == 1 &&
         X509_NAME_add_entry_by_txt(
             name, "CN", MBSTRING_UTF8,
             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
             0) == 1;
}

/// The CA's self-signed certificate: every field fixed, so every holder of
/// the secret makes the same bytes.
x509_ptr ca_cert(EVP_PKEY* key) {
  x509_ptr cert{X509_new()};
  if (!cert || X509_set_version(cert.get(), 2) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) != 1 ||
      ASN1_TIME_set_string(X509_getm_notBefore(cert.get()),
                           "20200101000000Z") != 1 ||
      ASN1_TIME_set_string(X509_getm_notAfter(cert.get()), "20991231235959Z") !=
          1 ||
      !set_name(X509_get_subject_name(cert.get()), ca_name) ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) !=
          1 ||
      X509_set_pubkey(cert.get(), key) != 1 ||
      !add_ext(cert.get(), cert.get(), NID_basic_constraints,
               "critical,CA:TRUE,pathlen:0") ||
      !add_ext(cert.get(), cert.get(), NID_key_usage,
               "critical,keyCertSign,cRLSign") ||
      !add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash") ||
      X509_sign(cert.get(), key, nullptr) <= 0)
    return nullptr;
  return cert;
}

x509_ptr node_cert(X509* ca, EVP_PKEY* ca_key, EVP_PKEY* key,
                   const std::string& node_id) {
  x509_ptr cert{X509_new()};
  unsigned char serial[16];
  if (!cert || RAND_bytes(serial, sizeof(serial)) != 1)
    return nullptr;
  serial[0] &= 0x7f; // a positive number
  std::unique_ptr<BIGNUM, ossl_free> bn{
      BN_bin2bn(serial, sizeof(serial), nullptr)};
  auto now = std::time(nullptr);
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) ||
      X509_set_version(cert.get(), 2) != 1 ||
      !X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, -3600, &now) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert.get()), 3650, 0, &now) ||
      !set_name(X509_get_subject_name(cert.get()), node_id) ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(ca)) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1 ||
      !add_ext(cert.get(), ca, NID_basic_constraints, "critical,CA:FALSE") ||
      !add_ext(cert.get(), ca, NID_key_usage, "critical,digitalSignature") ||
      !add_ext(cert.get(), ca, NID_ext_key_usage, "serverAuth,clientAuth") ||
      !add_ext(cert.get(), ca, NID_authority_key_identifier, "keyid:always") ||
      X509_sign(cert.get(), ca_key, nullptr) <= 0)
    return nullptr;
  return cert;
}

caf::error write_file(const std::string& path, const std::string& text,
                      mode_t mode) {
  auto tmp = path + ".tmp";
  auto* f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    return failed("cannot write " + tmp);
  ::chmod(tmp.c_str(), mode);
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0)
    return failed("cannot write " + path);
  return {};
}

template <class F>
std::string to_pem(F&& write) {
  std::unique_ptr<BIO, ossl_free> bio{BIO_new(BIO_s_mem())};
  if (!bio || !write(bio.get()))
    return {};
  char* data = nullptr;
  auto n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

} // namespace

caf::expected<credentials> issue_credentials(std::string_view secret,
                                             const std::string& node_id,
                                             const std::string& dir) {
  if (secret.empty())
    return failed("no cluster secret");
  auto cak = ca_key(secret);
  auto ca = cak ? ca_cert(cak.get()) : nullptr;
  if (!ca)
    return failed("cannot derive the cluster CA");
  pkey_ptr key{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
  auto cert =
      key ? node_cert(ca.get(), cak.get(), key.get(), node_id) : nullptr;
  if (!cert)
    return failed("cannot issue a certificate for " + node_id);
  std::error_code err;
  std::filesystem::create_directories(dir, err);
  ::chmod(dir.c_str(), 0700);
  credentials c{dir + "/ca.pem", dir + "/node.pem", dir + "/node.key"};
  auto ca_pem = to_pem([&](BIO* b) { return PEM_write_bio_X509(b, ca.get()); });
  auto cert_pem =
      to_pem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); });
  auto key_pem = to_pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr,
                                    nullptr);
  });
  if (ca_pem.empty() || cert_pem.empty() || key_pem.empty())
    return failed("cannot encode the credentials");
  if (auto e = write_file(c.key_file, key_pem, 0600))
    return e;
  if (auto e = write_file(c.cert_file, cert_pem, 0644))
    return e;
  if (auto e = write_file(c.ca_file, ca_pem, 0644))
    return e;
  return c;
}

std::string ca_fingerprint(std::string_view secret) {
  auto key = ca_key(secret);
  auto ca = key ? ca_cert(key.get()) : nullptr;
  if (!ca)
    return {};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(ca.get(), EVP_sha256(), md, &n) != 1)
    return {};
  return hex(std::string_view(reinterpret_cast<char*>(md), n));
}

} // namespace reel::cluster
