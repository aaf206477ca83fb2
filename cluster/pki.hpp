#pragma once

// How membership is earned: every holder of the cluster secret derives the
// same certificate authority from it, and each node issues itself a
// certificate signed by that CA at start. Members talk only over TLS with
// certificates checked both ways against the CA (CAF's libcaf_openssl for
// actor messages, Asio's SSL streams for the data plane), so a process
// without the secret cannot complete a handshake with any member, and one
// with another secret holds a certificate no member accepts.
//
// The CA key is an Ed25519 key whose 32-byte seed is
// HKDF-SHA256(secret, "reel cluster ca v1"); its certificate has fixed
// fields and Ed25519 signatures are deterministic, so every node makes the
// same CA certificate byte for byte. Node keys are fresh Ed25519 keys made
// at every start; their certificates name the node (CN = node id) and last
// ten years. docs/security.md explains the trust model.

#include "ops/error.hpp"

#include <string>
#include <string_view>

namespace reel::cluster {

/// PEM files a node presents and trusts, under its data directory.
struct credentials {
  std::string ca_file;   // the cluster CA's certificate (trust anchor)
  std::string cert_file; // this node's certificate, signed by the CA
  std::string key_file;  // this node's private key (mode 0600)
};

/// Derives the cluster CA from `secret`, makes a key and a certificate for
/// `node_id` signed by it, and writes the three files under `dir` (created
/// with mode 0700).
caf::expected<credentials> issue_credentials(std::string_view secret,
                                             const std::string& node_id,
                                             const std::string& dir);

/// The CA certificate's SHA-256 fingerprint (hex) for `secret`: the same on
/// every node of a cluster, different for another secret. For logs and
/// `reelctl nodes`, so an operator can tell which cluster a node is in.
std::string ca_fingerprint(std::string_view secret);

} // namespace reel::cluster
