// write_poster(): one upright picture of the source as a JPEG.

#include "codec/codec.hpp"
#include "codec/ffmpeg_glue.hpp"

#include <algorithm>
#include <cmath>
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

} // namespace

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
