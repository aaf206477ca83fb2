#include "actors/keyring.hpp"

#include "actors/webhooks.hpp"
#include "ops/log.hpp"
#include "ops/util.hpp"
#include "storage/keys.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace reel {

namespace {

using self_ptr = keyring_actor::stateful_pointer<keyring_state>;

/// Hex digits of a key's SHA-256 that name it in tokens (key_id_of,
/// actors/node.hpp).
constexpr size_t key_id_digits = 16;

bool lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

void index_ids(key_table& t) {
  t.ids.clear();
  for (auto& [hash, k] : t.keys) {
    auto [i, fresh] = t.ids.emplace(hash.substr(0, key_id_digits), hash);
    if (!fresh)
      i->second.clear(); // two keys alike: neither is named by it
  }
}

/// Publishes the table as it is now: what every HTTP thread reads next.
void publish(self_ptr self) {
  self->state.cfg.table->set(
    std::make_shared<const key_table>(self->state.table));
}

/// Stores a row this node writes, applies it, and sends it to every node.
/// The caller publishes (once, after all its rows).
caf::error write(self_ptr self, replicated_row row) {
  auto& st = self->state;
  auto* store = st.cfg.ctx->store;
  auto family = static_cast<cf>(row.family);
  auto err = row.erase ? store->del(family, row.key)
                       : store->put(family, row.key, row.value);
  if (err)
    return err;
  st.table.apply(family, row.key, row.value, row.erase);
  if (st.cfg.ctx->member) // every node keeps these rows
    self->send(st.cfg.ctx->member, caf::put_atom::value, std::move(row));
  return {};
}

/// Deletes a row of tokens or webhooks for good: its mark first (so a node
/// that missed the deletion cannot send the row back), then the row.
caf::error bury(self_ptr self, cf family, const std::string& key) {
  auto err = write(self, replicated_row{static_cast<int32_t>(family),
                                        keys::gone(key),
                                        std::to_string(now_ms()), false});
  if (!err)
    err = write(self, replicated_row{static_cast<int32_t>(family), key, {}, true});
  return err;
}

/// A new API key of `tenant`, stored and sent to every node; answers the
/// key (it is never stored, only its SHA-256).
caf::expected<std::string> add_key(self_ptr self, const std::string& tenant,
                                   bool admin, std::vector<std::string> scopes,
                                   std::string key = {}) {
  if (key.empty())
    key = (scopes.empty() ? "sk-" : "flr_pat_") + random_token(40);
  api_key_record rec{sha256_hex(key), key.substr(0, scopes.empty() ? 7 : 12),
                     tenant, admin, now_ms(), std::move(scopes)};
  auto err = write(self, replicated_row{static_cast<int32_t>(cf::keys),
                                        keys::api_key(rec.key_hash),
                                        encode(rec), false});
  publish(self);
  if (err)
    return err;
  return key;
}

caf::result<caf::ok_atom> revoke(self_ptr self, const std::string& id,
                                 const std::string& requester_hash) {
  auto& t = self->state.table;
  if (id.size() < 12 || id.size() > 64 || !lower_hex(id))
    return make_error(ec::not_found, "no key " + id);
  std::vector<std::string> found;
  for (auto& [hash, k] : t.keys)
    if (hash.compare(0, id.size(), id) == 0)
      found.push_back(hash);
  if (found.empty())
    return make_error(ec::not_found, "no key " + id);
  if (found.size() > 1)
    return make_error(ec::conflict, "several keys start with " + id
                                      + ": give more of the id");
  auto hash = found.front();
  if (hash == requester_hash)
    return make_error(ec::conflict, "a key cannot revoke itself: use "
                                    "another admin key");
  // The mark first: the key stays refused even if a node that missed the
  // deletion sends the key back later (records are merged on reconnect).
  auto err = write(self, replicated_row{static_cast<int32_t>(cf::keys),
                                        keys::revoked_key(hash),
                                        std::to_string(now_ms()), false});
  if (!err)
    err = write(self, replicated_row{static_cast<int32_t>(cf::keys),
                                     keys::api_key(hash), {}, true});
  publish(self);
  if (err)
    return err;
  log::info("key.revoked", {{"key", id.substr(0, 12)}});
  return caf::ok_atom::value;
}

caf::result<webhook_record>
add_webhook(self_ptr self, const std::string& tenant, const std::string& url,
            std::vector<std::string> events, const std::string& format) {
  if (url.size() > 2048
      || (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0))
    return make_error(ec::invalid_argument, "url must be an http(s) URL");
  if (events.empty() || events.size() > 32)
    return make_error(ec::invalid_argument, "events must list 1 to 32 events");
  for (auto& e : events)
    if (!known_event(format, e))
      return make_error(ec::invalid_argument, "unknown event " + e);
  webhook_record w;
  w.id = "webhook_" + random_token(16);
  w.tenant = tenant;
  w.url = url;
  w.events = std::move(events);
  w.secret = (format == "apivideo" ? "sig_sec_" : "whsec_") + random_token(24);
  w.format = format;
  w.created_ms = now_ms();
  // Stored (and replicated) with the secret sealed; answered in plain.
  auto stored = w;
  stored.secret = self->state.cfg.ctx->secrets.box.seal(w.secret);
  auto err = write(self, replicated_row{static_cast<int32_t>(cf::webhooks),
                                        keys::webhook(tenant, w.id),
                                        encode(stored), false});
  publish(self);
  if (err)
    return err;
  return w;
}

caf::result<upload_token_record> add_upload_token(self_ptr self,
                                                  const std::string& tenant,
                                                  int64_t ttl_s) {
  auto& k = self->state.cfg.ctx->secrets;
  upload_token_record t;
  t.token = "to" + random_token(22);
  t.tenant = tenant;
  t.ttl_s = ttl_s;
  t.created_ms = now_ms();
  t.expires_ms = ttl_s > 0 ? t.created_ms + ttl_s * 1000 : 0;
  // Stored (and replicated) sealed, under a digest of the token.
  auto stored = t;
  stored.token = k.box.seal(t.token);
  auto err = write(self, replicated_row{static_cast<int32_t>(cf::tokens),
                                        keys::upload_token(k.token_digest(t.token)),
                                        encode(stored), false});
  publish(self);
  if (err)
    return err;
  return t;
}

} // namespace

const api_key_record* key_table::key(const std::string& hash) const {
  auto i = keys.find(hash);
  if (i == keys.end() || revoked.count(hash))
    return nullptr;
  return &i->second;
}

const api_key_record* key_table::key_by_id(const std::string& id) const {
  if (id.size() != key_id_digits || !lower_hex(id))
    return nullptr;
  auto i = ids.find(id);
  if (i == ids.end() || i->second.empty())
    return nullptr;
  return key(i->second);
}

std::vector<api_key_record>
key_table::live_keys(const std::string& tenant) const {
  std::vector<api_key_record> out;
  for (auto& [hash, k] : keys)
    if ((tenant.empty() || k.tenant == tenant) && !revoked.count(hash))
      out.push_back(k);
  // Oldest first; keys made in the same millisecond by their digest, so
  // that the order does not change from one listing to the next.
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
    return a.created_ms != b.created_ms ? a.created_ms < b.created_ms
                                        : a.key_hash < b.key_hash;
  });
  return out;
}

bool key_table::apply(cf family, const std::string& key,
                      const std::string& value, bool erase) {
  switch (family) {
    case cf::keys: {
      auto marks = keys::revoked_key_prefix();
      if (key.rfind(marks, 0) == 0) {
        auto hash = key.substr(marks.size());
        if (erase)
          revoked.erase(hash);
        else
          revoked.insert(hash);
        return true;
      }
      if (erase) {
        keys.erase(key);
      } else {
        api_key_record k;
        if (decode(value, k))
          return false;
        keys[key] = std::move(k);
      }
      index_ids(*this);
      return true;
    }
    case cf::tokens:
    case cf::webhooks:
      if (key.rfind(keys::gone_prefix(), 0) == 0) {
        auto named = key.substr(keys::gone_prefix().size());
        gone.insert({static_cast<int>(family), named});
        if (family == cf::tokens)
          tokens.erase(named);
        else
          webhooks.erase(named);
        return true;
      }
      if (!erase && buried(family, key))
        return true; // deleted for good: not taken back
      break;
    default:
      break;
  }
  switch (family) {
    case cf::tokens: {
      if (erase) {
        tokens.erase(key);
        return true;
      }
      upload_token_record t;
      if (decode(value, t))
        return false;
      tokens[key] = std::move(t);
      return true;
    }
    case cf::webhooks: {
      if (erase) {
        webhooks.erase(key);
        return true;
      }
      webhook_record w;
      if (decode(value, w))
        return false;
      webhooks[key] = std::move(w);
      return true;
    }
    default:
      return false;
  }
}

caf::expected<key_table> load_key_table(db& store) {
  key_table t;
  size_t unreadable = 0;
  for (auto family : {cf::keys, cf::tokens, cf::webhooks}) {
    auto err = store.scan(family, "", [&](auto& key, auto& value) {
      if (!t.apply(family, key, value, false))
        ++unreadable;
      return true;
    });
    if (err)
      return err;
  }
  if (unreadable > 0)
    log::warn("keyring.unreadable_rows", {{"rows", std::to_string(unreadable)}});
  return t;
}

std::optional<upload_token_record> open_token(const at_rest_keys& k,
                                              upload_token_record t) {
  if (!sealer::is_sealed(t.token))
    return t; // as a node of an older release sent it, until rewritten
  auto plain = k.box.open(t.token);
  if (!plain)
    return std::nullopt;
  t.token = std::move(*plain);
  return t;
}

std::optional<std::pair<std::string, upload_token_record>>
find_upload_token(const key_table& t, const at_rest_keys& k,
                  const std::string& token) {
  for (size_t i = 0; i < k.digest_keys.size(); ++i) {
    auto key = keys::upload_token(k.token_digest(token, i));
    auto found = t.tokens.find(key);
    if (found == t.tokens.end())
      continue;
    auto open = open_token(k, found->second);
    if (!open || !equal_secrets(open->token, token))
      continue;
    return std::make_pair(key, std::move(*open));
  }
  return std::nullopt;
}

keyring_actor::behavior_type
keyring(keyring_actor::stateful_pointer<keyring_state> self,
        keyring_config cfg) {
  self->state.cfg = cfg;
  if (auto first = cfg.table->get())
    self->state.table = *first;
  else
    publish(self);
  return {
    [self](bootstrap_atom, std::string& key) -> caf::result<std::string> {
      auto& t = self->state.table;
      if (!t.keys.empty() || !t.revoked.empty())
        return std::string{};
      auto made = add_key(self, "default", true, {}, std::move(key));
      if (!made)
        return made.error();
      return std::move(*made);
    },
    [self](create_atom, const std::string& tenant, bool admin,
           std::vector<std::string>& scopes) -> caf::result<std::string> {
      auto made = add_key(self, tenant, admin, std::move(scopes));
      if (!made)
        return made.error();
      return std::move(*made);
    },
    [self](create_atom, tenant_atom,
           const std::string& tenant) -> caf::result<std::string> {
      auto has = self->state.table.live_keys(tenant).size();
      if (has > 0)
        return make_error(ec::conflict, "tenant " + tenant + " exists (it has "
                                          + std::to_string(has) + " keys)");
      auto made = add_key(self, tenant, false, {});
      if (!made)
        return made.error();
      return std::move(*made);
    },
    [self](revoke_atom, const std::string& id,
           const std::string& requester_hash) -> caf::result<caf::ok_atom> {
      return revoke(self, id, requester_hash);
    },
    [self](create_atom, token_atom, const std::string& tenant,
           int64_t ttl_s) -> caf::result<upload_token_record> {
      return add_upload_token(self, tenant, ttl_s);
    },
    [self](caf::delete_atom, token_atom, const std::string& tenant,
           const std::string& token) -> caf::result<caf::ok_atom> {
      auto missing = make_error(ec::not_found, "no such upload token");
      if (token.empty() || token.size() > 128)
        return missing;
      auto found = find_upload_token(self->state.table,
                                     self->state.cfg.ctx->secrets, token);
      if (!found || found->second.tenant != tenant)
        return missing;
      auto err = bury(self, cf::tokens, found->first);
      publish(self);
      if (err)
        return err;
      return caf::ok_atom::value;
    },
    [self](create_atom, webhook_atom, const std::string& tenant,
           const std::string& url, std::vector<std::string>& events,
           const std::string& format) -> caf::result<webhook_record> {
      return add_webhook(self, tenant, url, std::move(events), format);
    },
    [self](caf::delete_atom, webhook_atom, const std::string& tenant,
           const std::string& id) -> caf::result<caf::ok_atom> {
      auto key = keys::webhook(tenant, id);
      if (!self->state.table.webhooks.count(key))
        return make_error(ec::not_found, "webhook " + id + " not found");
      auto err = bury(self, cf::webhooks, key);
      publish(self);
      if (err)
        return err;
      return caf::ok_atom::value;
    },
    [self](caf::put_atom, replicated_row& row) {
      // From another node, checked by the member (actors/wire.hpp).
      auto family = static_cast<cf>(row.family);
      if (family != cf::keys && family != cf::tokens && family != cf::webhooks)
        return;
      auto* ctx = self->state.cfg.ctx;
      if (!row.erase && self->state.table.buried(family, row.key))
        return; // deleted here for good
      // A row holding a secret in plain (written by an older release) is
      // stored sealed (storage/records.hpp, at_rest_form).
      if (auto sealed = at_rest_form(ctx->secrets, family, row.key,
                                     row.erase ? std::string{} : row.value)) {
        row.key = std::move(sealed->first);
        if (!row.erase)
          row.value = std::move(sealed->second);
      }
      auto err = row.erase ? ctx->store->del(family, row.key)
                           : ctx->store->put(family, row.key, row.value);
      if (err) {
        log::error("row.replicate_failed", {{"error", message_of(err)}});
        return;
      }
      self->state.table.apply(family, row.key, row.value, row.erase);
      publish(self);
    },
  };
}

} // namespace reel
