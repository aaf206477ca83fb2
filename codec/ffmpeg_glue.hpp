#pragma once

// The codec module's private glue around libav: the one place libav error
// codes become caf::errors (av_error), the one send/receive loop (pump),
// opening inputs and decoders, making frames upright and scaling them, and
// writing files atomically. Private to codec/.

#include "codec/ffmpeg_ptr.hpp"
#include "ops/error.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>
}

#include <cstdint>
#include <functional>
#include <string>

namespace reel::codec {

/// libav's text for `err` (av_strerror).
std::string av_err_text(int err);

/// The one conversion of a libav error code: ec::media_error with
/// "<what>: <av_strerror text>".
caf::error av_error(int err, const std::string& what);

/// A media_error with a plain reason.
caf::error media_error(std::string what);

// -- the send/receive loop ---------------------------------------------------

/// How one turn of the send/receive loop ended.
enum class pump_status {
  more,    // the codec wants more input
  drained, // flushed: the codec has nothing more to give (after null input)
  stopped, // the sink asked to stop
  failed,  // a libav call failed; see pump_result::err
};

struct pump_result {
  pump_status status = pump_status::more;
  int err = 0; // the libav error code when status == failed
};

/// Decoding: sends `pkt` (nullptr flushes) and hands every frame that comes
/// out to `sink`, which returns false to stop. The frame is unreferenced
/// after the sink returns; the sink takes its own reference if it keeps it.
pump_result decode(AVCodecContext* ctx, const AVPacket* pkt, AVFrame* scratch,
                   const std::function<bool(AVFrame*)>& sink);

/// Encoding: the same for a frame in (nullptr flushes) and packets out.
pump_result encode(AVCodecContext* ctx, const AVFrame* frame, AVPacket* scratch,
                   const std::function<bool(AVPacket*)>& sink);

// -- inputs and decoders -----------------------------------------------------

/// Opens `path` for demuxing and reads stream information.
caf::expected<input_context_ptr> open_input(const std::string& path);

/// Opens a decoder for `st` with `threads` threads (0: libav picks).
caf::expected<codec_context_ptr> open_decoder(const AVStream* st, int threads);

/// The timestamp of a decoded frame: pts, else libav's best effort.
int64_t frame_pts(const AVFrame* f);

// -- pictures ----------------------------------------------------------------

/// Width and height once `rotation` (0/90/180/270, clockwise) is applied.
void rotated_size(int width, int height, int rotation, int& out_w, int& out_h);

/// Converts and scales frames; keeps its swscale context between calls.
class frame_scaler {
public:
  /// A new frame of `width` x `height` in `format` with `src`'s picture;
  /// `full_range` makes its YUV full range (JPEG) instead of limited.
  caf::expected<frame_ptr> scale(const AVFrame* src, int width, int height,
                                 AVPixelFormat format, bool full_range = false);

private:
  sws_ptr sws_;
};

/// Makes `src` upright: a new yuv420p frame rotated clockwise by `rotation`
/// degrees (the display rotation of the source). With rotation 0 the result
/// is `src` converted to yuv420p (a new reference when it already is one).
caf::expected<frame_ptr> upright(const AVFrame* src, int rotation,
                                 frame_scaler& converter);

// -- files -------------------------------------------------------------------

/// fsyncs `tmp`, renames it to `path` and fsyncs the directory.
caf::error commit_file(const std::string& tmp, const std::string& path);

/// Writes `size` bytes to `path` + ".tmp" and commits it to `path`.
caf::error write_file_atomically(const std::string& path, const void* data,
                                 size_t size);

} // namespace reel::codec
