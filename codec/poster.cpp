// Pictures of the source: write_poster() (one upright picture as a JPEG),
// choose_poster_time() (a picture worth showing) and write_storyboard()
// (scrubbing thumbnails in one JPEG with a WebVTT index).

#include "codec/codec.hpp"
#include "codec/ffmpeg_glue.hpp"
#include "codec/timeline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <limits>
#include <optional>
#include <vector>

namespace reel::codec {

namespace {

// mjpeg quality scale: 2 (best) to 31; 3 is visually clean at poster sizes.
constexpr int jpeg_qscale = 3;

// Decodes the first picture at or after `target` (the last one when the
// stream ends first), seeking to the keyframe before it.
caf::expected<frame_ptr> grab_picture(AVFormatContext* fmt, AVStream* st,
                                      AVCodecContext* dec, int64_t target) {
  if (int err = av_seek_frame(fmt, st->index, target, AVSEEK_FLAG_BACKWARD);
      err < 0)
    return av_error(err, "seeking in the source");
  avcodec_flush_buffers(dec);
  frame_ptr best;
  bool found = false;
  caf::error failure;
  auto sink = [&](AVFrame* f) {
    if (!best)
      best = make_frame();
    av_frame_unref(best.get());
    if (int err = av_frame_ref(best.get(), f); err < 0) {
      failure = av_error(err, "referencing a frame");
      return false;
    }
    int64_t pts = frame_pts(f);
    found = pts == AV_NOPTS_VALUE || pts >= target;
    return !found;
  };
  auto frame = make_frame();
  auto pkt = make_packet();
  int err = 0;
  while (!found && (err = av_read_frame(fmt, pkt.get())) >= 0) {
    if (pkt->stream_index == st->index) {
      auto res = decode(dec, pkt.get(), frame.get(), sink);
      if (failure)
        return failure;
      if (res.status == pump_status::failed && res.err != AVERROR_INVALIDDATA)
        return av_error(res.err, "decoding the source");
    }
    av_packet_unref(pkt.get());
  }
  if (!found) {
    decode(dec, nullptr, frame.get(), sink);
    if (failure)
      return failure;
  }
  if (!best)
    return media_error("no picture to make a poster from");
  return best;
}

caf::expected<std::vector<uint8_t>> encode_jpeg(const AVFrame* picture) {
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
  if (codec == nullptr)
    return media_error("the mjpeg encoder is not available");
  codec_context_ptr ctx{avcodec_alloc_context3(codec)};
  if (!ctx)
    return media_error("cannot allocate an encoder");
  ctx->width = picture->width;
  ctx->height = picture->height;
  // Full-range 4:2:0, what JPEG means (yuvj420p without the deprecated
  // pixel format).
  ctx->pix_fmt = AV_PIX_FMT_YUV420P;
  ctx->color_range = AVCOL_RANGE_JPEG;
  ctx->time_base = AVRational{1, 25};
  ctx->flags |= AV_CODEC_FLAG_QSCALE;
  ctx->global_quality = FF_QP2LAMBDA * jpeg_qscale;
  if (int err = avcodec_open2(ctx.get(), codec, nullptr); err < 0)
    return av_error(err, "opening the mjpeg encoder");
  auto frame = make_frame();
  if (int err = av_frame_ref(frame.get(), picture); err < 0)
    return av_error(err, "referencing a frame");
  frame->pts = 0;
  frame->quality = ctx->global_quality;
  std::vector<uint8_t> jpeg;
  auto keep = [&](AVPacket* p) {
    jpeg.insert(jpeg.end(), p->data, p->data + p->size);
    return true;
  };
  auto pkt = make_packet();
  for (const AVFrame* in : {static_cast<const AVFrame*>(frame.get()),
                            static_cast<const AVFrame*>(nullptr)}) {
    auto res = encode(ctx.get(), in, pkt.get(), keep);
    if (res.status == pump_status::failed)
      return av_error(res.err, "encoding the poster");
  }
  if (jpeg.empty())
    return media_error("the mjpeg encoder produced nothing");
  return jpeg;
}

/// Decodes the video stream forward and hands out the first picture at or
/// after each (ascending) target time. Seeks only when a keyframe lies
/// between the last picture and the target, so that close targets cost one
/// forward decode and far ones skip what lies between.
class picture_reader {
public:
  caf::error open(const std::string& source, const probe_result& src) {
    src_ = &src;
    auto fmt = open_input(source);
    if (!fmt)
      return fmt.error();
    fmt_ = std::move(*fmt);
    if (src.video_stream < 0 ||
        src.video_stream >= static_cast<int>(fmt_->nb_streams))
      return media_error("no video stream");
    for (unsigned i = 0; i < fmt_->nb_streams; ++i)
      if (static_cast<int>(i) != src.video_stream)
        fmt_->streams[i]->discard = AVDISCARD_ALL;
    st_ = fmt_->streams[src.video_stream];
    auto dec = open_decoder(st_, 0);
    if (!dec)
      return dec.error();
    dec_ = std::move(*dec);
    return {};
  }

  /// The first picture with pts >= target (the last one when the video
  /// ends first); it stays valid until the next call.
  caf::expected<const AVFrame*> at(int64_t target) {
    if (current_ && frame_pts(current_.get()) >= target)
      return static_cast<const AVFrame*>(current_.get());
    if (should_seek(target))
      if (auto err = seek(target))
        return err;
    for (;;) {
      auto next = pull();
      if (!next)
        return next.error();
      if (!*next) // the end: the last picture
        break;
      current_ = std::move(*next);
      if (frame_pts(current_.get()) >= target)
        break;
    }
    if (!current_)
      return media_error("no picture in the video");
    return static_cast<const AVFrame*>(current_.get());
  }

private:
  bool should_seek(int64_t target) const {
    int64_t pos = current_ ? frame_pts(current_.get())
                           : std::numeric_limits<int64_t>::min();
    if (!started_)
      return target > src_->start_pts;
    if (target < pos)
      return true;
    const auto& keys = src_->keyframes;
    auto k = std::upper_bound(keys.begin(), keys.end(), target);
    return k != keys.begin() && *std::prev(k) > pos &&
           *std::prev(k) > last_read_;
  }

  caf::error seek(int64_t target) {
    if (int err =
            av_seek_frame(fmt_.get(), st_->index, target, AVSEEK_FLAG_BACKWARD);
        err < 0)
      return av_error(err, "seeking in the source");
    avcodec_flush_buffers(dec_.get());
    ready_.clear();
    current_.reset();
    eof_ = false;
    started_ = true;
    last_read_ = std::numeric_limits<int64_t>::min();
    return {};
  }

  // The next decoded picture, or nullptr at the end.
  caf::expected<frame_ptr> pull() {
    started_ = true;
    auto keep = [&](AVFrame* f) {
      if (frame_pts(f) == AV_NOPTS_VALUE)
        return true;
      auto copy = make_frame();
      if (av_frame_ref(copy.get(), f) < 0)
        return false;
      ready_.push_back(std::move(copy));
      return true;
    };
    while (ready_.empty() && !eof_) {
      int err = av_read_frame(fmt_.get(), pkt_.get());
      if (err < 0) {
        eof_ = true;
        decode(dec_.get(), nullptr, scratch_.get(), keep);
        break;
      }
      if (pkt_->stream_index == st_->index) {
        int64_t ts = pkt_->pts != AV_NOPTS_VALUE ? pkt_->pts : pkt_->dts;
        if (ts != AV_NOPTS_VALUE)
          last_read_ = std::max(last_read_, ts);
        auto res = decode(dec_.get(), pkt_.get(), scratch_.get(), keep);
        if (res.status == pump_status::stopped)
          return media_error("out of memory decoding the source");
        if (res.status == pump_status::failed && res.err != AVERROR_INVALIDDATA)
          return av_error(res.err, "decoding the source");
      }
      av_packet_unref(pkt_.get());
    }
    if (ready_.empty())
      return frame_ptr{};
    auto f = std::move(ready_.front());
    ready_.pop_front();
    return f;
  }

  const probe_result* src_ = nullptr;
  input_context_ptr fmt_;
  AVStream* st_ = nullptr;
  codec_context_ptr dec_;
  packet_ptr pkt_ = make_packet();
  frame_ptr scratch_ = make_frame();
  std::deque<frame_ptr> ready_;
  frame_ptr current_;
  int64_t last_read_ = std::numeric_limits<int64_t>::min();
  bool eof_ = false;
  bool started_ = false;
};

// The variance of the luma of `f`, measured on a small gray copy.
caf::expected<double> luma_variance(const AVFrame* f, frame_scaler& scaler) {
  constexpr int w = 64;
  int h = std::max(2, static_cast<int>(std::lround(static_cast<double>(w) *
                                                   f->height / f->width)));
  auto gray = scaler.scale(f, w, h, AV_PIX_FMT_GRAY8, true);
  if (!gray)
    return gray.error();
  double sum = 0;
  double sum2 = 0;
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = (*gray)->data[0] + y * (*gray)->linesize[0];
    for (int x = 0; x < w; ++x) {
      sum += row[x];
      sum2 += static_cast<double>(row[x]) * row[x];
    }
  }
  double n = static_cast<double>(w) * h;
  double mean = sum / n;
  return sum2 / n - mean * mean;
}

int even_at_least_2(double x) {
  return std::max(2, static_cast<int>(std::lround(x / 2.0)) * 2);
}

// "HH:MM:SS.mmm" for WebVTT.
std::string vtt_time(double seconds) {
  auto ms = static_cast<int64_t>(std::llround(seconds * 1000));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02lld:%02lld:%02lld.%03lld",
                static_cast<long long>(ms / 3600000),
                static_cast<long long>(ms / 60000 % 60),
                static_cast<long long>(ms / 1000 % 60),
                static_cast<long long>(ms % 1000));
  return buf;
}

// The most tiles a storyboard has: beyond this the interval is too short
// for the video (the image would be enormous).
constexpr int max_storyboard_tiles = 1000;

} // namespace

double keyframe_time_before(const probe_result& src, double at_s,
                            double not_before_s) {
  const double tb = tick_seconds(src);
  auto to_pts = [&](double s) {
    return src.start_pts + static_cast<int64_t>(std::llround(s / tb));
  };
  auto target = to_pts(at_s);
  auto floor_pts = to_pts(not_before_s);
  auto it = std::upper_bound(src.keyframes.begin(), src.keyframes.end(), target);
  if (it == src.keyframes.begin() || *std::prev(it) < floor_pts)
    return at_s;
  return static_cast<double>(*std::prev(it) - src.start_pts) * tb;
}

caf::expected<double> choose_poster_time(const std::string& source,
                                         const probe_result& src,
                                         const clip_range& clip) {
  auto window = clip_window_of(src, clip);
  if (!window)
    return validate_clip(src, clip);
  picture_reader reader;
  if (auto err = reader.open(source, src))
    return err;
  const double tb = tick_seconds(src);
  const int64_t length = window->end - window->start;
  // Candidates at 10%, 20%, ... 50% of the clip: past the first frame (often
  // black or a title), within its first half.
  constexpr int candidates = 5;
  frame_scaler scaler;
  double best_score = -1;
  int64_t best_pts = window->start;
  int64_t last_pts = std::numeric_limits<int64_t>::min();
  for (int i = 1; i <= candidates; ++i) {
    int64_t target = window->start + length * i / (2 * candidates);
    // On the keyframe before it, when that is still past the previous
    // candidate: one decoded picture per candidate.
    auto lo = std::max(window->start + 1, last_pts + 1);
    auto it = std::upper_bound(src.keyframes.begin(), src.keyframes.end(), target);
    if (it != src.keyframes.begin() && *std::prev(it) >= lo)
      target = *std::prev(it);
    auto pic = reader.at(target);
    if (!pic)
      return pic.error();
    int64_t pts = frame_pts(*pic);
    if (pts == last_pts || pts >= window->end)
      continue; // a short clip: the same picture again, or past the end
    last_pts = pts;
    auto score = luma_variance(*pic, scaler);
    if (!score)
      return score.error();
    if (*score > best_score + 1e-9) {
      best_score = *score;
      best_pts = pts;
    }
  }
  return static_cast<double>(best_pts - src.start_pts) * tb;
}

caf::expected<storyboard_result>
write_storyboard(const std::string& source, const probe_result& src,
                 const clip_range& clip, const std::string& out_jpg,
                 const std::string& out_vtt, const std::string& image_name,
                 double interval_s, int tile_width, int columns) {
  auto window = clip_window_of(src, clip);
  if (!window)
    return validate_clip(src, clip);
  if (tile_width < 2 || columns < 1)
    return make_error(ec::invalid_argument,
                      "a storyboard needs tiles at least 2 pixels wide and at "
                      "least one column");
  const double tb = tick_seconds(src);
  const double length = static_cast<double>(window->end - window->start) * tb;
  storyboard_result r;
  r.interval_s =
      interval_s > 0 ? interval_s : std::max(1.0, std::ceil(length / 100.0));
  r.tiles =
      std::max(1, static_cast<int>(std::ceil(length / r.interval_s - 1e-9)));
  if (r.tiles > max_storyboard_tiles)
    return make_error(ec::invalid_argument,
                      "a storyboard every " + std::to_string(r.interval_s) +
                          " s makes " + std::to_string(r.tiles) +
                          " tiles, more than " +
                          std::to_string(max_storyboard_tiles));
  int disp_w = 0;
  int disp_h = 0;
  rotated_size(src.width, src.height, src.rotation, disp_w, disp_h);
  if (disp_w <= 0 || disp_h <= 0)
    return media_error("video stream without a picture size");
  r.tile_width = std::max(2, tile_width - tile_width % 2);
  r.tile_height =
      even_at_least_2(static_cast<double>(r.tile_width) * disp_h / disp_w);
  r.columns = std::min(columns, r.tiles);
  const int rows = (r.tiles + r.columns - 1) / r.columns;

  // The sheet: full-range 4:2:0 (what JPEG means), black where no tile is.
  auto sheet = make_frame();
  sheet->width = r.columns * r.tile_width;
  sheet->height = rows * r.tile_height;
  sheet->format = AV_PIX_FMT_YUV420P;
  sheet->color_range = AVCOL_RANGE_JPEG;
  if (int err = av_frame_get_buffer(sheet.get(), 0); err < 0)
    return av_error(err, "allocating the storyboard");
  for (int plane = 0; plane < 3; ++plane) {
    int h = plane == 0 ? sheet->height : sheet->height / 2;
    for (int y = 0; y < h; ++y)
      std::fill_n(sheet->data[plane] + y * sheet->linesize[plane],
                  plane == 0 ? sheet->width : sheet->width / 2,
                  static_cast<uint8_t>(plane == 0 ? 0 : 128));
  }

  picture_reader reader;
  if (auto err = reader.open(source, src))
    return err;
  frame_scaler rotator;
  frame_scaler scaler;
  std::string vtt = "WEBVTT\n\n";
  for (int i = 0; i < r.tiles; ++i) {
    double at = i * r.interval_s;
    int64_t target =
        window->start + static_cast<int64_t>(std::llround(at / tb));
    auto pic = reader.at(std::min(target, window->end - 1));
    if (!pic)
      return pic.error();
    auto up = upright(*pic, src.rotation, rotator);
    if (!up)
      return up.error();
    auto tile = scaler.scale(up->get(), r.tile_width, r.tile_height,
                             AV_PIX_FMT_YUV420P, true);
    if (!tile)
      return tile.error();
    const int x = (i % r.columns) * r.tile_width;
    const int y = (i / r.columns) * r.tile_height;
    for (int plane = 0; plane < 3; ++plane) {
      const int shift = plane == 0 ? 0 : 1;
      const int w = r.tile_width >> shift;
      const int h = r.tile_height >> shift;
      for (int row = 0; row < h; ++row)
        std::copy_n((*tile)->data[plane] + row * (*tile)->linesize[plane], w,
                    sheet->data[plane] +
                        ((y >> shift) + row) * sheet->linesize[plane] +
                        (x >> shift));
    }
    double end = std::min(length, (i + 1) * r.interval_s);
    vtt += vtt_time(at) + " --> " + vtt_time(end) + "\n" + image_name +
           "#xywh=" + std::to_string(x) + "," + std::to_string(y) + "," +
           std::to_string(r.tile_width) + "," + std::to_string(r.tile_height) +
           "\n\n";
  }
  auto jpeg = encode_jpeg(sheet.get());
  if (!jpeg)
    return jpeg.error();
  if (auto err = write_file_atomically(out_jpg, jpeg->data(), jpeg->size()))
    return err;
  if (auto err = write_file_atomically(out_vtt, vtt.data(), vtt.size()))
    return err;
  return r;
}

caf::error write_poster(const std::string& source, const probe_result& src,
                        double at_seconds, int max_height,
                        const std::string& output) {
  if (max_height < 2)
    return make_error(ec::invalid_argument, "poster height too small");
  auto fmt = open_input(source);
  if (!fmt)
    return fmt.error();
  if (src.video_stream < 0 ||
      src.video_stream >= static_cast<int>((*fmt)->nb_streams))
    return media_error("no video stream");
  for (unsigned i = 0; i < (*fmt)->nb_streams; ++i)
    if (static_cast<int>(i) != src.video_stream)
      (*fmt)->streams[i]->discard = AVDISCARD_ALL;
  AVStream* st = (*fmt)->streams[src.video_stream];
  auto dec = open_decoder(st, 1);
  if (!dec)
    return dec.error();

  // at_seconds counts from the first picture; stay inside the video.
  const double tb = av_q2d(st->time_base);
  int64_t target =
      src.start_pts + static_cast<int64_t>(std::max(0.0, at_seconds) / tb);
  int64_t frame_ticks =
      src.fps > 0 ? static_cast<int64_t>(1 / (src.fps * tb)) : 1;
  target = std::clamp(target, src.start_pts,
                      std::max(src.start_pts, src.end_pts - frame_ticks));
  auto picture = grab_picture(fmt->get(), st, dec->get(), target);
  if (!picture)
    return picture.error();

  frame_scaler converter;
  auto up = upright(picture->get(), src.rotation, converter);
  if (!up)
    return up.error();
  int height = std::min(max_height, (*up)->height);
  height -= height % 2;
  height = std::max(height, 2);
  int width = static_cast<int>(std::lround(static_cast<double>((*up)->width) *
                                           height / (*up)->height / 2.0)) *
              2;
  width = std::max(width, 2);
  frame_scaler scaler;
  auto scaled =
      scaler.scale(up->get(), width, height, AV_PIX_FMT_YUV420P, true);
  if (!scaled)
    return scaled.error();
  auto jpeg = encode_jpeg(scaled->get());
  if (!jpeg)
    return jpeg.error();
  return write_file_atomically(output, jpeg->data(), jpeg->size());
}

} // namespace reel::codec
