#include "actors/member.hpp"

#include "actors/wire.hpp"
#include "cluster/placement.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"
#include "storage/keys.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <chrono>
#include <string_view>

namespace reel {

namespace {

using self_ptr = member_actor::stateful_pointer<member_state>;
using namespace std::chrono_literals;

constexpr auto tick_interval = 500ms;
constexpr int64_t suspect_after_ms = 2000; // no gossip for this long
// Ticks (500 ms) between two digests sent for anti-entropy: 15 s.
constexpr uint64_t anti_entropy_ticks = 30;

std::string addr(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

bool from_remote(self_ptr self) {
  auto& sender = self->current_sender();
  return sender && sender->node() != self->node();
}

/// The member the current message's sender is (the CAF node it was bound
/// to when it joined or when this node connected to it); "" for a sender
/// that is no known member.
std::string sender_member(self_ptr self) {
  auto& sender = self->current_sender();
  if (!sender)
    return {};
  auto node = sender->node();
  for (auto& [id, n] : self->state.node_of)
    if (n == node)
      return id;
  return {};
}

/// A message from a peer passes when it comes from a known member and its
/// payload checks; else it is dropped and counted. Answers the member.
template <class T>
std::optional<std::string> admit(self_ptr self, const char* message,
                                 const T& payload) {
  auto who = sender_member(self);
  if (who.empty()) {
    wire::dropped(message, "not_a_member",
                  to_string(self->current_sender()->node()));
    return std::nullopt;
  }
  if (auto err = wire::check(payload)) {
    wire::dropped(message, "invalid", who, message_of(err));
    return std::nullopt;
  }
  return who;
}

/// Whether `member` may write the record of video `id`: it ranks among the
/// video's placement over every known member, with room for the members
/// this node does not see up (a failover moves ownership down the ranking)
/// and for one step of lag between two nodes' views.
bool may_write(self_ptr self, const std::string& member,
               const std::string& id) {
  auto& st = self->state;
  std::vector<std::string> all{st.me.node_id};
  size_t not_up = st.me.state == "up" ? 0 : 1;
  for (auto& [node, m] : st.known) {
    all.push_back(node);
    if (m.state != "up")
      ++not_up;
  }
  auto order = cluster::place(id, all, all.size());
  auto allowed = st.ctx->view->replicas() + not_up + 1;
  auto at = std::find(order.begin(), order.end(), member);
  return at != order.end() && static_cast<size_t>(at - order.begin()) < allowed;
}

/// How far ahead of this node's clock an owner epoch may be (epochs are
/// the raiser's clock when it is ahead of the last epoch + 1): a clock
/// skewed by minutes passes, an epoch that would lock a video for days
/// does not.
constexpr int64_t max_epoch_ahead_ms = 3600 * 1000;

/// Whether a video record from `member` may be stored: it may write it by
/// placement, its owner epoch is not far ahead of this node's clock, and it
/// does not move a video to another tenant.
bool record_admitted(self_ptr self, const char* message,
                     const std::string& member, const video_record& v) {
  bool record = std::string_view{message} == "record";
  if (record && v.epoch > static_cast<uint64_t>(now_ms() + max_epoch_ahead_ms)) {
    wire::dropped(message, "epoch_ahead", member, v.id);
    return false;
  }
  if (!may_write(self, member, v.id)) {
    wire::dropped(message, "not_in_placement", member, v.id);
    return false;
  }
  auto mine = self->state.ctx->store->get_video(v.id);
  if (mine && *mine && (*mine)->tenant != v.tenant) {
    wire::dropped(message, "tenant_mismatch", member, v.id);
    return false;
  }
  return true;
}

/// The families whose rows every node keeps (sent whole on sync).
constexpr cf replicated_families[] = {cf::keys, cf::folders, cf::tokens,
                                      cf::webhooks, cf::tombstones};

/// Hands a request about video `id` to its owner: this node's manager, or
/// the owner's member (which hands it to its manager). Without a reachable
/// owner this node answers.
template <class R = video_record, class... Ts>
caf::result<R> to_owner(self_ptr self, const std::string& id, Ts&&... xs) {
  if (!is_uuid(id)) {
    if (from_remote(self))
      wire::dropped("request", "invalid", sender_member(self),
                    "the video id is not a UUID");
    return make_error(ec::not_found, "no such video");
  }
  auto& st = self->state;
  auto owner = st.ctx->view->owner(id);
  auto i = st.peers.find(owner);
  if (owner.empty() || owner == st.me.node_id || i == st.peers.end())
    return self->delegate(st.manager, std::forward<Ts>(xs)...);
  return self->delegate(i->second, std::forward<Ts>(xs)...);
}

/// Hands a create that names a client's key (Flare's s3Key) to the node
/// that owns the key by placement, whose manager decides every create of
/// that key (docs/cluster.md). One hop at most: from a peer, or without a
/// reachable owner, this node's manager decides.
caf::result<video_record> to_key_owner(self_ptr self, video_record& v) {
  auto& st = self->state;
  auto owner =
      st.ctx->view->owner(keys::client_key(v.tenant, v.info.client_key));
  auto i = st.peers.find(owner);
  if (from_remote(self) || owner.empty() || owner == st.me.node_id ||
      i == st.peers.end())
    return self->delegate(st.manager, create_atom::value, std::move(v));
  return self->delegate(i->second, create_atom::value, std::move(v));
}

/// Publishes the membership to the view, the metrics and the manager.
void publish(self_ptr self, bool changed) {
  auto& st = self->state;
  std::vector<member_info> all;
  for (auto& [id, m] : st.known)
    all.push_back(m);
  st.ctx->view->set_members(all);
  st.ctx->view->update_self(st.me);
  std::map<std::string, int> by_state{
      {"up", 0}, {"suspect", 0}, {"down", 0}, {"draining", 0}};
  ++by_state[st.me.state];
  for (auto& m : all)
    ++by_state[m.state];
  for (auto& [state, n] : by_state)
    metrics().cluster_nodes.Add({{"state", state}}).Set(n);
  if (changed && st.settled) {
    all.push_back(st.me);
    self->send(st.manager, members_atom::value, std::move(all));
  }
}

constexpr int64_t settle_ms = 3000;

void set_state(self_ptr self, const std::string& id, const std::string& state) {
  auto i = self->state.known.find(id);
  if (i == self->state.known.end() || i->second.state == state)
    return;
  log::info("member.state", {{"peer", id}, {"state", state}});
  i->second.state = state;
  publish(self, true);
}

void merge(self_ptr self, const std::vector<member_info>& list);

/// Connects to the member actor at host:port, joins through it, and merges
/// what it knows.
void connect(self_ptr self, const std::string& host, uint16_t port) {
  auto key = addr(host, port);
  if (self->state.connecting.count(key))
    return;
  self->state.connecting.insert(key);
  // Over TLS, with certificates checked both ways (actors/node.cpp).
  // (Without TLS only in a build made for benchmarks: actors/node.cpp.)
  auto& sys = self->system();
  auto mm = sys.has_openssl_manager() ? sys.openssl_manager().actor_handle()
                                      : sys.middleman().actor_handle();
  self->request(mm, 5s, caf::connect_atom::value, host, port)
      .then(
          [self, key](const caf::node_id&, caf::strong_actor_ptr& ptr,
                      const std::set<std::string>&) {
            if (!ptr) {
              self->state.connecting.erase(key);
              return;
            }
            auto peer = caf::actor_cast<member_actor>(std::move(ptr));
            self->request(peer, 5s, caf::join_atom::value, self->state.me)
                .then(
                    [self, key, peer](std::vector<member_info>& list) {
                      self->state.connecting.erase(key);
                      // Only well-formed descriptions are taken.
                      list.erase(std::remove_if(list.begin(), list.end(),
                                                [](auto& m) {
                                                  return bool(wire::check(m));
                                                }),
                                 list.end());
                      for (auto& m : list)
                        if (addr(m.cluster_host, m.cluster_port) == key &&
                            m.node_id != self->state.me.node_id) {
                          self->monitor(peer);
                          self->state.peers[m.node_id] = peer;
                          // Messages from this CAF node speak for this member.
                          self->state.node_of[m.node_id] = peer.node();
                          m.state = m.state == "draining" ? "draining" : "up";
                          m.seen_ms = now_ms();
                          self->state.known[m.node_id] = m;
                          log::info("member.connected", {{"peer", m.node_id}});
                          self->send(peer, sync_atom::value); // catch up
                        }
                      merge(self, list);
                      publish(self, true);
                    },
                    [self, key](caf::error&) {
                      self->state.connecting.erase(key);
                    });
          },
          [self, key](caf::error&) { self->state.connecting.erase(key); });
}

/// Connects to a known member that is not connected. One TCP connection
/// per pair of nodes: the node whose id sorts first dials, the other waits
/// for its join (two connections between the same two CAF nodes make one of
/// them drop the other's proxies). Seeds are dialed by the joiner.
void reach(self_ptr self, const member_info& m) {
  auto& st = self->state;
  if (st.peers.count(m.node_id) || !(st.me.node_id < m.node_id))
    return;
  connect(self, m.cluster_host, m.cluster_port);
}

/// Learns of members from a list; connects to the ones not connected.
void merge(self_ptr self, const std::vector<member_info>& list) {
  auto& st = self->state;
  for (auto& m : list) {
    if (m.node_id == st.me.node_id)
      continue;
    auto i = st.known.find(m.node_id);
    if (i == st.known.end()) {
      auto copy = m;
      copy.state = "down"; // until we are connected to it
      copy.seen_ms = 0;
      st.known.emplace(m.node_id, copy);
    }
    reach(self, m);
  }
}

/// Every replicated row and video record this node has, to `peer`.
void send_everything(self_ptr self, const member_actor& peer) {
  auto* store = self->state.ctx->store;
  caf::error err;
  for (auto family : replicated_families) {
    err = store->scan(family, "", [&](auto& key, auto& value) {
      self->send(peer, caf::put_atom::value,
                 replicated_row{static_cast<int32_t>(family), key, value, false});
      return true;
    });
    if (err)
      break;
  }
  // Video records only where this node may write them (its placement
  // rank, as the receiver checks): the others are the peer's to get from
  // the nodes that may, and would only be dropped there.
  auto me = self->state.me.node_id;
  if (!err)
    err = store->scan(cf::videos, "", [&](auto&, auto& bytes) {
      video_record v;
      if (!decode(bytes, v) && may_write(self, me, v.id))
        self->send(peer, caf::put_atom::value, v);
      return true;
    });
  if (err)
    log::error("member.sync_failed", {{"error", message_of(err)}});
}

/// A digest of every replicated row and video record this node has,
/// independent of their order: two nodes that hold the same have the same
/// digest. "" when the store cannot be read.
std::string digest(self_ptr self) {
  std::array<uint8_t, 32> acc{};
  auto fold = [&](int family, const std::string& key, const std::string& value) {
    auto h = sha256_hex(std::to_string(family) + '\x1e' + key + '\x1e' + value);
    for (size_t i = 0; i < acc.size(); ++i)
      acc[i] ^= static_cast<uint8_t>(std::stoi(h.substr(2 * i, 2), nullptr, 16));
  };
  auto* store = self->state.ctx->store;
  for (auto family : replicated_families)
    if (store->scan(family, "", [&](auto& key, auto& value) {
          // A tombstone's value is when each node deleted the video: the
          // same tombstone everywhere, whatever its time.
          fold(static_cast<int>(family), key,
               family == cf::tombstones ? std::string{} : value);
          return true;
        }))
      return {};
  if (store->scan(cf::videos, "", [&](auto& key, auto& value) {
        fold(static_cast<int>(cf::videos), key, value);
        return true;
      }))
    return {};
  return hex(std::string{acc.begin(), acc.end()});
}

/// Sends a record to every connected peer.
template <class... Ts>
void broadcast(self_ptr self, const Ts&... xs) {
  for (auto& [id, peer] : self->state.peers)
    self->send(peer, xs...);
}

void tick(self_ptr self) {
  auto& st = self->state;
  auto now = now_ms();
  // Our own news: load and disk.
  self->request(st.scheduler, 2s, stats_atom::value)
      .then([self](int64_t queued, int64_t running) {
        self->state.me.queued = queued;
        self->state.me.running = running;
      });
  if (now - st.last_disk_scan_ms > 10000) {
    st.last_disk_scan_ms = now;
    st.me.disk_bytes = st.ctx->blobs->used_bytes();
  }
  ++st.me.version;
  st.me.seen_ms = now;
  broadcast(self, caf::update_atom::value, st.me);
  // Silence makes a peer suspect; CAF's heartbeat makes it down.
  for (auto& [id, m] : st.known)
    if (m.state == "up" && m.seen_ms && now - m.seen_ms > suspect_after_ms)
      set_state(self, id, "suspect");
  // Reconnect to members that are gone, and to the seeds while alone.
  for (auto& [id, m] : st.known)
    reach(self, m);
  if (st.peers.empty())
    for (auto& [host, port] : st.seeds)
      connect(self, host, port);
  // Now and then, every member this node knows, to every peer: one that
  // missed an introduction (it was away) learns of the others.
  if (++st.ticks % 10 == 0 && !st.peers.empty()) {
    std::vector<member_info> all{st.me};
    for (auto& [id, m] : st.known)
      all.push_back(m);
    broadcast(self, members_atom::value, all);
  }
  // Anti-entropy: now and then, this node's digest to one peer in turn; a
  // row missed while cut off is repaired without waiting for a reconnect.
  if (st.ticks % anti_entropy_ticks == 0 && !st.peers.empty()) {
    auto d = digest(self);
    auto turn = (st.ticks / anti_entropy_ticks) % st.peers.size();
    auto peer = std::next(st.peers.begin(), static_cast<long>(turn));
    if (!d.empty())
      self->send(peer->second, digest_atom::value, d);
  }
  if (!st.settled && (!st.peers.empty() || now - st.started_ms > settle_ms)) {
    st.settled = true;
    publish(self, true);
  } else {
    publish(self, false);
  }
  self->delayed_send(self, tick_interval, caf::tick_atom::value);
}

} // namespace

member_actor::behavior_type
member(member_actor::stateful_pointer<member_state> self, node_context* ctx,
       video_manager_actor manager, scheduler_actor scheduler, member_info me,
       std::vector<std::pair<std::string, uint16_t>> seeds) {
  auto& st = self->state;
  st.ctx = ctx;
  st.manager = std::move(manager);
  st.scheduler = std::move(scheduler);
  st.me = std::move(me);
  st.seeds = std::move(seeds);
  st.started_ms = now_ms();
  st.settled = st.seeds.empty(); // the first node has nobody to wait for
  // Another node may not end this actor: it ends when this node stops.
  // Any other exit message is dropped; its source field proves nothing (a
  // sender fills it in, and a peer may name this actor itself). CAF's
  // exit_reason::kill cannot be refused (docs/security.md).
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (!self->state.ctx->stopping) {
      wire::dropped("exit", "not_stopping",
                    msg.source ? to_string(msg.source.node()) : "anonymous");
      return;
    }
    self->quit(msg.reason);
  });
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    for (auto i = st.peers.begin(); i != st.peers.end(); ++i)
      if (i->second.address() == dm.source) {
        auto id = i->first;
        st.peers.erase(i);
        st.node_of.erase(id);
        log::warn("member.lost", {{"peer", id}});
        set_state(self, id, "down");
        break;
      }
  });
  publish(self, true);
  for (auto& [host, port] : st.seeds)
    connect(self, host, port);
  self->send(self, caf::tick_atom::value);
  return {
      [self](caf::join_atom,
             member_info& m) -> caf::result<std::vector<member_info>> {
        // (make_response_promise takes the sender over: read it first.)
        auto sender = self->current_sender();
        auto rp = self->make_response_promise<std::vector<member_info>>();
        auto& st = self->state;
        // Only a node holding the cluster secret gets this far (TLS); it
        // still says who it is, and that is checked.
        if (auto err = wire::check(m)) {
          wire::dropped("join", "invalid", m.node_id.substr(0, 64),
                        message_of(err));
          rp.deliver(err);
          return rp;
        }
        if (m.node_id == st.me.node_id) {
          rp.deliver(
              make_error(ec::conflict, "node id " + m.node_id + " is taken"));
          return rp;
        }
        auto node = sender->node();
        auto bound = st.node_of.find(m.node_id);
        if (bound != st.node_of.end() && bound->second != node &&
            st.peers.count(m.node_id)) {
          wire::dropped("join", "id_taken", m.node_id);
          rp.deliver(
              make_error(ec::conflict, "node id " + m.node_id +
                                           " is taken by a connected member"));
          return rp;
        }
        st.node_of[m.node_id] = node;
        m.seen_ms = now_ms();
        // The joiner's own connection is the one this node talks back on:
        // it is up while that connection lives (monitored).
        member_actor fresh;
        if (!st.peers.count(m.node_id)) {
          fresh = caf::actor_cast<member_actor>(sender);
          if (fresh) {
            self->monitor(fresh);
            st.peers[m.node_id] = fresh;
          }
        }
        auto before = st.known.find(m.node_id);
        if (m.state != "draining")
          m.state = st.peers.count(m.node_id) ? "up" : "down";
        bool is_new = before == st.known.end();
        st.known[m.node_id] = m;
        log::info("member.joined",
                  {{"peer", m.node_id}, {"new", is_new ? "yes" : "no"}});
        publish(self, true);
        std::vector<member_info> all{st.me};
        for (auto& [id, k] : st.known)
          all.push_back(k);
        rp.deliver(all);
        // After the answer (which binds this node there): catch up on what
        // the joiner has, and introduce it to every other member.
        if (fresh)
          self->send(fresh, sync_atom::value);
        if (is_new)
          broadcast(self, members_atom::value, all);
        return rp;
      },
      [self](members_atom, std::vector<member_info>& list) {
        // A member introduces the members it knows (a join elsewhere).
        auto who = sender_member(self);
        if (who.empty()) {
          wire::dropped("members", "not_a_member", "");
          return;
        }
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [](auto& m) { return bool(wire::check(m)); }),
                   list.end());
        merge(self, list);
        publish(self, false);
      },
      [self](caf::update_atom, member_info& m) {
        auto& st = self->state;
        auto who = admit(self, "gossip", m);
        if (!who)
          return;
        if (*who != m.node_id) { // one member may not speak for another
          wire::dropped("gossip", "impersonation", *who, m.node_id);
          return;
        }
        auto i = st.known.find(m.node_id);
        if (i != st.known.end() && i->second.version > m.version)
          return; // stale
        auto before =
            i == st.known.end() ? std::string{"down"} : i->second.state;
        m.seen_ms = now_ms();
        // A peer we hear from is alive; whether it drains is its own word.
        if (m.state != "draining")
          m.state = st.peers.count(m.node_id) ? "up" : before;
        st.known[m.node_id] = m;
        reach(self, m);
        publish(self, before != m.state);
      },
      [self](caf::get_atom,
             members_atom) -> caf::result<std::vector<member_info>> {
        std::vector<member_info> all{self->state.me};
        for (auto& [id, m] : self->state.known)
          all.push_back(m);
        return all;
      },
      [self](caf::put_atom, const video_record& v) {
        if (!from_remote(self)) {
          broadcast(self, caf::put_atom::value, v);
          return;
        }
        auto who = admit(self, "record", v);
        if (who && record_admitted(self, "record", *who, v))
          self->send(self->state.manager, caf::put_atom::value, v);
      },
      [self](caf::delete_atom, const video_record& v) {
        if (!from_remote(self)) {
          broadcast(self, caf::delete_atom::value, v);
          return;
        }
        auto who = admit(self, "delete", v);
        if (who && record_admitted(self, "delete", *who, v))
          self->send(self->state.manager, caf::delete_atom::value, v);
      },
      [self](caf::put_atom, const replicated_row& row) {
        if (!from_remote(self)) {
          broadcast(self, caf::put_atom::value, row);
          return;
        }
        if (!admit(self, "row", row))
          return;
        auto family = static_cast<cf>(row.family);
        // Keys, tokens and webhooks have one writer, the keyring, whose
        // table must never lag what is stored.
        if (self->state.ctx->keyring
            && (family == cf::keys || family == cf::tokens
                || family == cf::webhooks)) {
          self->send(self->state.ctx->keyring, caf::put_atom::value, row);
          return;
        }
        // A video deleted while this node was away (sent on sync): the
        // manager deletes it here too and keeps the tombstone.
        if (family == cf::tombstones) {
          video_record gone;
          gone.id = row.key;
          self->send(self->state.manager, caf::delete_atom::value, gone);
          return;
        }
        auto* store = self->state.ctx->store;
        // A row holding a secret in plain (written by an older release) is
        // stored sealed (storage/records.hpp, at_rest_form).
        auto sealed = at_rest_form(self->state.ctx->secrets, family, row.key,
                                   row.erase ? std::string{} : row.value);
        auto& key = sealed ? sealed->first : row.key;
        auto& value = sealed ? sealed->second : row.value;
        auto err =
            row.erase ? store->del(family, key) : store->put(family, key, value);
        if (err)
          log::error("row.replicate_failed", {{"error", message_of(err)}});
      },
      [self](create_atom, video_record& v) -> caf::result<video_record> {
        if (from_remote(self) && !admit(self, "create", v))
          return make_error(ec::invalid_argument, "refused");
        if (!v.info.client_key.empty())
          return to_key_owner(self, v);
        auto id = v.id;
        return to_owner(self, id, create_atom::value, std::move(v));
      },
      [self](register_atom, video_record& v) -> caf::result<video_record> {
        if (from_remote(self) && !admit(self, "register", v))
          return make_error(ec::invalid_argument, "refused");
        auto id = v.id;
        return to_owner(self, id, register_atom::value, std::move(v));
      },
      [self](view_atom, std::string& id) -> caf::result<int64_t> {
        auto key = id;
        return to_owner<int64_t>(self, key, view_atom::value, std::move(id));
      },
      [self](upload_atom, source_part& p) -> caf::result<video_record> {
        if (from_remote(self) && !admit(self, "upload", p))
          return make_error(ec::invalid_argument, "refused");
        auto id = p.video_id;
        return to_owner(self, id, upload_atom::value, std::move(p));
      },
      [self](caf::update_atom, std::string& tenant, std::string& id,
             std::string& patch) -> caf::result<video_record> {
        if (from_remote(self) &&
            (patch.size() > 64 * 1024 || !wire::tenant_name(tenant))) {
          wire::dropped("update", "invalid", sender_member(self));
          return make_error(ec::invalid_argument, "refused");
        }
        auto key = id;
        return to_owner(self, key, caf::update_atom::value, std::move(tenant),
                        std::move(id), std::move(patch));
      },
      [self](retry_atom, std::string& tenant,
             std::string& id) -> caf::result<video_record> {
        if (from_remote(self) && !tenant.empty() &&
            !wire::tenant_name(tenant)) {
          wire::dropped("retry", "invalid", sender_member(self));
          return make_error(ec::invalid_argument, "refused");
        }
        auto key = id;
        return to_owner(self, key, retry_atom::value, std::move(tenant),
                        std::move(id));
      },
      [self](caf::delete_atom, std::string& tenant,
             std::string& id) -> caf::result<caf::ok_atom> {
        if (from_remote(self) && !tenant.empty() &&
            !wire::tenant_name(tenant)) {
          wire::dropped("delete", "invalid", sender_member(self));
          return make_error(ec::invalid_argument, "refused");
        }
        auto key = id;
        return to_owner<caf::ok_atom>(self, key, caf::delete_atom::value,
                                      std::move(tenant), std::move(id));
      },
      [self](submit_atom, task& t) -> caf::result<task_result> {
        auto& st = self->state;
        if (from_remote(self)) {
          // A peer hands this node a chunk: it names a video and a part of
          // it; the worker derives every path here (files_of).
          auto who = sender_member(self);
          if (who.empty()) {
            wire::dropped("task", "not_a_member",
                          to_string(self->current_sender()->node()));
            return make_error(ec::forbidden, "not a member");
          }
          if (auto err = wire::check(t, true)) {
            wire::dropped("task", "invalid", who, message_of(err));
            return err;
          }
          if (!t.target_node.empty() && t.target_node != st.me.node_id) {
            wire::dropped("task", "misaddressed", who, t.target_node);
            return make_error(ec::invalid_argument, "not for this node");
          }
          if (!t.origin_node.empty() && t.origin_node != st.me.node_id &&
              !st.known.count(t.origin_node)) {
            wire::dropped("task", "unknown_origin", who, t.origin_node);
            return make_error(ec::invalid_argument, "unknown origin node");
          }
          t.target_node.clear();
        } else if (!t.target_node.empty() && t.target_node != st.me.node_id) {
          auto i = st.peers.find(t.target_node);
          if (i == st.peers.end())
            return make_error(ec::unavailable, t.target_node + " is not up");
          return self->delegate(i->second, submit_atom::value, std::move(t));
        }
        return self->delegate(st.scheduler, submit_atom::value, std::move(t));
      },
      [self](sync_atom) {
        // Everything this node knows, to a member that joins or comes back.
        auto who = sender_member(self);
        if (who.empty()) {
          wire::dropped("sync", "not_a_member",
                        self->current_sender()
                            ? to_string(self->current_sender()->node())
                            : std::string{});
          return;
        }
        if (auto peer = caf::actor_cast<member_actor>(self->current_sender()))
          send_everything(self, peer);
      },
      [self](digest_atom, const std::string& theirs) {
        auto who = sender_member(self);
        if (who.empty() || !wire::hex_digest(theirs)) {
          wire::dropped("digest", who.empty() ? "not_a_member" : "invalid",
                        who);
          return;
        }
        auto peer = caf::actor_cast<member_actor>(self->current_sender());
        auto mine = digest(self);
        if (!peer || mine.empty() || mine == theirs)
          return;
        // Something one of the two missed (a row sent while they were cut
        // off): each sends the other everything; the rules of each family
        // (versions, tombstones, marks) keep what is newest.
        log::info("member.anti_entropy", {{"peer", who}});
        metrics().anti_entropy_repairs.Increment();
        send_everything(self, peer);
        self->send(peer, sync_atom::value);
      },
      [self](drain_atom, const std::string& node,
             bool on) -> caf::result<member_info> {
        auto& st = self->state;
        if (!wire::plain_name(node))
          return make_error(ec::not_found, "no such node");
        if (node != st.me.node_id) {
          auto i = st.peers.find(node);
          if (i == st.peers.end())
            return make_error(ec::not_found, "no such node up: " + node);
          return self->delegate(i->second, drain_atom::value, node, on);
        }
        st.me.state = on ? "draining" : "up";
        ++st.me.version;
        log::info("member.drain", {{"draining", on ? "yes" : "no"}});
        broadcast(self, caf::update_atom::value, st.me);
        publish(self, true);
        return st.me;
      },
      [self](caf::tick_atom) {
        if (!from_remote(self))
          tick(self);
      },
  };
}

} // namespace reel
