#include "codec/ffmpeg_glue.hpp"

extern "C" {
#include <libavutil/audio_fifo.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/imgutils.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

namespace reel::codec {

// -- deleters and factories --------------------------------------------------

void input_context_deleter::operator()(AVFormatContext* p) const {
  avformat_close_input(&p);
}

void output_context_deleter::operator()(AVFormatContext* p) const {
  if (p == nullptr)
    return;
  if (p->oformat != nullptr && !(p->oformat->flags & AVFMT_NOFILE))
    avio_closep(&p->pb);
  avformat_free_context(p);
}

void codec_context_deleter::operator()(AVCodecContext* p) const {
  avcodec_free_context(&p);
}

void frame_deleter::operator()(AVFrame* p) const {
  av_frame_free(&p);
}

void packet_deleter::operator()(AVPacket* p) const {
  av_packet_free(&p);
}

void sws_deleter::operator()(SwsContext* p) const {
  sws_freeContext(p);
}

void swr_deleter::operator()(SwrContext* p) const {
  swr_free(&p);
}

void audio_fifo_deleter::operator()(AVAudioFifo* p) const {
  av_audio_fifo_free(p);
}

frame_ptr make_frame() {
  frame_ptr f{av_frame_alloc()};
  if (!f)
    std::abort();
  return f;
}

packet_ptr make_packet() {
  packet_ptr p{av_packet_alloc()};
  if (!p)
    std::abort();
  return p;
}

// -- errors ------------------------------------------------------------------

std::string av_err_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  if (av_strerror(err, buf, sizeof(buf)) < 0)
    return "libav error " + std::to_string(err);
  return buf;
}

caf::error av_error(int err, const std::string& what) {
  // libav reports file system failures as negative errno values: a full
  // disk is not bad media (the work is retried once space returns).
  if (err == AVERROR(ENOSPC) || err == AVERROR(EDQUOT))
    return make_error(ec::no_space, what + ": " + av_err_text(err));
  if (err == AVERROR(EIO) || err == AVERROR(EACCES) || err == AVERROR(EROFS))
    return make_error(ec::storage_error, what + ": " + av_err_text(err));
  return make_error(ec::media_error, what + ": " + av_err_text(err));
}

caf::error media_error(std::string what) {
  return make_error(ec::media_error, std::move(what));
}

// -- the send/receive loop ---------------------------------------------------

namespace {

// The one loop behind decode() and encode(): send the input (or the flush
// signal), then receive until the codec wants more, is drained, or the sink
// says stop. EAGAIN from send cannot happen because every turn drains the
// codec before the next send.
template <class In, class Out, class Sink>
pump_result pump(AVCodecContext* ctx, int (*send)(AVCodecContext*, const In*),
                 int (*receive)(AVCodecContext*, Out*), void (*unref)(Out*),
                 const In* in, Out* out, const Sink& sink) {
  if (int err = send(ctx, in); err < 0) {
    // Sending the flush signal twice is harmless: report drained.
    if (err == AVERROR_EOF)
      return {pump_status::drained, 0};
    return {pump_status::failed, err};
  }
  for (;;) {
    int err = receive(ctx, out);
    if (err == AVERROR(EAGAIN))
      return {pump_status::more, 0};
    if (err == AVERROR_EOF)
      return {pump_status::drained, 0};
    if (err < 0)
      return {pump_status::failed, err};
    bool go_on = sink(out);
    unref(out);
    if (!go_on)
      return {pump_status::stopped, 0};
  }
}

} // namespace

pump_result decode(AVCodecContext* ctx, const AVPacket* pkt, AVFrame* scratch,
                   const std::function<bool(AVFrame*)>& sink) {
  return pump(ctx, avcodec_send_packet, avcodec_receive_frame, av_frame_unref,
              pkt, scratch, sink);
}

pump_result encode(AVCodecContext* ctx, const AVFrame* frame, AVPacket* scratch,
                   const std::function<bool(AVPacket*)>& sink) {
  return pump(ctx, avcodec_send_frame, avcodec_receive_packet, av_packet_unref,
              frame, scratch, sink);
}

// -- inputs and decoders -----------------------------------------------------

caf::expected<input_context_ptr> open_input(const std::string& path) {
  AVFormatContext* raw = nullptr;
  if (int err = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
      err < 0)
    return av_error(err, "not a media file");
  input_context_ptr fmt{raw};
  if (int err = avformat_find_stream_info(fmt.get(), nullptr); err < 0)
    return av_error(err, "not a media file");
  return fmt;
}

caf::expected<codec_context_ptr> open_decoder(const AVStream* st, int threads) {
  const AVCodec* dec = avcodec_find_decoder(st->codecpar->codec_id);
  if (dec == nullptr)
    return media_error(std::string{"no decoder for "} +
                       avcodec_get_name(st->codecpar->codec_id));
  codec_context_ptr ctx{avcodec_alloc_context3(dec)};
  if (!ctx)
    return media_error("cannot allocate a decoder");
  if (int err = avcodec_parameters_to_context(ctx.get(), st->codecpar); err < 0)
    return av_error(err, "decoder parameters");
  ctx->pkt_timebase = st->time_base;
  ctx->thread_count = threads;
  if (int err = avcodec_open2(ctx.get(), dec, nullptr); err < 0)
    return av_error(err, std::string{"opening the "} + dec->name + " decoder");
  return ctx;
}

int64_t frame_pts(const AVFrame* f) {
  return f->pts != AV_NOPTS_VALUE ? f->pts : f->best_effort_timestamp;
}

// -- pictures ----------------------------------------------------------------

void rotated_size(int width, int height, int rotation, int& out_w, int& out_h) {
  bool swap = rotation == 90 || rotation == 270;
  out_w = swap ? height : width;
  out_h = swap ? width : height;
}

caf::expected<frame_ptr> frame_scaler::scale(const AVFrame* src, int width,
                                             int height, AVPixelFormat format,
                                             bool full_range) {
  sws_.reset(sws_getCachedContext(sws_.release(), src->width, src->height,
                                  static_cast<AVPixelFormat>(src->format),
                                  width, height, format, SWS_BICUBIC, nullptr,
                                  nullptr, nullptr));
  if (!sws_)
    return media_error("cannot scale " + std::to_string(src->width) + "x" +
                       std::to_string(src->height) + " to " +
                       std::to_string(width) + "x" + std::to_string(height));
  if (full_range) {
    int* inv_table = nullptr;
    int* table = nullptr;
    int src_range = 0;
    int dst_range = 0;
    int brightness = 0;
    int contrast = 0;
    int saturation = 0;
    sws_getColorspaceDetails(sws_.get(), &inv_table, &src_range, &table,
                             &dst_range, &brightness, &contrast, &saturation);
    src_range = src_range || src->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(sws_.get(), inv_table, src_range, table, 1,
                             brightness, contrast, saturation);
  }
  auto dst = make_frame();
  dst->width = width;
  dst->height = height;
  dst->format = format;
  dst->color_range = full_range ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
  if (int err = av_frame_get_buffer(dst.get(), 0); err < 0)
    return av_error(err, "allocating a frame");
  sws_scale(sws_.get(), src->data, src->linesize, 0, src->height, dst->data,
            dst->linesize);
  dst->pts = src->pts;
  return dst;
}

namespace {

// Rotates one 8-bit plane of w x h clockwise by `rotation` degrees.
void rotate_plane(const uint8_t* src, int src_stride, int w, int h,
                  uint8_t* dst, int dst_stride, int rotation) {
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = src + static_cast<ptrdiff_t>(y) * src_stride;
    for (int x = 0; x < w; ++x) {
      int dx = 0;
      int dy = 0;
      switch (rotation) {
      case 90: // transpose=clock: top-left comes from bottom-left
        dx = h - 1 - y;
        dy = x;
        break;
      case 180:
        dx = w - 1 - x;
        dy = h - 1 - y;
        break;
      default: // 270, transpose=cclock: top-left comes from top-right
        dx = y;
        dy = w - 1 - x;
        break;
      }
      dst[static_cast<ptrdiff_t>(dy) * dst_stride + dx] = row[x];
    }
  }
}

} // namespace

caf::expected<frame_ptr> upright(const AVFrame* src, int rotation,
                                 frame_scaler& converter) {
  frame_ptr yuv;
  if (src->format == AV_PIX_FMT_YUV420P) {
    yuv = make_frame();
    if (int err = av_frame_ref(yuv.get(), src); err < 0)
      return av_error(err, "referencing a frame");
  } else {
    auto converted =
        converter.scale(src, src->width, src->height, AV_PIX_FMT_YUV420P);
    if (!converted)
      return converted.error();
    yuv = std::move(*converted);
  }
  if (rotation == 0)
    return yuv;
  auto dst = make_frame();
  rotated_size(src->width, src->height, rotation, dst->width, dst->height);
  dst->format = AV_PIX_FMT_YUV420P;
  if (int err = av_frame_get_buffer(dst.get(), 0); err < 0)
    return av_error(err, "allocating a frame");
  for (int plane = 0; plane < 3; ++plane) {
    int w = plane == 0 ? yuv->width : (yuv->width + 1) / 2;
    int h = plane == 0 ? yuv->height : (yuv->height + 1) / 2;
    rotate_plane(yuv->data[plane], yuv->linesize[plane], w, h, dst->data[plane],
                 dst->linesize[plane], rotation);
  }
  dst->pts = src->pts;
  return dst;
}

// -- files -------------------------------------------------------------------

namespace {

caf::error errno_error(const std::string& what, const std::string& path) {
  return file_error(errno, what + " " + path);
}

caf::error fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0)
    return errno_error("cannot open", path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0)
    return errno_error("cannot fsync", path);
  return {};
}

} // namespace

caf::error commit_file(const std::string& tmp, const std::string& path) {
  if (auto err = fsync_path(tmp, O_RDONLY))
    return err;
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return errno_error("cannot rename to", path);
  auto dir = std::filesystem::path{path}.parent_path().string();
  return fsync_path(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
}

caf::error write_file_atomically(const std::string& path, const void* data,
                                 size_t size) {
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return errno_error("cannot create", tmp);
  auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      auto err = errno_error("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  bool synced = ::fsync(fd) == 0;
  bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    auto err = errno_error("cannot write", tmp);
    ::unlink(tmp.c_str());
    return err;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto err = errno_error("cannot rename to", path);
    ::unlink(tmp.c_str());
    return err;
  }
  auto dir = std::filesystem::path{path}.parent_path().string();
  return fsync_path(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
}

void set_libav_logging(bool verbose) {
  av_log_set_level(verbose ? AV_LOG_INFO : AV_LOG_ERROR);
}

} // namespace reel::codec
