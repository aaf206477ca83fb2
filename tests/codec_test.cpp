#define BOOST_TEST_MODULE codec
#include <boost/test/unit_test.hpp>

#include "codec/codec.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <set>
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
  quiet_libav() { reel::codec::set_libav_logging(false); }
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

probe_result sample_source(int w, int h, int rotation = 0) {
  probe_result p;
  p.width = w;
  p.height = h;
  p.rotation = rotation;
  p.fps = 25;
  p.tb_num = 1;
  p.tb_den = 1000;
  return p;
}

// Runs ffprobe on `path` and returns its CSV lines (no section names).
std::vector<std::string> ffprobe_csv(const fs::path& path,
                                     const std::string& args) {
  return lines(capture("ffprobe -v error " + args + " -of csv=p=0 " +
                       quote(path.string())));
}

// The frames ffprobe decodes from the first stream matching `select`.
int64_t count_frames(const fs::path& path, const std::string& select = "v:0") {
  auto l = ffprobe_csv(path, "-count_frames -select_streams " + select +
                                 " -show_entries stream=nb_read_frames");
  BOOST_REQUIRE_MESSAGE(!l.empty(), "no " << select << " stream in " << path);
  return std::stoll(trim(l.front()));
}

struct packet_info {
  double pts = 0;
  double dts = 0;
  double duration = 0;
  bool key = false;
};

// The packets of the first stream matching `select`, in file order.
std::vector<packet_info> packets_of(const fs::path& path,
                                    const std::string& select = "v:0") {
  std::vector<packet_info> out;
  for (const auto& l :
       ffprobe_csv(path, "-select_streams " + select +
                             " -show_entries "
                             "packet=pts_time,dts_time,duration_time,flags")) {
    std::vector<std::string> f;
    std::stringstream ss{l};
    std::string item;
    while (std::getline(ss, item, ','))
      f.push_back(item);
    if (f.size() < 4 || f[0] == "N/A")
      continue;
    packet_info p;
    p.pts = std::stod(f[0]);
    p.dts = f[1] == "N/A" ? p.pts : std::stod(f[1]);
    p.duration = f[2] == "N/A" ? 0 : std::stod(f[2]);
    p.key = f[3].find('K') != std::string::npos;
    out.push_back(p);
  }
  return out;
}

std::vector<double> sorted_pts(const std::vector<packet_info>& packets) {
  std::vector<double> pts;
  for (const auto& p : packets)
    pts.push_back(p.pts);
  std::sort(pts.begin(), pts.end());
  return pts;
}

// Checks that the presentation times step by exactly `step` seconds: no
// frame missing, doubled or shifted anywhere (chunk joins included).
void check_constant_step(const std::vector<double>& pts, double step,
                         const std::string& what) {
  BOOST_REQUIRE_MESSAGE(pts.size() > 1, what << ": no frames");
  int bad = 0;
  for (size_t i = 1; i < pts.size(); ++i)
    if (std::abs(pts[i] - pts[i - 1] - step) > 1e-4) {
      if (++bad < 4)
        BOOST_TEST_MESSAGE(what << ": " << pts[i - 1] << " -> " << pts[i]);
    }
  BOOST_TEST(bad == 0, what << ": " << bad << " uneven steps");
}

// Checks that audio packets follow each other without gap or overlap.
void check_contiguous_audio(const std::vector<packet_info>& packets,
                            const std::string& what) {
  BOOST_REQUIRE_MESSAGE(packets.size() > 1, what << ": no audio");
  int bad = 0;
  for (size_t i = 1; i < packets.size(); ++i) {
    // (A demuxer may not know the first packet's duration.)
    double duration =
        packets[i - 1].duration > 0 ? packets[i - 1].duration : 1024.0 / 48000;
    double gap = packets[i].pts - (packets[i - 1].pts + duration);
    if (std::abs(gap) > 1e-4 && ++bad < 4)
      BOOST_TEST_MESSAGE(what << ": gap of " << gap << " s at "
                              << packets[i].pts);
  }
  BOOST_TEST(bad == 0, what << ": " << bad << " audio gaps");
}

// Decoded audio, mixed to mono at 48 kHz.
std::vector<float> decode_audio(const fs::path& path) {
  auto raw =
      capture("ffmpeg -hide_banner -loglevel error -i " + quote(path.string()) +
              " -map 0:a:0 -ac 1 -ar 48000 -f f32le -");
  std::vector<float> samples(raw.size() / sizeof(float));
  std::memcpy(samples.data(), raw.data(), samples.size() * sizeof(float));
  return samples;
}

double rms(const std::vector<float>& s, size_t from, size_t to) {
  double sum = 0;
  for (size_t i = from; i < to; ++i)
    sum += static_cast<double>(s[i]) * s[i];
  return to > from ? std::sqrt(sum / static_cast<double>(to - from)) : 0;
}

// A steady tone stays steady: every 10 ms window of `out` (after the first
// and before the last 100 ms) has the tone's RMS, and no sample jumps more
// than a sine of that level can (a click).
void check_steady_tone(const std::vector<float>& out,
                       const std::vector<float>& reference,
                       const std::string& what) {
  const size_t win = 480;
  BOOST_REQUIRE_MESSAGE(out.size() > 20 * win, what << ": too short");
  BOOST_REQUIRE(reference.size() > 20 * win);
  double level = rms(reference, 10 * win, reference.size() - 10 * win);
  double ref_jump = 0;
  for (size_t i = 10 * win; i + 10 * win < reference.size(); ++i)
    ref_jump =
        std::max<double>(ref_jump, std::abs(reference[i] - reference[i - 1]));
  int quiet = 0;
  for (size_t at = 10 * win; at + 11 * win < out.size(); at += win) {
    double r = rms(out, at, at + win);
    if (std::abs(r - level) > 0.1 * level && ++quiet < 4)
      BOOST_TEST_MESSAGE(what << ": RMS " << r << " at " << at / 48000.0
                              << " s, tone " << level);
  }
  BOOST_TEST(quiet == 0, what << ": " << quiet << " windows off the tone");
  double jump = 0;
  for (size_t i = 10 * win; i + 10 * win < out.size(); ++i)
    jump = std::max<double>(jump, std::abs(out[i] - out[i - 1]));
  BOOST_TEST(jump < 2 * ref_jump,
             what << ": a click, jump " << jump << " against " << ref_jump);
}

// The top-level boxes of an MP4 file, in order.
std::vector<std::string> top_level_boxes(const fs::path& path) {
  auto data = read_file(path);
  std::vector<std::string> boxes;
  size_t off = 0;
  while (off + 8 <= data.size()) {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(data[i]); };
    uint64_t size = (uint64_t{byte(off)} << 24) |
                    (uint64_t{byte(off + 1)} << 16) |
                    (uint64_t{byte(off + 2)} << 8) | byte(off + 3);
    boxes.push_back(data.substr(off + 4, 4));
    if (size == 1 && off + 16 <= data.size()) {
      size = 0;
      for (int i = 0; i < 8; ++i)
        size = (size << 8) | byte(off + 8 + i);
    }
    if (size < 8)
      break;
    off += size;
  }
  return boxes;
}

// PSNR (dB) of the first frame of `a_input` against the first of
// `b_input` (ffmpeg input options), both scaled to `w` x `h`.
double first_frame_psnr(const std::string& a_input, const std::string& b_input,
                        int w, int h) {
  auto stats = fs::temp_directory_path() /
               ("reel_psnr_" + std::to_string(::getpid()) + ".txt");
  capture("ffmpeg -hide_banner -loglevel error " + a_input + " " + b_input +
          " -lavfi '[0:v]scale=" + std::to_string(w) + ":" + std::to_string(h) +
          ",setpts=PTS-STARTPTS[a];[1:v]scale=" + std::to_string(w) + ":" +
          std::to_string(h) + ",setpts=PTS-STARTPTS[b];[a][b]psnr=stats_file=" +
          stats.string() + "' -frames:v 1 -f null - 2>&1");
  auto text = read_file(stats);
  fs::remove(stats);
  for (const auto& l : lines(text)) {
    if (l.rfind("n:1 ", 0) != 0)
      continue;
    auto at = l.find("psnr_avg:");
    BOOST_REQUIRE(at != std::string::npos);
    auto v = l.substr(at + 9, l.find(' ', at) - at - 9);
    return v == "inf" ? 1e9 : std::stod(v);
  }
  BOOST_FAIL("no PSNR for the first frame");
  return 0;
}

std::string playlist_type(const fs::path& playlist) {
  for (const auto& l : lines(read_file(playlist)))
    if (l.rfind("#EXT-X-PLAYLIST-TYPE:", 0) == 0)
      return l.substr(21);
  return "";
}

int target_duration(const fs::path& playlist) {
  for (const auto& l : lines(read_file(playlist)))
    if (l.rfind("#EXT-X-TARGETDURATION:", 0) == 0)
      return std::stoi(l.substr(22));
  return -1;
}

std::vector<double> extinf(const fs::path& playlist) {
  std::vector<double> out;
  for (const auto& l : lines(read_file(playlist)))
    if (l.rfind("#EXTINF:", 0) == 0)
      out.push_back(std::stod(l.substr(8)));
  return out;
}

// Concatenates an init segment and a media segment, so ffprobe can read it.
fs::path joined(const fs::path& init, const fs::path& seg, const fs::path& to) {
  std::ofstream out{to, std::ios::binary};
  out << read_file(init) << read_file(seg);
  return to;
}

std::string ff() {
  return "ffmpeg -hide_banner -loglevel error -y ";
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
  BOOST_TEST(p.frame_ticks * p.tb_num * 25 == p.tb_den); // constant 25 fps
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
  BOOST_TEST(ts.frame_ticks == 3600); // 25 fps in 1/90000
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

namespace {

std::string names(const std::vector<rung>& rs) {
  std::string s;
  for (const auto& r : rs)
    s += r.name + "=" + std::to_string(r.width) + "x" +
         std::to_string(r.height) + "@" + std::to_string(r.max_kbps) + " ";
  return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(ladder_follows_the_table_never_above_the_source) {
  BOOST_TEST(names(ladder_for(sample_source(3840, 2160))) ==
             "2160p=3840x2160@16000 1440p=2560x1440@9000 "
             "1080p=1920x1080@5000 720p=1280x720@2800 480p=854x480@1400 "
             "360p=640x360@800 240p=426x240@400 ");
  BOOST_TEST(names(ladder_for(sample_source(2560, 1440))) ==
             "1440p=2560x1440@9000 1080p=1920x1080@5000 720p=1280x720@2800 "
             "480p=854x480@1400 360p=640x360@800 240p=426x240@400 ");
  BOOST_TEST(names(ladder_for(sample_source(1920, 1080))) ==
             "1080p=1920x1080@5000 720p=1280x720@2800 480p=854x480@1400 "
             "360p=640x360@800 240p=426x240@400 ");
  BOOST_TEST(names(ladder_for(sample_source(1280, 720))) ==
             "720p=1280x720@2800 480p=854x480@1400 360p=640x360@800 "
             "240p=426x240@400 ");
  // Between rungs: the rungs below, never an upscaled one.
  BOOST_TEST(ladder_for(sample_source(3000, 1688)).size() == 6u);
  BOOST_TEST(ladder_for(sample_source(3000, 1688)).front().name == "1440p");
  // A 4:3 source keeps its aspect ratio.
  BOOST_TEST(names(ladder_for(sample_source(1024, 768))) ==
             "720p=960x720@2800 480p=640x480@1400 360p=480x360@800 "
             "240p=320x240@400 ");
  // Portrait (shown rotated, or coded upright): rungs by the short side.
  auto portrait = ladder_for(sample_source(3840, 2160, 90));
  BOOST_TEST(names(portrait) ==
             "2160p=2160x3840@16000 1440p=1440x2560@9000 "
             "1080p=1080x1920@5000 720p=720x1280@2800 480p=480x854@1400 "
             "360p=360x640@800 240p=240x426@400 ");
  BOOST_TEST(names(ladder_for(sample_source(2160, 3840))) == names(portrait));
  // Exactly the lowest rung's size: that rung.
  auto small = ladder_for(sample_source(320, 240));
  BOOST_REQUIRE(small.size() == 1u);
  BOOST_TEST(names(small) == "240p=320x240@400 ");
  // Below the lowest rung: one rung at the source's own (even) size.
  auto tiny = ladder_for(sample_source(200, 112));
  BOOST_REQUIRE(tiny.size() == 1u);
  BOOST_TEST(tiny[0].name == "112p");
  BOOST_TEST(tiny[0].width == 200);
  BOOST_TEST(tiny[0].height == 112);
  BOOST_TEST(tiny[0].max_kbps > 0);
  BOOST_TEST(tiny[0].max_kbps < 400);
  auto odd = ladder_for(sample_source(257, 145));
  BOOST_REQUIRE(odd.size() == 1u);
  BOOST_TEST(odd[0].width % 2 == 0);
  BOOST_TEST(odd[0].height == 144);
  for (const auto& r : ladder_for(sample_source(3840, 2160)))
    BOOST_TEST(r.crf == 23);
}

BOOST_AUTO_TEST_CASE(chunks_start_at_keyframes_and_cover_everything) {
  // A synthetic source: 10.5 s, keyframes every second, time base 1/1000.
  probe_result p = sample_source(1280, 720);
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

  // A short first chunk (early playability): at least a segment long, at a
  // keyframe; the rest as before.
  chunks = plan_chunks(p, 4, 2, {}, 1);
  BOOST_REQUIRE(chunks.size() == 3u);
  BOOST_TEST(chunks[0].end_pts == 2000);
  BOOST_TEST((chunks[0].segment_starts == std::vector<int64_t>{0}));
  BOOST_TEST(chunks[1].end_pts == 6000);
  BOOST_TEST(chunks[2].end_pts == 10500);
  chunks = plan_chunks(p, 4, 1, {}, 1.5);
  BOOST_REQUIRE(chunks.size() >= 2u);
  BOOST_TEST(chunks[0].end_pts == 2000);

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

BOOST_AUTO_TEST_CASE(clips_cut_at_frames_and_are_validated) {
  // 60 s at 25 fps (40 ms frames), keyframes every second, time base 1/1000.
  probe_result p = sample_source(1280, 720);
  p.start_pts = 0;
  p.end_pts = 60000;
  p.frame_ticks = 40;
  for (int i = 0; i < 60; ++i)
    p.keyframes.push_back(i * 1000);

  // The first chunk starts at the first frame at or after the clip's start
  // (1.51 s: the frame at 1.52 s), the last ends at the clip's end (on the
  // frame grid: 2 s later), the one between at a keyframe.
  clip_range clip{1.51, 2.0};
  BOOST_TEST(!validate_clip(p, clip));
  auto chunks = plan_chunks(p, 1, 1, clip);
  BOOST_REQUIRE(chunks.size() == 2u);
  BOOST_TEST(chunks[0].start_pts == 1520);
  BOOST_TEST(chunks[0].end_pts == 3000);
  BOOST_TEST(chunks[0].segment_starts.front() == 1520);
  BOOST_TEST(chunks[1].start_pts == 3000);
  BOOST_TEST(chunks[1].end_pts == 3520);
  // Exactly on a frame: that frame.
  chunks = plan_chunks(p, 1, 1, {2.0, 1.0});
  BOOST_REQUIRE(!chunks.empty());
  BOOST_TEST(chunks.front().start_pts == 2000);
  BOOST_TEST(chunks.back().end_pts == 3000);
  // With a short first chunk.
  chunks = plan_chunks(p, 1, 0.25, clip, 0.3);
  BOOST_REQUIRE(chunks.size() == 3u);
  BOOST_TEST(chunks[0].end_pts == 2000);
  BOOST_TEST(chunks[1].end_pts == 3000);
  BOOST_TEST(chunks[2].end_pts == 3520);
  // To the end of the video.
  chunks = plan_chunks(p, 10, 5, {55.0, 0});
  BOOST_REQUIRE(!chunks.empty());
  BOOST_TEST(chunks.front().start_pts == 55000);
  BOOST_TEST(chunks.back().end_pts == 60000);
  // A duration past the end ends with the video.
  BOOST_TEST(!validate_clip(p, {50, 100}));
  BOOST_TEST(plan_chunks(p, 10, 5, {50, 100}).back().end_pts == 60000);
  // Variable frame rate: no grid, the clip's own tick.
  p.frame_ticks = 0;
  BOOST_TEST(plan_chunks(p, 1, 1, clip).front().start_pts == 1510);

  // Clips outside the video: a reason, and no plan.
  auto why = validate_clip(p, {137, 0});
  BOOST_REQUIRE(why);
  BOOST_TEST(reel::code_of(why) == reel::ec::media_error);
  BOOST_TEST(reel::message_of(why) ==
             "clip_start 137 s is beyond the video's 60.0 s");
  BOOST_TEST(plan_chunks(p, 2, 2, {137, 0}).empty());
  BOOST_TEST(plan_chunks(p, 2, 2, {60, 0}).empty());
  auto negative = validate_clip(p, {-1, 0});
  BOOST_REQUIRE(negative);
  BOOST_TEST_MESSAGE(reel::message_of(negative));
  BOOST_TEST(reel::message_of(negative).rfind("clip_start -1 s", 0) == 0);
  BOOST_TEST(plan_chunks(p, 2, 2, {-1, 0}).empty());
  BOOST_TEST(static_cast<bool>(validate_clip(p, {1, -2})));
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
                   const fs::path& work, double chunk_s = 2,
                   double segment_s = 2, const clip_range& clip = {},
                   double first_chunk_s = 0) {
  encoded e;
  fs::create_directories(work);
  e.rungs = ladder_for(src);
  e.chunks = plan_chunks(src, chunk_s, segment_s, clip, first_chunk_s);
  BOOST_REQUIRE(!e.chunks.empty());
  e.pkg.rungs = e.rungs;
  e.pkg.chunk_files.resize(e.rungs.size());
  e.pkg.segment_seconds = segment_s;
  e.pkg.out_dir = (work / "out").string();
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

audio_stats encode_audio_into(encoded& e, const fs::path& source,
                              const probe_result& src, const fs::path& work,
                              const clip_range& clip = {}) {
  auto audio_file = work / "audio.pkt";
  auto stats = encode_audio(source.string(), src, audio_file.string(), clip);
  BOOST_REQUIRE_MESSAGE(stats, (stats ? "" : reel::message_of(stats.error())));
  e.pkg.audio_file = audio_file.string();
  return *stats;
}

package_result must_package(const package_job& job) {
  auto pkg = package_hls(job);
  BOOST_REQUIRE_MESSAGE(pkg, (pkg ? "" : reel::message_of(pkg.error())));
  return *pkg;
}

// The media playlists of the package: (path, is fMP4).
std::vector<fs::path> media_playlists(const encoded& e) {
  const fs::path out = e.pkg.out_dir;
  std::vector<fs::path> all;
  for (const auto& r : e.rungs) {
    all.push_back(out / r.name / "index.m3u8");
    all.push_back(out / r.name / "ts.m3u8");
  }
  if (!e.pkg.audio_file.empty())
    all.push_back(out / "audio" / "index.m3u8");
  return all;
}

// Packages chunk by chunk through the packager, checking what a player
// sees while the video grows.
package_result package_growing(const encoded& e) {
  const fs::path out = e.pkg.out_dir;
  const bool audio = !e.pkg.audio_file.empty();
  auto opened = packager::open(e.pkg);
  BOOST_REQUIRE_MESSAGE(opened,
                        (opened ? "" : reel::message_of(opened.error())));
  auto& p = **opened;

  // At once: both masters, with nominal bandwidths, and empty playlists.
  for (const char* name : {"master-cmaf.m3u8", "master.m3u8"}) {
    auto master = read_file(out / name);
    BOOST_TEST(master.rfind("#EXTM3U\n", 0) == 0, name);
    for (const auto& r : e.rungs)
      BOOST_TEST(
          master.find("BANDWIDTH=" +
                      std::to_string(r.max_kbps * 1000 + (audio ? 128000 : 0)) +
                      ",") != std::string::npos,
          name << " " << r.name);
  }
  for (const auto& pl : media_playlists(e)) {
    BOOST_TEST(playlist_type(pl) == "EVENT", pl);
    BOOST_TEST(extinf(pl).empty(), pl);
  }
  BOOST_TEST(!p.playable());
  BOOST_TEST(p.chunks_added() == 0);

  // Out of order is refused, and breaks nothing.
  auto early = p.add_chunk(1);
  BOOST_TEST(static_cast<bool>(early));
  if (audio) {
    auto no_audio_yet = p.add_chunk(0);
    BOOST_TEST(static_cast<bool>(no_audio_yet)); // the audio comes first
    auto err = p.add_audio();
    BOOST_REQUIRE_MESSAGE(!err, reel::message_of(err));
  }
  const int n = static_cast<int>(e.chunks.size());
  for (int i = 0; i < n; ++i) {
    auto err = p.add_chunk(i);
    BOOST_REQUIRE_MESSAGE(!err, "chunk " << i << ": " << reel::message_of(err));
    BOOST_TEST(p.chunks_added() == i + 1);
    BOOST_TEST(p.playable(), "after chunk " << i);
    if (i + 1 == n)
      break;
    BOOST_TEST(!p.finish(), "finish before the last chunk");
    for (const auto& pl : media_playlists(e)) {
      auto text = read_file(pl);
      BOOST_TEST(playlist_type(pl) == "EVENT", pl);
      BOOST_TEST(text.find("#EXT-X-START:TIME-OFFSET=0") != std::string::npos,
                 pl);
      BOOST_TEST(text.find("#EXT-X-ENDLIST") == std::string::npos, pl);
      BOOST_TEST(!extinf(pl).empty(), pl << " after chunk " << i);
      for (const auto& l : lines(text))
        if (l[0] != '#')
          BOOST_TEST(fs::exists(pl.parent_path() / l), pl << ": " << l);
    }
    // What is published so far plays (a player reads the EVENT playlist as
    // live and keeps reloading it; ffprobe would wait, so read a segment).
    BOOST_TEST(count_frames(out / e.rungs.back().name / "ts_00000.ts") > 0);
  }
  auto result = p.finish();
  BOOST_REQUIRE_MESSAGE(result,
                        (result ? "" : reel::message_of(result.error())));
  for (const auto& pl : media_playlists(e)) {
    auto text = read_file(pl);
    BOOST_TEST(playlist_type(pl) == "VOD", pl);
    BOOST_TEST(text.find("\n#EXT-X-ENDLIST\n") != std::string::npos, pl);
    BOOST_TEST(!fs::exists(pl.string() + ".tmp"));
    // The target duration covers every segment.
    for (double d : extinf(pl))
      BOOST_TEST(std::lround(d) <= target_duration(pl), pl << ": " << d);
  }
  return *result;
}

const double aac_priming = 1024.0 / 48000;

} // namespace

BOOST_AUTO_TEST_CASE(pipeline_packages_every_output) {
  const auto& fx = fixtures();
  auto src = must_probe(fx.src);
  auto work = fx.dir / "work";
  auto e = encode_all(fx.src, src, work);
  BOOST_REQUIRE(e.rungs.size() == 3u); // 480p, 360p and 240p
  BOOST_TEST(e.chunks.size() == 3u);
  BOOST_TEST(e.frames == src.frame_count);
  auto astats = encode_audio_into(e, fx.src, src, work);
  BOOST_TEST(std::abs(astats.media_seconds - 6.0) < 0.05);

  auto pkg = package_growing(e);
  BOOST_TEST(pkg.master == "master-cmaf.m3u8");
  BOOST_TEST(pkg.master_cmaf == "master-cmaf.m3u8");
  BOOST_TEST(pkg.master_ts == "master.m3u8");
  BOOST_TEST(pkg.dash == "manifest.mpd");
  BOOST_REQUIRE(pkg.renditions.size() == 4u);
  BOOST_TEST(pkg.renditions.back().name == "audio");
  BOOST_TEST(std::abs(pkg.duration_s - 6.0) <= 0.041);

  const fs::path out = e.pkg.out_dir;
  auto master = read_file(out / "master-cmaf.m3u8");
  BOOST_TEST_MESSAGE("master-cmaf.m3u8:\n" << master);
  BOOST_TEST(master.find("#EXT-X-INDEPENDENT-SEGMENTS") != std::string::npos);
  BOOST_TEST(master.find("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\"") !=
             std::string::npos);
  BOOST_TEST(master.find("URI=\"audio/index.m3u8\"") != std::string::npos);
  auto master_ts = read_file(out / "master.m3u8");
  BOOST_TEST_MESSAGE("master.m3u8:\n" << master_ts);
  BOOST_TEST(master_ts.find("EXT-X-MEDIA") == std::string::npos);
  BOOST_TEST(!fs::exists(out / "master.m3u8.tmp"));

  const double frame = 1.0 / 25;
  std::vector<double> first_durations;
  for (size_t i = 0; i < e.rungs.size(); ++i) {
    const auto& r = e.rungs[i];
    const auto& rend = pkg.renditions[i];
    BOOST_TEST(rend.name == r.name);
    BOOST_TEST(rend.frames == src.frame_count);
    BOOST_TEST(rend.segments == 3);
    BOOST_TEST(rend.bandwidth >= rend.average_bandwidth);
    BOOST_TEST(rend.average_bandwidth > 0);
    BOOST_TEST(rend.codecs.rfind("avc1.64", 0) == 0); // High profile
    BOOST_TEST(rend.codecs.find(",mp4a.40.2") != std::string::npos);
    BOOST_TEST(rend.playlist == r.name + "/index.m3u8");
    BOOST_TEST(rend.ts_playlist == r.name + "/ts.m3u8");
    BOOST_TEST(rend.mp4 == r.name + ".mp4");
    BOOST_TEST(rend.mp4_size ==
               static_cast<int64_t>(fs::file_size(out / rend.mp4)));

    // Both masters list the rung with measured attributes.
    auto res = std::to_string(r.width) + "x" + std::to_string(r.height);
    for (const auto* m : {&master, &master_ts}) {
      auto inf = m->find("RESOLUTION=" + res);
      BOOST_REQUIRE_MESSAGE(inf != std::string::npos, "no " << res);
      auto line_start = m->rfind('\n', inf) + 1;
      auto line = m->substr(line_start, m->find('\n', inf) - line_start);
      BOOST_TEST(line.rfind("#EXT-X-STREAM-INF:BANDWIDTH=", 0) == 0u);
      BOOST_TEST(line.find("AVERAGE-BANDWIDTH=") != std::string::npos);
      BOOST_TEST(line.find("CODECS=\"" + rend.codecs + "\"") !=
                 std::string::npos);
      BOOST_TEST(line.find("FRAME-RATE=25.000") != std::string::npos);
      BOOST_TEST((line.find("AUDIO=\"audio\"") != std::string::npos) ==
                 (m == &master));
    }
    BOOST_TEST(master.find("BANDWIDTH=" + std::to_string(rend.bandwidth)) !=
               std::string::npos);
    BOOST_TEST(master.find("\n" + r.name + "/index.m3u8\n") !=
               std::string::npos);
    BOOST_TEST(master_ts.find("\n" + r.name + "/ts.m3u8\n") !=
               std::string::npos);

    // Every frame of the source in every flavour, evenly spaced across the
    // chunk joins, at the rung's size.
    auto fmp4 = out / r.name / "index.m3u8";
    auto ts = out / r.name / "ts.m3u8";
    auto mp4 = out / (r.name + ".mp4");
    for (const auto& path : {fmp4, ts, mp4}) {
      auto info = first_line(capture(
          "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
          "stream=nb_read_frames,width,height -of csv=p=0 " +
          quote(path.string())));
      BOOST_TEST(info == std::to_string(r.width) + "," +
                             std::to_string(r.height) + "," +
                             std::to_string(src.frame_count),
                 path << ": " << info);
      check_constant_step(sorted_pts(packets_of(path)), frame, path.string());
    }
    BOOST_TEST(count_frames(out / "manifest.mpd", "v:" + std::to_string(i)) ==
               src.frame_count);
    auto duration = std::stod(trim(
        capture("ffprobe -v error -show_entries format=duration -of csv=p=0 " +
                quote(fmp4.string()))));
    BOOST_TEST(std::abs(duration - 6.0) <= frame + 1e-6,
               r.name << " lasts " << duration);

    // Frame-accurate: every frame is the source's frame at that instant.
    if (r.height == 480)
      for (const auto& path : {fmp4, ts}) {
        auto psnr = min_psnr(path, fx.src, work / "psnr.txt");
        BOOST_TEST(psnr > 30.0, path << ": lowest PSNR " << psnr);
      }

    // Renditions and flavours are cut at the same instants.
    auto durations = extinf(fmp4);
    BOOST_TEST(durations.size() == 3u);
    BOOST_TEST(extinf(ts) == durations);
    if (i == 0)
      first_durations = durations;
    else
      BOOST_TEST(durations == first_durations);

    // Every segment starts with a keyframe and holds only that one, and a
    // TS segment starts at the same instant as its fMP4 twin.
    for (int s = 0; s < rend.segments; ++s) {
      char name[32];
      std::snprintf(name, sizeof(name), "seg_%05d.m4s", s);
      auto seg = joined(out / r.name / "init.mp4", out / r.name / name,
                        work / "joined.mp4");
      std::snprintf(name, sizeof(name), "ts_%05d.ts", s);
      auto ts_seg = out / r.name / name;
      BOOST_REQUIRE_MESSAGE(fs::exists(ts_seg), ts_seg);
      auto a = packets_of(seg);
      auto b = packets_of(ts_seg);
      for (const auto* pk : {&a, &b}) {
        BOOST_REQUIRE(!pk->empty());
        BOOST_TEST(pk->front().key, r.name << " segment " << s);
        BOOST_TEST(std::count_if(pk->begin(), pk->end(),
                                 [](const packet_info& p) { return p.key; }) ==
                   1);
      }
      BOOST_TEST(std::abs(sorted_pts(a).front() - sorted_pts(b).front()) < 1e-3,
                 r.name << " segment " << s << ": fMP4 at "
                        << sorted_pts(a).front() << ", TS at "
                        << sorted_pts(b).front());
      // The TS segment carries the audio of its time span.
      BOOST_TEST(!packets_of(ts_seg, "a:0").empty());
    }

    // The download: index in front, seekable to near its end, with audio.
    auto boxes = top_level_boxes(mp4);
    auto moov = std::find(boxes.begin(), boxes.end(), "moov");
    auto mdat = std::find(boxes.begin(), boxes.end(), "mdat");
    BOOST_TEST((moov != boxes.end() && mdat != boxes.end() && moov < mdat),
               mp4);
    // (Seeking lands on the keyframe before: the last segment's, at 4 s.)
    auto late = ffprobe_csv(mp4, "-select_streams v:0 -read_intervals 5.5%7 "
                                 "-show_entries packet=pts_time");
    BOOST_REQUIRE(!late.empty());
    BOOST_TEST(std::stod(late.front()) > 3.9,
               mp4 << " seeks to " << late.front());
    BOOST_TEST(std::stod(late.back()) > 5.5,
               mp4 << " reads to " << late.back());
    BOOST_TEST(ffprobe_csv(mp4, "-show_entries stream=codec_name") ==
               (std::vector<std::string>{"h264", "aac"}));
  }

  // Audio: AAC 48 kHz stereo, as long as the source, continuous in every
  // output, and the tone intact (no dropout, no click at any join).
  auto audio_pl = out / "audio" / "index.m3u8";
  BOOST_TEST(
      first_line(capture("ffprobe -v error -select_streams a:0 -show_entries "
                         "stream=codec_name,sample_rate,channels -of csv=p=0 " +
                         quote(audio_pl.string()))) == "aac,48000,2");
  const auto reference = decode_audio(fx.src);
  const auto ts480 = out / "480p" / "ts.m3u8";
  for (const auto& path : {audio_pl, ts480, out / "480p.mp4"}) {
    auto packets = packets_of(path, "a:0");
    check_contiguous_audio(packets, path.string());
    BOOST_TEST(packets.size() ==
                   static_cast<size_t>(pkg.renditions.back().frames),
               path);
    double end = packets.back().pts + packets.back().duration;
    BOOST_TEST(std::abs(end - packets.front().pts - aac_priming - 6.0) < 0.03,
               path << ": audio lasts " << end - packets.front().pts);
    check_steady_tone(decode_audio(path), reference, path.string());
  }
  BOOST_TEST(count_frames(out / "manifest.mpd", "a:0") ==
             pkg.renditions.back().frames);
  BOOST_TEST(extinf(audio_pl).size() == 3u);

  // A/V: the first sample after the encoder's priming plays with the first
  // picture.
  auto v0 = sorted_pts(packets_of(ts480)).front();
  auto a0 = packets_of(ts480, "a:0").front().pts + aac_priming;
  BOOST_TEST_MESSAGE("A/V offset " << (a0 - v0) * 1000 << " ms");
  BOOST_TEST(std::abs(a0 - v0) < frame / 2);

  // DASH: ffprobe reads the manifest with every representation.
  auto mpd = read_file(out / "manifest.mpd");
  BOOST_TEST_MESSAGE("manifest.mpd:\n" << mpd);
  BOOST_TEST(mpd.find("type=\"static\"") != std::string::npos);
  BOOST_TEST(mpd.find("media=\"480p/seg_$Number%05d$.m4s\"") !=
             std::string::npos);
  auto streams = ffprobe_csv(out / "manifest.mpd",
                             "-show_entries stream=codec_name,width,height");
  BOOST_TEST(std::count(streams.begin(), streams.end(), "h264,854,480") >= 1);
  BOOST_TEST(std::count(streams.begin(), streams.end(), "h264,428,240") >= 1);

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

BOOST_AUTO_TEST_CASE(clips_are_exact_to_the_frame_and_the_sample) {
  const auto& fx = fixtures();
  auto src = must_probe(fx.src);
  BOOST_TEST(src.frame_ticks == 512); // 25 fps in 1/12800
  auto work = fx.dir / "work_clip";
  const clip_range clip{1.52, 2.0};
  // A short first chunk that ends at the keyframe at 2 s, then 1 s chunks.
  auto e = encode_all(fx.src, src, work, 1, 0.4, clip, 0.4);
  BOOST_TEST(e.chunks.size() == 3u);
  BOOST_TEST(e.frames == 50);
  auto astats = encode_audio_into(e, fx.src, src, work, clip);
  BOOST_TEST(astats.samples == 96000); // 2 s at 48 kHz, to the sample
  auto pkg = must_package(e.pkg);
  BOOST_TEST(std::abs(pkg.duration_s - 2.0) < 1e-6);

  const fs::path out = e.pkg.out_dir;
  auto fmp4 = out / "480p" / "index.m3u8";
  auto ts = out / "480p" / "ts.m3u8";
  for (const auto& path : {fmp4, ts, out / "480p.mp4"}) {
    BOOST_TEST(count_frames(path) == 50, path);
    check_constant_step(sorted_pts(packets_of(path)), 0.04, path.string());
  }
  // The first frame is the source's frame at 1.52 s, not its neighbour.
  const std::string src_in = "-i " + quote(fx.src.string());
  double right = first_frame_psnr("-i " + quote(ts.string()),
                                  "-ss 1.52 " + src_in, 854, 480);
  double wrong = first_frame_psnr("-i " + quote(ts.string()),
                                  "-ss 1.48 " + src_in, 854, 480);
  BOOST_TEST_MESSAGE("first frame: " << right << " dB, neighbour " << wrong);
  BOOST_TEST(right > 30.0);
  BOOST_TEST(right > wrong + 3);
  // The last frame is the one before 3.52 s.
  auto last_png = work / "last.y4m";
  run(ff() + "-i " + quote((out / "480p.mp4").string()) +
      " -vf 'select=eq(n\\,49)' -frames:v 1 " + quote(last_png.string()));
  auto last = first_frame_psnr("-i " + quote(last_png.string()),
                               "-ss 3.48 " + src_in, 854, 480);
  BOOST_TEST(last > 30.0, "last frame " << last << " dB");

  // The audio starts with the first picture and lasts as long.
  auto a = packets_of(ts, "a:0");
  auto v0 = sorted_pts(packets_of(ts)).front();
  BOOST_TEST(std::abs(a.front().pts + aac_priming - v0) < 0.001,
             "audio at " << a.front().pts + aac_priming << ", video at " << v0);
  check_contiguous_audio(a, ts.string());
  // (MPEG-TS cannot say that the last AAC frame is partial; MP4 can.)
  auto times =
      ffprobe_csv(out / "480p.mp4", "-select_streams a:0 "
                                    "-show_entries stream=start_time,duration");
  BOOST_REQUIRE(times.size() == 1u);
  auto comma = times[0].find(',');
  double audio_end = std::stod(times[0].substr(0, comma)) +
                     std::stod(times[0].substr(comma + 1));
  BOOST_TEST(std::abs(audio_end - (v0 + 2.0)) < 0.001,
             "audio ends at " << audio_end << ", video at " << v0 + 2.0);
  check_steady_tone(decode_audio(ts), decode_audio(fx.src), ts.string());
}

BOOST_AUTO_TEST_CASE(high_frame_rates_come_down_to_60) {
  const auto& fx = fixtures();
  // 120 fps with a keyframe every 35 frames: chunks start on odd frames,
  // which the 60 fps grid drops.
  auto hfr = fx.dir / "hfr.mp4";
  run(ff() +
      "-f lavfi -i testsrc2=size=320x180:rate=120:duration=2 "
      "-f lavfi -i sine=frequency=440:sample_rate=48000:duration=2 "
      "-c:v libx264 -preset ultrafast -g 35 -keyint_min 35 -sc_threshold 0 "
      "-pix_fmt yuv420p -c:a aac " +
      quote(hfr.string()));
  auto src = must_probe(hfr);
  BOOST_TEST(std::abs(src.fps - 120) < 0.01);
  BOOST_TEST(src.frame_ticks > 0);
  BOOST_TEST(src.frame_count == 240);
  // Also without the frame grid (a probe that did not keep frame_ticks):
  // the grid then comes from the frame rate.
  for (int64_t ticks : {src.frame_ticks, int64_t{0}}) {
    auto s = src;
    s.frame_ticks = ticks;
    auto work = fx.dir / ("work_hfr" + std::to_string(ticks));
    auto e = encode_all(hfr, s, work, 0.25, 0.25);
    BOOST_TEST(e.chunks.size() > 3u);
    BOOST_TEST(e.frames == 120);
    encode_audio_into(e, hfr, s, work);
    auto pkg = must_package(e.pkg);
    const fs::path out = e.pkg.out_dir;
    const auto& name = e.rungs.front().name;
    for (const auto& path : {out / name / "index.m3u8", out / name / "ts.m3u8",
                             out / (name + ".mp4")}) {
      BOOST_TEST(count_frames(path) == 120, path);
      check_constant_step(sorted_pts(packets_of(path)), 1.0 / 60,
                          path.string());
    }
    BOOST_TEST(read_file(out / "master.m3u8").find("FRAME-RATE=60.000") !=
               std::string::npos);
    BOOST_TEST(std::abs(pkg.duration_s - 2.0) < 1e-6);
    auto v0 = sorted_pts(packets_of(out / name / "ts.m3u8")).front();
    auto a0 = packets_of(out / name / "ts.m3u8", "a:0").front().pts;
    BOOST_TEST(std::abs(a0 + aac_priming - v0) < 1.0 / 60);
  }
}

BOOST_AUTO_TEST_CASE(variable_frame_rates_keep_their_timestamps) {
  const auto& fx = fixtures();
  // 30 fps for a second, 15 fps for two, 30 fps again.
  auto vfr = fx.dir / "vfr.mp4";
  run(ff() +
      "-f lavfi -i testsrc2=size=320x180:rate=30:duration=3 -vf "
      "\"setpts='if(lt(N,30),N/30,if(lt(N,60),1+(N-30)/15,3+(N-60)/30))/TB'\" "
      "-fps_mode vfr -c:v libx264 -preset ultrafast -g 30 -sc_threshold 0 "
      "-pix_fmt yuv420p " +
      quote(vfr.string()));
  auto src = must_probe(vfr);
  BOOST_TEST(src.frame_ticks == 0);
  BOOST_TEST(src.frame_count == 90);
  auto work = fx.dir / "work_vfr";
  auto e = encode_all(vfr, src, work, 1, 1);
  BOOST_TEST(e.frames == 90);
  must_package(e.pkg);
  auto in = sorted_pts(packets_of(vfr));
  for (const auto& path :
       {fs::path{e.pkg.out_dir} / e.rungs.front().name / "ts.m3u8",
        fs::path{e.pkg.out_dir} / e.rungs.front().name / "index.m3u8",
        fs::path{e.pkg.out_dir} / (e.rungs.front().name + ".mp4")}) {
    auto outp = sorted_pts(packets_of(path));
    BOOST_REQUIRE(outp.size() == in.size());
    int moved = 0;
    for (size_t i = 0; i < in.size(); ++i)
      moved += std::abs((outp[i] - outp[0]) - (in[i] - in[0])) > 1e-3;
    BOOST_TEST(moved == 0, path << ": " << moved << " frames moved");
  }
}

BOOST_AUTO_TEST_CASE(sources_without_audio_make_outputs_without_audio) {
  const auto& fx = fixtures();
  auto src = must_probe(fx.no_audio);
  auto work = fx.dir / "work_noaudio";
  auto e = encode_all(fx.no_audio, src, work, 1, 1);
  BOOST_REQUIRE(e.rungs.size() == 2u); // 360p and 240p
  auto pkg = package_growing(e);
  BOOST_TEST(pkg.renditions.size() == 2u);
  const fs::path out = e.pkg.out_dir;
  BOOST_TEST(!fs::exists(out / "audio"));
  for (const char* m : {"master-cmaf.m3u8", "master.m3u8"}) {
    auto text = read_file(out / m);
    BOOST_TEST(text.find("mp4a") == std::string::npos, m);
    BOOST_TEST(text.find("AUDIO") == std::string::npos, m);
  }
  for (const auto& r : e.rungs) {
    for (const auto& path :
         {out / r.name / "index.m3u8", out / r.name / "ts.m3u8",
          out / (r.name + ".mp4")}) {
      BOOST_TEST(count_frames(path) == 50, path);
      BOOST_TEST(ffprobe_csv(path, "-select_streams a -show_entries "
                                   "stream=codec_name")
                     .empty(),
                 path);
    }
  }
  auto mpd = read_file(out / "manifest.mpd");
  BOOST_TEST(mpd.find("contentType=\"audio\"") == std::string::npos);
  BOOST_TEST(count_frames(out / "manifest.mpd", "v:1") == 50);
}

BOOST_AUTO_TEST_CASE(the_first_of_several_audio_tracks_is_used) {
  const auto& fx = fixtures();
  // The first track is a quiet mono tone, the second loud-looking stereo
  // silence at a higher rate and bit rate: "best" would pick the second.
  auto two = fx.dir / "two_audio.mp4";
  run(ff() +
      "-f lavfi -i testsrc2=size=320x180:rate=25:duration=2 "
      "-f lavfi -i sine=frequency=1000:sample_rate=22050:duration=2 "
      "-f lavfi -i anullsrc=channel_layout=stereo:sample_rate=48000 "
      "-map 0:v -map 1:a -map 2:a -t 2 -c:v libx264 -preset ultrafast "
      "-pix_fmt yuv420p -c:a aac -b:a:0 32k -b:a:1 192k " +
      quote(two.string()));
  auto src = must_probe(two);
  BOOST_TEST(src.audio_stream == 1);
  BOOST_TEST(src.audio_channels == 1);
  BOOST_TEST(src.audio_sample_rate == 22050);
  auto work = fx.dir / "work_two";
  auto e = encode_all(two, src, work, 1, 1);
  encode_audio_into(e, two, src, work);
  must_package(e.pkg);
  auto samples = decode_audio(fs::path{e.pkg.out_dir} / "audio" / "index.m3u8");
  BOOST_REQUIRE(samples.size() > 48000u);
  BOOST_TEST(rms(samples, 4800, samples.size() - 4800) > 0.05);
}

// -- pictures ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(poster_time_avoids_a_black_start) {
  const auto& fx = fixtures();
  auto dark = fx.dir / "black_start.mp4";
  run(ff() +
      "-filter_complex \"color=c=black:s=320x180:r=25:d=2,format=yuv420p[a];"
      "testsrc2=s=320x180:r=25:d=4,format=yuv420p[b];[a][b]concat=n=2:v=1\" "
      "-c:v libx264 -preset ultrafast -g 25 " +
      quote(dark.string()));
  auto src = must_probe(dark);
  auto t = choose_poster_time(dark.string(), src);
  BOOST_REQUIRE_MESSAGE(t, (t ? "" : reel::message_of(t.error())));
  BOOST_TEST_MESSAGE("poster at " << *t << " s");
  BOOST_TEST(*t >= 2.0);
  BOOST_TEST(*t < 6.0);

  auto poster = fx.dir / "dark_poster.jpg";
  auto err = write_poster(dark.string(), src, *t, 180, poster.string());
  BOOST_REQUIRE_MESSAGE(!err, reel::message_of(err));
  auto gray = capture(ff() + "-i " + quote(poster.string()) +
                      " -f rawvideo -pix_fmt gray -");
  double sum = 0;
  for (char c : gray)
    sum += static_cast<unsigned char>(c);
  BOOST_TEST(sum / static_cast<double>(gray.size()) > 40, "a dark poster");

  // Inside a clip, whatever it shows.
  auto in_clip = choose_poster_time(dark.string(), src, {3.0, 2.0});
  BOOST_REQUIRE(in_clip);
  BOOST_TEST(*in_clip > 3.0);
  BOOST_TEST(*in_clip < 5.0);
  auto all_black = choose_poster_time(dark.string(), src, {0.0, 1.5});
  BOOST_REQUIRE(all_black);
  BOOST_TEST(*all_black > 0.0);
  BOOST_TEST(*all_black < 1.5);
  BOOST_TEST(!choose_poster_time(dark.string(), src, {10.0, 0}));
}

BOOST_AUTO_TEST_CASE(storyboards_tile_the_video) {
  const auto& fx = fixtures();
  auto src = must_probe(fx.src); // 6 s, 854x480
  auto jpg = fx.dir / "sb.jpg";
  auto vtt = fx.dir / "sb.vtt";
  auto sb = write_storyboard(fx.src.string(), src, {}, jpg.string(),
                             vtt.string(), "sb.jpg");
  BOOST_REQUIRE_MESSAGE(sb, (sb ? "" : reel::message_of(sb.error())));
  BOOST_TEST(sb->interval_s == 1.0);
  BOOST_TEST(sb->tiles == 6);
  BOOST_TEST(sb->tile_width == 160);
  BOOST_TEST(sb->tile_height == 90);
  BOOST_TEST(sb->columns == 6);
  BOOST_TEST(trim(capture("ffprobe -v error -show_entries stream=width,height "
                          "-of csv=p=0 " +
                          quote(jpg.string()))) == "960,90");
  auto text = read_file(vtt);
  BOOST_TEST(text.rfind("WEBVTT\n\n", 0) == 0);
  BOOST_TEST(
      text.find("00:00:00.000 --> 00:00:01.000\nsb.jpg#xywh=0,0,160,90\n") !=
      std::string::npos);
  BOOST_TEST(
      text.find("00:00:02.000 --> 00:00:03.000\nsb.jpg#xywh=320,0,160,90\n") !=
      std::string::npos);
  BOOST_TEST(
      text.find("00:00:05.000 --> 00:00:06.000\nsb.jpg#xywh=800,0,160,90\n") !=
      std::string::npos);
  BOOST_TEST(std::count(text.begin(), text.end(), '#') == 6);
  // Tile 2 is the picture at 2 s.
  auto tile2 = fx.dir / "tile2.png";
  run(ff() + "-i " + quote(jpg.string()) + " -vf crop=160:90:320:0 " +
      quote(tile2.string()));
  double right =
      first_frame_psnr("-i " + quote(tile2.string()),
                       "-ss 2 -i " + quote(fx.src.string()), 160, 90);
  double wrong =
      first_frame_psnr("-i " + quote(tile2.string()),
                       "-ss 4 -i " + quote(fx.src.string()), 160, 90);
  BOOST_TEST_MESSAGE("tile 2: " << right << " dB, at 4 s " << wrong << " dB");
  BOOST_TEST(right > 25.0);
  BOOST_TEST(right > wrong + 3);

  // Every 2.5 s, 100 wide, two columns: 3 tiles on two rows.
  sb = write_storyboard(fx.src.string(), src, {}, jpg.string(), vtt.string(),
                        "sb.jpg", 2.5, 100, 2);
  BOOST_REQUIRE(sb);
  BOOST_TEST(sb->tiles == 3);
  BOOST_TEST(sb->tile_height == 56);
  BOOST_TEST(sb->columns == 2);
  BOOST_TEST(trim(capture("ffprobe -v error -show_entries stream=width,height "
                          "-of csv=p=0 " +
                          quote(jpg.string()))) == "200,112");
  text = read_file(vtt);
  BOOST_TEST(
      text.find("00:00:02.500 --> 00:00:05.000\nsb.jpg#xywh=100,0,100,56\n") !=
      std::string::npos);
  BOOST_TEST(
      text.find("00:00:05.000 --> 00:00:06.000\nsb.jpg#xywh=0,56,100,56\n") !=
      std::string::npos);

  // A clip: times count from its start, pictures come from inside it.
  sb = write_storyboard(fx.src.string(), src, {3.0, 2.0}, jpg.string(),
                        vtt.string(), "sb.jpg");
  BOOST_REQUIRE(sb);
  BOOST_TEST(sb->tiles == 2);
  text = read_file(vtt);
  BOOST_TEST(
      text.find("00:00:01.000 --> 00:00:02.000\nsb.jpg#xywh=160,0,160,90\n") !=
      std::string::npos);
  run(ff() + "-i " + quote(jpg.string()) + " -vf crop=160:90:0:0 " +
      quote(tile2.string()));
  BOOST_TEST(first_frame_psnr("-i " + quote(tile2.string()),
                              "-ss 3 -i " + quote(fx.src.string()), 160,
                              90) > 25.0);
  BOOST_TEST(!write_storyboard(fx.src.string(), src, {7.0, 0}, jpg.string(),
                               vtt.string(), "sb.jpg"));
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

  job.rungs = {ladder_for(sample_source(640, 360)).front()};
  job.chunk_files = {{(fixtures().dir / "missing.pkt").string()}};
  r = package_hls(job);
  BOOST_REQUIRE(!r);
  BOOST_TEST(reel::code_of(r.error()) == reel::ec::storage_error);

  // Through the packager: a failure sticks, and says why.
  auto p = packager::open(job);
  BOOST_REQUIRE(p);
  BOOST_TEST(reel::code_of((*p)->add_audio()) == reel::ec::invalid_argument);
  BOOST_TEST(reel::code_of((*p)->add_chunk(1)) == reel::ec::invalid_argument);
  auto err = (*p)->add_chunk(0);
  BOOST_TEST(reel::code_of(err) == reel::ec::storage_error);
  BOOST_TEST(reel::message_of(err).find("missing.pkt") != std::string::npos);
  BOOST_TEST(reel::message_of((*p)->add_chunk(0)) == reel::message_of(err));
  auto fin = (*p)->finish();
  BOOST_REQUIRE(!fin);
  BOOST_TEST(!(*p)->playable());
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

BOOST_AUTO_TEST_CASE(split_tail_cuts_the_last_chunks_at_keyframes) {
  probe_result src;
  src.tb_num = 1;
  src.tb_den = 25;
  src.start_pts = 0;
  src.end_pts = 500; // 20 s
  src.frame_count = 500;
  for (int64_t k = 0; k < 500; k += 50) // a keyframe every 2 s
    src.keyframes.push_back(k);
  auto plan = plan_chunks(src, 8, 4, {}, 4);
  auto before = plan;
  split_tail(plan, src, 2);
  // Same coverage, contiguous, indexes renumbered.
  BOOST_REQUIRE(!plan.empty());
  BOOST_TEST(plan.front().start_pts == 0);
  BOOST_TEST(plan.back().end_pts == 500);
  for (size_t i = 0; i < plan.size(); ++i) {
    BOOST_TEST(plan[i].index == static_cast<int>(i));
    BOOST_TEST(plan[i].segment_starts.front() == plan[i].start_pts);
    if (i > 0)
      BOOST_TEST(plan[i].start_pts == plan[i - 1].end_pts);
  }
  // The head is untouched; the last two chunks became 2 s pieces.
  BOOST_TEST(plan.size() > before.size());
  BOOST_TEST(plan[0].end_pts == before[0].end_pts);
  for (size_t i = before.size() - 2; i < plan.size(); ++i)
    BOOST_TEST(plan[i].end_pts - plan[i].start_pts <= 50);
  // Every segment start of the old plan is still one.
  std::set<int64_t> starts;
  for (auto& c : plan)
    starts.insert(c.segment_starts.begin(), c.segment_starts.end());
  for (auto& c : before)
    for (auto s : c.segment_starts)
      BOOST_TEST(starts.count(s) == 1u);
}
