// Source-time arithmetic: clip windows and the frame-rate cap.

#include "codec/timeline.hpp"

#include <algorithm>
#include <cmath>

namespace reel::codec {

double tick_seconds(const probe_result& src) {
  if (src.tb_num <= 0 || src.tb_den <= 0)
    return 0;
  return static_cast<double>(src.tb_num) / src.tb_den;
}

std::optional<clip_window> clip_window_of(const probe_result& src,
                                          const clip_range& clip) {
  const double tb = tick_seconds(src);
  if (tb <= 0 || src.end_pts <= src.start_pts || !(clip.start_s >= 0) ||
      !(clip.duration_s >= 0) || !std::isfinite(clip.start_s) ||
      !std::isfinite(clip.duration_s))
    return std::nullopt;
  // Up to the next tick (a microsecond's slack absorbs decimal inputs such
  // as 1.52 s that are not exact in binary), then up to the frame grid.
  auto ticks_at = [&](double seconds) {
    double t = std::ceil(seconds / tb - 1e-6 / tb);
    if (t > 9e18)
      return src.end_pts;
    int64_t pts = src.start_pts + std::max<int64_t>(0, static_cast<int64_t>(t));
    if (src.frame_ticks > 0) {
      int64_t off = pts - src.start_pts;
      pts = src.start_pts +
            (off + src.frame_ticks - 1) / src.frame_ticks * src.frame_ticks;
    }
    return std::min(pts, src.end_pts);
  };
  clip_window w;
  w.start = ticks_at(clip.start_s);
  w.end = clip.duration_s > 0 ? ticks_at(clip.start_s + clip.duration_s)
                              : src.end_pts;
  if (w.start >= src.end_pts || w.end <= w.start)
    return std::nullopt;
  return w;
}

int frame_rate_divisor(const probe_result& src) {
  if (!(src.fps > max_output_fps + 0.01))
    return 1;
  return std::max(1,
                  static_cast<int>(std::ceil(src.fps / max_output_fps - 1e-3)));
}

namespace {

// The frame number of `pts` on the source's frame grid (rounded).
int64_t grid_index(const probe_result& src, int64_t pts) {
  auto off = static_cast<double>(pts - src.start_pts);
  if (src.frame_ticks > 0)
    return std::llround(off / static_cast<double>(src.frame_ticks));
  return std::llround(off * tick_seconds(src) * src.fps);
}

} // namespace

bool keeps_frame(const probe_result& src, int64_t pts) {
  int n = frame_rate_divisor(src);
  if (n == 1)
    return true;
  int64_t k = grid_index(src, pts);
  return ((k % n) + n) % n == 0;
}

int64_t next_kept_pts(const probe_result& src, int64_t pts) {
  int n = frame_rate_divisor(src);
  if (n == 1)
    return pts;
  int64_t k = grid_index(src, pts);
  int64_t kept = (k + n - 1) / n * n;
  if (kept == k)
    return pts;
  if (src.frame_ticks > 0)
    return src.start_pts + kept * src.frame_ticks;
  return src.start_pts + std::llround(static_cast<double>(kept) /
                                      (src.fps * tick_seconds(src)));
}

} // namespace reel::codec
