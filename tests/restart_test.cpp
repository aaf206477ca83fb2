// kill -9 of reeld at awkward moments, then a restart on the same data
// directory: every accepted video completes (resuming from finished chunks)
// or fails with a reason, and no completed video loses a file.
#define BOOST_TEST_MODULE restart
#include <boost/test/unit_test.hpp>

#include "tests/reeld_process.hpp"

#include <fstream>

using namespace reel::test;

namespace {

const std::string& clips() {
  static std::string dir = temp_dir("restart-clips");
  return dir;
}

std::string sha256_of(const std::string& path) {
  auto [rc, out] = sh("sha256sum " + quote(path));
  return out.substr(0, 64);
}

} // namespace

BOOST_AUTO_TEST_CASE(kill_mid_transcode_resumes_from_done_chunks) {
  // 16 s in 2 s chunks on one worker: plenty of moments to be killed in.
  auto clip = make_clip(clips(), "long.mp4", 640, 360, 16);
  auto data = temp_dir("restart-data");
  std::string id;
  int done_before = 0;
  {
    reeld_process n{{"--workers", "1"}, data};
    n.keep_data();
    auto a = n.upload(clip);
    BOOST_REQUIRE_MESSAGE(a.status == 202, a.body);
    id = a.j["data"]["id"];
    auto v = n.wait_video(id, [](const json& v) {
      return v["state"] == "transcoding" && v["progress"]["chunks_done"] >= 2;
    });
    BOOST_REQUIRE_MESSAGE(v["state"] == "transcoding", v.dump());
    n.kill9();
    done_before = v["progress"]["chunks_done"];
    BOOST_TEST(done_before < v["progress"]["chunks_total"].get<int>());
  }
  reeld_process n{{"--workers", "1"}, data};
  auto v = n.request("GET", "/v1/videos/" + id);
  BOOST_REQUIRE(v.status == 200);
  // Resumed, not restarted: the chunks finished before the kill count.
  BOOST_TEST(v.j["progress"]["chunks_done"].get<int>() >= done_before);
  auto end = n.wait_terminal(id);
  BOOST_REQUIRE_MESSAGE(end["state"] == "ready", end.dump());
  for (auto& r : end["renditions"]) {
    if (r["name"] == "audio")
      continue;
    auto info = ffprobe(r["playlist_url"].get<std::string>());
    BOOST_TEST(info.frames == 400, r["name"]);
  }
  // The history shows the kill: transcoding then ready, nothing failed.
  std::vector<std::string> states;
  for (auto& h : end["history"])
    states.push_back(h["state"]);
  BOOST_TEST(states.back() == "ready");
  BOOST_TEST(std::count(states.begin(), states.end(), "failed") == 0);
}

BOOST_AUTO_TEST_CASE(kill_right_after_accepting_and_ready_videos_keep_files) {
  auto clip = make_clip(clips(), "short.mp4", 320, 240, 2);
  auto data = temp_dir("restart-data2");
  std::string ready_id, fresh_id;
  json ready;
  {
    reeld_process n{{"--workers", "1"}, data};
    n.keep_data();
    auto a = n.upload(clip);
    ready_id = a.j["data"]["id"];
    ready = n.wait_terminal(ready_id);
    BOOST_REQUIRE(ready["state"] == "ready");
    // Accepted, then killed before any work could finish.
    auto b = n.upload(clip);
    BOOST_REQUIRE(b.status == 202);
    fresh_id = b.j["data"]["id"];
    n.kill9();
  }
  reeld_process n{{"--workers", "1"}, data};
  auto end = n.wait_terminal(fresh_id);
  BOOST_TEST(end["state"] == "ready", end.dump());
  // The ready video lost no file: every recorded checksum still matches.
  auto again = n.request("GET", "/v1/videos/" + ready_id);
  BOOST_REQUIRE(again.status == 200);
  BOOST_TEST(again.j["state"] == "ready");
  BOOST_REQUIRE(!again.j["files"].empty());
  for (auto& f : again.j["files"]) {
    auto path = data + "/media/" + ready_id + "/" + f["name"].get<std::string>();
    BOOST_TEST(sha256_of(path) == f["sha256"].get<std::string>(), path);
  }
  BOOST_TEST(ffprobe(again.j["playback"]["hls"].get<std::string>()).frames == 50);
  // Uploads cut off by the crash leave nothing behind in tmp/.
  BOOST_TEST(std::filesystem::is_empty(data + "/tmp"));
}

BOOST_AUTO_TEST_CASE(blobs_without_a_record_are_removed_at_start) {
  auto data = temp_dir("restart-orphans");
  std::string orphan = "0b9a1c3e-2f4d-4e5f-8a6b-7c8d9e0f1a2b";
  {
    reeld_process n{{}, data};
    n.keep_data();
    // As a crash between storing a source and registering it leaves it.
    std::filesystem::create_directories(data + "/sources/" + orphan);
    std::ofstream{data + "/sources/" + orphan + "/source"} << "bytes";
    std::filesystem::create_directories(data + "/work/" + orphan);
    n.kill9();
  }
  reeld_process n{{}, data};
  BOOST_TEST(!std::filesystem::exists(data + "/sources/" + orphan));
  BOOST_TEST(!std::filesystem::exists(data + "/work/" + orphan));
}

BOOST_AUTO_TEST_CASE(upload_limits_hold_for_chunked_bodies) {
  reeld_process n{{"--max-upload-bytes", "200000"}};
  auto big = make_clip(clips(), "big.mp4", 640, 360, 6);
  BOOST_REQUIRE(std::filesystem::file_size(big) > 200000);
  auto plain = n.upload(big);
  BOOST_TEST(plain.status == 413, plain.body);
  BOOST_TEST(plain.j["message"].get<std::string>().find("larger") != std::string::npos);
  auto chunked = n.upload(big, "root", reeld_process::key,
                          "-H 'Transfer-Encoding: chunked'");
  BOOST_TEST(chunked.status == 413, chunked.body);
  // Nothing was kept of either, and the node still takes small files.
  BOOST_TEST(std::filesystem::is_empty(n.data() + "/tmp"));
  BOOST_TEST(std::filesystem::is_empty(n.data() + "/sources"));
  auto small = make_clip(clips(), "fits.mp4", 160, 120, 1);
  BOOST_TEST(n.upload(small).status == 202);
}
