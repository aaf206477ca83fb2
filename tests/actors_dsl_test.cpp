// The actors message by message on CAF's deterministic test coordinator
// (caf/test/dsl.hpp, CAF's own test runner): no threads between them, no
// clock polling. Time moves only when a test says so, so "waits, then goes
// on" is a sequence of steps, not a sleep. A real RocksDB and blob store
// underneath; the scheduler and the packager are mocks with their typed
// interfaces (the real ones run libav, tested in codec_test and the
// process tests).
#define CAF_SUITE actors_dsl

#include "actors/actors.hpp"
#include "actors/keyring.hpp"
#include "actors/video.hpp"
#include "actors/video_manager.hpp"
#include "actors/webhooks.hpp"
#include "actors/worker.hpp"
#include "tests/mock_actors.hpp"
#include "ops/crypto.hpp"
#include "ops/util.hpp"
#include "storage/keys.hpp"

#include <caf/test/dsl.hpp>
#include <caf/test/unit_test_impl.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace reel;

namespace {

struct reel_config : caf::actor_system_config {
  reel_config() {
    add_message_types<caf::id_block::reel>();
  }
};

using namespace reel::testing;

struct fixture : test_coordinator_fixture<reel_config> {
  std::string dir = "/tmp/reel-dsl-test-" + make_uuid();
  std::unique_ptr<db> store;
  std::unique_ptr<blob_store> blobs;
  node_context ctx;
  published<key_table> keys{std::make_shared<const key_table>()}; // none yet
  std::shared_ptr<script> s = std::make_shared<script>();
  scheduler_actor sched_actor;

  fixture() {
    blobs = std::make_unique<blob_store>(dir);
    CAF_REQUIRE(!blobs->init());
    auto opened = db::open(dir + "/db");
    CAF_REQUIRE(opened);
    store = std::move(*opened);
    ctx.store = store.get();
    ctx.blobs = blobs.get();
    ctx.keys = &keys;
    ctx.config.chunk_seconds = 2;
    ctx.config.segment_seconds = 2;
    s->blobs = blobs.get();
    s->audio_stream = -1; // a source without audio: chunks only
    ctx.make_packager = mock_packagers(s);
    sched_actor = sys.spawn(mock_scheduler, s);
  }

  ~fixture() {
    store.reset();
    fs::remove_all(dir);
  }

  /// A video of `tenant` whose source is stored.
  video_record with_source(const std::string& tenant) {
    video_record v;
    v.id = make_uuid();
    v.tenant = tenant;
    v.folder = "root";
    v.title = "clip";
    v.created_ms = now_ms();
    fs::create_directories(fs::path{blobs->source_path(v.id)}.parent_path());
    std::ofstream{blobs->source_path(v.id)} << "source";
    v.source_sha256 = std::string(64, '0');
    v.source_bytes = 6;
    return v;
  }

  video_record stored(const std::string& id) {
    auto v = store->get_video(id);
    CAF_REQUIRE(v);
    CAF_REQUIRE(*v);
    return **v;
  }

  /// A video of `tenant` with its source stored, run by a video actor
  /// until nothing moves without the clock.
  video_record run_uploaded(const std::string& tenant) {
    auto v = with_source(tenant);
    v.state = states::uploaded;
    CAF_REQUIRE(!store->put_video(v));
    auto actor = sys.spawn(video, &ctx, sched_actor, v);
    self->send(actor, resume_atom::value);
    settle();
    return v;
  }

  /// Delivers every message there is, without moving the clock.
  void settle() {
    while (sched.try_run_once())
      ;
  }

  /// Asks `to`, lets everything run, and returns the answer (of type T) or
  /// the error.
  template <class T, class Handle, class... Ts>
  caf::expected<T> ask(const Handle& to, Ts&&... xs) {
    auto answer = self->request(to, caf::infinite, std::forward<Ts>(xs)...);
    settle();
    caf::expected<T> out = caf::error{};
    answer.receive([&](T& x) { out = std::move(x); },
                   [&](caf::error& err) { out = std::move(err); });
    return out;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(video_tests, fixture)

CAF_TEST(a full disk is waited out and the video goes on by itself) {
  s->chunk_fails_once[1] = ec::no_space;
  auto v = run_uploaded("t");
  // Chunk 1 hit the full disk: the video waits and says why; nothing
  // after it was packaged, and only the clock can move it on.
  auto waiting = stored(v.id);
  CAF_CHECK_EQUAL(waiting.state, states::transcoding);
  CAF_CHECK(waiting.waiting.find("No space") != std::string::npos);
  CAF_CHECK(waiting.failure_reason.empty());
  CAF_CHECK(sched.clock().has_pending_timeout());
  CAF_CHECK_EQUAL(s->chunk_attempts[1], 1);
  CAF_CHECK((s->packaged == std::vector<std::string>{"chunk 0"}));
  // The retry is due (5 s on): chunk 1 runs again and the video completes.
  advance_time(std::chrono::seconds(5));
  settle();
  auto done = stored(v.id);
  CAF_CHECK_EQUAL(done.state, states::ready);
  CAF_CHECK(done.waiting.empty());
  CAF_CHECK_EQUAL(s->chunk_attempts[1], 2);
  CAF_CHECK((s->packaged
             == std::vector<std::string>{"chunk 0", "chunk 1", "chunk 2",
                                         "finish"}));
}

CAF_TEST(a packager that finds the disk full is replaced after a wait) {
  s->packager_full_at = 1;
  auto v = run_uploaded("t");
  auto waiting = stored(v.id);
  CAF_CHECK_EQUAL(waiting.state, states::transcoding);
  CAF_CHECK(waiting.waiting.find("packaging") != std::string::npos);
  CAF_CHECK_EQUAL(s->packagers, 1);
  advance_time(std::chrono::seconds(5));
  settle();
  // A new packager started over from the encoded parts: nothing encoded
  // twice, every chunk packaged in order by the new one.
  auto done = stored(v.id);
  CAF_CHECK_EQUAL(done.state, states::ready);
  CAF_CHECK(done.waiting.empty());
  CAF_CHECK_EQUAL(s->packagers, 2);
  for (auto& [i, n] : s->chunk_attempts)
    CAF_CHECK_EQUAL(n, 1);
  CAF_CHECK((s->packaged
             == std::vector<std::string>{"chunk 0", "chunk 0", "chunk 1",
                                         "chunk 2", "finish"}));
}

CAF_TEST(bad media fails the video at once with its reason) {
  s->chunk_fails_once[1] = ec::media_error;
  auto v = run_uploaded("t");
  auto end = stored(v.id);
  CAF_CHECK_EQUAL(end.state, states::failed);
  CAF_CHECK(end.failure_reason.find("chunk 1") != std::string::npos);
  CAF_CHECK(end.failure_reason.find("Invalid data") != std::string::npos);
  CAF_CHECK(end.waiting.empty());
  CAF_CHECK_EQUAL(s->chunk_attempts[1], 1); // not tried again
}

CAF_TEST(the manager keeps each tenant to its own videos) {
  auto mgr = sys.spawn(video_manager, &ctx, sched_actor);
  settle();
  auto v = with_source("tenant-a");
  auto created = ask<video_record>(mgr, create_atom::value, v);
  CAF_REQUIRE(created);
  CAF_CHECK_EQUAL(created->id, v.id);
  CAF_CHECK(created->number > 0);
  CAF_CHECK_EQUAL(stored(v.id).state, states::ready);
  // Its tenant sees it; another tenant gets "not found", for a read, a
  // change and a delete, and the video stays as it was.
  CAF_CHECK(ask<video_record>(mgr, caf::get_atom::value,
                              std::string{"tenant-a"}, v.id));
  auto not_found = [](const auto& x) {
    return !x && code_of(x.error()) == ec::not_found;
  };
  CAF_CHECK(not_found(ask<video_record>(mgr, caf::get_atom::value,
                                        std::string{"tenant-b"}, v.id)));
  CAF_CHECK(not_found(ask<video_record>(mgr, caf::update_atom::value,
                                        std::string{"tenant-b"}, v.id,
                                        std::string{R"({"title":"x"})"})));
  CAF_CHECK(not_found(ask<caf::ok_atom>(mgr, caf::delete_atom::value,
                                        std::string{"tenant-b"}, v.id)));
  CAF_CHECK_EQUAL(stored(v.id).title, "clip");
  CAF_CHECK(fs::exists(blobs->source_path(v.id)));
  auto page = ask<video_page>(mgr, list_atom::value, std::string{"tenant-b"},
                              int32_t{0}, int32_t{100});
  CAF_REQUIRE(page);
  CAF_CHECK(page->videos.empty());
  page = ask<video_page>(mgr, list_atom::value, std::string{"tenant-a"},
                         int32_t{0}, int32_t{100});
  CAF_REQUIRE(page);
  CAF_CHECK_EQUAL(page->videos.size(), 1u);
  // Its own tenant deletes it: record and files go.
  CAF_CHECK(ask<caf::ok_atom>(mgr, caf::delete_atom::value,
                              std::string{"tenant-a"}, v.id));
  auto gone = store->get_video(v.id);
  CAF_REQUIRE(gone);
  CAF_CHECK(!*gone);
}

CAF_TEST_FIXTURE_SCOPE_END()

namespace {

/// A subscriber on 127.0.0.1: records what it is sent.
struct receiver {
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  std::mutex mtx;
  std::vector<std::pair<std::string, std::string>> got; // body, signature
  receiver() {
    svr.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> g{mtx};
      got.emplace_back(req.body, req.get_header_value("X-Reel-Signature"));
      res.status = 204;
    });
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread{[this] { svr.listen_after_bind(); }};
    while (!svr.is_running())
      std::this_thread::yield();
  }
  ~receiver() {
    svr.stop();
    thread.join();
  }
};

/// A port nothing listens on: bound (so the system picks it), never
/// listened on, then closed.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    CAF_FAIL("cannot bind a port on 127.0.0.1");
  ::close(fd);
  return ntohs(a.sin_port);
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(webhook_tests, fixture)

CAF_TEST(the dispatcher signs and delivers what is due and backs off) {
  receiver good;
  auto dead = closed_port();
  ctx.config.import_allow = {"127.0.0.1"}; // loopback is refused by default
  ctx.config.webhook_retry_seconds = 30;
  webhook_record ok_sub{"webhook_ok", "t",
                        "http://127.0.0.1:" + std::to_string(good.port) + "/hook",
                        {"video.ready"}, "secret-ok", "native", now_ms()};
  webhook_record dead_sub{"webhook_dead", "t",
                          "http://127.0.0.1:" + std::to_string(dead) + "/hook",
                          {"*"}, "secret-dead", "native", now_ms()};
  webhook_record other_tenant{"webhook_other", "u",
                              "http://127.0.0.1:" + std::to_string(good.port)
                                + "/hook",
                              {"*"}, "secret-u", "native", now_ms()};
  for (auto* w : {&ok_sub, &dead_sub, &other_tenant})
    CAF_REQUIRE(!store->put(cf::webhooks, keys::webhook(w->tenant, w->id),
                            encode(*w)));
  // As the keyring publishes them once they are stored.
  auto table = load_key_table(*store);
  CAF_REQUIRE(table);
  keys.set(std::make_shared<const key_table>(std::move(*table)));
  auto v = with_source("t");
  v.state = states::ready;
  // The rows are written with the transition, as the video actor does.
  auto rows = event_rows(&ctx, v, "video.ready");
  CAF_CHECK_EQUAL(rows.size(), 2u); // tenant t's two subscriptions only
  CAF_REQUIRE(!store->put_video(v, rows));
  auto disp = sys.spawn(webhook_dispatcher, &ctx);
  self->send(disp, caf::tick_atom::value);
  settle();
  auto outbox = [&] {
    std::map<std::string, delivery_record> out;
    CAF_REQUIRE(!store->scan(cf::outbox, "", [&](auto&, auto& bytes) {
      delivery_record d;
      CAF_REQUIRE(!decode(bytes, d));
      out[d.webhook_id] = d;
      return true;
    }));
    return out;
  };
  auto after_one = outbox();
  CAF_REQUIRE_EQUAL(after_one.size(), 2u);
  CAF_CHECK_EQUAL(after_one["webhook_ok"].status, "delivered");
  CAF_CHECK_EQUAL(after_one["webhook_ok"].attempts, 1);
  {
    std::lock_guard<std::mutex> g{good.mtx};
    CAF_REQUIRE_EQUAL(good.got.size(), 1u);
    auto& [body, sig] = good.got[0];
    CAF_CHECK_EQUAL(sig, "sha256=" + hex(hmac_sha256("secret-ok", body)));
    auto j = nlohmann::json::parse(body);
    CAF_CHECK_EQUAL(j["type"], "video.ready");
    CAF_CHECK_EQUAL(j["video_id"], v.id);
  }
  auto& failing = after_one["webhook_dead"];
  CAF_CHECK_EQUAL(failing.status, "pending");
  CAF_CHECK_EQUAL(failing.attempts, 1);
  CAF_CHECK(failing.next_ms > now_ms()); // backs off
  CAF_CHECK(!failing.last_error.empty());
  // Another tick before the retry is due tries nothing again.
  self->send(disp, caf::tick_atom::value);
  settle();
  auto after_two = outbox();
  CAF_CHECK_EQUAL(after_two["webhook_dead"].attempts, 1);
  CAF_CHECK_EQUAL(after_two["webhook_ok"].attempts, 1);
  std::lock_guard<std::mutex> g{good.mtx};
  CAF_CHECK_EQUAL(good.got.size(), 1u);
  anon_send_exit(disp, caf::exit_reason::user_shutdown);
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(keyring_tests, fixture)

CAF_TEST(the keyring is the one writer of keys tokens and webhooks) {
  ctx.secrets = at_rest_keys{sealer{{hkdf_sha256("dsl-root", "reel at-rest v1")}},
                             {hkdf_sha256("dsl-root", "reel token digest v1")}};
  auto ring = sys.spawn(keyring, keyring_config{&ctx, &keys});
  settle();
  auto table = [&] { return keys.get(); };
  // The first key is made once.
  auto first = ask<std::string>(ring, bootstrap_atom::value, std::string{});
  CAF_REQUIRE(first);
  CAF_CHECK_EQUAL(first->rfind("sk-", 0), 0u);
  auto admin_hash = sha256_hex(*first);
  CAF_REQUIRE(table()->key(admin_hash) != nullptr);
  CAF_CHECK(table()->key(admin_hash)->admin);
  auto again = ask<std::string>(ring, bootstrap_atom::value, std::string{});
  CAF_REQUIRE(again);
  CAF_CHECK(again->empty());
  // A tenant's first key, once: the second creation is a conflict.
  auto t1 = ask<std::string>(ring, create_atom::value, tenant_atom::value,
                             std::string{"acme"});
  CAF_REQUIRE(t1);
  auto t2 = ask<std::string>(ring, create_atom::value, tenant_atom::value,
                             std::string{"acme"});
  CAF_CHECK(!t2 && code_of(t2.error()) == ec::conflict);
  CAF_CHECK_EQUAL(table()->live_keys("acme").size(), 1u);
  // What the table says is what is stored: a node started now reads the
  // same keys.
  auto reloaded = load_key_table(*store);
  CAF_REQUIRE(reloaded);
  CAF_CHECK_EQUAL(reloaded->keys.size(), table()->keys.size());
  // A token is found by its value, sealed at rest; another tenant cannot
  // delete it.
  auto tok = ask<upload_token_record>(ring, create_atom::value,
                                      token_atom::value, std::string{"acme"},
                                      int64_t{0});
  CAF_REQUIRE(tok);
  auto found = find_upload_token(*table(), ctx.secrets, tok->token);
  CAF_REQUIRE(found);
  CAF_CHECK_EQUAL(found->second.tenant, "acme");
  CAF_CHECK_NOT_EQUAL(table()->tokens.begin()->second.token, tok->token);
  auto other = ask<caf::ok_atom>(ring, caf::delete_atom::value,
                                 token_atom::value, std::string{"evil"},
                                 tok->token);
  CAF_CHECK(!other && code_of(other.error()) == ec::not_found);
  auto stored_row = *table()->tokens.begin(); // key, sealed record
  CAF_CHECK(ask<caf::ok_atom>(ring, caf::delete_atom::value, token_atom::value,
                              std::string{"acme"}, tok->token));
  CAF_CHECK(!find_upload_token(*table(), ctx.secrets, tok->token));
  // Sent back by a node that missed the deletion: its mark refuses it.
  self->send(ring, caf::put_atom::value,
             replicated_row{static_cast<int32_t>(cf::tokens), stored_row.first,
                            encode(stored_row.second), false});
  settle();
  CAF_CHECK(!find_upload_token(*table(), ctx.secrets, tok->token));
  auto on_disk = store->get(cf::tokens, stored_row.first);
  CAF_REQUIRE(on_disk);
  CAF_CHECK(!on_disk->has_value());
  // A webhook with an unknown event is refused; a good one is listed.
  auto bad = ask<webhook_record>(ring, create_atom::value, webhook_atom::value,
                                 std::string{"acme"},
                                 std::string{"http://127.0.0.1:9/h"},
                                 std::vector<std::string>{"video.nope"},
                                 std::string{"native"});
  CAF_CHECK(!bad && code_of(bad.error()) == ec::invalid_argument);
  auto hook = ask<webhook_record>(ring, create_atom::value, webhook_atom::value,
                                  std::string{"acme"},
                                  std::string{"http://127.0.0.1:9/h"},
                                  std::vector<std::string>{"video.ready"},
                                  std::string{"native"});
  CAF_REQUIRE(hook);
  CAF_CHECK_EQUAL(table()->webhooks.count(keys::webhook("acme", hook->id)), 1u);
  // Revoked: refused at once, by itself it cannot be, and a copy of the
  // key sent back by a node that missed the revocation stays refused.
  auto acme_hash = sha256_hex(*t1);
  auto self_revoke = ask<caf::ok_atom>(ring, revoke_atom::value,
                                       acme_hash.substr(0, 16), acme_hash);
  CAF_CHECK(!self_revoke && code_of(self_revoke.error()) == ec::conflict);
  auto stale = *table()->key(acme_hash);
  CAF_REQUIRE(ask<caf::ok_atom>(ring, revoke_atom::value,
                                acme_hash.substr(0, 16), admin_hash));
  CAF_CHECK(table()->key(acme_hash) == nullptr);
  CAF_CHECK(table()->key_by_id(acme_hash.substr(0, 16)) == nullptr);
  self->send(ring, caf::put_atom::value,
             replicated_row{static_cast<int32_t>(cf::keys),
                            keys::api_key(acme_hash), encode(stale), false});
  settle();
  CAF_CHECK(table()->keys.count(acme_hash) == 1u); // the row came back...
  CAF_CHECK(table()->key(acme_hash) == nullptr);   // ...and stays refused
  CAF_CHECK(table()->live_keys("acme").empty());
  anon_send_exit(ring, caf::exit_reason::user_shutdown);
}

CAF_TEST_FIXTURE_SCOPE_END()
