#pragma once

// Source-time arithmetic shared by the chunk plan, the encoders and the
// pictures: where a clip starts and ends in the video stream's ticks, and
// which frames survive the frame-rate cap. Private to codec/.

#include "codec/codec.hpp"

#include <cstdint>
#include <optional>

namespace reel::codec {

/// A clip in the video stream's time base: frames with start <= pts < end.
struct clip_window {
  int64_t start = 0;
  int64_t end = 0;
};

/// The ticks of `clip` in `src`'s video time base, or nothing when the clip
/// holds no frame. For a constant frame rate source both ends are moved up
/// to the frame grid, so that the clip starts exactly at a frame and the
/// audio, cut from the same window, starts with it.
std::optional<clip_window> clip_window_of(const probe_result& src,
                                          const clip_range& clip);

/// Seconds per tick of the video stream.
double tick_seconds(const probe_result& src);

/// The most frames per second any output has.
constexpr double max_output_fps = 60;

/// Sources above max_output_fps keep every n-th frame: n (1: all frames).
int frame_rate_divisor(const probe_result& src);

/// Whether the frame at `pts` is kept under the frame-rate cap: frames are
/// numbered on a grid fixed in source time (from start_pts) and every
/// divisor-th one is kept, whichever chunk decodes it.
bool keeps_frame(const probe_result& src, int64_t pts);

/// The pts of the first kept frame at or after `pts` (`pts` itself when
/// nothing is dropped).
int64_t next_kept_pts(const probe_result& src, int64_t pts);

} // namespace reel::codec
