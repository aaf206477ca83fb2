// The video actor's state machine, message by message, against a mock
// scheduler with the same typed interface, on a real RocksDB.
#define BOOST_TEST_MODULE actors
#include <boost/test/unit_test.hpp>

#include "actors/actors.hpp"
#include "actors/video.hpp"
#include "ops/util.hpp"

#include <caf/all.hpp>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

namespace fs = std::filesystem;
using namespace reel;
using namespace std::chrono_literals;

namespace {

/// What the mock scheduler saw, and how it should answer.
struct script {
  std::mutex mtx;
  std::vector<task> seen;
  int fail_chunk = -1; // this chunk's task reports an error
  std::vector<task> all() {
    std::lock_guard<std::mutex> g{mtx};
    return seen;
  }
};

struct mock_state {
  static inline const char* name = "mock_scheduler";
};

codec::probe_result fake_probe() {
  codec::probe_result p;
  p.container = "mov,mp4";
  p.duration_s = 6;
  p.width = 640;
  p.height = 360;
  p.fps = 25;
  p.tb_num = 1;
  p.tb_den = 25;
  p.start_pts = 0;
  p.end_pts = 150;
  p.frame_count = 150;
  p.keyframes = {0, 25, 50, 75, 100, 125};
  p.video_stream = 0;
  p.audio_stream = 1;
  p.audio_codec = "aac";
  return p;
}

scheduler_actor::behavior_type
mock_scheduler(scheduler_actor::stateful_pointer<mock_state>,
               std::shared_ptr<script> s) {
  return {
    [s](submit_atom, task& t) -> caf::result<task_result> {
      {
        std::lock_guard<std::mutex> g{s->mtx};
        s->seen.push_back(t);
      }
      task_result r;
      r.id = t.id;
      r.video_id = t.video_id;
      r.kind = t.kind;
      r.index = t.index;
      switch (t.kind) {
        case task_kind::probe:
          r.probe = fake_probe();
          break;
        case task_kind::chunk:
          if (t.index == s->fail_chunk) {
            r.error = "boom";
            break;
          }
          for (auto& out : t.chunk.outputs)
            std::ofstream{out} << "packets";
          r.stats.frames = 50;
          break;
        case task_kind::audio:
          std::ofstream{t.audio_output} << "aac";
          break;
        case task_kind::package:
          std::ofstream{t.package.out_dir + "/master.m3u8"} << "#EXTM3U\n";
          r.package.master = "master.m3u8";
          codec::rendition rung;
          rung.name = "360p";
          rung.width = 640;
          rung.height = 360;
          r.package.renditions = {rung};
          break;
      }
      return r;
    },
    [](stats_atom) -> caf::result<int64_t, int64_t> {
      return {int64_t{0}, int64_t{0}};
    },
  };
}

struct fixture {
  std::string dir = "/tmp/reel-actors-test-" + make_uuid();
  std::unique_ptr<db> store;
  std::unique_ptr<blob_store> blobs;
  node_context ctx;
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
    ctx.config.chunk_seconds = 2;
    ctx.config.segment_seconds = 2;
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
    walk.push_back(h.state);
  BOOST_TEST(walk == (std::vector<std::string>{"probing", "transcoding",
                                                "packaging", "ready"}));
  // Probe first, then audio and every chunk in order, then packaging.
  auto tasks = s->all();
  BOOST_REQUIRE(tasks.size() == 1u + 1u + end.chunks.size() + 1u);
  BOOST_TEST((tasks.front().kind == task_kind::probe));
  BOOST_TEST((tasks.back().kind == task_kind::package));
  int expect = 0;
  for (auto& t : tasks)
    if (t.kind == task_kind::chunk) {
      BOOST_TEST(t.index == expect++);
      BOOST_TEST(t.chunk.outputs.size() == end.rungs.size());
      BOOST_TEST(t.chunk.part.start_pts == end.chunks[t.index].start_pts);
    }
  BOOST_TEST(end.chunks.size() == 3u); // 6 s in chunks of 2 s
  BOOST_TEST(end.master == "master.m3u8");
  BOOST_REQUIRE(end.files.size() == 1u);
  BOOST_TEST(end.files[0].name == "master.m3u8");
  // Intermediate files are gone once ready.
  BOOST_TEST(!fs::exists(blobs->work_dir(v.id)));
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
  v.source = fake_probe();
  v.rungs = codec::ladder_for(v.source);
  v.chunks = codec::plan_chunks(v.source, 2, 2);
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
  // Audio (its file is missing) and chunk 1 run again; nothing else.
  std::vector<std::pair<int, int>> want{
    {static_cast<int>(task_kind::audio), 0},
    {static_cast<int>(task_kind::chunk), 1},
    {static_cast<int>(task_kind::package), 0}};
  BOOST_TEST(kinds == want);
}
