#define BOOST_TEST_MODULE codec
#include <boost/test/unit_test.hpp>

#include "codec/codec.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

// Fixtures are made with the ffmpeg CLI (lavfi sources) in a temporary
// directory; outputs are checked with ffprobe. The library itself uses only
// libav*.

namespace fs = std::filesystem;
using namespace reel::codec;

// libavutil's log level: the codec library leaves the process-wide setting
// alone (the server decides), the test quiets libx264's statistics.

namespace {
struct quiet_libav {
  quiet_libav() {
    reel::codec::set_libav_logging(false);
  }
};
} // namespace

BOOST_TEST_GLOBAL_FIXTURE(quiet_libav);

namespace {

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

// Runs a shell command and returns its standard output.
std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  BOOST_REQUIRE_MESSAGE(p != nullptr, "cannot run " << cmd);
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
    out.append(buf, n);
  int rc = ::pclose(p);
  BOOST_REQUIRE_MESSAGE(rc == 0, "command failed (" << rc << "): " << cmd);
  return out;
}

void run(const std::string& cmd) {
  capture(cmd + " 2>&1");
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.pop_back();
  return s;
}

std::string read_file(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void truncate_copy(const fs::path& from, const fs::path& to, uintmax_t size) {
  auto data = read_file(from);
  std::ofstream out{to, std::ios::binary};
  out.write(data.data(), static_cast<std::streamsize>(size));
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in{s};
  std::string line;
  while (std::getline(in, line))
    if (!line.empty())
      out.push_back(line);
  return out;
}

// ffprobe lists an HLS stream once per program and once on its own.
std::string first_line(const std::string& s) {
  auto all = lines(s);
  return all.empty() ? std::string{} : trim(all.front());
}

// The brightest corner (TL, TR, BL, BR) of a gray picture.
std::string bright_corner(const std::string& gray, int w, int h) {
  auto at = [&](int x, int y) {
    return static_cast<unsigned char>(gray[static_cast<size_t>(y) * w + x]);
  };
  std::map<int, std::string> corners{{at(3, 3), "TL"},
                                     {at(w - 4, 3), "TR"},
                                     {at(3, h - 4), "BL"},
                                     {at(w - 4, h - 4), "BR"}};
  return corners.rbegin()->second;
}

// Copies an MP4 with the payload of its 'mdat' box replaced by noise: the
// container is intact, the pictures are not.
void scramble_mdat(const fs::path& from, const fs::path& to) {
  auto data = read_file(from);
  size_t off = 0;
  while (off + 8 <= data.size()) {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(data[i]); };
    size_t size = (size_t{byte(off)} << 24) | (size_t{byte(off + 1)} << 16) |
                  (size_t{byte(off + 2)} << 8) | byte(off + 3);
    if (size < 8)
      break;
    if (data.compare(off + 4, 4, "mdat") == 0)
      for (size_t i = off + 8; i < off + size && i < data.size(); ++i)
        data[i] = static_cast<char>((i * 7919) % 251);
    off += size;
  }
  std::ofstream{to, std::ios::binary} << data;
}

// The lowest per-frame PSNR (dB) of `a` against `b`, frame by frame from
// each one's first frame: a frame missing, doubled or shifted anywhere
// shows as a collapse on moving content.
double min_psnr(const fs::path& a, const fs::path& b, const fs::path& stats) {
  capture("ffmpeg -hide_banner -loglevel error -i " + quote(a.string()) +
          " -i " + quote(b.string()) +
          " -lavfi '[0:v]setpts=PTS-STARTPTS[a];[1:v]setpts=PTS-STARTPTS,"
          "scale=854:480[b];[a][b]psnr=stats_file=" +
          stats.string() + "' -f null - 2>&1");
  double lowest = 1e9;
  int frames = 0;
  for (const auto& l : lines(read_file(stats))) {
    auto at = l.find("psnr_avg:");
    if (at == std::string::npos)
      continue;
    auto v = l.substr(at + 9, l.find(' ', at) - at - 9);
    lowest = std::min(lowest, v == "inf" ? 1e9 : std::stod(v));
    ++frames;
  }
  BOOST_REQUIRE(frames > 0);
  return lowest;
}

/// The fixtures, made once for the whole run.
struct media {
  fs::path dir;
  fs::path src;         // 6 s, 854x480, 25 fps, keyframe every second, audio
  fs::path src_ts;      // the same in MPEG-TS
  fs::path no_audio;    // 2 s, 640x360, no audio
  fs::path rotated;     // 2 s, 320x240 with a 90 degree display rotation
  fs::path garbage;     // a text file named .mp4
  fs::path trunc_mp4;   // first half of src (index at the end)
  fs::path trunc_fast;  // first half of src with the index in front
  fs::path trunc_ts;    // first half of src_ts
  fs::path undecodable; // a valid MP4 whose video payload is noise

  media() {
    dir = fs::temp_directory_path() /
          ("reel_codec_test_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string ff = "ffmpeg -hide_banner -loglevel error -y ";
    src = dir / "src.mp4";
    run(ff +
        "-f lavfi -i testsrc2=size=854x480:rate=25:duration=6 "
        "-f lavfi -i sine=frequency=440:sample_rate=44100:duration=6 "
        "-c:v libx264 -preset veryfast -g 25 -keyint_min 25 -sc_threshold 0 "
        "-pix_fmt yuv420p -c:a aac -b:a 64k " +
        quote(src.string()));
    src_ts = dir / "src.ts";
    run(ff + "-i " + quote(src.string()) + " -c copy -f mpegts " +
        quote(src_ts.string()));
    no_audio = dir / "noaudio.mp4";
    run(ff +
        "-f lavfi -i testsrc2=size=640x360:rate=25:duration=2 "
        "-c:v libx264 -preset ultrafast -g 25 -pix_fmt yuv420p " +
        quote(no_audio.string()));
    // A white square in the top-left corner shows which way is up.
    auto plain = dir / "box.mp4";
    run(ff +
        "-f lavfi -i color=black:size=320x240:rate=25:duration=2,"
        "drawbox=x=0:y=0:w=48:h=48:color=white:t=fill,format=yuv420p "
        "-c:v libx264 -preset ultrafast -g 25 " +
        quote(plain.string()));
    rotated = dir / "rotated.mp4";
    run(ff + "-i " + quote(plain.string()) +
        " -c copy -metadata:s:v:0 rotate=90 " + quote(rotated.string()));
    garbage = dir / "notes.mp4";
    std::ofstream{garbage} << "These are my notes, not a video.\n"
                              "Line two of the notes.\n";
    trunc_mp4 = dir / "trunc.mp4";
    truncate_copy(src, trunc_mp4, fs::file_size(src) / 2);
    auto fast = dir / "fast.mp4";
    run(ff + "-i " + quote(src.string()) + " -c copy -movflags +faststart " +
        quote(fast.string()));
    trunc_fast = dir / "trunc_fast.mp4";
    truncate_copy(fast, trunc_fast, fs::file_size(fast) / 2);
    // Cut mid-packet, as an interrupted upload would.
    trunc_ts = dir / "trunc.ts";
    auto half = fs::file_size(src_ts) / 2;
    if (half % 188 == 0)
      half += 100;
    truncate_copy(src_ts, trunc_ts, half);
    undecodable = dir / "undecodable.mp4";
    scramble_mdat(no_audio, undecodable);
  }

  ~media() {
    std::error_code ec;
    if (std::getenv("REEL_KEEP_TEST_FILES") == nullptr)
      fs::remove_all(dir, ec);
  }
};

media& fixtures() {
  static media m;
  return m;
}

probe_result must_probe(const fs::path& p) {
  auto r = probe(p.string());
  BOOST_REQUIRE_MESSAGE(r, "probe " << p << ": "
                                    << (r ? "" : reel::message_of(r.error())));
  return *r;
}

std::string probe_error(const fs::path& p) {
  auto r = probe(p.string());
  BOOST_REQUIRE_MESSAGE(!r, "probe of " << p << " should fail");
  BOOST_CHECK(reel::code_of(r.error()) == reel::ec::media_error);
  return reel::message_of(r.error());
}

probe_result fake_source(int w, int h, int rotation = 0) {
  probe_result p;
  p.width = w;
  p.height = h;
  p.rotation = rotation;
  p.fps = 25;
  p.tb_num = 1;
  p.tb_den = 1000;
  return p;
}

} // namespace

// -- probe -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(probe_reads_every_field) {
  auto p = must_probe(fixtures().src);
  BOOST_TEST(p.container.find("mp4") != std::string::npos);
  BOOST_TEST(std::abs(p.duration_s - 6.0) < 0.1);
  BOOST_TEST(p.size_bytes ==
             static_cast<int64_t>(fs::file_size(fixtures().src)));
  BOOST_TEST(p.bit_rate > 0);
  BOOST_TEST(p.video_stream >= 0);
  BOOST_TEST(p.video_codec == "h264");
  BOOST_TEST(p.width == 854);
  BOOST_TEST(p.height == 480);
  BOOST_TEST(p.rotation == 0);
  BOOST_TEST(std::abs(p.fps - 25.0) < 0.01);
  BOOST_TEST(p.frame_count == 150);
  BOOST_TEST(p.keyframes.size() == 6u);
  double tb = static_cast<double>(p.tb_num) / p.tb_den;
  for (size_t i = 0; i < p.keyframes.size(); ++i)
    BOOST_TEST(std::abs(p.keyframes[i] * tb - static_cast<double>(i)) < 0.001);
  BOOST_TEST(p.start_pts * tb == 0.0);
  BOOST_TEST(std::abs(p.end_pts * tb - 6.0) < 0.001);
  BOOST_TEST(p.audio_stream >= 0);
  BOOST_TEST(p.audio_codec == "aac");
  BOOST_TEST(p.audio_channels == 1);
  BOOST_TEST(p.audio_sample_rate == 44100);
}

BOOST_AUTO_TEST_CASE(probe_mpegts_and_no_audio) {
  auto ts = must_probe(fixtures().src_ts);
  BOOST_TEST(ts.container == "mpegts");
  BOOST_TEST(ts.frame_count == 150);
  BOOST_TEST(ts.keyframes.size() == 6u);
  BOOST_TEST(ts.audio_stream >= 0);
  double tb = static_cast<double>(ts.tb_num) / ts.tb_den;
  BOOST_TEST(std::abs((ts.end_pts - ts.start_pts) * tb - 6.0) < 0.001);

  auto na = must_probe(fixtures().no_audio);
  BOOST_TEST(na.audio_stream == -1);
  BOOST_TEST(na.audio_codec.empty());
  BOOST_TEST(na.width == 640);
  BOOST_TEST(na.frame_count == 50);
}

BOOST_AUTO_TEST_CASE(probe_reads_rotation) {
  auto p = must_probe(fixtures().rotated);
  BOOST_TEST(p.width == 320); // coded size, before rotation
  BOOST_TEST(p.height == 240);
  BOOST_TEST((p.rotation == 90 || p.rotation == 270));
}

BOOST_AUTO_TEST_CASE(probe_refuses_bad_files) {
  auto garbage = probe_error(fixtures().garbage);
  BOOST_TEST_MESSAGE("garbage: " << garbage);
  BOOST_TEST(garbage.rfind("not a media file", 0) == 0);

  for (const auto& p :
       {fixtures().trunc_mp4, fixtures().trunc_fast, fixtures().trunc_ts}) {
    auto why = probe_error(p);
    BOOST_TEST_MESSAGE(p.filename() << ": " << why);
    BOOST_TEST(why.rfind("truncated file at byte ", 0) == 0, p << ": " << why);
  }

  auto noise = probe_error(fixtures().undecodable);
  BOOST_TEST_MESSAGE("undecodable: " << noise);
  BOOST_TEST(noise.rfind("video cannot be decoded", 0) == 0, noise);

  auto missing = probe((fixtures().dir / "nope.mp4").string());
  BOOST_REQUIRE(!missing);
  BOOST_TEST(reel::code_of(missing.error()) == reel::ec::not_found);

  // Audio alone is not a video.
  auto audio_only = fixtures().dir / "audio.m4a";
  run("ffmpeg -hide_banner -loglevel error -y -f lavfi "
      "-i sine=duration=1 -c:a aac " +
      quote(audio_only.string()));
  BOOST_TEST(probe_error(audio_only) == "no video stream");
}

// -- ladder and chunk plan ---------------------------------------------------

BOOST_AUTO_TEST_CASE(ladder_never_goes_above_the_source) {
  auto names = [](const std::vector<rung>& rs) {
    std::string s;
    for (const auto& r : rs)
      s += r.name + "=" + std::to_string(r.width) + "x" +
           std::to_string(r.height) + "@" + std::to_string(r.max_kbps) + " ";
    return s;
  };
  BOOST_TEST(names(ladder_for(fake_source(1920, 1080))) ==
             "1080p=1920x1080@5000 720p=1280x720@2800 480p=854x480@1400 "
             "360p=640x360@800 ");
  BOOST_TEST(names(ladder_for(fake_source(1280, 720))) ==
             "720p=1280x720@2800 480p=854x480@1400 360p=640x360@800 ");
  BOOST_TEST(names(ladder_for(fake_source(854, 480))) ==
             "480p=854x480@1400 360p=640x360@800 ");
  // A 4:3 source between rungs keeps its aspect ratio.
  BOOST_TEST(names(ladder_for(fake_source(1024, 768))) ==
             "720p=960x720@2800 480p=640x480@1400 360p=480x360@800 ");
  // Portrait: a phone's 1920x1080 picture shown rotated is 1080x1920.
  auto portrait = ladder_for(fake_source(1920, 1080, 90));
  BOOST_TEST(names(portrait) ==
             "1080p=1080x1920@5000 720p=720x1280@2800 480p=480x854@1400 "
             "360p=360x640@800 ");
  BOOST_TEST(names(ladder_for(fake_source(1080, 1920))) == names(portrait));
  // Below the lowest rung: one rung at the source's own size.
  auto small = ladder_for(fake_source(320, 240));
  BOOST_REQUIRE(small.size() == 1u);
  BOOST_TEST(small[0].name == "240p");
  BOOST_TEST(small[0].width == 320);
  BOOST_TEST(small[0].height == 240);
  BOOST_TEST(small[0].max_kbps > 0);
  BOOST_TEST(small[0].max_kbps < 800);
  auto odd = ladder_for(fake_source(257, 145));
  BOOST_REQUIRE(odd.size() == 1u);
  BOOST_TEST(odd[0].width % 2 == 0);
  BOOST_TEST(odd[0].height == 144);
  for (const auto& r : ladder_for(fake_source(1920, 1080)))
    BOOST_TEST(r.crf == 23);
}

BOOST_AUTO_TEST_CASE(chunks_start_at_keyframes_and_cover_everything) {
  // A synthetic source: 10.5 s, keyframes every second, time base 1/1000.
  probe_result p = fake_source(1280, 720);
  p.start_pts = 0;
  p.end_pts = 10500;
  for (int i = 0; i <= 10; ++i)
    p.keyframes.push_back(i * 1000);
  auto chunks = plan_chunks(p, 4, 2);
  BOOST_REQUIRE(chunks.size() == 3u);
  BOOST_TEST(chunks[0].start_pts == 0);
  BOOST_TEST(chunks[0].end_pts == 4000);
  BOOST_TEST(chunks[1].end_pts == 8000);
  BOOST_TEST(chunks[2].end_pts == 10500);
  BOOST_TEST((chunks[0].segment_starts == std::vector<int64_t>{0, 2000}));
  BOOST_TEST((chunks[2].segment_starts == std::vector<int64_t>{8000}));

  // Irregular keyframes: never shorter than chunk_seconds except the last.
  p.keyframes = {0, 300, 2900, 3100, 6500, 7000, 10400};
  chunks = plan_chunks(p, 3, 1.5);
  BOOST_REQUIRE(!chunks.empty());
  for (size_t i = 0; i < chunks.size(); ++i) {
    const auto& c = chunks[i];
    BOOST_TEST(c.index == static_cast<int>(i));
    BOOST_TEST((std::find(p.keyframes.begin(), p.keyframes.end(),
                          c.start_pts) != p.keyframes.end()));
    BOOST_TEST(c.segment_starts.front() == c.start_pts);
    for (size_t j = 1; j < c.segment_starts.size(); ++j) {
      BOOST_TEST(c.segment_starts[j] > c.segment_starts[j - 1]);
      BOOST_TEST(c.segment_starts[j] < c.end_pts);
    }
    if (i + 1 < chunks.size()) {
      BOOST_TEST(chunks[i + 1].start_pts == c.end_pts);
      BOOST_TEST(c.end_pts - c.start_pts >= 3000);
    }
  }
  BOOST_TEST(chunks.front().start_pts == 0);
  BOOST_TEST(chunks.back().end_pts == 10500);

  // The real file: 6 s, keyframes every second, 2 s chunks.
  auto src = must_probe(fixtures().src);
  chunks = plan_chunks(src, 2, 2);
  BOOST_REQUIRE(chunks.size() == 3u);
  BOOST_TEST(chunks.front().start_pts == src.start_pts);
  BOOST_TEST(chunks.back().end_pts == src.end_pts);
  for (const auto& c : chunks)
    BOOST_TEST(c.segment_starts.size() == 1u);
}

// -- the whole pipeline ------------------------------------------------------

namespace {

struct encoded {
  std::vector<rung> rungs;
  std::vector<chunk> chunks;
  package_job pkg;
  int64_t frames = 0;
};

encoded encode_all(const fs::path& source, const probe_result& src,
                   const fs::path& work) {
  encoded e;
  fs::create_directories(work);
  e.rungs = ladder_for(src);
  e.chunks = plan_chunks(src, 2, 2);
  e.pkg.rungs = e.rungs;
  e.pkg.chunk_files.resize(e.rungs.size());
  e.pkg.segment_seconds = 2;
  e.pkg.out_dir = (work / "hls").string();
  for (const auto& c : e.chunks) {
    chunk_job job;
    job.source = source.string();
    job.src = src;
    job.part = c;
    job.rungs = e.rungs;
    for (const auto& r : e.rungs) {
      auto out = work / (r.name + "_" + std::to_string(c.index) + ".pkt");
      job.outputs.push_back(out.string());
    }
    auto stats = encode_chunk(job);
    BOOST_REQUIRE_MESSAGE(
        stats, "chunk " << c.index << ": "
                        << (stats ? "" : reel::message_of(stats.error())));
    BOOST_TEST(stats->bytes.size() == e.rungs.size());
    for (auto b : stats->bytes)
      BOOST_TEST(b > 0);
    e.frames += stats->frames;
    for (size_t i = 0; i < e.rungs.size(); ++i) {
      BOOST_TEST(fs::exists(job.outputs[i]));
      BOOST_TEST(!fs::exists(job.outputs[i] + ".tmp"));
      e.pkg.chunk_files[i].push_back(job.outputs[i]);
    }
  }
  return e;
}

std::vector<std::string> segment_durations(const fs::path& playlist) {
  std::vector<std::string> out;
  for (const auto& l : lines(read_file(playlist)))
    if (l.rfind("#EXTINF:", 0) == 0)
      out.push_back(l);
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(pipeline_encodes_packages_and_makes_a_poster) {
  const auto& fx = fixtures();
  auto src = must_probe(fx.src);
  auto work = fx.dir / "work";
  auto e = encode_all(fx.src, src, work);
  BOOST_REQUIRE(e.rungs.size() == 2u); // 480p and 360p
  BOOST_TEST(e.chunks.size() == 3u);
  BOOST_TEST(e.frames == src.frame_count);

  auto audio_file = work / "audio.pkt";
  auto astats = encode_audio(fx.src.string(), src, audio_file.string());
  BOOST_REQUIRE_MESSAGE(astats,
                        (astats ? "" : reel::message_of(astats.error())));
  BOOST_TEST(std::abs(astats->media_seconds - 6.0) < 0.05);
  e.pkg.audio_file = audio_file.string();

  auto pkg = package_hls(e.pkg);
  BOOST_REQUIRE_MESSAGE(pkg, (pkg ? "" : reel::message_of(pkg.error())));
  BOOST_TEST(pkg->master == "master.m3u8");
  BOOST_REQUIRE(pkg->renditions.size() == 3u);
  BOOST_TEST(pkg->renditions.back().name == "audio");
  BOOST_TEST(std::abs(pkg->duration_s - 6.0) <= 0.041);

  const fs::path hls = e.pkg.out_dir;
  auto master = read_file(hls / "master.m3u8");
  BOOST_TEST_MESSAGE("master.m3u8:\n" << master);
  BOOST_TEST(master.rfind("#EXTM3U\n", 0) == 0);
  BOOST_TEST(master.find("#EXT-X-INDEPENDENT-SEGMENTS") != std::string::npos);
  BOOST_TEST(master.find("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\"") !=
             std::string::npos);
  BOOST_TEST(master.find("URI=\"audio/index.m3u8\"") != std::string::npos);
  BOOST_TEST(!fs::exists(hls / "master.m3u8.tmp"));

  const double frame = 1.0 / 25;
  std::vector<std::string> first_durations;
  for (size_t i = 0; i < e.rungs.size(); ++i) {
    const auto& r = e.rungs[i];
    const auto& rend = pkg->renditions[i];
    BOOST_TEST(rend.name == r.name);
    BOOST_TEST(rend.frames == src.frame_count);
    BOOST_TEST(rend.segments == 3);
    BOOST_TEST(rend.bandwidth >= rend.average_bandwidth);
    BOOST_TEST(rend.average_bandwidth > 0);
    BOOST_TEST(rend.codecs.rfind("avc1.64", 0) == 0); // High profile
    BOOST_TEST(rend.codecs.find(",mp4a.40.2") != std::string::npos);

    // The master lists the rung with its attributes.
    auto res = std::to_string(r.width) + "x" + std::to_string(r.height);
    auto inf = master.find("RESOLUTION=" + res);
    BOOST_REQUIRE_MESSAGE(inf != std::string::npos, "no " << res);
    auto line_start = master.rfind('\n', inf) + 1;
    auto line = master.substr(line_start, master.find('\n', inf) - line_start);
    BOOST_TEST(line.find("#EXT-X-STREAM-INF:BANDWIDTH=" +
                         std::to_string(rend.bandwidth)) == 0u);
    BOOST_TEST(line.find("AVERAGE-BANDWIDTH=") != std::string::npos);
    BOOST_TEST(line.find("CODECS=\"" + rend.codecs + "\"") !=
               std::string::npos);
    BOOST_TEST(line.find("FRAME-RATE=25.000") != std::string::npos);
    BOOST_TEST(line.find("AUDIO=\"audio\"") != std::string::npos);
    BOOST_TEST(master.find("\n" + r.name + "/index.m3u8\n") !=
               std::string::npos);

    // Every frame of the source, at the rung's size, as long as the source.
    auto playlist = hls / r.name / "index.m3u8";
    auto info = first_line(capture(
        "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
        "stream=nb_read_frames,width,height -of csv=p=0 " +
        quote(playlist.string())));
    BOOST_TEST(info == std::to_string(r.width) + "," +
                           std::to_string(r.height) + "," +
                           std::to_string(src.frame_count),
               r.name << ": " << info);
    auto duration = std::stod(trim(
        capture("ffprobe -v error -show_entries format=duration -of csv=p=0 " +
                quote(playlist.string()))));
    BOOST_TEST(std::abs(duration - 6.0) <= frame + 1e-6,
               r.name << " lasts " << duration);

    // Frame-accurate: every frame is the source's frame at that instant,
    // across the chunk joins too.
    if (r.height == 480) {
      auto psnr = min_psnr(playlist, fx.src, work / "psnr.txt");
      BOOST_TEST(psnr > 30.0, r.name << ": lowest PSNR " << psnr);
    }

    // Renditions are cut at the same instants.
    auto durations = segment_durations(playlist);
    BOOST_TEST(durations.size() == 3u);
    if (i == 0)
      first_durations = durations;
    else
      BOOST_TEST(durations == first_durations);

    // Every segment starts with a keyframe.
    for (int s = 0; s < rend.segments; ++s) {
      char name[32];
      std::snprintf(name, sizeof(name), "seg_%05d.m4s", s);
      auto seg = hls / r.name / name;
      BOOST_REQUIRE_MESSAGE(fs::exists(seg), seg);
      auto joined = work / "joined.mp4";
      {
        std::ofstream out{joined, std::ios::binary};
        out << read_file(hls / r.name / "init.mp4") << read_file(seg);
      }
      auto flags = lines(capture(
          "ffprobe -v error -select_streams v:0 -show_entries packet=flags "
          "-of csv=p=0 " +
          quote(joined.string())));
      BOOST_REQUIRE(!flags.empty());
      BOOST_TEST(flags.front().front() == 'K',
                 seg << " starts with " << flags.front());
      int keys = 0;
      for (const auto& f : flags)
        keys += f.front() == 'K';
      BOOST_TEST(keys == 1, seg << " has " << keys << " keyframes");
    }
  }

  // Audio: AAC 48 kHz stereo, as long as the source.
  auto audio =
      first_line(capture("ffprobe -v error -select_streams a:0 -show_entries "
                         "stream=codec_name,sample_rate,channels -of csv=p=0 " +
                         quote((hls / "audio" / "index.m3u8").string())));
  BOOST_TEST(audio == "aac,48000,2");
  auto audio_duration = std::stod(trim(
      capture("ffprobe -v error -show_entries format=duration -of csv=p=0 " +
              quote((hls / "audio" / "index.m3u8").string()))));
  BOOST_TEST(std::abs(audio_duration - 6.0) < 0.1);

  // The poster: a JPEG 240 high with the source's aspect ratio.
  auto poster = work / "poster.jpg";
  auto err = write_poster(fx.src.string(), src, 1.0, 240, poster.string());
  BOOST_REQUIRE_MESSAGE(!err, reel::message_of(err));
  BOOST_TEST(!fs::exists(poster.string() + ".tmp"));
  auto jpeg = read_file(poster);
  BOOST_REQUIRE(jpeg.size() > 4u);
  BOOST_TEST(static_cast<unsigned char>(jpeg[0]) == 0xFF);
  BOOST_TEST(static_cast<unsigned char>(jpeg[1]) == 0xD8);
  auto dims = trim(capture("ffprobe -v error -show_entries "
                           "stream=codec_name,width,height -of csv=p=0 " +
                           quote(poster.string())));
  BOOST_TEST(dims == "mjpeg,428,240");
}

BOOST_AUTO_TEST_CASE(mpegts_chunks_seek_to_their_keyframes) {
  // MPEG-TS has no index: chunks after the first are found by seeking on
  // timestamps. Every chunk must still get exactly its frames.
  const auto& fx = fixtures();
  auto src = must_probe(fx.src_ts);
  auto work = fx.dir / "work_ts";
  auto e = encode_all(fx.src_ts, src, work);
  BOOST_TEST(e.frames == src.frame_count);
  auto pkg = package_hls(e.pkg);
  BOOST_REQUIRE_MESSAGE(pkg, (pkg ? "" : reel::message_of(pkg.error())));
  auto playlist = fs::path{e.pkg.out_dir} / "480p" / "index.m3u8";
  auto psnr = min_psnr(playlist, fx.src, work / "psnr.txt");
  BOOST_TEST(psnr > 30.0, "lowest PSNR " << psnr);
}

BOOST_AUTO_TEST_CASE(rotated_sources_come_out_upright) {
  const auto& fx = fixtures();
  auto src = must_probe(fx.rotated);
  auto work = fx.dir / "work_rot";
  auto e = encode_all(fx.rotated, src, work);
  BOOST_REQUIRE(e.rungs.size() == 1u);
  BOOST_TEST(e.rungs[0].width == 240); // portrait once rotated
  BOOST_TEST(e.rungs[0].height == 320);
  BOOST_TEST(e.frames == 50);
  auto pkg = package_hls(e.pkg);
  BOOST_REQUIRE_MESSAGE(pkg, (pkg ? "" : reel::message_of(pkg.error())));
  auto playlist = fs::path{e.pkg.out_dir} / e.rungs[0].name / "index.m3u8";

  // ffmpeg's own autorotation of the source says where the white square is.
  auto gray = [&](const fs::path& in) {
    return capture("ffmpeg -hide_banner -loglevel error -i " +
                   quote(in.string()) +
                   " -frames:v 1 -vf scale=240:320 -f rawvideo -pix_fmt "
                   "gray -");
  };
  auto expected = bright_corner(gray(fx.rotated), 240, 320);
  BOOST_TEST(bright_corner(gray(playlist), 240, 320) == expected);

  auto poster = work / "poster.jpg";
  auto err = write_poster(fx.rotated.string(), src, 0.5, 160, poster.string());
  BOOST_REQUIRE_MESSAGE(!err, reel::message_of(err));
  auto dims = trim(capture(
      "ffprobe -v error -show_entries stream=width,height -of csv=p=0 " +
      quote(poster.string())));
  BOOST_TEST(dims == "120,160");
  BOOST_TEST(bright_corner(gray(poster), 240, 320) == expected);
}

BOOST_AUTO_TEST_CASE(packaging_refuses_bad_jobs) {
  package_job job;
  job.out_dir = (fixtures().dir / "bad").string();
  auto r = package_hls(job);
  BOOST_REQUIRE(!r);
  BOOST_TEST(reel::code_of(r.error()) == reel::ec::invalid_argument);

  job.rungs = ladder_for(fake_source(640, 360));
  job.chunk_files = {{(fixtures().dir / "missing.pkt").string()}};
  r = package_hls(job);
  BOOST_REQUIRE(!r);
  BOOST_TEST(reel::code_of(r.error()) == reel::ec::storage_error);
}

BOOST_AUTO_TEST_CASE(chunks_of_a_frame_or_two_still_join) {
  const auto& fx = fixtures();
  auto tiny = fx.dir / "tiny.mp4";
  run("ffmpeg -hide_banner -loglevel error -y -f lavfi "
      "-i testsrc2=size=320x240:rate=25:duration=1 -c:v libx264 -preset "
      "veryfast -g 2 -keyint_min 1 -sc_threshold 0 " +
      quote(tiny.string()));
  auto src = must_probe(tiny);
  BOOST_TEST_MESSAGE("keyframes " << src.keyframes.size());
  auto work = fx.dir / "work_tiny";
  fs::create_directories(work);
  package_job pkg;
  pkg.rungs = ladder_for(src);
  pkg.chunk_files.resize(pkg.rungs.size());
  pkg.out_dir = (work / "hls").string();
  auto chunks = plan_chunks(src, 0, 0);
  BOOST_TEST_MESSAGE("chunks " << chunks.size());
  for (const auto& c : chunks) {
    chunk_job job;
    job.source = tiny.string();
    job.src = src;
    job.part = c;
    job.rungs = pkg.rungs;
    auto out = work / ("c" + std::to_string(c.index) + ".pkt");
    job.outputs = {out.string()};
    auto st = encode_chunk(job);
    BOOST_REQUIRE_MESSAGE(st, (st ? "" : reel::message_of(st.error())));
    pkg.chunk_files[0].push_back(out.string());
  }
  auto r = package_hls(pkg);
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : reel::message_of(r.error())));
  BOOST_TEST(r->renditions[0].frames == 25);
}
