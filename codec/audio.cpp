// encode_audio(): the first audio stream (or the part of it inside a clip)
// to AAC-LC 48 kHz stereo. Audio is encoded once per video, never per chunk,
// so there is no encoder priming at chunk joins.

#include "codec/codec.hpp"
#include "codec/ffmpeg_glue.hpp"
#include "codec/packet_file.hpp"
#include "codec/timeline.hpp"

extern "C" {
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
}

#include <algorithm>
#include <limits>
#include <optional>

namespace reel::codec {

namespace {

constexpr int out_rate = 48000;
constexpr int64_t out_bit_rate = 128000;
constexpr AVSampleFormat out_format = AV_SAMPLE_FMT_FLTP;
constexpr AVRational out_tb = {1, out_rate};
// A jump in the source's audio timestamps larger than this is a gap, filled
// with silence so that later audio stays in sync with the picture.
constexpr int64_t max_gap_samples = out_rate / 20; // 50 ms
// A clip starting later than this is reached by seeking, to this much
// before its start (the decoder needs a little audio to settle).
constexpr double seek_margin_seconds = 1.0;

class audio_encoder {
public:
  audio_encoder(const std::string& source, const probe_result& src,
                const std::string& output, const clip_range& clip)
      : source_(source), src_(src), output_(output), clip_(clip) {}

  ~audio_encoder() { av_channel_layout_uninit(&swr_in_layout_); }

  audio_encoder(const audio_encoder&) = delete;
  audio_encoder& operator=(const audio_encoder&) = delete;

  caf::expected<audio_stats> run();

private:
  caf::error open();
  caf::error configure_resampler(const AVFrame* f);
  caf::error resample(const AVFrame* f); // nullptr: flush the resampler
  caf::error push_silence(int64_t samples);
  // Hands `n` resampled samples at the stream position start_ + produced_
  // to the encoder, without those outside the clip.
  caf::error emit(uint8_t* const* data, int n);
  caf::error encode_fifo(bool final);
  caf::error send(const AVFrame* f);

  const std::string& source_;
  const probe_result& src_;
  const std::string& output_;
  const clip_range& clip_;
  // The clip in 1/48000 of source time: samples in [lo_, hi_) are kept.
  int64_t lo_ = std::numeric_limits<int64_t>::min();
  int64_t hi_ = std::numeric_limits<int64_t>::max();
  input_context_ptr fmt_;
  AVStream* ast_ = nullptr;
  codec_context_ptr dec_;
  codec_context_ptr enc_;
  swr_ptr swr_;
  AVChannelLayout swr_in_layout_{};
  int swr_in_rate_ = 0;
  int swr_in_format_ = -1;
  audio_fifo_ptr fifo_;
  std::optional<packet_file_writer> out_;
  packet_ptr pkt_ = make_packet();
  bool started_ = false;
  int64_t start_ = 0;    // first decoded sample's pts, 1/48000
  int64_t produced_ = 0; // samples resampled (or made up) since start_
  int64_t fed_ = 0;      // samples gone into the fifo (inside the clip)
  bool feeding_ = false; // some sample went into the fifo
  int64_t next_pts_ = 0; // pts of the next frame for the encoder
  caf::error failure_;
};

caf::error audio_encoder::open() {
  auto fmt = open_input(source_);
  if (!fmt)
    return fmt.error();
  fmt_ = std::move(*fmt);
  if (src_.audio_stream < 0 ||
      src_.audio_stream >= static_cast<int>(fmt_->nb_streams))
    return media_error("no audio stream");
  for (unsigned i = 0; i < fmt_->nb_streams; ++i)
    if (static_cast<int>(i) != src_.audio_stream)
      fmt_->streams[i]->discard = AVDISCARD_ALL;
  ast_ = fmt_->streams[src_.audio_stream];
  if (clip_.start_s > 0 || clip_.duration_s > 0) {
    auto window = clip_window_of(src_, clip_);
    if (!window)
      return validate_clip(src_, clip_);
    const AVRational vtb{src_.tb_num, src_.tb_den};
    if (clip_.start_s > 0)
      lo_ = av_rescale_q_rnd(window->start, vtb, out_tb, AV_ROUND_UP);
    if (clip_.duration_s > 0)
      hi_ = av_rescale_q_rnd(window->end, vtb, out_tb, AV_ROUND_UP);
    int64_t seek_to =
        lo_ - static_cast<int64_t>(seek_margin_seconds * out_rate);
    if (clip_.start_s > seek_margin_seconds && seek_to > 0) {
      int64_t target = av_rescale_q(seek_to, out_tb, ast_->time_base);
      if (int err = av_seek_frame(fmt_.get(), ast_->index, target,
                                  AVSEEK_FLAG_BACKWARD);
          err < 0) // unseekable: decode from the start instead
        av_seek_frame(fmt_.get(), ast_->index, 0, AVSEEK_FLAG_BACKWARD);
    }
  }
  auto dec = open_decoder(ast_, 1);
  if (!dec)
    return dec.error();
  dec_ = std::move(*dec);

  const AVCodec* codec = avcodec_find_encoder_by_name("aac");
  if (codec == nullptr)
    return media_error("the aac encoder is not available");
  enc_.reset(avcodec_alloc_context3(codec));
  if (!enc_)
    return media_error("cannot allocate an encoder");
  enc_->sample_rate = out_rate;
  enc_->sample_fmt = out_format;
  av_channel_layout_default(&enc_->ch_layout, 2);
  enc_->bit_rate = out_bit_rate;
  enc_->time_base = out_tb;
  enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (int err = avcodec_open2(enc_.get(), codec, nullptr); err < 0)
    return av_error(err, "opening the aac encoder");
  fifo_.reset(av_audio_fifo_alloc(out_format, 2, enc_->frame_size * 4));
  if (!fifo_)
    return media_error("cannot allocate an audio fifo");

  packet_file_header h;
  h.codec = "aac";
  h.tb_num = out_tb.num;
  h.tb_den = out_tb.den;
  h.sample_rate = out_rate;
  h.channels = 2;
  h.extradata.assign(enc_->extradata, enc_->extradata + enc_->extradata_size);
  auto out = packet_file_writer::create(output_, h);
  if (!out)
    return out.error();
  out_.emplace(std::move(*out));
  return {};
}

// (Re)builds the resampler for `f`'s format; audio whose format changes
// mid-stream gets a new one after the old one is flushed.
caf::error audio_encoder::configure_resampler(const AVFrame* f) {
  AVChannelLayout in_layout{};
  if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
    av_channel_layout_default(&in_layout, f->ch_layout.nb_channels);
  else if (int err = av_channel_layout_copy(&in_layout, &f->ch_layout); err < 0)
    return av_error(err, "audio channel layout");
  bool same = swr_ && swr_in_rate_ == f->sample_rate &&
              swr_in_format_ == f->format &&
              av_channel_layout_compare(&swr_in_layout_, &in_layout) == 0;
  if (same) {
    av_channel_layout_uninit(&in_layout);
    return {};
  }
  if (swr_) {
    if (auto err = resample(nullptr)) {
      av_channel_layout_uninit(&in_layout);
      return err;
    }
  }
  AVChannelLayout out_layout{};
  av_channel_layout_default(&out_layout, 2);
  SwrContext* raw = nullptr;
  int err = swr_alloc_set_opts2(
      &raw, &out_layout, out_format, out_rate, &in_layout,
      static_cast<AVSampleFormat>(f->format), f->sample_rate, 0, nullptr);
  swr_.reset(raw);
  av_channel_layout_uninit(&out_layout);
  av_channel_layout_uninit(&swr_in_layout_);
  swr_in_layout_ = in_layout; // takes ownership
  swr_in_rate_ = f->sample_rate;
  swr_in_format_ = f->format;
  if (err < 0)
    return av_error(err, "configuring the audio resampler");
  if ((err = swr_init(swr_.get())) < 0)
    return av_error(err, "configuring the audio resampler");
  return {};
}

caf::error audio_encoder::resample(const AVFrame* f) {
  int in_samples = f != nullptr ? f->nb_samples : 0;
  int room = swr_get_out_samples(swr_.get(), in_samples);
  if (room <= 0)
    return {};
  auto buf = make_frame();
  buf->nb_samples = room;
  buf->format = out_format;
  av_channel_layout_default(&buf->ch_layout, 2);
  if (int err = av_frame_get_buffer(buf.get(), 0); err < 0)
    return av_error(err, "allocating audio");
  int n = swr_convert(
      swr_.get(), buf->data, room,
      f != nullptr ? const_cast<const uint8_t**>(f->extended_data) : nullptr,
      in_samples);
  if (n < 0)
    return av_error(n, "resampling audio");
  return emit(buf->data, n);
}

caf::error audio_encoder::emit(uint8_t* const* data, int n) {
  if (n <= 0)
    return {};
  const int64_t pos = start_ + produced_;
  produced_ += n;
  int64_t from = lo_ > pos ? std::min<int64_t>(n, lo_ - pos) : 0;
  int64_t to = hi_ - pos < n ? std::max<int64_t>(0, hi_ - pos) : n;
  if (to <= from)
    return {};
  if (!feeding_) {
    feeding_ = true;
    next_pts_ = pos + from;
  }
  const int bytes = av_get_bytes_per_sample(out_format);
  uint8_t* planes[2] = {data[0] + from * bytes, data[1] + from * bytes};
  int count = static_cast<int>(to - from);
  if (av_audio_fifo_write(fifo_.get(), reinterpret_cast<void**>(planes),
                          count) < count)
    return media_error("cannot buffer audio");
  fed_ += count;
  return encode_fifo(false);
}

caf::error audio_encoder::push_silence(int64_t samples) {
  while (samples > 0) {
    int n = static_cast<int>(std::min<int64_t>(samples, out_rate));
    auto buf = make_frame();
    buf->nb_samples = n;
    buf->format = out_format;
    av_channel_layout_default(&buf->ch_layout, 2);
    if (int err = av_frame_get_buffer(buf.get(), 0); err < 0)
      return av_error(err, "allocating audio");
    av_samples_set_silence(buf->data, 0, n, 2, out_format);
    samples -= n;
    if (auto err = emit(buf->data, n))
      return err;
  }
  return {};
}

// Encodes whole frames from the fifo (and, when `final`, the short rest).
caf::error audio_encoder::encode_fifo(bool final) {
  const int frame_size = enc_->frame_size;
  for (;;) {
    int available = av_audio_fifo_size(fifo_.get());
    if (available == 0 || (available < frame_size && !final))
      return {};
    int n = std::min(available, frame_size);
    auto frame = make_frame();
    frame->nb_samples = n;
    frame->format = out_format;
    frame->sample_rate = out_rate;
    av_channel_layout_default(&frame->ch_layout, 2);
    if (int err = av_frame_get_buffer(frame.get(), 0); err < 0)
      return av_error(err, "allocating audio");
    if (av_audio_fifo_read(fifo_.get(), reinterpret_cast<void**>(frame->data),
                           n) < n)
      return media_error("cannot read buffered audio");
    frame->pts = next_pts_;
    next_pts_ += n;
    if (auto err = send(frame.get()))
      return err;
  }
}

caf::error audio_encoder::send(const AVFrame* f) {
  auto res = encode(enc_.get(), f, pkt_.get(), [&](AVPacket* p) {
    if (auto err = out_->write(p->pts, p->dts, p->duration, packet_key, p->data,
                               static_cast<size_t>(p->size))) {
      failure_ = std::move(err);
      return false;
    }
    return true;
  });
  if (failure_)
    return failure_;
  if (res.status == pump_status::failed)
    return av_error(res.err, "encoding audio");
  return {};
}

caf::expected<audio_stats> audio_encoder::run() {
  if (auto err = open())
    return err;
  auto frame = make_frame();
  bool past_clip = false;
  auto on_frame = [&](AVFrame* f) {
    int64_t pts = frame_pts(f);
    if (!started_) {
      // Everything is expressed in 1/48000 from the source's own first
      // audio timestamp, so the offset to the video's pts is preserved.
      started_ = true;
      start_ = pts != AV_NOPTS_VALUE
                   ? av_rescale_q(pts, ast_->time_base, out_tb)
                   : 0;
      next_pts_ = start_;
    } else if (pts != AV_NOPTS_VALUE) {
      int64_t at = av_rescale_q(pts, ast_->time_base, out_tb);
      if (at >= hi_) {
        past_clip = true; // nothing more to keep
        return false;
      }
      int64_t expected =
          start_ + produced_ + (swr_ ? swr_get_delay(swr_.get(), out_rate) : 0);
      if (at - expected > max_gap_samples) {
        if (auto err = push_silence(at - expected)) {
          failure_ = std::move(err);
          return false;
        }
      }
    }
    caf::error err = configure_resampler(f);
    if (!err)
      err = resample(f);
    if (err) {
      failure_ = std::move(err);
      return false;
    }
    return true;
  };
  auto check = [&](pump_result res) -> caf::error {
    if (failure_)
      return failure_;
    if (res.status == pump_status::failed && res.err != AVERROR_INVALIDDATA)
      return av_error(res.err, "decoding audio");
    return {};
  };
  auto pkt = make_packet();
  int err = 0;
  while (!past_clip && (err = av_read_frame(fmt_.get(), pkt.get())) >= 0) {
    if (pkt->stream_index != ast_->index) {
      av_packet_unref(pkt.get());
      continue;
    }
    auto res = decode(dec_.get(), pkt.get(), frame.get(), on_frame);
    av_packet_unref(pkt.get());
    if (auto e = check(res))
      return e;
  }
  if (!past_clip) {
    if (err != AVERROR_EOF)
      return av_error(err, "reading the source");
    if (auto e = check(decode(dec_.get(), nullptr, frame.get(), on_frame)))
      return e;
  }
  if (!started_)
    return media_error("the audio stream has no samples");
  if (auto e = resample(nullptr))
    return e;
  if (!feeding_)
    return media_error("the audio stream has no samples inside the clip");
  if (auto e = encode_fifo(true))
    return e;
  if (auto e = send(nullptr))
    return e;
  if (auto e = out_->commit())
    return e;
  audio_stats stats;
  stats.samples = fed_;
  stats.media_seconds = static_cast<double>(fed_) / out_rate;
  return stats;
}

} // namespace

caf::expected<audio_stats> encode_audio(const std::string& source,
                                        const probe_result& src,
                                        const std::string& output,
                                        const clip_range& clip) {
  audio_encoder enc{source, src, output, clip};
  return enc.run();
}

} // namespace reel::codec
