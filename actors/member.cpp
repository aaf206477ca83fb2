#include "actors/member.hpp"

#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"
#include "storage/keys.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <chrono>

namespace reel {

namespace {

using self_ptr = member_actor::stateful_pointer<member_state>;
using namespace std::chrono_literals;

constexpr auto tick_interval = 500ms;
constexpr int64_t suspect_after_ms = 2000; // no gossip for this long

std::string addr(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

bool from_remote(self_ptr self) {
  auto& sender = self->current_sender();
  return sender && sender->node() != self->node();
}

/// The families whose rows every node keeps (sent whole on sync).
constexpr cf replicated_families[] = {cf::keys, cf::folders, cf::tokens,
                                      cf::webhooks};

/// Hands a request about video `id` to its owner: this node's manager, or
/// the owner's member (which hands it to its manager). Without a reachable
/// owner this node answers.
template <class R = video_record, class... Ts>
caf::result<R> to_owner(self_ptr self, const std::string& id, Ts&&... xs) {
  auto& st = self->state;
  auto owner = st.ctx->view->owner(id);
  auto i = st.peers.find(owner);
  if (owner.empty() || owner == st.me.node_id || i == st.peers.end())
    return self->delegate(st.manager, std::forward<Ts>(xs)...);
  return self->delegate(i->second, std::forward<Ts>(xs)...);
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
  auto mm = self->system().middleman().actor_handle();
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
              for (auto& m : list)
                if (addr(m.cluster_host, m.cluster_port) == key
                    && m.node_id != self->state.me.node_id) {
                  self->monitor(peer);
                  self->state.peers[m.node_id] = peer;
                  m.state = m.state == "draining" ? "draining" : "up";
                  m.seen_ms = now_ms();
                  self->state.known[m.node_id] = m;
                  log::info("member.connected", {{"peer", m.node_id}});
                  self->send(peer, sync_atom::value); // catch up
                }
              merge(self, list);
              publish(self, true);
            },
            [self, key](caf::error&) { self->state.connecting.erase(key); });
      },
      [self, key](caf::error&) { self->state.connecting.erase(key); });
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
    if (!st.peers.count(m.node_id))
      connect(self, m.cluster_host, m.cluster_port);
  }
}

/// Sends a record to every connected peer.
template <class... Ts>
void broadcast(self_ptr self, const Ts&... xs) {
  for (auto& [id, peer] : self->state.peers)
    self->send(peer, xs...);
}

/// Local paths of a task sent from another node: same layout, this node's
/// data directory.
void localize(self_ptr self, task& t) {
  auto* blobs = self->state.ctx->blobs;
  auto rebase = [&](const std::string& path) {
    auto name = path.substr(path.rfind('/') + 1);
    return blobs->work_dir(t.video_id) + "/" + name;
  };
  t.source = blobs->source_path(t.video_id);
  t.chunk.source = t.source;
  for (auto& out : t.chunk.outputs)
    out = rebase(out);
  if (!t.audio_output.empty())
    t.audio_output = rebase(t.audio_output);
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
    if (!st.peers.count(id))
      connect(self, m.cluster_host, m.cluster_port);
  if (st.peers.empty())
    for (auto& [host, port] : st.seeds)
      connect(self, host, port);
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
       video_manager_actor manager, scheduler_actor scheduler,
       member_info me, std::vector<std::pair<std::string, uint16_t>> seeds) {
  auto& st = self->state;
  st.ctx = ctx;
  st.manager = std::move(manager);
  st.scheduler = std::move(scheduler);
  st.me = std::move(me);
  st.seeds = std::move(seeds);
  st.started_ms = now_ms();
  st.settled = st.seeds.empty(); // the first node has nobody to wait for
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    for (auto i = st.peers.begin(); i != st.peers.end(); ++i)
      if (i->second.address() == dm.source) {
        auto id = i->first;
        st.peers.erase(i);
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
    [self](caf::join_atom, member_info& m) -> caf::result<std::vector<member_info>> {
      auto& st = self->state;
      m.seen_ms = now_ms();
      if (m.state != "draining")
        m.state = "up";
      bool is_new = !st.known.count(m.node_id);
      st.known[m.node_id] = m;
      log::info("member.joined", {{"peer", m.node_id}, {"new", is_new ? "yes" : "no"}});
      if (!st.peers.count(m.node_id))
        connect(self, m.cluster_host, m.cluster_port);
      publish(self, true);
      std::vector<member_info> all{st.me};
      for (auto& [id, k] : st.known)
        all.push_back(k);
      return all;
    },
    [self](caf::update_atom, member_info& m) {
      auto& st = self->state;
      if (m.node_id == st.me.node_id)
        return;
      auto i = st.known.find(m.node_id);
      if (i != st.known.end() && i->second.version > m.version)
        return; // stale
      auto before = i == st.known.end() ? std::string{"down"} : i->second.state;
      m.seen_ms = now_ms();
      // A peer we hear from is alive; whether it drains is its own word.
      if (m.state != "draining")
        m.state = st.peers.count(m.node_id) ? "up" : before;
      st.known[m.node_id] = m;
      if (!st.peers.count(m.node_id))
        connect(self, m.cluster_host, m.cluster_port);
      publish(self, before != m.state);
    },
    [self](caf::get_atom, members_atom) -> caf::result<std::vector<member_info>> {
      std::vector<member_info> all{self->state.me};
      for (auto& [id, m] : self->state.known)
        all.push_back(m);
      return all;
    },
    [self](caf::put_atom, const video_record& v) {
      if (from_remote(self))
        self->send(self->state.manager, caf::put_atom::value, v);
      else
        broadcast(self, caf::put_atom::value, v);
    },
    [self](caf::delete_atom, const video_record& v) {
      if (from_remote(self))
        self->send(self->state.manager, caf::delete_atom::value, v);
      else
        broadcast(self, caf::delete_atom::value, v);
    },
    [self](caf::put_atom, const replicated_row& row) {
      if (!from_remote(self)) {
        broadcast(self, caf::put_atom::value, row);
        return;
      }
      if (row.family < 0 || row.family >= static_cast<int32_t>(cf::count_)
          || row.family == static_cast<int32_t>(cf::videos)
          || row.family == static_cast<int32_t>(cf::video_index))
        return;
      auto family = static_cast<cf>(row.family);
      auto* store = self->state.ctx->store;
      // A row from a node of an older release may hold a secret in plain:
      // it is stored sealed (storage/records.hpp, at_rest_form).
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
      return to_owner(self, v.id, create_atom::value, std::move(v));
    },
    [self](view_atom, std::string& id) -> caf::result<int64_t> {
      auto key = id;
      return to_owner<int64_t>(self, key, view_atom::value, std::move(id));
    },
    [self](upload_atom, source_part& p) -> caf::result<video_record> {
      auto id = p.video_id;
      return to_owner(self, id, upload_atom::value, std::move(p));
    },
    [self](caf::update_atom, std::string& tenant, std::string& id,
           std::string& patch) -> caf::result<video_record> {
      auto key = id;
      return to_owner(self, key, caf::update_atom::value, std::move(tenant),
                      std::move(id), std::move(patch));
    },
    [self](retry_atom, std::string& tenant,
           std::string& id) -> caf::result<video_record> {
      auto key = id;
      return to_owner(self, key, retry_atom::value, std::move(tenant),
                      std::move(id));
    },
    [self](submit_atom, task& t) -> caf::result<task_result> {
      auto& st = self->state;
      if (from_remote(self)) {
        localize(self, t);
      } else if (!t.target_node.empty() && t.target_node != st.me.node_id) {
        auto i = st.peers.find(t.target_node);
        if (i == st.peers.end())
          return make_error(ec::unavailable, t.target_node + " is not up");
        return self->delegate(i->second, submit_atom::value, std::move(t));
      }
      return self->delegate(st.scheduler, submit_atom::value, std::move(t));
    },
    [self](sync_atom) {
      // Everything this node knows, to a node that joins or comes back.
      auto peer = caf::actor_cast<member_actor>(self->current_sender());
      if (!peer)
        return;
      auto* store = self->state.ctx->store;
      caf::error err;
      for (auto family : replicated_families) {
        err = store->scan(family, "", [&](auto& key, auto& value) {
          self->send(peer, caf::put_atom::value,
                     replicated_row{static_cast<int32_t>(family), key, value,
                                    false});
          return true;
        });
        if (err)
          break;
      }
      err = store->scan(cf::videos, "", [&](auto&, auto& bytes) {
        video_record v;
        if (!decode(bytes, v))
          self->send(peer, caf::put_atom::value, v);
        return true;
      });
      if (err)
        log::error("member.sync_failed", {{"error", message_of(err)}});
    },
    [self](drain_atom, const std::string& node, bool on) -> caf::result<member_info> {
      auto& st = self->state;
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
    [self](caf::tick_atom) { tick(self); },
  };
}

} // namespace reel
