// encode_chunk(): decode one chunk of the source once and encode it for
// every rung with libx264 into packet files.

#include "codec/codec.hpp"
#include "codec/ffmpeg_glue.hpp"
#include "codec/packet_file.hpp"
#include "codec/timeline.hpp"

extern "C" {
#include <libavutil/opt.h>
}

#include <algorithm>
#include <deque>
#include <optional>

namespace reel::codec {

namespace {

// GOP length given to x264: longer than any chunk, so that the only
// keyframes are the ones forced at segment starts.
constexpr int gop_frames = 10000;

/// One rung's encoder, its scaler and its output.
struct rung_encoder {
  const rung* spec = nullptr;
  codec_context_ptr ctx;
  frame_scaler scaler;
  std::optional<packet_file_writer> out;
  // Packets whose duration is not known yet: it is the distance to the next
  // kept frame, which may not have been decoded when the packet comes out.
  std::deque<packet_ptr> pending;
  int64_t packets = 0;
};

caf::expected<codec_context_ptr> open_x264(const chunk_job& job, const rung& r,
                                           const AVCodecParameters* src) {
  const AVCodec* enc = avcodec_find_encoder_by_name("libx264");
  if (enc == nullptr)
    return media_error("libx264 is not available");
  codec_context_ptr ctx{avcodec_alloc_context3(enc)};
  if (!ctx)
    return media_error("cannot allocate an encoder");
  ctx->width = r.width;
  ctx->height = r.height;
  ctx->pix_fmt = AV_PIX_FMT_YUV420P;
  ctx->sample_aspect_ratio = AVRational{1, 1};
  // Output timestamps are the source's: same time base, pts passed through.
  ctx->time_base = AVRational{job.src.tb_num, job.src.tb_den};
  if (job.src.fps > 0)
    ctx->framerate = av_d2q(job.src.fps / frame_rate_divisor(job.src), 100000);
  ctx->gop_size = gop_frames;
  ctx->keyint_min = gop_frames;
  ctx->thread_count = std::max(1, job.options.threads);
  ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER; // SPS/PPS in extradata
  ctx->rc_max_rate = static_cast<int64_t>(r.max_kbps) * 1000;
  ctx->rc_buffer_size = static_cast<int>(2 * ctx->rc_max_rate);
  // Scaling keeps the source's YUV matrix (full range becomes limited), so
  // its colour description still applies.
  ctx->color_range = AVCOL_RANGE_MPEG;
  ctx->color_primaries = src->color_primaries;
  ctx->color_trc = src->color_trc;
  ctx->colorspace = src->color_space;
  auto* priv = ctx->priv_data;
  av_opt_set(priv, "preset", job.options.preset.c_str(), 0);
  av_opt_set(priv, "profile", "high", 0);
  av_opt_set_double(priv, "crf", r.crf, 0);
  av_opt_set_int(priv, "forced-idr", 1, 0);
  av_opt_set(priv, "x264-params", "scenecut=0:open-gop=0", 0);
  if (int err = avcodec_open2(ctx.get(), enc, nullptr); err < 0)
    return av_error(err, "opening libx264 for " + r.name);
  return ctx;
}

/// The decode-scale-encode state of one chunk.
class chunk_encoder {
public:
  explicit chunk_encoder(const chunk_job& job) : job_(job) {}

  caf::expected<chunk_stats> run();

private:
  enum class attempt_result { done, missed_start };

  caf::error open();
  caf::expected<attempt_result> decode_chunk(bool seek, int64_t target,
                                             bool may_retry);
  caf::error take(AVFrame* frame, int64_t pts);
  caf::error drain_pending(rung_encoder& enc, bool final);
  // Encodes `frame` (nullptr: flushes) and writes what is complete.
  caf::error encode_into(rung_encoder& enc, AVFrame* frame);
  caf::error finish();

  const chunk_job& job_;
  input_context_ptr fmt_;
  AVStream* vst_ = nullptr;
  codec_context_ptr dec_;
  std::vector<rung_encoder> encoders_;
  frame_scaler rotator_;
  std::vector<int64_t> kept_; // pts of every kept frame, ascending
  int64_t end_ = 0;           // where the chunk's last frame ends (see run())
  size_t next_segment_ = 0;
  packet_ptr out_pkt_ = make_packet();
  caf::error failure_;
};

caf::error chunk_encoder::open() {
  const auto& job = job_;
  if (job.rungs.empty() || job.rungs.size() != job.outputs.size())
    return make_error(ec::invalid_argument,
                      "a chunk job needs one output per rung");
  if (job.part.end_pts <= job.part.start_pts)
    return make_error(ec::invalid_argument, "empty chunk");
  auto fmt = open_input(job.source);
  if (!fmt)
    return fmt.error();
  fmt_ = std::move(*fmt);
  if (job.src.video_stream < 0 ||
      job.src.video_stream >= static_cast<int>(fmt_->nb_streams))
    return media_error("no video stream");
  for (unsigned i = 0; i < fmt_->nb_streams; ++i)
    if (static_cast<int>(i) != job.src.video_stream)
      fmt_->streams[i]->discard = AVDISCARD_ALL;
  vst_ = fmt_->streams[job.src.video_stream];
  auto dec = open_decoder(vst_, std::max(1, job.options.threads));
  if (!dec)
    return dec.error();
  dec_ = std::move(*dec);
  encoders_.resize(job.rungs.size());
  for (size_t i = 0; i < job.rungs.size(); ++i) {
    auto& enc = encoders_[i];
    enc.spec = &job.rungs[i];
    auto ctx = open_x264(job, job.rungs[i], vst_->codecpar);
    if (!ctx)
      return ctx.error();
    enc.ctx = std::move(*ctx);
    packet_file_header h;
    h.codec = "h264";
    h.tb_num = job.src.tb_num;
    h.tb_den = job.src.tb_den;
    h.width = enc.spec->width;
    h.height = enc.spec->height;
    h.extradata.assign(enc.ctx->extradata,
                       enc.ctx->extradata + enc.ctx->extradata_size);
    auto out = packet_file_writer::create(job.outputs[i], h);
    if (!out)
      return out.error();
    enc.out.emplace(std::move(*out));
  }
  return {};
}

// Decodes from `target` (after seeking there when `seek`) and feeds every
// frame in [start_pts, end_pts) to the encoders. When the first picture
// comes out after start_pts the seek landed past the chunk's keyframe; with
// `may_retry` that is reported instead, before anything was encoded.
caf::expected<chunk_encoder::attempt_result>
chunk_encoder::decode_chunk(bool seek, int64_t target, bool may_retry) {
  const int64_t start = job_.part.start_pts;
  const int64_t end = job_.part.end_pts;
  if (seek) {
    if (int err = av_seek_frame(fmt_.get(), vst_->index, target,
                                AVSEEK_FLAG_BACKWARD);
        err < 0)
      return av_error(err, "seeking in the source");
    avcodec_flush_buffers(dec_.get());
  }
  bool first = true;
  bool missed = false;
  bool done = false;
  auto sink = [&](AVFrame* frame) {
    int64_t pts = frame_pts(frame);
    if (pts == AV_NOPTS_VALUE)
      return true; // cannot be placed on the timeline
    if (first) {
      first = false;
      if (pts > start && may_retry) {
        missed = true;
        return false;
      }
    }
    if (pts < start)
      return true;
    if (pts >= end) {
      done = true;
      return false;
    }
    if (!kept_.empty() && pts <= kept_.back())
      return true; // a repeated timestamp: keep the first picture
    if (!keeps_frame(job_.src, pts))
      return true; // above the frame-rate cap
    if (auto err = take(frame, pts)) {
      failure_ = std::move(err);
      return false;
    }
    return true;
  };
  auto frame = make_frame();
  auto pkt = make_packet();
  auto check = [&](pump_result res) -> caf::error {
    if (failure_)
      return failure_;
    // A damaged packet costs its picture, not the chunk.
    if (res.status == pump_status::failed && res.err != AVERROR_INVALIDDATA)
      return av_error(res.err, "decoding the source");
    return {};
  };
  int err = 0;
  while (!done && !missed &&
         (err = av_read_frame(fmt_.get(), pkt.get())) >= 0) {
    if (pkt->stream_index != vst_->index) {
      av_packet_unref(pkt.get());
      continue;
    }
    auto res = decode(dec_.get(), pkt.get(), frame.get(), sink);
    av_packet_unref(pkt.get());
    if (auto e = check(res))
      return e;
  }
  if (missed)
    return attempt_result::missed_start;
  if (!done) {
    if (err != AVERROR_EOF)
      return av_error(err, "reading the source");
    if (auto e = check(decode(dec_.get(), nullptr, frame.get(), sink)))
      return e;
    if (missed)
      return attempt_result::missed_start;
  }
  return attempt_result::done;
}

// Makes `frame` upright, scales it for every rung and encodes it; the first
// frame at or after each segment start becomes an IDR frame.
caf::error chunk_encoder::take(AVFrame* frame, int64_t pts) {
  kept_.push_back(pts);
  const auto& starts = job_.part.segment_starts;
  bool force_idr = kept_.size() == 1;
  while (next_segment_ < starts.size() && pts >= starts[next_segment_]) {
    force_idr = true;
    ++next_segment_;
  }
  // The picture every rung is scaled from: the decoded frame itself, or its
  // upright copy for a rotated source.
  frame_ptr upright_frame;
  const AVFrame* picture = frame;
  if (job_.src.rotation != 0) {
    auto up = upright(frame, job_.src.rotation, rotator_);
    if (!up)
      return up.error();
    upright_frame = std::move(*up);
    picture = upright_frame.get();
  }
  // Rungs come largest first; each is scaled from the one before it when
  // that is at least as large (a cascade: scaling 720p to 480p reads far
  // fewer pixels than scaling the 1080p source to 480p again).
  frame_ptr previous;
  const AVFrame* from = picture;
  for (auto& enc : encoders_) {
    if (from != picture && (from->width < enc.spec->width
                            || from->height < enc.spec->height))
      from = picture;
    frame_ptr scaled;
    if (from->format == AV_PIX_FMT_YUV420P && from->width == enc.spec->width
        && from->height == enc.spec->height) {
      scaled = make_frame();
      if (int err = av_frame_ref(scaled.get(), from); err < 0)
        return av_error(err, "referencing a frame");
    } else {
      auto s = enc.scaler.scale(from, enc.spec->width, enc.spec->height,
                                AV_PIX_FMT_YUV420P);
      if (!s)
        return s.error();
      scaled = std::move(*s);
    }
    scaled->pts = pts;
    scaled->pict_type = force_idr ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    scaled->key_frame = force_idr ? 1 : 0;
    if (auto err = encode_into(enc, scaled.get()))
      return err;
    previous = std::move(scaled);
    from = previous.get();
  }
  return {};
}

caf::error chunk_encoder::encode_into(rung_encoder& enc, AVFrame* frame) {
  auto res = encode(enc.ctx.get(), frame, out_pkt_.get(), [&](AVPacket* p) {
    enc.pending.push_back(packet_ptr{av_packet_clone(p)});
    return enc.pending.back() != nullptr;
  });
  if (res.status == pump_status::failed)
    return av_error(res.err, "encoding " + enc.spec->name);
  if (res.status == pump_status::stopped)
    return media_error("out of memory encoding " + enc.spec->name);
  return drain_pending(enc, frame == nullptr);
}

// Writes the pending packets whose duration is known (all of them when
// `final`: the last frame lasts until the chunk's end).
caf::error chunk_encoder::drain_pending(rung_encoder& enc, bool final) {
  while (!enc.pending.empty()) {
    const AVPacket* p = enc.pending.front().get();
    auto next = std::upper_bound(kept_.begin(), kept_.end(), p->pts);
    int64_t duration = 0;
    if (next != kept_.end())
      duration = *next - p->pts;
    else if (final)
      duration = end_ - p->pts;
    else
      break;
    uint32_t flags = (p->flags & AV_PKT_FLAG_KEY) ? packet_key : 0;
    if (auto err = enc.out->write(p->pts, p->dts, duration, flags, p->data,
                                  static_cast<size_t>(p->size)))
      return err;
    ++enc.packets;
    enc.pending.pop_front();
  }
  return {};
}

caf::error chunk_encoder::finish() {
  for (auto& enc : encoders_) {
    if (auto err = encode_into(enc, nullptr))
      return err;
    if (enc.packets != static_cast<int64_t>(kept_.size()))
      return media_error(enc.spec->name + ": " + std::to_string(enc.packets) +
                         " packets for " + std::to_string(kept_.size()) +
                         " frames");
  }
  for (auto& enc : encoders_)
    if (auto err = enc.out->commit())
      return err;
  return {};
}

caf::expected<chunk_stats> chunk_encoder::run() {
  if (auto err = open())
    return err;
  const auto& part = job_.part;
  // The last frame lasts until the next chunk's first frame: the chunk's
  // end, or with frames dropped by the frame-rate cap the next kept frame
  // after it. Only at an inner boundary (a source keyframe, where the next
  // chunk starts); the end of the video or of a clip stays where it is.
  end_ = part.end_pts;
  if (part.end_pts < job_.src.end_pts &&
      std::binary_search(job_.src.keyframes.begin(), job_.src.keyframes.end(),
                         part.end_pts))
    end_ = std::max(part.end_pts, next_kept_pts(job_.src, part.end_pts));
  const double tb = static_cast<double>(job_.src.tb_num) / job_.src.tb_den;
  if (part.start_pts <= job_.src.start_pts) {
    // The first chunk: decode from the beginning, no seek.
    auto res = decode_chunk(false, 0, false);
    if (!res)
      return res.error();
  } else {
    // Seek to the chunk's keyframe. Index-based demuxers (MP4, MKV) land on
    // it exactly; timestamp-searching ones (MPEG-TS) may land after it, so
    // retry from further back, and at last from the beginning.
    const double margins[] = {0.0, 2.0, 10.0};
    bool done = false;
    for (double margin : margins) {
      int64_t target = part.start_pts - static_cast<int64_t>(margin / tb);
      auto res = decode_chunk(true, std::max(target, job_.src.start_pts), true);
      if (!res)
        return res.error();
      if (*res == attempt_result::done) {
        done = true;
        break;
      }
    }
    if (!done) {
      auto res = decode_chunk(true, job_.src.start_pts, false);
      if (!res)
        return res.error();
    }
  }
  if (kept_.empty())
    return media_error("no pictures in chunk " + std::to_string(part.index));
  if (auto err = finish())
    return err;
  chunk_stats stats;
  stats.frames = static_cast<int64_t>(kept_.size());
  stats.media_seconds = static_cast<double>(part.end_pts - part.start_pts) * tb;
  for (auto& enc : encoders_)
    stats.bytes.push_back(enc.out->payload_bytes());
  return stats;
}

} // namespace

caf::expected<chunk_stats> encode_chunk(const chunk_job& job) {
  chunk_encoder enc{job};
  return enc.run();
}

} // namespace reel::codec
