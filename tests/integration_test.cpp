// A real reeld on 127.0.0.1, driven with curl and an HTTP client, outputs
// checked with ffprobe.
#define BOOST_TEST_MODULE integration
#include <boost/test/unit_test.hpp>

#include "tests/reeld_process.hpp"

#include <fstream>
#include <random>
#include <regex>

using namespace reel::test;

namespace {

reeld_process& node() {
  static reeld_process instance{{"--workers", "2"}};
  return instance;
}

const std::string& clips() {
  static std::string dir = temp_dir("clips");
  return dir;
}

/// A 720p source, made once: 4 s, 25 fps, 100 frames, with audio.
const std::string& clip720() {
  static std::string path = make_clip(clips(), "clip720.mp4", 1280, 720, 4);
  return path;
}

bool is_uuid(const std::string& s) {
  static const std::regex re{
    "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"};
  return std::regex_match(s, re);
}

std::string upload_ok(const std::string& file,
                      const std::string& folder = "root",
                      const std::string& bearer = reeld_process::key) {
  auto a = node().upload(file, folder, bearer);
  BOOST_REQUIRE_MESSAGE(a.status == 202, a.body);
  return a.j["data"]["id"].get<std::string>();
}

} // namespace

BOOST_AUTO_TEST_CASE(upload_transcode_and_play) {
  auto a = node().upload(clip720());
  BOOST_REQUIRE_MESSAGE(a.status == 202, a.body);
  // Exactly the seed's shape.
  BOOST_TEST(a.j["message"] == "Upload accepted and is now being processed.");
  BOOST_TEST(a.j["data"].size() == 3u);
  auto id = a.j["data"]["id"].get<std::string>();
  BOOST_TEST(is_uuid(id), id);
  BOOST_TEST(a.j["data"]["status"] == 1);
  BOOST_TEST(a.j["data"]["status_text"] == "pending");

  // The status walks 1 -> 3 -> 5 -> 6, never backwards.
  std::vector<int> seen;
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto s = node().request("GET", "/api/client/v1/uploads/" + id);
    BOOST_REQUIRE_MESSAGE(s.status == 200, s.body);
    int code = s.j["data"]["status"];
    if (seen.empty() || seen.back() != code)
      seen.push_back(code);
    BOOST_TEST(s.j["data"]["id"] == id);
    BOOST_TEST(s.j["data"]["filename"] == "clip720.mp4");
    if (code == 6 || code == 7)
      break;
    std::this_thread::sleep_for(50ms);
  }
  BOOST_REQUIRE(!seen.empty());
  BOOST_TEST(seen.back() == 6);
  for (size_t i = 1; i < seen.size(); ++i)
    BOOST_TEST(seen[i - 1] < seen[i]);
  for (auto code : seen)
    BOOST_TEST((code == 1 || code == 3 || code == 5 || code == 6));

  // The native model: source metadata, ladder, playback URLs.
  auto v = node().request("GET", "/v1/videos/" + id);
  BOOST_REQUIRE(v.status == 200);
  BOOST_TEST(v.j["state"] == "ready");
  BOOST_TEST(v.j["failure_reason"].is_null());
  BOOST_TEST(v.j["source"]["width"] == 1280);
  BOOST_TEST(v.j["source"]["height"] == 720);
  BOOST_TEST(v.j["source"]["video_codec"] == "h264");
  BOOST_TEST(v.j["source"]["audio_codec"] == "aac");
  BOOST_TEST(std::abs(v.j["source"]["duration"].get<double>() - 4.0) < 0.1);
  BOOST_TEST(v.j["source"]["frame_count"] == 100);
  BOOST_TEST(v.j["source"]["keyframes"] == 4);
  BOOST_TEST(v.j["progress"]["percent"] == 100);
  std::vector<std::string> rungs;
  for (auto& r : v.j["ladder"])
    rungs.push_back(r["name"]);
  BOOST_TEST(rungs == (std::vector<std::string>{"720p", "480p", "360p", "240p"}));
  auto master = v.j["playback"]["hls"].get<std::string>();
  BOOST_TEST(master == node().base() + "/media/" + id + "/master.m3u8");

  // The master playlist lists every rung with BANDWIDTH, RESOLUTION, CODECS.
  httplib::Client cli{"127.0.0.1", node().port()};
  auto m = cli.Get(("/media/" + id + "/master.m3u8").c_str());
  BOOST_REQUIRE(m);
  BOOST_TEST(m->status == 200);
  BOOST_TEST(m->get_header_value("Content-Type")
             == "application/vnd.apple.mpegurl");
  BOOST_TEST(m->get_header_value("Access-Control-Allow-Origin") == "*");
  auto w240 = std::to_string(v.j["ladder"][3]["width"].get<int>()) + "x240";
  for (std::string res : {"1280x720", "854x480", "640x360", w240.c_str()})
    BOOST_TEST(m->body.find("RESOLUTION=" + res) != std::string::npos, res);
  std::regex inf{R"(#EXT-X-STREAM-INF:BANDWIDTH=\d+,.*CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2")"};
  BOOST_TEST(std::distance(std::sregex_iterator(m->body.begin(), m->body.end(), inf),
                           std::sregex_iterator())
             == 4);

  // Every rung, played through HTTP: right size, every source frame, audio.
  std::map<std::string, std::pair<int, int>> sizes{
    {"720p", {1280, 720}}, {"480p", {854, 480}}, {"360p", {640, 360}},
    {"240p", {v.j["ladder"][3]["width"].get<int>(), 240}}};
  for (auto& r : v.j["renditions"]) {
    if (r["name"] == "audio")
      continue;
    auto info = ffprobe(r["playlist_url"].get<std::string>());
    auto want = sizes.at(r["name"]);
    BOOST_TEST(info.width == want.first, r["name"]);
    BOOST_TEST(info.height == want.second, r["name"]);
    BOOST_TEST(info.frames == 100, r["name"]);
    BOOST_TEST(r["frames"] == 100);
  }
  auto whole = ffprobe(master);
  BOOST_TEST(whole.has_audio);
  BOOST_TEST(std::abs(whole.duration - 4.0) < 0.04 + 0.05); // a frame + AAC padding

  // The poster is a JPEG.
  auto poster = cli.Get(("/media/" + id + "/poster.jpg").c_str());
  BOOST_REQUIRE(poster);
  BOOST_TEST(poster->status == 200);
  BOOST_TEST(poster->get_header_value("Content-Type") == "image/jpeg");
  BOOST_TEST(poster->body.substr(0, 2) == "\xff\xd8");

  // It is listed, newest first.
  auto list = node().request("GET", "/api/client/v1/uploads");
  BOOST_REQUIRE(list.status == 200);
  BOOST_TEST(list.j["data"][0]["id"] == id);
  BOOST_TEST(list.j["data"][0]["status_text"] == "completed");
  BOOST_TEST(list.j["data"][0].contains("created_at"));
  // A video made through another API (api.video's create) is the
  // tenant's too, but not an upload of this API: not in its list.
  auto other = node().request(
    "POST", "/videos", "", R"({"title":"made elsewhere"})",
    httplib::Headers{
      httplib::make_basic_authentication_header(reeld_process::key, "")});
  BOOST_REQUIRE(other.status == 201);
  auto native = node().request("GET", "/v1/videos?limit=1");
  BOOST_TEST(native.j["data"][0]["id"] == other.j["videoId"]);
  BOOST_TEST(native.j["pagination"]["limit"] == 1);
  list = node().request("GET", "/api/client/v1/uploads");
  BOOST_TEST(list.j["data"][0]["id"] == id);
  for (auto& x : list.j["data"])
    BOOST_TEST(x["id"] != other.j["videoId"]);
}

BOOST_AUTO_TEST_CASE(media_ranges) {
  auto id = upload_ok(make_clip(clips(), "ranges.mp4", 320, 240, 2));
  auto v = node().wait_terminal(id);
  BOOST_REQUIRE(v["state"] == "ready");
  httplib::Client cli{"127.0.0.1", node().port()};
  auto path = "/media/" + id + "/poster.jpg";
  auto full = cli.Get(path.c_str());
  BOOST_REQUIRE(full);
  BOOST_TEST(full->get_header_value("Accept-Ranges") == "bytes");
  auto size = full->body.size();
  auto part = cli.Get(path.c_str(), {{"Range", "bytes=10-19"}});
  BOOST_REQUIRE(part);
  BOOST_TEST(part->status == 206);
  BOOST_TEST(part->body == full->body.substr(10, 10));
  BOOST_TEST(part->get_header_value("Content-Range")
             == "bytes 10-19/" + std::to_string(size));
  auto tail = cli.Get(path.c_str(), {{"Range", "bytes=-5"}});
  BOOST_TEST(tail->status == 206);
  BOOST_TEST(tail->body == full->body.substr(size - 5));
  auto past = cli.Get(path.c_str(), {{"Range", "bytes=" + std::to_string(size) + "-"}});
  BOOST_TEST(past->status == 416);
  BOOST_TEST(past->get_header_value("Content-Range")
             == "bytes */" + std::to_string(size));
  // A malformed Range header is refused (httplib answers 416 before any
  // handler runs) or ignored; never a wrong part.
  auto bad = cli.Get(path.c_str(), {{"Range", "bytes=oops"}});
  BOOST_TEST((bad->status == 416 || (bad->status == 200 && bad->body == full->body)));
  for (auto p : {"/media/" + id + "/../../db/CURRENT", "/media/" + id + "/nope.m4s",
                 std::string{"/media/not-a-uuid/poster.jpg"}}) {
    auto r = cli.Get(p.c_str());
    BOOST_REQUIRE(r);
    BOOST_TEST(r->status == 404, p);
  }
  auto pre = cli.Options(path.c_str());
  BOOST_REQUIRE(pre);
  BOOST_TEST(pre->status == 204);
  BOOST_TEST(pre->get_header_value("Access-Control-Allow-Origin") == "*");
}

BOOST_AUTO_TEST_CASE(auth_and_validation_errors) {
  auto clip = make_clip(clips(), "small.mp4", 320, 240, 1);
  auto none = node().upload(clip, "root", "");
  BOOST_TEST(none.status == 401);
  BOOST_TEST(none.j["message"].get<std::string>().find("Unauthenticated")
             == 0u);
  auto wrong = node().upload(clip, "root", "sk-wrong");
  BOOST_TEST(wrong.status == 401);
  auto get401 = node().request("GET", "/api/client/v1/uploads", "sk-wrong");
  BOOST_TEST(get401.status == 401);
  BOOST_TEST(get401.j.contains("message"));
  auto native401 = node().request("GET", "/v1/videos", "");
  BOOST_TEST(native401.status == 401);
  BOOST_TEST(native401.j["error"]["code"] == "unauthorized");

  auto no_file = node().upload("", "root");
  BOOST_TEST(no_file.status == 400);
  BOOST_TEST(no_file.j["errors"]["video"][0] == "The video field is required.");
  auto no_folder = node().upload(clip, "");
  BOOST_TEST(no_folder.status == 400);
  BOOST_TEST(no_folder.j["errors"]["folder"][0] == "The folder field is required.");
  auto unknown = node().upload(clip, "root/nowhere");
  BOOST_TEST(unknown.status == 404);
  BOOST_TEST(unknown.j["message"] == "Folder not found.");
  auto traversal = node().upload(clip, "root/../../etc");
  BOOST_TEST(traversal.status == 404);
  auto not_multipart = node().request("POST", "/api/client/v1/uploads",
                                      reeld_process::key, "{}");
  BOOST_TEST(not_multipart.status == 400);
  auto no_such = node().request("GET", "/api/client/v1/uploads/"
                                       "9c1fa5c4-a8f1-4b2e-9d6e-1c8a0b9e2d7f");
  BOOST_TEST(no_such.status == 404);
  auto bad_id = node().request("GET", "/v1/videos/..%2f..%2fetc");
  BOOST_TEST(bad_id.status == 404);
  auto bad_limit = node().request("GET", "/v1/videos?limit=abc");
  BOOST_TEST(bad_limit.status == 400);
  BOOST_TEST(bad_limit.j["error"]["code"] == "invalid_argument");
}

BOOST_AUTO_TEST_CASE(broken_media_fails_with_a_reason) {
  auto text = clips() + "/notes.mp4";
  std::ofstream{text} << "this is not a video, just some text\n";
  auto good = make_clip(clips(), "whole.mp4", 320, 240, 2);
  auto cut = clips() + "/cut.mp4";
  std::filesystem::copy_file(good, cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(good) / 2);
  auto silent = clips() + "/audio-only.m4a";
  sh("ffmpeg -v error -y -f lavfi -i sine=frequency=300 -t 1 -c:a aac " + quote(silent));
  for (auto file : {text, cut, silent}) {
    auto id = upload_ok(file);
    auto v = node().wait_terminal(id);
    BOOST_TEST(v["state"] == "failed", file);
    auto reason = v["failure_reason"].is_string()
                    ? v["failure_reason"].get<std::string>()
                    : std::string{};
    BOOST_TEST(!reason.empty(), file);
    auto s = node().request("GET", "/api/client/v1/uploads/" + id);
    BOOST_TEST(s.j["data"]["status"] == 7);
    BOOST_TEST(s.j["data"]["status_text"] == "failed");
    BOOST_TEST(s.j["data"]["error"] == reason);
    BOOST_TEST_MESSAGE(file << ": " << reason);
  }
  // The node keeps serving.
  BOOST_TEST(node().request("GET", "/healthz", "").status == 200);
}

BOOST_AUTO_TEST_CASE(folders_and_tenants) {
  auto f = node().request("POST", "/v1/folders", reeld_process::key,
                          R"({"path": "root/marketing"})");
  BOOST_TEST(f.status == 201, f.body);
  auto again = node().request("POST", "/v1/folders", reeld_process::key,
                              R"({"path": "root/marketing"})");
  BOOST_TEST(again.status == 409);
  auto orphan = node().request("POST", "/v1/folders", reeld_process::key,
                               R"({"path": "root/a/b"})");
  BOOST_TEST(orphan.status == 404);
  auto bad = node().request("POST", "/v1/folders", reeld_process::key,
                            R"({"path": "root/../x"})");
  BOOST_TEST(bad.status == 400);
  auto list = node().request("GET", "/v1/folders");
  BOOST_TEST(list.j["data"].size() >= 2u);

  auto clip = make_clip(clips(), "tenant.mp4", 320, 240, 1);
  auto id = upload_ok(clip, "root/marketing");
  auto v = node().request("GET", "/v1/videos/" + id);
  BOOST_TEST(v.j["folder"] == "root/marketing");

  // Another tenant sees nothing of it.
  auto k = node().request("POST", "/v1/keys", reeld_process::key,
                          R"({"tenant": "acme"})");
  BOOST_REQUIRE_MESSAGE(k.status == 201, k.body);
  auto acme = k.j["key"].get<std::string>();
  BOOST_TEST(node().request("GET", "/api/client/v1/uploads/" + id, acme).status == 404);
  BOOST_TEST(node().request("GET", "/v1/videos/" + id, acme).status == 404);
  BOOST_TEST(node().request("DELETE", "/v1/videos/" + id, acme).status == 404);
  BOOST_TEST(node().request("GET", "/api/client/v1/uploads", acme).j["data"].empty());
  // Folders are per tenant too.
  BOOST_TEST(node().upload(clip, "root/marketing", acme).status == 404);
  // A non-admin key cannot make keys.
  BOOST_TEST(node().request("POST", "/v1/keys", acme, R"({"tenant": "x"})").status == 403);
  auto own = upload_ok(clip, "root", acme);
  auto mine = node().request("GET", "/api/client/v1/uploads", acme);
  BOOST_REQUIRE(mine.j["data"].size() == 1u);
  BOOST_TEST(mine.j["data"][0]["id"] == own);
  node().wait_terminal(own);
  node().wait_terminal(id);
}

BOOST_AUTO_TEST_CASE(delete_removes_media) {
  auto id = upload_ok(make_clip(clips(), "gone.mp4", 320, 240, 1));
  auto v = node().wait_terminal(id);
  BOOST_REQUIRE(v["state"] == "ready");
  httplib::Client cli{"127.0.0.1", node().port()};
  BOOST_TEST(cli.Get(("/media/" + id + "/master.m3u8").c_str())->status == 200);
  auto d = node().request("DELETE", "/v1/videos/" + id);
  BOOST_TEST(d.status == 204);
  BOOST_TEST(cli.Get(("/media/" + id + "/master.m3u8").c_str())->status == 404);
  BOOST_TEST(node().request("GET", "/v1/videos/" + id).status == 404);
  BOOST_TEST(!std::filesystem::exists(node().data() + "/media/" + id));
  BOOST_TEST(!std::filesystem::exists(node().data() + "/sources/" + id));
}

BOOST_AUTO_TEST_CASE(an_idempotency_key_makes_one_video_however_often_it_is_sent) {
  auto clip = make_clip(clips(), "once.mp4", 320, 240, 1);
  auto key = "once-" + std::to_string(std::random_device{}());
  auto list_total = [] {
    return node().request("GET", "/v1/videos?limit=1").j["pagination"]["total"].get<int>();
  };
  auto before = list_total();
  auto first = node().upload(clip, "root", reeld_process::key,
                             "-H " + quote("Idempotency-Key: " + key));
  BOOST_REQUIRE_MESSAGE(first.status == 202, first.body);
  auto again = node().upload(clip, "root", reeld_process::key,
                             "-H " + quote("Idempotency-Key: " + key));
  BOOST_REQUIRE_MESSAGE(again.status == 202, again.body);
  BOOST_TEST(again.j["data"]["id"] == first.j["data"]["id"]);
  BOOST_TEST(list_total() == before + 1);
  // Another key, another video; a key no client could send is refused.
  auto other = node().upload(clip, "root", reeld_process::key,
                             "-H " + quote("Idempotency-Key: " + key + "-2"));
  BOOST_REQUIRE(other.status == 202);
  BOOST_TEST(other.j["data"]["id"] != first.j["data"]["id"]);
  auto bad = node().upload(clip, "root", reeld_process::key,
                           "-H " + quote("Idempotency-Key: " + std::string(300, 'k')));
  BOOST_TEST(bad.status == 400);
  // A deleted video's key makes a new one: the first is gone for good.
  auto id = first.j["data"]["id"].get<std::string>();
  node().wait_terminal(id);
  BOOST_REQUIRE(node().request("DELETE", "/v1/videos/" + id).status == 204);
  auto after = node().upload(clip, "root", reeld_process::key,
                             "-H " + quote("Idempotency-Key: " + key));
  BOOST_REQUIRE(after.status == 202);
  BOOST_TEST(after.j["data"]["id"] != id);
  BOOST_TEST(node().request("GET", "/v1/videos/" + id).status == 404);
}

BOOST_AUTO_TEST_CASE(metrics_count_what_happened) {
  auto m = node().request("GET", "/metrics", "");
  BOOST_REQUIRE(m.status == 200);
  for (auto series : {"reel_http_requests_total{code=\"202\",route=\"uploads.create\"}",
                      "reel_http_request_duration_seconds_bucket",
                      "reel_ingest_bytes_total", "reel_videos{state=\"ready\"}",
                      "reel_transcode_frames_total{rung=\"720p\"}",
                      "reel_transcode_media_seconds_total",
                      "reel_scheduler_tasks{state=\"queued\"}",
                      "reel_video_failures_total"})
    BOOST_TEST(m.body.find(series) != std::string::npos, series);
  std::smatch match;
  std::regex frames{R"(reel_transcode_frames_total\{rung="720p"\} (\d+))"};
  BOOST_REQUIRE(std::regex_search(m.body, match, frames));
  BOOST_TEST(std::stol(match[1]) >= 100);
}

BOOST_AUTO_TEST_CASE(reelctl_talks_to_the_node) {
  auto ctl = [](const std::string& args) {
    return sh(std::string{REEL_BUILD_DIR} + "/reelctl --server " + node().base()
              + " --key " + reeld_process::key + " " + args + " 2>&1; echo \"rc=$?\"");
  };
  auto status = ctl("status").second;
  BOOST_TEST(status.find("rc=0") != std::string::npos, status);
  BOOST_TEST(status.find("videos") != std::string::npos);
  auto nodes = ctl("nodes").second;
  BOOST_TEST(nodes.find("up") != std::string::npos, nodes);
  auto list = ctl("videos list --json").second;
  BOOST_TEST(list.find("\"pagination\"") != std::string::npos);
  auto id = upload_ok(make_clip(clips(), "ctl.mp4", 320, 240, 1));
  node().wait_terminal(id);
  auto show = ctl("videos show " + id).second;
  BOOST_TEST(show.find("ready") != std::string::npos, show);
  BOOST_TEST(show.find("history") != std::string::npos);
  // Exit codes a script can trust.
  BOOST_TEST(ctl("videos show 9c1fa5c4-a8f1-4b2e-9d6e-1c8a0b9e2d7f").second.find("rc=1")
             != std::string::npos);
  BOOST_TEST(ctl("frobnicate").second.find("rc=2") != std::string::npos);
  auto away = sh(std::string{REEL_BUILD_DIR}
                 + "/reelctl --server http://127.0.0.1:1 status 2>&1; echo \"rc=$?\"");
  BOOST_TEST(away.second.find("rc=3") != std::string::npos, away.second);
  auto bad_key = sh(std::string{REEL_BUILD_DIR} + "/reelctl --server " + node().base()
                    + " --key nope status 2>&1; echo \"rc=$?\"");
  BOOST_TEST(bad_key.second.find("rc=1") != std::string::npos);
  BOOST_TEST(bad_key.second.find("401") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_missing_folder_sent_first_stops_the_upload_early) {
  auto big = make_clip(clips(), "early-refusal.mp4", 640, 360, 6);
  auto size = static_cast<double>(std::filesystem::file_size(big));
  auto ingest = [] {
    auto m = node().request("GET", "/metrics", "");
    std::smatch match;
    std::regex re{R"(\nreel_ingest_bytes_total (\S+))"};
    BOOST_REQUIRE(std::regex_search(m.body, match, re));
    return std::stod(match[1]);
  };
  auto before = ingest();
  // The folder part comes before the file: it is checked before any of the
  // file is read.
  auto [rc, out] = sh("curl -s -o - -w '\\n%{http_code}' -H "
                      + quote("Authorization: Bearer " + reeld_process::key)
                      + " -F folder=root/nowhere -F " + quote("video=@" + big) + " "
                      + node().base() + "/api/client/v1/uploads");
  BOOST_TEST(out.substr(out.rfind('\n') + 1) == "404", out);
  BOOST_TEST(out.find("Folder not found.") != std::string::npos);
  BOOST_TEST(ingest() - before < size);
  BOOST_TEST(std::filesystem::is_empty(node().data() + "/tmp"));
}
