// The video actor's state machine, message by message, against a mock
// scheduler with the same typed interface, on a real RocksDB.
#define BOOST_TEST_MODULE actors
#include <boost/test/unit_test.hpp>

#include "actors/actors.hpp"
#include "actors/keyring.hpp"
#include "actors/scheduler.hpp"
#include "actors/video.hpp"
#include "actors/video_manager.hpp"
#include "actors/worker.hpp"
#include "tests/mock_actors.hpp"
#include "ops/util.hpp"

#include <caf/all.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace fs = std::filesystem;
using namespace reel;
using namespace std::chrono_literals;

namespace {

using namespace reel::testing;

struct fixture {
  std::string dir = "/tmp/reel-actors-test-" + make_uuid();
  std::unique_ptr<db> store;
  std::unique_ptr<blob_store> blobs;
  node_context ctx;
  published<key_table> keys{std::make_shared<const key_table>()}; // none yet
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<script> s = std::make_shared<script>();

  fixture() {
    blobs = std::make_unique<blob_store>(dir);
    BOOST_REQUIRE(!blobs->init());
    auto opened = db::open(dir + "/db");
    BOOST_REQUIRE(opened);
    store = std::move(*opened);
    ctx.store = store.get();
    ctx.blobs = blobs.get();
    ctx.keys = &keys;
    s->blobs = blobs.get();
    ctx.config.chunk_seconds = 2;
    ctx.config.segment_seconds = 2;
    ctx.make_packager = mock_packagers(s);
    cfg.add_message_types<caf::id_block::reel>();
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  ~fixture() {
    sys.reset();
    store.reset();
    fs::remove_all(dir);
  }

  video_record fresh() {
    video_record v;
    v.id = make_uuid();
    v.tenant = "t";
    v.folder = "root";
    v.state = states::uploaded;
    v.created_ms = now_ms();
    fs::create_directories(fs::path{blobs->source_path(v.id)}.parent_path());
    std::ofstream{blobs->source_path(v.id)} << "source";
    BOOST_REQUIRE(!store->put_video(v));
    return v;
  }

  void run(video_record v) {
    auto sched = sys->spawn(mock_scheduler, s);
    auto actor = sys->spawn(video, &ctx, sched, std::move(v));
    caf::anon_send(actor, resume_atom::value);
  }

  video_record wait_terminal(const std::string& id) {
    for (int i = 0; i < 200; ++i) {
      auto v = store->get_video(id);
      if (v && *v && is_terminal((*v)->state))
        return **v;
      std::this_thread::sleep_for(25ms);
    }
    BOOST_FAIL("video did not finish");
    return {};
  }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(walks_every_state_to_ready, fixture) {
  auto v = fresh();
  run(v);
  auto end = wait_terminal(v.id);
  BOOST_TEST(end.state == states::ready);
  std::vector<std::string> walk;
  for (auto& h : end.history)
    walk.push_back(to_string(h.state));
  BOOST_TEST(walk == (std::vector<std::string>{"probing", "transcoding",
                                               "packaging", "ready"}));
  // Probe first, then audio and every chunk in order, then the images.
  auto tasks = s->all();
  BOOST_REQUIRE(tasks.size() == 1u + 1u + end.chunks.size() + 1u);
  BOOST_TEST((tasks[0].kind == task_kind::probe));
  BOOST_TEST((tasks[1].kind == task_kind::audio));
  BOOST_TEST((tasks.back().kind == task_kind::images));
  BOOST_TEST(tasks[1].priority > tasks[2].priority);     // audio before chunks
  BOOST_TEST(tasks.back().priority < tasks[2].priority); // images last
  int expect = 0;
  for (auto& t : tasks)
    if (t.kind == task_kind::chunk) {
      BOOST_TEST(t.index == expect++);
      BOOST_TEST(t.rungs.size() == end.rungs.size());
      BOOST_TEST(t.part.start_pts == end.chunks[t.index].start_pts);
    }
  // 6 s: a first chunk of one segment (2 s) for early playback, then 2 s
  // chunks.
  BOOST_TEST(end.chunks.size() == 3u);
  BOOST_TEST(s->packager_log() ==
             (std::vector<std::string>{"audio", "chunk 0", "chunk 1", "chunk 2",
                                       "finish"}));
  // Playable (after chunk 0) before ready.
  BOOST_TEST(end.playable_ms > 0);
  BOOST_TEST(end.playable_ms <= end.history.back().at_ms);
  BOOST_TEST(end.master == "master-cmaf.m3u8");
  // The images moved into the media directory and are indexed.
  BOOST_TEST(fs::exists(blobs->media_dir(v.id) + "/poster.jpg"));
  BOOST_TEST(fs::exists(blobs->media_dir(v.id) + "/screenshots/1.jpg"));
  BOOST_TEST(end.files.size() == 6u);
  BOOST_TEST(end.screenshots == 1);
  // Intermediate files go once ready (removed just after the transition
  // is stored, which is what the test saw).
  for (int i = 0; i < 100 && fs::exists(blobs->work_dir(v.id)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  BOOST_TEST(!fs::exists(blobs->work_dir(v.id)));
}

BOOST_FIXTURE_TEST_CASE(chunks_are_packaged_in_order_whatever_order_they_end,
                        fixture) {
  s->hold_first = true;
  auto v = fresh();
  run(v);
  auto end = wait_terminal(v.id);
  BOOST_TEST(end.state == states::ready);
  BOOST_TEST(s->packager_log() ==
             (std::vector<std::string>{"audio", "chunk 0", "chunk 1", "chunk 2",
                                       "finish"}));
}

BOOST_FIXTURE_TEST_CASE(a_failed_chunk_fails_the_video_with_a_reason, fixture) {
  s->fail_chunk = 1;
  auto v = fresh();
  run(v);
  auto end = wait_terminal(v.id);
  BOOST_TEST(end.state == states::failed);
  BOOST_TEST(end.failure_reason == "transcoding chunk 1 failed: boom");
  BOOST_TEST(end.history.back().reason == end.failure_reason);
}

BOOST_FIXTURE_TEST_CASE(resume_skips_chunks_already_done, fixture) {
  auto v = fresh();
  // As persisted before a crash: probed, chunk 0 and 2 done with files,
  // chunk 1 marked done but its files lost.
  v.state = states::transcoding;
  v.probed = true;
  v.source = sample_probe();
  v.rungs = codec::ladder_for(v.source);
  v.chunks = codec::plan_chunks(v.source, 2, 2, {}, 2);
  BOOST_REQUIRE(v.chunks.size() == 3u);
  v.chunk_done = {1, 1, 1};
  v.audio_done = true;
  fs::create_directories(blobs->work_dir(v.id));
  for (int i : {0, 2})
    for (auto& r : v.rungs) {
      char name[64];
      std::snprintf(name, sizeof(name), "/c%05d-%s.pkt", i, r.name.c_str());
      std::ofstream{blobs->work_dir(v.id) + name} << "packets";
    }
  BOOST_REQUIRE(!store->put_video(v));
  run(v);
  auto end = wait_terminal(v.id);
  BOOST_TEST(end.state == states::ready);
  std::vector<std::pair<int, int>> kinds; // (kind, index)
  for (auto& t : s->all())
    kinds.emplace_back(static_cast<int>(t.kind), t.index);
  // Audio (its file is missing), chunk 1 and the images run again; the
  // packager is handed everything again, in order.
  std::vector<std::pair<int, int>> want{
      {static_cast<int>(task_kind::audio), 0},
      {static_cast<int>(task_kind::chunk), 1},
      {static_cast<int>(task_kind::images), 0}};
  BOOST_TEST(kinds == want);
  BOOST_TEST(s->packager_log() ==
             (std::vector<std::string>{"audio", "chunk 0", "chunk 1", "chunk 2",
                                       "finish"}));
}

BOOST_AUTO_TEST_CASE(scheduler_runs_by_priority_and_cancels_deleted_videos) {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::reel>();
  caf::actor_system sys{cfg};
  auto dir = "/tmp/reel-scheduler-test-" + make_uuid();
  blob_store blobs{dir};
  BOOST_REQUIRE(!blobs.init());
  worker_config wc;
  wc.blobs = &blobs;
  auto sched = sys.spawn(scheduler, scheduler_config{1, wc});
  // Probes of sources that do not exist: quick, and they fail with a reason.
  std::map<std::string, std::string> ids{{"a", make_uuid()},
                                         {"b", make_uuid()},
                                         {"c", make_uuid()},
                                         {"d", make_uuid()}};
  auto make = [&ids](std::string video, int32_t priority, uint64_t id) {
    task t;
    t.id = id;
    t.video_id = ids[video];
    t.kind = task_kind::probe;
    t.priority = priority;
    return t;
  };
  std::mutex mtx;
  std::vector<std::pair<uint64_t, std::string>> done; // (id, error)
  auto client_actor =
      sys.spawn([&](caf::event_based_actor* client) -> caf::behavior {
        // The first occupies the single worker; the others queue behind it.
        for (auto [video, prio, id] :
             {std::tuple{"a", 0, 1}, std::tuple{"b", 0, 2},
              std::tuple{"c", 5, 3}, std::tuple{"b", 9, 4},
              std::tuple{"d", 1, 5}})
          client
              ->request(sched, caf::infinite, submit_atom::value,
                        make(video, prio, id))
              .then([&](task_result& r) {
                std::lock_guard<std::mutex> g{mtx};
                done.emplace_back(r.id, r.error);
              });
        client->send(sched, caf::delete_atom::value, ids["b"]);
        return {[](int) {}}; // stays until the test ends it
      });
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> g{mtx};
      if (done.size() == 5)
        break;
    }
    std::this_thread::sleep_for(25ms);
  }
  std::lock_guard<std::mutex> g{mtx};
  BOOST_REQUIRE_MESSAGE(done.size() == 5u, "done: " << done.size());
  // b's queued tasks are cancelled at once, then the rest run by priority:
  // 1 was already running, then c (5), then d (1).
  std::vector<uint64_t> order;
  for (auto& [id, error] : done) {
    order.push_back(id);
    if (id == 2 || id == 4)
      BOOST_TEST(error == "cancelled: the video was deleted");
    else
      BOOST_TEST(error.find("cancelled") == std::string::npos, error);
  }
  BOOST_TEST(order.back() == 5u);
  auto pos = [&](uint64_t id) {
    return std::find(order.begin(), order.end(), id) - order.begin();
  };
  BOOST_TEST(pos(3) < pos(5));
  caf::anon_send_exit(sched, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(client_actor, caf::exit_reason::user_shutdown);
  fs::remove_all(dir);
}

namespace {

/// Asks the manager to register a new video (as node::create_video does:
/// a random id, the fields a dialect sets).
caf::expected<video_record> create_in(caf::actor_system& sys,
                                      const video_manager_actor& manager,
                                      const std::string& tenant,
                                      const std::string& client_key = {}) {
  video_record draft;
  draft.id = make_uuid();
  draft.tenant = tenant;
  draft.folder = "root";
  draft.title = "made";
  draft.info.client_key = client_key;
  caf::scoped_actor self{sys};
  caf::expected<video_record> out{make_error(ec::timeout, "no answer")};
  self->request(manager, 10s, create_atom::value, std::move(draft))
      .receive([&](video_record& v) { out = std::move(v); },
               [&](caf::error& err) { out = std::move(err); });
  return out;
}

std::string hex_of(uint64_t n) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(n));
  return buf;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(registered_videos_get_a_random_number_found_by_index,
                        fixture) {
  auto sched = sys->spawn(mock_scheduler, s);
  auto manager = sys->spawn(video_manager, &ctx, sched);
  std::set<uint64_t> numbers;
  for (int i = 0; i < 20; ++i) {
    auto v = create_in(*sys, manager, "t");
    BOOST_REQUIRE_MESSAGE(v, (v ? std::string{} : message_of(v.error())));
    BOOST_TEST(v->state == states::created);
    BOOST_TEST(v->number >= 1u);
    BOOST_TEST(v->number <= max_new_video_number);
    // The id says nothing of the number (as older releases' ids did).
    std::string hex;
    for (char c : v->id)
      if (c != '-')
        hex.push_back(c);
    BOOST_TEST(hex.rfind(hex_of(v->number), 0) != 0u, v->id);
    BOOST_TEST(legacy_number_of_id(v->id) != v->number);
    numbers.insert(v->number);
    // Stored with it, and found by it.
    auto stored = store->get_video(v->id);
    BOOST_REQUIRE(stored);
    BOOST_REQUIRE(*stored);
    BOOST_TEST((*stored)->number == v->number);
    auto found = store->video_by_number(v->number);
    BOOST_REQUIRE(found);
    BOOST_REQUIRE(*found);
    BOOST_TEST(**found == v->id);
  }
  BOOST_TEST(numbers.size() == 20u);
  caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sched, caf::exit_reason::user_shutdown);
}

BOOST_FIXTURE_TEST_CASE(a_client_key_names_one_video_of_its_tenant, fixture) {
  auto sched = sys->spawn(mock_scheduler, s);
  auto manager = sys->spawn(video_manager, &ctx, sched);
  // 20 creates of one key at once: one video, 19 conflicts.
  std::mutex mtx;
  std::vector<caf::expected<video_record>> answers;
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i)
    clients.emplace_back([&] {
      auto v = create_in(*sys, manager, "t", "vid_demo_123");
      std::lock_guard<std::mutex> g{mtx};
      answers.push_back(std::move(v));
    });
  for (auto& c : clients)
    c.join();
  std::string made;
  int conflicts = 0;
  for (auto& a : answers) {
    if (a)
      made = made.empty() ? a->id : "twice";
    else if (code_of(a.error()) == ec::conflict)
      ++conflicts;
  }
  BOOST_TEST(conflicts == 19);
  BOOST_REQUIRE(!made.empty());
  BOOST_REQUIRE(made != "twice");
  auto found = store->video_by_client_key("t", "vid_demo_123");
  BOOST_REQUIRE(found);
  BOOST_REQUIRE(*found);
  BOOST_TEST(**found == made);
  // Another tenant's key of the same name is another video.
  auto theirs = create_in(*sys, manager, "u", "vid_demo_123");
  BOOST_REQUIRE(theirs);
  BOOST_TEST(theirs->id != made);
  auto other = store->video_by_client_key("u", "vid_demo_123");
  BOOST_REQUIRE(other);
  BOOST_REQUIRE(*other);
  BOOST_TEST(**other == theirs->id);
  // Deleted, the key is free again.
  caf::scoped_actor self{*sys};
  bool deleted = false;
  self->request(manager, 10s, caf::delete_atom::value, std::string{"t"}, made)
      .receive([&](caf::ok_atom) { deleted = true; }, [&](caf::error&) {});
  BOOST_REQUIRE(deleted);
  auto gone = store->video_by_client_key("t", "vid_demo_123");
  BOOST_REQUIRE(gone);
  BOOST_TEST(!*gone);
  auto again = create_in(*sys, manager, "t", "vid_demo_123");
  BOOST_REQUIRE(again);
  BOOST_TEST(again->id != made);
  caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sched, caf::exit_reason::user_shutdown);
}

// Every field of a video record survives both encodings it travels in: the
// JSON it is stored as and CAF's binary form between nodes.
BOOST_AUTO_TEST_CASE(every_record_field_round_trips_through_every_encoding) {
  video_record v;
  v.id = make_uuid();
  v.number = 123456789;
  v.tenant = "t";
  v.folder = "root/a";
  v.title = "title";
  v.filename = "clip.mp4";
  v.state = states::ready;
  v.failure_reason = "none";
  v.created_ms = 1;
  v.updated_ms = 2;
  v.source_bytes = 3;
  v.source_sha256 = std::string(64, 'a');
  v.source_node = "n1";
  v.probed = true;
  v.source = sample_probe();
  v.rungs = codec::ladder_for(v.source);
  v.chunks = codec::plan_chunks(v.source, 2, 2, {}, 2);
  v.chunk_done.assign(v.chunks.size(), 1);
  v.audio_done = true;
  codec::rendition r;
  r.name = "240p";
  r.width = 426;
  r.height = 240;
  r.bandwidth = 4;
  r.average_bandwidth = 5;
  r.codecs = "avc1";
  r.playlist = "240p/index.m3u8";
  r.segments = 6;
  r.frames = 7;
  r.mp4 = "240p.mp4";
  r.mp4_size = 8;
  r.ts_playlist = "240p/ts.m3u8";
  v.renditions = {r};
  v.master = "master-cmaf.m3u8";
  v.master_ts = "master.m3u8";
  v.dash = "manifest.mpd";
  v.clip_start_s = 1.5;
  v.clip_duration_s = 2.5;
  v.priority = 3;
  v.playable_ms = 9;
  v.images_done = true;
  v.poster_time_s = 0.5;
  v.screenshots = 5;
  v.storyboard = codec::storyboard_result{1.0, 2, 3, 4, 5};
  v.files = {file_record{"a", 1, std::string(64, 'b')}};
  v.history = {state_change{states::failed, 10, "why"}};
  v.waiting = "packaging: no space";
  v.created_via = "uploads";
  v.info.description = "d";
  v.info.is_public = false;
  v.info.tags = {"x"};
  v.info.metadata = {meta_entry{"k", "v"}};
  v.info.views = 11;
  v.info.client_key = "key";
  v.upload = upload_state{"bytes", 12, {upload_part{0, 12, "n1", std::string(64, 'c')}}};
  v.import_url = "https://example.com/a.mp4";
  v.import_headers = {"Authorization: x"};
  v.epoch = 13;
  v.version = 14;
  v.owner_node = "n2";
  v.takeovers = {"13 n2"};
  v.chunk_node.assign(v.chunks.size(), "n3");
  v.chunk_epoch.assign(v.chunks.size(), 13);
  auto json = encode(v);
  // JSON: every listed field is written, and read back the same.
#define REEL_NAMED(name) BOOST_TEST(json.find("\"" #name "\"") != std::string::npos, #name);
  REEL_VIDEO_RECORD_FIELDS(REEL_NAMED)
#undef REEL_NAMED
  video_record back;
  BOOST_REQUIRE(!decode(json, back));
  BOOST_TEST(encode(back) == json);
  // CAF's binary form (what a peer receives), then JSON to compare.
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::reel>();
  caf::actor_system sys{cfg};
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  BOOST_REQUIRE(!sink(v));
  video_record wire;
  caf::binary_deserializer source{sys, buf};
  BOOST_REQUIRE(!source(wire));
  BOOST_TEST(encode(wire) == json);
}
