// Every output a video hands out, through a real reeld: HLS (TS and CMAF),
// DASH, MP4 downloads, poster, thumbnail, screenshots, storyboard, thumbnail
// at any time, clipping, early playability and per-rung progress.
#define BOOST_TEST_MODULE outputs
#include <boost/test/unit_test.hpp>

#include "tests/reeld_process.hpp"

#include <fstream>
#include <regex>

using namespace reel::test;

namespace {

reeld_process& node() {
  static reeld_process instance{{"--workers", "2"}};
  return instance;
}

const std::string& clips() {
  static std::string dir = temp_dir("outputs-clips");
  return dir;
}

httplib::Client client() {
  httplib::Client cli{"127.0.0.1", node().port()};
  cli.set_read_timeout(60);
  return cli;
}

std::string path_of(const std::string& url) {
  return url.substr(url.find("/media/"));
}

json ready_video(const std::string& file, const std::string& extra = {}) {
  auto a = node().upload(file, "root", reeld_process::key, extra);
  BOOST_REQUIRE_MESSAGE(a.status == 202, a.body);
  auto v = node().wait_terminal(a.j["data"]["id"]);
  BOOST_REQUIRE_MESSAGE(v["state"] == "ready", v.dump());
  return v;
}

} // namespace

BOOST_AUTO_TEST_CASE(every_output_of_a_video) {
  // 8 s 854x480 at 25 fps: rungs 480p, 360p, 240p.
  auto v = ready_video(make_clip(clips(), "all.mp4", 854, 480, 8));
  auto cli = client();
  BOOST_TEST(v["playable_at"].is_string());
  for (auto& r : v["ladder"]) {
    BOOST_TEST(r["status"] == "encoded");
    BOOST_TEST(r["progress"] == 100);
  }
  std::vector<std::string> names;
  for (auto& r : v["ladder"])
    names.push_back(r["name"]);
  BOOST_TEST(names == (std::vector<std::string>{"480p", "360p", "240p"}));

  // HLS with TS segments, HLS with CMAF segments, DASH: every frame.
  auto& pb = v["playback"];
  BOOST_TEST(pb["hls"].get<std::string>().find("/master.m3u8") != std::string::npos);
  BOOST_TEST(pb["hls_cmaf"].get<std::string>().find("/master-cmaf.m3u8") != std::string::npos);
  BOOST_TEST(pb["dash"].get<std::string>().find("/manifest.mpd") != std::string::npos);
  for (auto key : {"hls", "hls_cmaf", "dash"}) {
    auto info = ffprobe(pb[key].get<std::string>());
    BOOST_TEST(info.frames == 200, key);
    BOOST_TEST(info.has_audio, key);
  }
  auto mpd = cli.Get(path_of(pb["dash"]).c_str());
  BOOST_REQUIRE(mpd);
  BOOST_TEST(mpd->get_header_value("Content-Type") == "application/dash+xml");
  BOOST_TEST(mpd->body.find("<MPD") != std::string::npos);
  auto master = cli.Get(path_of(pb["hls"]).c_str());
  BOOST_TEST(master->body.find("#EXT-X-STREAM-INF") != std::string::npos);

  // MP4 downloads per rung, with their sizes, seekable (moov first).
  for (auto& r : v["renditions"]) {
    if (r["name"] == "audio")
      continue;
    BOOST_REQUIRE_MESSAGE(r.contains("mp4_url"), r.dump());
    auto mp4 = cli.Get(path_of(r["mp4_url"]).c_str());
    BOOST_REQUIRE(mp4);
    BOOST_TEST(mp4->status == 200);
    BOOST_TEST(mp4->get_header_value("Content-Type") == "video/mp4");
    BOOST_TEST(static_cast<int64_t>(mp4->body.size()) == r["mp4_size"].get<int64_t>());
    auto moov = mp4->body.find("moov");
    auto mdat = mp4->body.find("mdat");
    BOOST_TEST(moov < mdat); // +faststart
    auto info = ffprobe(r["mp4_url"].get<std::string>());
    BOOST_TEST(info.frames == 200);
    BOOST_TEST(info.height == r["height"].get<int>());
  }

  // Images: poster (a real frame), its 200 px thumbnail, five screenshots,
  // the storyboard sprite and its WebVTT.
  auto& img = v["images"];
  auto poster = ffprobe(img["poster"].get<std::string>());
  BOOST_TEST(poster.height == 480);
  auto thumb = ffprobe(img["poster_thumb"].get<std::string>());
  BOOST_TEST(thumb.height == 200);
  BOOST_TEST(img["screenshots"].size() == 5u);
  for (auto& s : img["screenshots"]) {
    auto r = cli.Get(path_of(s).c_str());
    BOOST_TEST(r->status == 200);
    BOOST_TEST(r->body.substr(0, 2) == "\xff\xd8");
  }
  auto vtt = cli.Get(path_of(img["sprite_vtt"]).c_str());
  BOOST_REQUIRE(vtt);
  BOOST_TEST(vtt->get_header_value("Content-Type") == "text/vtt");
  BOOST_TEST(vtt->body.rfind("WEBVTT", 0) == 0u);
  std::regex cue{R"(sprite\.jpg#xywh=\d+,\d+,\d+,\d+)"};
  auto cues = std::distance(std::sregex_iterator(vtt->body.begin(), vtt->body.end(), cue),
                            std::sregex_iterator());
  BOOST_TEST(cues == img["storyboard"]["tiles"].get<int>());
  BOOST_TEST(cues >= 2);
  auto sprite = ffprobe(img["sprite"].get<std::string>());
  BOOST_TEST(sprite.width >= img["storyboard"]["tile_width"].get<int>());

  // A thumbnail at any time, then served from its cache.
  auto base = path_of(img["poster"]);
  base = base.substr(0, base.rfind('/'));
  auto t1 = cli.Get((base + "/thumbnail.jpg?time=3.5").c_str());
  BOOST_REQUIRE(t1);
  BOOST_TEST(t1->status == 200);
  BOOST_TEST(t1->body.substr(0, 2) == "\xff\xd8");
  auto t2 = cli.Get((base + "/thumbnail.jpg?time=3.5").c_str());
  BOOST_TEST(t2->body == t1->body);
  // One file per frame: 3.5 s of this 25 fps clip is frame 87.
  BOOST_TEST(std::filesystem::exists(node().data() + "/media/" + v["id"].get<std::string>()
                                     + "/thumbnails/f87.jpg"));
  BOOST_TEST(cli.Get((base + "/thumbnail.jpg?time=99").c_str())->status == 400);
  BOOST_TEST(cli.Get((base + "/thumbnail.jpg?time=abc").c_str())->status == 400);
  BOOST_TEST(cli.Get((base + "/thumbnail.jpg").c_str())->body
             == cli.Get(path_of(img["poster"]).c_str())->body);
}

BOOST_AUTO_TEST_CASE(clipping_cuts_at_the_exact_frame) {
  auto file = make_clip(clips(), "clip-me.mp4", 640, 360, 6);
  auto v = ready_video(file, "-F clip_start=1.52 -F clip_duration=2.4");
  BOOST_TEST(v["clip"]["start"] == 1.52);
  auto info = ffprobe(v["playback"]["hls_cmaf"].get<std::string>());
  BOOST_TEST(info.frames == 60); // 2.4 s at 25 fps
  auto bad = node().upload(file, "root", reeld_process::key, "-F clip_start=abc");
  BOOST_TEST(bad.status == 400);
  BOOST_TEST(bad.j["errors"].contains("clip_start"));
  // A clip past the end fails the video with a reason.
  auto late = node().upload(file, "root", reeld_process::key, "-F clip_start=60");
  BOOST_REQUIRE(late.status == 202);
  auto end = node().wait_terminal(late.j["data"]["id"]);
  BOOST_TEST(end["state"] == "failed");
  BOOST_TEST(end["failure_reason"].get<std::string>().find("clip") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(playable_before_the_ladder_is_done) {
  // 30 s of 854x480 on two workers: the first chunk is one segment, so the
  // start plays long before the whole ladder is encoded.
  auto file = make_clip(clips(), "early.mp4", 854, 480, 30);
  auto a = node().upload(file);
  BOOST_REQUIRE(a.status == 202);
  std::string id = a.j["data"]["id"];
  auto v = node().wait_video(id, [](const json& v) {
    return !v["playable_at"].is_null() || v["state"] == "ready" || v["state"] == "failed";
  });
  BOOST_REQUIRE(!v["playable_at"].is_null());
  BOOST_TEST(v["state"] == "transcoding");
  BOOST_TEST(v["ladder"][0]["status"] == "encoding");
  BOOST_TEST(v["ladder"][0]["progress"].get<int>() < 100);
  // The growing playlists play from the start: their first segments are
  // there, decodable, before the rest of the video is.
  auto cli = client();
  auto media = cli.Get(("/media/" + id + "/360p/index.m3u8").c_str());
  BOOST_REQUIRE(media);
  BOOST_TEST(media->status == 200);
  BOOST_TEST(media->body.find("#EXT-X-PLAYLIST-TYPE:EVENT") != std::string::npos);
  BOOST_TEST(media->body.find("#EXT-X-ENDLIST") == std::string::npos);
  auto count = [](const std::string& playlist) {
    size_t n = 0;
    for (size_t at = playlist.find("#EXTINF"); at != std::string::npos;
         at = playlist.find("#EXTINF", at + 1))
      ++n;
    return n;
  };
  auto early_segments = count(media->body);
  BOOST_TEST(early_segments >= 1u);
  auto init = cli.Get(("/media/" + id + "/360p/init.mp4").c_str());
  auto first = cli.Get(("/media/" + id + "/360p/seg_00000.m4s").c_str());
  BOOST_REQUIRE(init);
  BOOST_REQUIRE(first);
  BOOST_TEST(first->status == 200);
  auto joined = clips() + "/early-start.mp4";
  std::ofstream{joined, std::ios::binary} << init->body << first->body;
  BOOST_TEST(ffprobe(joined).frames > 0);
  auto end = node().wait_terminal(id);
  BOOST_REQUIRE(end["state"] == "ready");
  auto done = cli.Get(("/media/" + id + "/360p/index.m3u8").c_str());
  BOOST_TEST(done->body.find("#EXT-X-ENDLIST") != std::string::npos);
  BOOST_TEST(count(done->body) > early_segments);
  BOOST_TEST(ffprobe(end["playback"]["hls_cmaf"].get<std::string>()).frames == 750);
}
