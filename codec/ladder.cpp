// The encoding ladder and the chunk plan.

#include "codec/codec.hpp"
#include "codec/timeline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace reel::codec {

namespace {

// The ladder. One row per rung, highest first:
//
//   name    short side  maxrate (kbit/s)  crf   16:9 size
//   2160p   2160       16000              23    3840x2160
//   1440p   1440        9000              23    2560x1440
//   1080p   1080        5000              23    1920x1080
//   720p     720        2800              23    1280x720
//   480p     480        1400              23     854x480
//   360p     360         800              23     640x360
//   240p     240         400              23     426x240
//
// - A rung is used when its size is no larger than the source's, so nothing
//   is ever upscaled; a rung equal to the source size is included (a 720p
//   source gets 720p, 480p and 360p).
// - Sizes are measured on the picture as displayed, i.e. after the
//   display rotation. The row's size is the short side: for landscape
//   sources that is the height (1280x720 is "720p"); a portrait phone video
//   of 1080x1920 gets 1080x1920, 720x1280, ... so its best rung keeps the
//   source's detail instead of shrinking to 608x1080.
// - The long side keeps the source's aspect ratio, rounded to even (yuv420p
//   needs even sizes).
// - A source smaller than the lowest row gets one rung at its own (even)
//   size, named from its short side ("240p"), with a maxrate scaled from
//   the lowest row by pixel count.
// - crf 23 with a maxrate (VBV, buffer twice the maxrate) keeps easy content
//   small and hard content within a bit rate players can stream.
struct ladder_row {
  const char* name;
  int short_side;
  int max_kbps;
  int crf;
};

constexpr ladder_row ladder[] = {
    {"2160p", 2160, 16000, 23}, {"1440p", 1440, 9000, 23},
    {"1080p", 1080, 5000, 23},  {"720p", 720, 2800, 23},
    {"480p", 480, 1400, 23},    {"360p", 360, 800, 23},
    {"240p", 240, 400, 23},
};

int round_even(double x) {
  return std::max(2, static_cast<int>(std::lround(x / 2.0)) * 2);
}

} // namespace

std::vector<rung> ladder_for(const probe_result& src) {
  bool swap = src.rotation == 90 || src.rotation == 270;
  int disp_w = swap ? src.height : src.width;
  int disp_h = swap ? src.width : src.height;
  std::vector<rung> result;
  if (disp_w <= 0 || disp_h <= 0)
    return result;
  bool portrait = disp_h > disp_w;
  int short_side = portrait ? disp_w : disp_h;
  int long_side = portrait ? disp_h : disp_w;
  auto make = [&](std::string name, int s, int kbps, int crf) {
    rung r;
    r.name = std::move(name);
    int short_out = s % 2 == 0 ? s : s - 1;
    int long_out = round_even(static_cast<double>(s) * long_side / short_side);
    r.width = portrait ? short_out : long_out;
    r.height = portrait ? long_out : short_out;
    r.max_kbps = kbps;
    r.crf = crf;
    return r;
  };
  for (const auto& row : ladder)
    if (row.short_side <= short_side)
      result.push_back(make(row.name, row.short_side, row.max_kbps, row.crf));
  if (result.empty()) {
    const auto& low = ladder[std::size(ladder) - 1];
    int s = std::max(2, short_side - short_side % 2);
    double pixels = static_cast<double>(s) * s * long_side / short_side;
    double low_pixels = low.short_side * (low.short_side * 16.0 / 9.0);
    int kbps = std::max(
        100, static_cast<int>(std::lround(low.max_kbps * pixels / low_pixels)));
    result.push_back(make(std::to_string(s) + "p", s, kbps, low.crf));
  }
  return result;
}

namespace {

std::string seconds_text(double s, const char* format) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, s);
  return buf;
}

} // namespace

caf::error validate_clip(const probe_result& src, const clip_range& clip) {
  const double tb = tick_seconds(src);
  const double length = static_cast<double>(src.end_pts - src.start_pts) * tb;
  if (!std::isfinite(clip.start_s) || clip.start_s < 0)
    return make_error(ec::media_error, "clip_start " +
                                           seconds_text(clip.start_s, "%g") +
                                           " s is not a time in the video");
  if (!std::isfinite(clip.duration_s) || clip.duration_s < 0)
    return make_error(ec::media_error, "clip_duration " +
                                           seconds_text(clip.duration_s, "%g") +
                                           " s is not a duration");
  if (tb <= 0 || length <= 0)
    return make_error(ec::media_error, "the video has no frames");
  if (!clip_window_of(src, clip)) {
    if (clip.start_s >= length)
      return make_error(ec::media_error,
                        "clip_start " + seconds_text(clip.start_s, "%g") +
                            " s is beyond the video's " +
                            seconds_text(length, "%.1f") + " s");
    return make_error(ec::media_error,
                      "the clip from " + seconds_text(clip.start_s, "%g") +
                          " s for " + seconds_text(clip.duration_s, "%g") +
                          " s holds no frame of the video");
  }
  return {};
}

std::vector<chunk> plan_chunks(const probe_result& src, double chunk_seconds,
                               double segment_seconds, const clip_range& clip,
                               double first_chunk_seconds) {
  std::vector<chunk> result;
  auto window = clip_window_of(src, clip);
  if (!window)
    return result;
  const double tb = tick_seconds(src);
  auto seconds = [&](int64_t ticks) { return static_cast<double>(ticks) * tb; };
  constexpr double eps = 1e-9;
  // The first chunk is sized on its own when asked: short, so that the
  // start of the video is ready early, but at least a segment long.
  const bool short_first = first_chunk_seconds > 0;
  const double first_seconds =
      short_first ? std::max(first_chunk_seconds, segment_seconds)
                  : chunk_seconds;
  // Chunk boundaries: the start, then every keyframe at least the chunk
  // length after the previous boundary.
  std::vector<int64_t> bounds{window->start};
  for (int64_t k : src.keyframes) {
    if (k <= bounds.back())
      continue;
    if (k >= window->end)
      break;
    double want = bounds.size() == 1 ? first_seconds : chunk_seconds;
    if (seconds(k - bounds.back()) + eps >= want)
      bounds.push_back(k);
  }
  // A last chunk under half the chunk length joins the one before it, so the
  // file does not end in a sliver of a segment (unless that one is a short
  // first chunk, which stays short).
  if (bounds.size() > 1 && !(short_first && bounds.size() == 2) &&
      seconds(window->end - bounds.back()) + eps < chunk_seconds / 2)
    bounds.pop_back();
  bounds.push_back(window->end);
  for (size_t i = 0; i + 1 < bounds.size(); ++i) {
    chunk c;
    c.index = static_cast<int>(i);
    c.start_pts = bounds[i];
    c.end_pts = bounds[i + 1];
    int64_t len = c.end_pts - c.start_pts;
    long n = 1;
    if (segment_seconds > 0)
      n = std::max(1L, std::lround(seconds(len) / segment_seconds));
    for (long j = 0; j < n; ++j)
      c.segment_starts.push_back(
          c.start_pts +
          static_cast<int64_t>(static_cast<long double>(len) * j / n));
    result.push_back(std::move(c));
  }
  return result;
}

void split_tail(std::vector<chunk>& plan, const probe_result& src,
                size_t chunks) {
  if (plan.size() < 2 || chunks == 0)
    return;
  // Never the first chunk: it is short already, and chunk 0 is the start.
  size_t from = plan.size() > chunks ? plan.size() - chunks : 1;
  std::vector<chunk> out(plan.begin(), plan.begin() + from);
  for (size_t i = from; i < plan.size(); ++i) {
    const auto& c = plan[i];
    // Cut at every source keyframe inside the chunk.
    std::vector<int64_t> cuts{c.start_pts};
    for (int64_t k : src.keyframes)
      if (k > c.start_pts && k < c.end_pts)
        cuts.push_back(k);
    cuts.push_back(c.end_pts);
    for (size_t j = 0; j + 1 < cuts.size(); ++j) {
      chunk piece;
      piece.start_pts = cuts[j];
      piece.end_pts = cuts[j + 1];
      // The piece starts a segment; the chunk's own segment starts inside
      // it stay where they were.
      piece.segment_starts.push_back(piece.start_pts);
      for (int64_t s : c.segment_starts)
        if (s > piece.start_pts && s < piece.end_pts)
          piece.segment_starts.push_back(s);
      out.push_back(std::move(piece));
    }
  }
  for (size_t i = 0; i < out.size(); ++i)
    out[i].index = static_cast<int>(i);
  plan = std::move(out);
}

} // namespace reel::codec
