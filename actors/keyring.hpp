#pragma once

// The keyring: the one owner of who may call this node. It keeps the API
// keys with their revocation marks, the upload tokens and the webhook
// subscriptions (the families keys, tokens and webhooks) in memory, is the
// only writer of their rows, and publishes every change as an immutable
// key_table before it answers. HTTP threads authenticate against the
// published table: no RocksDB and no round trip per request.

#include "actors/actors.hpp"
#include "actors/context.hpp"
#include "actors/snapshot.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace reel {

/// What the keyring holds, as it publishes it. Immutable once published.
struct key_table {
  /// API keys by SHA-256: every key row stored. A revoked key's row may
  /// come back from a node that missed the revocation; `revoked` keeps it
  /// refused.
  std::unordered_map<std::string, api_key_record> keys;
  /// The SHA-256s of revoked keys (their marks).
  std::unordered_set<std::string> revoked;
  /// key_id_of(SHA-256) -> SHA-256, for tokens that name their key by id;
  /// "" when two keys share an id.
  std::unordered_map<std::string, std::string> ids;
  /// Upload tokens by their row's key (keys::upload_token), as stored:
  /// the token sealed.
  std::unordered_map<std::string, upload_token_record> tokens;
  /// Webhook subscriptions by their row's key (keys::webhook: a tenant's
  /// are together), as stored: the secret sealed.
  std::map<std::string, webhook_record> webhooks;
  /// Rows of tokens and webhooks that were deleted (their marks,
  /// keys::gone), by family and key: a copy sent back by a node that
  /// missed the deletion is refused.
  std::set<std::pair<int, std::string>> gone;

  /// Whether a row of `family` under `key` was deleted for good.
  bool buried(cf family, const std::string& key) const {
    return gone.count({static_cast<int>(family), key}) > 0;
  }

  /// The key whose SHA-256 is `hash`, unless it was revoked; null otherwise.
  const api_key_record* key(const std::string& hash) const;
  /// The key a token names by its id (key_id_of, 16 hex digits): null when
  /// there is none, several, or it was revoked.
  const api_key_record* key_by_id(const std::string& id) const;
  /// A tenant's live keys, oldest first ("" = every tenant's).
  std::vector<api_key_record> live_keys(const std::string& tenant) const;

  /// Applies a row of the keys, tokens or webhooks family as it is stored
  /// (`erase`: removed). A row it cannot read is left out (and answered
  /// false); a row of another family is ignored.
  bool apply(cf family, const std::string& key, const std::string& value,
             bool erase);
};

/// Reads the table from the store (a node's start, before any actor).
caf::expected<key_table> load_key_table(db& store);

/// A stored upload token with its token opened; nothing when it does not
/// open with these keys (sealed by another cluster).
std::optional<upload_token_record> open_token(const at_rest_keys& k,
                                              upload_token_record t);

/// The upload token `token` with its token opened, and its row's key;
/// nothing when there is none. Expiry is the caller's to check.
std::optional<std::pair<std::string, upload_token_record>>
find_upload_token(const key_table& t, const at_rest_keys& k,
                  const std::string& token);

struct keyring_config {
  /// The store, the keys of secrets at rest, and the member to replicate
  /// through (null without a cluster). Required.
  node_context* ctx = nullptr;
  /// Where the table is published. It holds the table loaded at start
  /// (load_key_table), which the keyring starts from. Required.
  published<key_table>* table = nullptr;
};

struct keyring_state {
  static inline const char* name = "keyring";
  keyring_config cfg;
  key_table table; // the truth; a copy of it is what is published
};

/// The keyring: see keyring_actor (actors/actors.hpp).
keyring_actor::behavior_type
keyring(keyring_actor::stateful_pointer<keyring_state> self,
        keyring_config cfg);

} // namespace reel
