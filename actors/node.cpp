#include "actors/node.hpp"

#include "actors/actors.hpp"
#include "actors/context.hpp"
#include "actors/keyring.hpp"
#include "actors/member.hpp"
#include "actors/replicator.hpp"
#include "actors/scheduler.hpp"
#include "cluster/data_plane.hpp"
#include "cluster/pki.hpp"
#include "actors/video_manager.hpp"
#include "actors/webhooks.hpp"
#include "actors/worker.hpp"
#include "net/url_import.hpp"
#include "ops/log.hpp"
#include "ops/util.hpp"
#include "storage/blob_store.hpp"
#include "storage/db.hpp"
#include "storage/keys.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace reel {

namespace {

/// The one configuration class of the actor system: every message type.
class reel_actor_config : public caf::actor_system_config {
public:
  /// `creds`: the node's cluster credentials (in a cluster), which make
  /// CAF speak TLS with certificates checked both ways.
  reel_actor_config(int threads, bool clustered,
                    const cluster::credentials* creds) {
    add_message_types<caf::id_block::reel>();
    add_message_type<std::vector<reel::video_record>>("std::vector<video_record>");
    set("scheduler.max-threads", threads);
    set("logger.verbosity", caf::atom("quiet"));
    set("logger.console", caf::atom("none"));
    if (clustered) {
      load<caf::io::middleman>();
      if (creds) {
        load<caf::openssl::manager>();
        // With a certificate, libcaf_openssl requires one from every peer
        // (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT) and checks it
        // against the CA file; without one it would fall back to an
        // anonymous cipher that authenticates nobody.
        openssl_certificate = creds->cert_file;
        openssl_key = creds->key_file;
        openssl_cafile = creds->ca_file;
      }
      set("middleman.heartbeat-interval", caf::timespan{std::chrono::milliseconds(250)});
      set("middleman.connection-timeout", caf::timespan{std::chrono::milliseconds(2000)});
    }
  }
};

constexpr auto ask_timeout = std::chrono::seconds(30);

/// Whether this node's cluster traffic runs without TLS: only in a build
/// made for benchmarks (cmake -DREEL_BENCH_PLAINTEXT=ON, bench/scale.sh)
/// and with REEL_BENCH_PLAINTEXT=1 in the environment, to measure what TLS
/// costs. Release builds cannot do it at all.
bool bench_plaintext() {
#ifdef REEL_BENCH_PLAINTEXT
  auto* v = std::getenv("REEL_BENCH_PLAINTEXT");
  return v && std::string{v} == "1";
#else
  return false;
#endif
}

/// Makes the kernel hand CAF's cluster listener a connection only once the
/// peer has sent something (a member opens with its TLS ClientHello at
/// once): connections that only open, or open and close, never reach CAF's
/// one multiplexer thread, where each costs a TLS context (libcaf_openssl
/// makes one per connection) and delays every member's heartbeat. CAF does
/// not expose its listening socket, so it is found among this process's
/// descriptors by its port.
void defer_accept(uint16_t port) {
  std::error_code err;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd", err)) {
    int fd = -1;
    try {
      fd = std::stoi(e.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    int listening = 0;
    socklen_t len = sizeof(listening);
    sockaddr_storage addr{};
    socklen_t alen = sizeof(addr);
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0
        || !listening
        || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0)
      continue;
    uint16_t bound = addr.ss_family == AF_INET
                       ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
                     : addr.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                       : 0;
    if (bound != port)
      continue;
    int seconds = 10;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds,
                     sizeof(seconds))
        != 0)
      log::warn("cluster.defer_accept_failed", {{"port", std::to_string(port)}});
  }
}

} // namespace

struct node::impl {
  node_context ctx;
  std::unique_ptr<db> store;
  std::unique_ptr<blob_store> blobs;
  std::unique_ptr<cluster_view> view;
  std::unique_ptr<cluster::blob_server> data_plane;
  std::optional<cluster::credentials> creds; // in a cluster
  std::unique_ptr<reel_actor_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  scheduler_ops_actor scheduler;
  video_manager_actor manager;
  std::string secret; // signs tokens
  // Garbage collection: one run at a time, the steps other layers add,
  // and the periodic runner.
  std::mutex gc_mtx;
  std::vector<std::pair<std::string, std::function<gc_count(int64_t)>>>
    gc_steps;
  caf::actor gc_timer; // runs gc now and then (start_periodic_gc)
  // What the keyring publishes (actors/keyring.hpp): who may call.
  published<key_table> keys;
  // Thumbnails being made (by path): one request makes each, others wait.
  std::mutex thumbnail_mtx;
  std::condition_variable thumbnail_made;
  std::set<std::string> thumbnails_making;

  /// The keys of secrets at rest, and every stored row not in that form
  /// rewritten (docs/security.md, "Secrets at rest").
  caf::error secure_at_rest();

  /// Who registers records of video `id`: its owner through the member in
  /// a cluster, else the local manager.
  template <class... Ts>
  caf::expected<video_record> ask_owner(Ts&&... xs) {
    if (ctx.member)
      return ask<video_record>(ctx.member, std::forward<Ts>(xs)...);
    return ask<video_record>(manager, std::forward<Ts>(xs)...);
  }

  /// Brings a video's source to this node when it is only on others.
  caf::error ensure_source(const video_record& v) {
    std::error_code missing;
    if (std::filesystem::exists(blobs->source_path(v.id), missing)
        || !ctx.replicator)
      return {};
    auto where = view->placement(v.id);
    where.insert(where.begin(), v.source_node);
    std::vector<fetch_item> items{fetch_item{"sources/" + v.id + "/source",
                                             v.source_sha256,
                                             view->fetch_order(where)}};
    auto got = ask<caf::ok_atom>(ctx.replicator, fetch_atom::value,
                                 std::move(items));
    return got ? caf::error{} : got.error();
  }

  /// Runs `job` (a download, a decode, a scan of the store: blocking work)
  /// in an actor of its own (detached: it may block), and waits at most
  /// `timeout` for it to end. The calling thread (an HTTP worker) only
  /// hands the work off; what `job` makes it passes back through what it
  /// captures.
  caf::error run_detached(std::function<caf::error()> job,
                          caf::timespan timeout = ask_timeout) {
    auto worker = sys->spawn<caf::detached>(
      [job = std::move(job)](caf::event_based_actor* self) -> caf::behavior {
        return {[self, job](caf::get_atom) -> caf::result<bool> {
          auto err = job();
          self->quit();
          if (err)
            return err;
          return true;
        }};
      });
    auto done = ask<bool>(worker, timeout, caf::get_atom::value);
    return done ? caf::error{} : done.error();
  }

  /// `scan` (a read through the whole store) in an actor of its own, as
  /// run_detached: an HTTP worker never scans RocksDB itself.
  template <class T>
  caf::expected<T> scan_detached(std::function<caf::expected<T>()> scan) {
    // Shared: a scan that outlives the wait still has somewhere to write.
    auto out = std::make_shared<caf::expected<T>>(
      make_error(ec::timeout, "the scan did not finish"));
    auto err = run_detached([scan = std::move(scan), out] {
      *out = scan();
      return caf::error{};
    });
    if (err)
      return err;
    return std::move(*out);
  }

  /// Asks `dest` and waits for one answer of type R.
  template <class R, class Dest, class... Ts>
  caf::expected<R> ask(const Dest& dest, Ts&&... xs) {
    return ask<R>(dest, caf::timespan{ask_timeout}, std::forward<Ts>(xs)...);
  }

  /// The same, waiting at most `timeout`.
  template <class R, class Dest, class... Ts>
  caf::expected<R> ask(const Dest& dest, caf::timespan timeout, Ts&&... xs) {
    caf::scoped_actor self{*sys};
    caf::expected<R> result{make_error(ec::timeout, "no answer")};
    self->request(dest, timeout, std::forward<Ts>(xs)...)
      .receive([&](R& r) { result = std::move(r); },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }
};

node::node() : impl_(std::make_unique<impl>()) {
}

node::~node() {
  stop();
}

caf::expected<std::unique_ptr<node>> node::start(node_config cfg) {
  std::unique_ptr<node> n{new node};
  auto& d = *n->impl_;
  d.ctx.config = std::move(cfg);
  codec::set_libav_logging(d.ctx.config.log_level == "debug");
  d.blobs = std::make_unique<blob_store>(d.ctx.config.data_dir);
  if (auto err = d.blobs->init())
    return err;
  d.blobs->clean_tmp(); // uploads cut off by a crash were never accepted
  auto store = db::open(d.ctx.config.data_dir + "/db");
  if (!store)
    return store.error();
  d.store = std::move(*store);
  d.ctx.store = d.store.get();
  d.ctx.blobs = d.blobs.get();
  // Tokens are signed with a secret every node of a cluster derives from
  // the cluster secret; a lone node keeps its own random one.
  if (!d.ctx.config.cluster_listen.empty()) {
    d.secret = hex(hmac_sha256(d.ctx.config.cluster_secret, "reel-tokens"));
  } else {
    auto stored = d.store->get(cf::meta, "token_secret");
    if (!stored)
      return stored.error();
    d.secret = *stored ? **stored : random_token(48);
    if (!*stored)
      if (auto err = d.store->put(cf::meta, "token_secret", d.secret))
        return err;
  }
  // Secrets at rest (upload tokens, webhook secrets): their keys, and rows
  // of older releases rewritten into the sealed form, before any actor.
  if (auto err = d.secure_at_rest())
    return err;
  // Who may call: read once here; from now on the keyring owns these rows.
  auto table = load_key_table(*d.store);
  if (!table)
    return table.error();
  d.keys.set(std::make_shared<const key_table>(std::move(*table)));
  d.ctx.keys = &d.keys;
  // Blobs of videos without a record (a crash between storing an upload
  // and registering it, or a deletion cut off) are removed before serving,
  // on a node alone. In a cluster a record may still arrive (the owner
  // registered an upload this node received, and this node went down
  // before it kept the record): there gc removes such blobs only once
  // nobody has touched them for a day (node::gc, "orphans").
  bool alone = d.ctx.config.cluster_listen.empty();
  for (auto* sub : {"sources", "work", "media"}) {
    if (!alone)
      break;
    std::error_code err;
    for (auto& e : std::filesystem::directory_iterator(
           d.ctx.config.data_dir + "/" + sub, err)) {
      auto id = e.path().filename().string();
      auto rec = is_uuid(id) ? d.store->get_video(id)
                             : caf::expected<std::optional<video_record>>{
                               std::optional<video_record>{}};
      if (rec && !*rec) {
        log::info("blobs.orphan_removed", {{"video", id}, {"dir", sub}});
        d.blobs->remove_video(id);
      }
    }
  }
  auto& cfg_ = d.ctx.config;
  bool clustered = !cfg_.cluster_listen.empty();
  member_info me;
  me.node_id = cfg_.node_id;
  me.public_url = cfg_.public_url;
  me.workers = cfg_.workers;
  if (clustered) {
    if (auto err = parse_host_port(cfg_.cluster_listen, me.cluster_host,
                                   me.cluster_port))
      return err;
    // Membership is earned: this node's certificate, signed by the CA
    // every holder of the cluster secret derives (cluster/pki.hpp).
    auto creds = cluster::issue_credentials(cfg_.cluster_secret, me.node_id,
                                            cfg_.data_dir + "/cluster");
    if (!creds)
      return creds.error();
    d.creds = *creds;
    auto link = cluster::link_security::load(*creds);
    if (!link)
      return link.error();
    d.ctx.link = *link;
    if (bench_plaintext()) {
      d.creds.reset();
      d.ctx.link = cluster::link_security::plaintext();
    }
    d.data_plane = std::make_unique<cluster::blob_server>(cfg_.data_dir,
                                                          d.ctx.link);
    if (auto err = d.data_plane->start(me.cluster_host, 0))
      return err;
    me.data_port = d.data_plane->port();
  }
  d.view = std::make_unique<cluster_view>(me, static_cast<size_t>(cfg_.replicas));
  d.ctx.view = d.view.get();
  d.cfg = std::make_unique<reel_actor_config>(4, clustered,
                                              d.creds ? &*d.creds : nullptr);
  d.sys = std::make_unique<caf::actor_system>(*d.cfg);
  d.scheduler = d.sys->spawn(
    scheduler,
    scheduler_config{cfg_.workers,
                     worker_config{d.blobs.get(), d.view.get(), d.ctx.link}});
  if (clustered) {
    d.ctx.replicator = d.sys->spawn<caf::detached>(replicator, &d.ctx);
    d.ctx.replicas = d.sys->spawn<caf::detached>(replicator, &d.ctx);
  }
  d.ctx.webhooks = d.sys->spawn<caf::detached>(webhook_dispatcher, &d.ctx);
  d.ctx.keyring = d.sys->spawn(keyring, keyring_config{&d.ctx, &d.keys});
  d.manager = d.sys->spawn(video_manager, &d.ctx, d.scheduler);
  if (clustered) {
    std::vector<std::pair<std::string, uint16_t>> seeds;
    for (auto& j : cfg_.join) {
      std::string host;
      uint16_t port = 0;
      if (auto err = parse_host_port(j, host, port))
        return err;
      seeds.emplace_back(host, port);
    }
    d.ctx.member = d.sys->spawn(member, &d.ctx, d.manager, d.scheduler, me,
                                std::move(seeds));
    auto published =
      d.creds ? caf::openssl::publish(d.ctx.member, me.cluster_port,
                                      me.cluster_host.c_str(), true)
              : d.sys->middleman().publish(d.ctx.member, me.cluster_port,
                                           me.cluster_host.c_str(), true);
    if (!published)
      return make_error(ec::unavailable,
                        "cannot listen for the cluster on "
                          + cfg_.cluster_listen + ": "
                          + d.sys->render(published.error()));
    defer_accept(me.cluster_port);
    log::info("cluster.listening",
              {{"cluster", cfg_.cluster_listen},
               {"data_port", std::to_string(me.data_port)},
               {"tls", d.creds ? "mutual" : "off (benchmark build)"},
               {"ca", cluster::ca_fingerprint(cfg_.cluster_secret).substr(0, 16)}});
  }
  return n;
}

const node_config& node::config() const {
  return impl_->ctx.config;
}

blob_store& node::blobs() {
  return *impl_->blobs;
}

db& node::store() {
  return *impl_->store;
}

store_usage node::store_stats() {
  auto& s = *impl_->store;
  return store_usage{s.size_bytes(),
                     s.int_property("rocksdb.num-running-compactions"),
                     s.int_property("rocksdb.estimate-pending-compaction-bytes")};
}

int64_t node::blob_bytes() {
  return impl_->blobs->used_bytes();
}

caf::expected<std::string> node::bootstrap() {
  return impl_->ask<std::string>(impl_->ctx.keyring, bootstrap_atom::value,
                                 impl_->ctx.config.bootstrap_key);
}

bool principal::may(const std::string& scope) const {
  return scopes.empty()
         || std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

caf::expected<std::string> node::create_key(const std::string& tenant,
                                            bool admin,
                                            std::vector<std::string> scopes) {
  return impl_->ask<std::string>(impl_->ctx.keyring, create_atom::value,
                                 tenant, admin, std::move(scopes));
}

caf::expected<principal> node::authenticate(const std::string& key) {
  if (key.empty() || key.size() > 512)
    return make_error(ec::unauthorized, "missing or malformed API key");
  // Looked up by digest: the stored value is never compared byte by byte
  // against the secret, so timing reveals nothing about it.
  auto who = key_principal(sha256_hex(key));
  if (!who && code_of(who.error()) == ec::unauthorized)
    return make_error(ec::unauthorized, "invalid API key");
  return who;
}

bool node::has_quorum() const {
  return !impl_->ctx.member || impl_->view->has_quorum();
}

caf::expected<video_record> node::create_video(video_record draft,
                                               const std::string& tmp_source) {
  auto& key = draft.info.client_key;
  bool idempotent = key.rfind(idempotency_prefix, 0) == 0;
  if (idempotent) {
    // Made already: the same answer again, and nothing new stored.
    auto made = video_by_key(draft.tenant, key);
    if (made || code_of(made.error()) != ec::not_found) {
      if (made && !tmp_source.empty()) {
        std::error_code ignored; // this retry's copy of the source
        std::filesystem::remove(tmp_source, ignored);
      }
      return made;
    }
  }
  auto tenant = draft.tenant;
  auto name = key;
  auto v = create_once(std::move(draft), tmp_source);
  // Two creates with one key at once: the one that lost answers the video
  // the other made.
  if (!v && idempotent && code_of(v.error()) == ec::conflict)
    if (auto made = video_by_key(tenant, name)) {
      std::error_code ignored;
      std::filesystem::remove(tmp_source, ignored);
      return made;
    }
  return v;
}

caf::expected<video_record> node::create_once(video_record draft,
                                              const std::string& tmp_source) {
  auto exists = folder_exists(draft.tenant, draft.folder);
  if (!exists)
    return exists.error();
  if (!*exists)
    return make_error(ec::not_found, "folder " + draft.folder + " not found");
  // A random id; the integer id (Gcore's) is drawn by whoever registers
  // the video (actors/video_manager.cpp), a key a client names it by
  // (Flare's s3Key) is checked there.
  if (draft.id.empty())
    draft.id = make_uuid();
  draft.source_node = impl_->ctx.config.node_id;
  if (!tmp_source.empty())
    if (auto err = impl_->blobs->adopt_source(tmp_source, draft.id))
      return err;
  // In a cluster the video's owner (by placement) registers it; it fetches
  // the source from this node.
  auto id = draft.id;
  auto rec = impl_->ask_owner(create_atom::value, std::move(draft));
  if (!rec) {
    impl_->blobs->remove_video(id);
    return rec;
  }
  // In a cluster the owner wrote the record; this node keeps it too before
  // the client hears 202, so that both the source and its record are
  // durable here, where this node's start-up sees them together.
  if (impl_->ctx.member)
    if (auto kept = impl_->ask<caf::ok_atom>(impl_->manager, keep_atom::value,
                                             *rec);
        !kept)
      return kept.error();
  return rec;
}

caf::expected<video_record>
node::add_source_part(const std::string& tenant, const std::string& id,
                      const std::string& mode, int64_t total, upload_part part,
                      const std::string& tmp) {
  part.node = impl_->ctx.config.node_id;
  auto name = part_file(part);
  if (auto err = impl_->blobs->adopt_source(tmp, id, name))
    return err;
  auto rec = impl_->ask_owner(upload_atom::value,
                              source_part{tenant, id, mode, total, part});
  if (!rec) { // refused: this copy is not part of the upload
    std::error_code ignored;
    std::filesystem::remove(impl_->blobs->source_file(id, name), ignored);
  }
  return rec;
}

caf::expected<int64_t> node::count_view(const std::string& id) {
  if (impl_->ctx.member)
    return impl_->ask<int64_t>(impl_->ctx.member, view_atom::value, id);
  return impl_->ask<int64_t>(impl_->manager, view_atom::value, id);
}

caf::expected<video_record> node::update_video(const std::string& tenant,
                                               const std::string& id,
                                               const std::string& patch) {
  return impl_->ask_owner(caf::update_atom::value, tenant, id, patch);
}

caf::expected<std::string> node::copy_source(const std::string& tenant,
                                             const std::string& id) {
  auto v = get_video(tenant, id);
  if (!v)
    return v.error();
  if (v->source_sha256.empty())
    return make_error(ec::conflict, "video " + id + " has no source yet");
  if (auto err = impl_->ensure_source(*v))
    return err;
  auto tmp = impl_->blobs->new_tmp_path();
  std::error_code err;
  // Sources never change once stored: a hard link is a copy.
  std::filesystem::create_hard_link(impl_->blobs->source_path(id), tmp, err);
  if (err)
    std::filesystem::copy_file(impl_->blobs->source_path(id), tmp, err);
  if (err)
    return make_error(ec::storage_error,
                      "cannot copy the source: " + err.message());
  return tmp;
}

caf::expected<std::string> node::source_file(const std::string& id) {
  auto v = get_video("", id);
  if (!v)
    return v.error();
  if (v->source_sha256.empty())
    return make_error(ec::not_found, "video " + id + " has no source yet");
  if (auto err = impl_->ensure_source(*v))
    return err;
  return impl_->blobs->source_path(id);
}

caf::expected<video_record> node::set_poster(const std::string& tenant,
                                             const std::string& id,
                                             const std::string& image) {
  auto v = get_video(tenant, id);
  if (!v)
    return v.error();
  char magic[8] = {};
  {
    std::ifstream in{image, std::ios::binary};
    in.read(magic, sizeof(magic));
  }
  const char* ext = nullptr;
  if (static_cast<unsigned char>(magic[0]) == 0xFF
      && static_cast<unsigned char>(magic[1]) == 0xD8)
    ext = ".jpg";
  else if (std::string(magic, 8) == "\x89PNG\r\n\x1a\n")
    ext = ".png";
  if (!ext)
    return make_error(ec::invalid_argument,
                      "the image must be a JPEG or PNG file");
  auto sum = file_sha256(image);
  if (!sum)
    return sum.error();
  // Kept next to the source (the media directory is rewritten while the
  // video is processed), named by its digest: any node can fetch and
  // verify it.
  auto name = "poster-" + *sum + ext;
  if (auto err = impl_->blobs->adopt_source(image, id, name))
    return err;
  nlohmann::json patch = {{"poster", name}};
  return update_video(tenant, id, patch.dump());
}

caf::expected<std::string> node::fetch_image(const std::string& url,
                                             int64_t max_bytes,
                                             int timeout_s) {
  import_options opts;
  opts.max_bytes = max_bytes;
  opts.timeout_s = timeout_s;
  opts.allow = impl_->ctx.config.import_allow;
  auto tmp = impl_->blobs->new_tmp_path();
  auto err = impl_->run_detached(
    [url, tmp, opts] {
      auto got = import_url(url, tmp, opts);
      return got ? caf::error{} : got.error();
    },
    std::chrono::seconds(timeout_s + 5));
  if (err) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    return err;
  }
  return tmp;
}

caf::expected<std::string> node::poster_file(const video_record& v) {
  auto& name = v.info.poster; // "poster-<sha256>.<ext>"
  if (name.size() < 71 || name.rfind("poster-", 0) != 0)
    return make_error(ec::not_found, "the video has no poster of its own");
  auto path = impl_->blobs->source_file(v.id, name);
  std::error_code missing;
  if (std::filesystem::exists(path, missing) || !impl_->ctx.replicator)
    return path;
  std::vector<fetch_item> items{fetch_item{
    "sources/" + v.id + "/" + name, name.substr(7, 64),
    impl_->view->fetch_order(impl_->view->placement(v.id))}};
  auto got = impl_->ask<caf::ok_atom>(impl_->ctx.replicator, fetch_atom::value,
                                      std::move(items));
  if (!got)
    return got.error();
  return path;
}

const std::string& node::signing_secret() const {
  return impl_->secret;
}

const sealer& node::sealer() const {
  return impl_->ctx.secrets.box;
}

caf::error node::impl::secure_at_rest() {
  // The cluster's secret, then this node's own (a lone node's, kept in
  // its store; in a cluster only if the node once ran alone): values
  // sealed under the second still open.
  std::vector<std::string> roots;
  if (!ctx.config.cluster_listen.empty())
    roots.push_back(ctx.config.cluster_secret);
  auto own = store->get(cf::meta, "token_secret");
  if (!own)
    return own.error();
  if (*own)
    roots.push_back(**own);
  if (roots.empty() || roots.front().empty())
    return make_error(ec::invalid_argument,
                      "no secret to seal secrets at rest with");
  std::vector<std::string> seal_keys;
  std::vector<std::string> digest_keys;
  for (auto& root : roots) {
    seal_keys.push_back(hkdf_sha256(root, "reel at-rest v1"));
    digest_keys.push_back(hkdf_sha256(root, "reel token digest v1"));
  }
  ctx.secrets = at_rest_keys{reel::sealer{seal_keys}, digest_keys};
  // Rows with a secret in plain (an older release's), or sealed under a
  // key that is no longer the first (a lone node that joined a cluster),
  // are rewritten, then scrubbed so that no plain copy stays on disk. The
  // families are small: looked through at every start, rewritten once.
  size_t rewritten = 0;
  std::vector<cf> scrub; // families that held plain secrets
  for (auto family : {cf::tokens, cf::webhooks, cf::outbox}) {
    std::vector<std::array<std::string, 3>> rows; // old key, key, value
    auto err = store->scan(family, "", [&](auto& key, auto& value) {
      if (auto row = at_rest_form(ctx.secrets, family, key, value))
        rows.push_back({key, row->first, row->second});
      return true;
    });
    if (err)
      return err;
    for (auto& [old_key, key, value] : rows) {
      if (auto e = store->put(family, key, value))
        return e;
      if (old_key != key)
        if (auto e = store->del(family, old_key))
          return e;
    }
    if (!rows.empty())
      scrub.push_back(family);
    rewritten += rows.size();
  }
  // Headers sent with URL imports (an origin's credentials) are kept only
  // while the import runs; those of imports that ended before this
  // release are dropped, once per data directory.
  auto swept = store->get(cf::meta, "import_headers_swept");
  if (!swept)
    return swept.error();
  std::vector<video_record> ended;
  auto err = *swept ? caf::error{}
                    : store->scan(cf::videos, "", [&](auto&, auto& bytes) {
                        video_record v;
                        if (!decode(bytes, v) && !v.import_headers.empty() &&
                            v.state != states::created)
                          ended.push_back(std::move(v));
                        return true;
                      });
  if (err)
    return err;
  for (auto& v : ended) {
    v.import_headers.clear();
    if (auto e = store->put_video(v))
      return e;
  }
  if (!ended.empty())
    scrub.push_back(cf::videos);
  if (!scrub.empty())
    if (auto e = store->scrub(scrub))
      return e;
  if (rewritten > 0 || !ended.empty())
    log::info("secrets.rewritten",
              {{"rows", std::to_string(rewritten)},
               {"import_headers_dropped", std::to_string(ended.size())}});
  return *swept ? caf::error{}
                : store->put(cf::meta, "import_headers_swept", "1");
}



caf::expected<upload_token_record>
node::create_upload_token(const std::string& tenant, int64_t ttl_s) {
  return impl_->ask<upload_token_record>(impl_->ctx.keyring, create_atom::value,
                                         token_atom::value, tenant, ttl_s);
}

caf::expected<std::vector<upload_token_record>>
node::list_upload_tokens(const std::string& tenant) {
  std::vector<upload_token_record> out;
  auto now = now_ms();
  auto table = impl_->keys.get();
  for (auto& [key, t] : table->tokens)
    if (t.tenant == tenant && (t.expires_ms == 0 || t.expires_ms > now))
      if (auto open = open_token(impl_->ctx.secrets, t))
        out.push_back(std::move(*open));
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
    return a.created_ms != b.created_ms ? a.created_ms < b.created_ms
                                        : a.token < b.token;
  });
  return out;
}

caf::expected<upload_token_record> node::upload_token(const std::string& token) {
  auto missing = make_error(ec::not_found, "no such upload token");
  if (token.empty() || token.size() > 128)
    return missing;
  auto table = impl_->keys.get();
  auto t = find_upload_token(*table, impl_->ctx.secrets, token);
  if (!t || (t->second.expires_ms != 0 && t->second.expires_ms <= now_ms()))
    return missing;
  return std::move(t->second);
}

caf::error node::delete_upload_token(const std::string& tenant,
                                     const std::string& token) {
  auto done = impl_->ask<caf::ok_atom>(impl_->ctx.keyring, caf::delete_atom::value,
                                       token_atom::value, tenant, token);
  return done ? caf::error{} : done.error();
}

caf::expected<webhook_record>
node::create_webhook(const std::string& tenant, const std::string& url,
                     std::vector<std::string> events,
                     const std::string& format) {
  return impl_->ask<webhook_record>(impl_->ctx.keyring, create_atom::value,
                                    webhook_atom::value, tenant, url,
                                    std::move(events), format);
}

caf::expected<std::vector<webhook_record>>
node::list_webhooks(const std::string& tenant) {
  std::vector<webhook_record> out;
  auto table = impl_->keys.get();
  auto prefix = keys::webhook_prefix(tenant);
  for (auto i = table->webhooks.lower_bound(prefix);
       i != table->webhooks.end() && i->first.rfind(prefix, 0) == 0; ++i)
    out.push_back(i->second);
  for (auto& w : out) {
    if (!reel::sealer::is_sealed(w.secret))
      continue; // from a node of an older release, until rewritten
    auto plain = impl_->ctx.secrets.box.open(w.secret);
    if (!plain)
      log::warn("webhook.secret_unreadable", {{"webhook", w.id}});
    w.secret = plain ? std::move(*plain) : std::string{};
  }
  std::sort(out.begin(), out.end(),
            [](auto& a, auto& b) { return a.created_ms < b.created_ms; });
  return out;
}

caf::error node::delete_webhook(const std::string& tenant,
                                const std::string& id) {
  auto done = impl_->ask<caf::ok_atom>(impl_->ctx.keyring, caf::delete_atom::value,
                                       webhook_atom::value, tenant, id);
  return done ? caf::error{} : done.error();
}

caf::expected<std::vector<delivery_record>>
node::list_deliveries(const std::string& tenant, const std::string& status,
                      size_t limit) {
  auto* store = impl_->store.get();
  return impl_->scan_detached<std::vector<delivery_record>>(
    [store, tenant, status, limit]() -> caf::expected<std::vector<delivery_record>> {
      std::vector<delivery_record> out;
      auto err = store->scan(cf::outbox, "", [&](auto&, auto& bytes) {
        delivery_record d;
        if (!decode(bytes, d) && (tenant.empty() || d.tenant == tenant)
            && (status.empty() || d.status == status))
          out.push_back(std::move(d));
        return true;
      });
      if (err)
        return err;
      std::reverse(out.begin(), out.end()); // ids sort by creation
      if (out.size() > limit)
        out.resize(limit);
      return out;
    });
}

caf::expected<principal> node::key_principal(const std::string& key_hash) {
  // The keyring's published table: no store read, no message.
  auto table = impl_->keys.get();
  auto* rec = table->key(key_hash);
  if (!rec)
    return make_error(ec::unauthorized, "the API key was revoked");
  return principal{rec->tenant, rec->admin, rec->scopes, rec->key_hash};
}

caf::expected<principal> node::key_by_id(const std::string& key_id) {
  auto table = impl_->keys.get();
  auto* rec = table->key_by_id(key_id);
  if (!rec) // none, revoked, or (never yet seen) two keys alike
    return make_error(ec::unauthorized, "the API key was revoked");
  return principal{rec->tenant, rec->admin, rec->scopes, rec->key_hash};
}

caf::expected<video_record> node::get_video(const std::string& tenant,
                                            const std::string& id,
                                            uint64_t* version) {
  // Read straight from the store (thread-safe; every record is written
  // there before it is acted on): no actor round trip per API read.
  auto v = impl_->store->get_video(id, version);
  if (!v)
    return v.error();
  // Another tenant's video is "not found": its existence is not revealed.
  if (!*v || (!tenant.empty() && (*v)->tenant != tenant))
    return make_error(ec::not_found, "video " + id + " not found");
  return std::move(**v);
}

namespace {

/// The video an index names (`id`, as the store found it), within
/// `tenant`: "video <name> not found" when the index holds none or it is
/// another tenant's.
caf::expected<video_record>
indexed_video(node& n, const std::string& tenant,
              caf::expected<std::optional<std::string>> id,
              const std::string& name) {
  auto missing = make_error(ec::not_found, "video " + name + " not found");
  if (!id)
    return id.error();
  if (!*id)
    return missing;
  auto v = n.get_video(tenant, **id);
  if (!v && code_of(v.error()) == ec::not_found)
    return missing;
  return v;
}

} // namespace

caf::expected<video_record> node::video_by_number(const std::string& tenant,
                                                  uint64_t number) {
  return indexed_video(*this, tenant, impl_->store->video_by_number(number),
                       std::to_string(number));
}

caf::expected<video_record> node::video_by_key(const std::string& tenant,
                                               const std::string& key) {
  return indexed_video(*this, tenant,
                       impl_->store->video_by_client_key(tenant, key), key);
}

caf::expected<video_page> node::list_videos(const std::string& tenant,
                                            int32_t offset, int32_t limit) {
  return impl_->ask<video_page>(impl_->manager, list_atom::value, tenant,
                                offset, limit);
}

caf::error node::delete_video(const std::string& tenant,
                              const std::string& id) {
  // In a cluster the owner deletes it (the single writer of its record)
  // and tells every node.
  auto r = impl_->ctx.member
             ? impl_->ask<caf::ok_atom>(impl_->ctx.member,
                                        caf::delete_atom::value, tenant, id)
             : impl_->ask<caf::ok_atom>(impl_->manager,
                                        caf::delete_atom::value, tenant, id);
  return r ? caf::error{} : r.error();
}

caf::expected<folder_record> node::create_folder(const std::string& tenant,
                                                 const std::string& path) {
  return impl_->ask<folder_record>(impl_->manager, create_atom::value,
                                   folder_record{tenant, path, 0});
}

caf::expected<bool> node::folder_exists(const std::string& tenant,
                                        const std::string& path) {
  return impl_->ask<bool>(impl_->manager, folder_atom::value, tenant, path);
}

caf::expected<std::vector<folder_record>>
node::list_folders(const std::string& tenant) {
  return impl_->ask<std::vector<folder_record>>(
    impl_->manager, list_atom::value, folder_atom::value, tenant);
}

namespace {

/// Removes the least recently used thumbnails of a video's cache (by
/// modification time: a hit touches its file) until `keep` are left.
void prune_thumbnails(const std::string& dir, size_t keep) {
  namespace fs = std::filesystem;
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  std::error_code err;
  for (auto& e : fs::directory_iterator(dir, err)) {
    std::error_code ignored;
    if (e.is_regular_file(ignored) && e.path().extension() == ".jpg")
      files.emplace_back(e.last_write_time(ignored), e.path());
  }
  if (files.size() <= keep)
    return;
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i + keep < files.size(); ++i) {
    std::error_code ignored;
    fs::remove(files[i].second, ignored);
  }
}

} // namespace

caf::expected<std::string> node::thumbnail(const std::string& id,
                                           double at_seconds) {
  auto v = get_video("", id);
  if (!v)
    return v.error();
  if (!v->probed || v->state == states::failed)
    return make_error(ec::not_found, "video " + id + " has no frames yet");
  auto rest = v->source.duration_s - v->clip_start_s;
  auto length = v->clip_duration_s > 0 ? std::min(v->clip_duration_s, rest)
                                        : rest;
  if (!(at_seconds >= 0) || at_seconds > length)
    return make_error(ec::invalid_argument,
                      "time must be between 0 and "
                        + std::to_string(length) + " seconds");
  // The frame shown at that time (source time from the first picture), in
  // the clip: by the source's frame duration, its average one when the
  // rate varies.
  auto& src = v->source;
  double tb =
      src.tb_den > 0 ? static_cast<double>(src.tb_num) / src.tb_den : 0.0;
  double frame_s = src.frame_ticks > 0 && tb > 0
                       ? static_cast<double>(src.frame_ticks) * tb
                   : src.fps > 0 ? 1.0 / src.fps
                                 : 0.001;
  constexpr double eps = 1e-6; // 1.0 / 25 * 25 may be 0.99999...
  auto frame_at = [&](double s) {
    return static_cast<int64_t>(std::floor(s / frame_s + eps));
  };
  auto first = frame_at(v->clip_start_s);
  auto last = static_cast<int64_t>(
                  std::ceil((v->clip_start_s + length) / frame_s - eps)) -
              1;
  if (src.frame_count > 0)
    last = std::min(last, src.frame_count - 1);
  auto frame = std::clamp(frame_at(v->clip_start_s + at_seconds), first,
                          std::max(first, last));
  // In a cluster the source may be on other nodes only.
  if (auto err = impl_->ensure_source(*v))
    return err;
  auto dir = impl_->blobs->media_dir(id) + "/thumbnails";
  auto path = dir + "/f" + std::to_string(frame) + ".jpg";
  auto& d = *impl_;
  std::unique_lock<std::mutex> lock{d.thumbnail_mtx};
  d.thumbnail_made.wait(lock, [&] { return !d.thumbnails_making.count(path); });
  std::error_code err;
  if (std::filesystem::exists(path, err)) {
    // Used now: the last to be removed from the cache.
    std::filesystem::last_write_time(
        path, std::filesystem::file_time_type::clock::now(), err);
    return path;
  }
  d.thumbnails_making.insert(path);
  lock.unlock();
  caf::error failed;
  std::filesystem::create_directories(dir, err);
  if (err)
    failed = make_error(ec::storage_error, "cannot create " + dir);
  else // decoded by an actor of its own, not on the caller's thread
    failed = d.run_detached([source = d.blobs->source_path(id), src,
                             at = static_cast<double>(frame) * frame_s, path] {
      return codec::write_poster(source, src, at, 720, path);
    });
  lock.lock();
  d.thumbnails_making.erase(path);
  if (!failed)
    prune_thumbnails(dir, max_thumbnails);
  lock.unlock();
  d.thumbnail_made.notify_all();
  if (failed)
    return failed;
  return path;
}

std::vector<std::string> node::placement(const std::string& id) const {
  return impl_->view->placement(id);
}

caf::expected<std::vector<member_info>> node::members() {
  if (!impl_->ctx.member)
    return std::vector<member_info>{impl_->view->self()};
  return impl_->ask<std::vector<member_info>>(impl_->ctx.member,
                                              caf::get_atom::value,
                                              members_atom::value);
}

caf::expected<member_info> node::drain(const std::string& node_id, bool on) {
  if (!impl_->ctx.member)
    return make_error(ec::conflict, "this node is not part of a cluster");
  return impl_->ask<member_info>(impl_->ctx.member, drain_atom::value, node_id,
                                 on);
}

caf::expected<std::string> node::media_file(const std::string& id,
                                            const std::string& rel) {
  auto local = impl_->blobs->media_file(id, rel);
  if (local || !impl_->ctx.replicator)
    return local;
  // Not here: fetch it from a node of the video's placement (then any).
  auto v = impl_->store->get_video(id);
  if (!v || !*v)
    return local;
  for (auto& f : (*v)->files) {
    if (f.name != rel)
      continue;
    auto origins = impl_->view->fetch_order(impl_->view->placement(id));
    std::vector<fetch_item> items{
      fetch_item{"media/" + id + "/" + rel, f.sha256, origins}};
    auto got = impl_->ask<caf::ok_atom>(impl_->ctx.replicator, fetch_atom::value,
                                        std::move(items));
    if (!got)
      return got.error();
    return impl_->blobs->media_file(id, rel);
  }
  return local;
}

caf::expected<std::map<std::string, int64_t>> node::video_counts() {
  using counts = std::map<std::string, int64_t>;
  auto* store = impl_->store.get();
  return impl_->scan_detached<counts>([store]() -> caf::expected<counts> {
    counts out;
    auto err = store->scan(cf::videos, "", [&](auto&, auto& bytes) {
      video_record v;
      if (!decode(bytes, v))
        ++out[to_string(v.state)];
      return true;
    });
    if (err)
      return err;
    return out;
  });
}

caf::expected<std::pair<int64_t, int64_t>> node::task_counts() {
  caf::scoped_actor self{*impl_->sys};
  caf::expected<std::pair<int64_t, int64_t>> result{
    make_error(ec::timeout, "no answer")};
  self->request(impl_->scheduler, ask_timeout, stats_atom::value)
    .receive([&](int64_t queued,
                 int64_t running) { result = std::make_pair(queued, running); },
             [&](caf::error& err) { result = std::move(err); });
  return result;
}

caf::expected<video_page> node::list_videos(const std::string& tenant,
                                            const video_filter& f,
                                            int32_t offset, int32_t limit) {
  return impl_->ask<video_page>(impl_->manager, list_atom::value, tenant,
                                f.state, f.created_via, offset, limit);
}

caf::expected<video_record> node::retry_video(const std::string& tenant,
                                              const std::string& id) {
  return impl_->ask_owner(retry_atom::value, tenant, id);
}

caf::expected<std::vector<task_info>> node::tasks() {
  return impl_->ask<std::vector<task_info>>(impl_->scheduler, list_atom::value);
}

caf::expected<task_info> node::cancel_task(uint64_t id) {
  return impl_->ask<task_info>(impl_->scheduler, cancel_atom::value, id);
}

caf::expected<task_info> node::requeue_task(uint64_t id) {
  return impl_->ask<task_info>(impl_->scheduler, requeue_atom::value, id);
}

caf::expected<std::vector<api_key_record>>
node::list_keys(const std::string& tenant) {
  return impl_->keys.get()->live_keys(tenant);
}

caf::error node::revoke_key(const std::string& id,
                            const std::string& requester_hash) {
  auto done = impl_->ask<caf::ok_atom>(impl_->ctx.keyring, revoke_atom::value,
                                       id, requester_hash);
  return done ? caf::error{} : done.error();
}

caf::expected<std::vector<tenant_summary>> node::list_tenants() {
  std::map<std::string, tenant_summary> by_name;
  auto all = list_keys("");
  if (!all)
    return all.error();
  for (auto& k : *all)
    ++by_name[k.tenant].keys;
  using videos = std::map<std::string, int64_t>;
  auto* store = impl_->store.get();
  auto per_tenant = impl_->scan_detached<videos>([store]() -> caf::expected<videos> {
    videos n;
    auto err = store->scan(cf::video_index, "", [&](auto& key, auto&) {
      ++n[key.substr(0, key.find(keys::sep))];
      return true;
    });
    if (err)
      return err;
    return n;
  });
  if (!per_tenant)
    return per_tenant.error();
  for (auto& [name, count] : *per_tenant)
    by_name[name].videos = count;
  std::vector<tenant_summary> out;
  for (auto& [name, t] : by_name) {
    t.tenant = name;
    out.push_back(t);
  }
  return out;
}

caf::expected<std::string> node::create_tenant(const std::string& tenant) {
  // The keyring checks and makes the key in one step: one creation wins.
  return impl_->ask<std::string>(impl_->ctx.keyring, create_atom::value,
                                 tenant_atom::value, tenant);
}

void node::add_gc_step(std::string kind,
                       std::function<gc_count(int64_t before_ms)> step) {
  std::lock_guard<std::mutex> guard{impl_->gc_mtx};
  impl_->gc_steps.emplace_back(std::move(kind), std::move(step));
}

gc_report node::gc(int64_t older_than_s) {
  // Scans the store and the blob directories: in an actor of its own, the
  // caller (an HTTP worker, reelctl gc) waits.
  // (The report is shared: a collection that outlives the wait still has
  // somewhere to write it.)
  auto out = std::make_shared<gc_report>();
  auto err = impl_->run_detached(
    [this, out, older_than_s] {
      *out = gc_now(older_than_s);
      return caf::error{};
    },
    std::chrono::hours(1));
  if (err) {
    log::error("gc.failed", {{"error", message_of(err)}});
    return {};
  }
  return std::move(*out);
}

gc_report node::gc_now(int64_t older_than_s) {
  auto& d = *impl_;
  std::lock_guard<std::mutex> one_at_a_time{d.gc_mtx};
  auto before = now_ms() - older_than_s * 1000;
  gc_report out;
  out.emplace_back("tmp", d.blobs->remove_tmp_before(before));
  // Tombstones of deleted videos outlive any partition a cluster should
  // ride out: a node away for longer comes back by being wiped and joined
  // anew (docs/cluster.md, "Partitions").
  constexpr int64_t tombstone_keep_ms = 30LL * 24 * 3600 * 1000;
  auto buried = d.store->drop_tombstones(now_ms() - tombstone_keep_ms);
  out.emplace_back("tombstones",
                   gc_count{buried ? static_cast<int64_t>(*buried) : 0, 0});
  for (auto& [kind, step] : d.gc_steps)
    out.emplace_back(kind, step(before));
  // Copies of media this node no longer needs are removed only while the
  // whole cluster is up: placement over a degraded cluster is temporary.
  auto me = d.view->self().node_id;
  bool healthy = d.ctx.member && d.view->has_quorum();
  for (auto& m : d.view->members())
    healthy = healthy && (m.state == "up" || m.state == "draining");
  gc_count parts, orphans, replicas;
  for (auto& dir : d.blobs->video_dirs()) {
    auto rec = is_uuid(dir.name)
                 ? d.store->get_video(dir.name)
                 : caf::expected<std::optional<video_record>>{std::nullopt};
    if (!rec)
      continue; // the store failed: keep it
    if (!*rec) { // no such video: a cut-off upload or deletion
      if (dir.newest_ms < before)
        orphans += d.blobs->remove_dir(dir);
      continue;
    }
    auto& v = **rec;
    // A chunked upload abandoned (a complete one is being joined).
    if (dir.area == "sources" && v.state == states::created
        && !upload_complete(v.upload) && v.updated_ms < before)
      parts += d.blobs->remove_parts(v.id);
    if (dir.area == "media" && healthy && v.state == states::ready
        && v.source_node != me && dir.newest_ms < before) {
      auto where = d.view->placement(v.id);
      if (std::find(where.begin(), where.end(), me) == where.end())
        replicas += d.blobs->remove_dir(dir);
    }
  }
  out.emplace_back("parts", parts);
  out.emplace_back("orphans", orphans);
  out.emplace_back("replicas", replicas);
  // Webhook deliveries that are done with (delivered, or given up).
  gc_count deliveries;
  std::vector<std::string> done;
  auto err = d.store->scan(cf::outbox, "", [&](auto& key, auto& bytes) {
    delivery_record x;
    if (!decode(bytes, x) && x.status != "pending"
        && (x.done_ms ? x.done_ms : x.created_ms) < before) {
      done.push_back(key);
      deliveries.bytes += static_cast<int64_t>(bytes.size());
    }
    return true;
  });
  if (err)
    log::error("gc.outbox_failed", {{"error", message_of(err)}});
  for (auto& key : done)
    if (!d.store->del(cf::outbox, key))
      ++deliveries.count;
  out.emplace_back("deliveries", deliveries);
  gc_count total;
  std::string detail;
  for (auto& [kind, c] : out) {
    total += c;
    detail += (detail.empty() ? "" : " ") + kind + "=" + std::to_string(c.count)
              + "/" + std::to_string(c.bytes);
  }
  log::info("gc.done", {{"older_than_s", std::to_string(older_than_s)},
                        {"removed", std::to_string(total.count)},
                        {"bytes", std::to_string(total.bytes)},
                        {"detail", detail}});
  return out;
}

void node::start_periodic_gc(int64_t every_s, int64_t older_than_s) {
  auto& d = *impl_;
  if (d.gc_timer || every_s <= 0 || !d.sys)
    return;
  // An actor, not a thread of its own: every `every_s` seconds it collects
  // (detached, since a collection blocks on the disk for a while).
  d.gc_timer = d.sys->spawn<caf::detached>(
    [this, every = std::chrono::seconds(every_s),
     older_than_s](caf::event_based_actor* self) -> caf::behavior {
      self->delayed_send(self, every, caf::tick_atom::value);
      return {[this, self, every, older_than_s](caf::tick_atom) {
        gc_now(older_than_s);
        self->delayed_send(self, every, caf::tick_atom::value);
      }};
    });
}

void node::stop() {
  if (!impl_->sys)
    return;
  if (impl_->gc_timer) {
    caf::anon_send_exit(impl_->gc_timer, caf::exit_reason::user_shutdown);
    impl_->gc_timer = nullptr;
  }
  impl_->ctx.stopping = true;
  if (impl_->ctx.member)
    caf::anon_send_exit(impl_->ctx.member, caf::exit_reason::user_shutdown);
  for (auto* r : {&impl_->ctx.replicator, &impl_->ctx.replicas})
    if (*r)
      caf::anon_send_exit(*r, caf::exit_reason::user_shutdown);
  if (impl_->ctx.webhooks)
    caf::anon_send_exit(impl_->ctx.webhooks, caf::exit_reason::user_shutdown);
  if (impl_->ctx.keyring)
    caf::anon_send_exit(impl_->ctx.keyring, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(impl_->manager, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(impl_->scheduler, caf::exit_reason::user_shutdown);
  impl_->ctx.member = nullptr;
  impl_->ctx.replicator = nullptr;
  impl_->ctx.replicas = nullptr;
  impl_->ctx.webhooks = nullptr;
  impl_->ctx.keyring = nullptr;
  impl_->manager = nullptr;
  impl_->scheduler = nullptr;
  if (impl_->data_plane)
    impl_->data_plane->stop();
  impl_->sys.reset(); // waits for every actor (workers finish their task)
  impl_->store.reset();
}

} // namespace reel
