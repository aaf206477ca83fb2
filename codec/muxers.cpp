// The packager's muxers (codec/muxers.hpp): outputs, the fMP4 track, the
// MPEG-TS and MP4 muxers, packets from packet files, the audio queue.

#include "codec/muxers.hpp"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>
#include <libavutil/opt.h>
}

#include <algorithm>

namespace reel::codec {

namespace {

// The MP4 movie time scale (edit lists, track durations): a multiple of
// 48000 and 90000, so that audio starting at any sample and video in the
// usual time bases start exactly where they should (the default, 1000,
// moves the audio by up to a millisecond).
constexpr const char* movie_timescale = "720000";

// Describes the stream of a packet file to a muxer.
caf::error set_stream_params(AVStream* st, const packet_file_header& h) {
  const AVCodecDescriptor* desc =
      avcodec_descriptor_get_by_name(h.codec.c_str());
  if (desc == nullptr)
    return media_error("unknown codec " + h.codec + " in a packet file");
  st->time_base = AVRational{h.tb_num, h.tb_den};
  AVCodecParameters* par = st->codecpar;
  par->codec_type = desc->type;
  par->codec_id = desc->id;
  par->codec_tag = 0;
  if (desc->type == AVMEDIA_TYPE_VIDEO) {
    par->width = h.width;
    par->height = h.height;
    par->format = AV_PIX_FMT_YUV420P;
    par->sample_aspect_ratio = AVRational{1, 1};
  } else {
    par->sample_rate = h.sample_rate;
    av_channel_layout_default(&par->ch_layout, h.channels);
    par->frame_size = 1024;
  }
  if (!h.extradata.empty()) {
    par->extradata = static_cast<uint8_t*>(
        av_mallocz(h.extradata.size() + AV_INPUT_BUFFER_PADDING_SIZE));
    if (par->extradata == nullptr)
      return media_error("out of memory");
    std::copy(h.extradata.begin(), h.extradata.end(), par->extradata);
    par->extradata_size = static_cast<int>(h.extradata.size());
  }
  return {};
}

} // namespace

// -- outputs -----------------------------------------------------------------

caf::error output::alloc(const char* format, const std::string& url) {
  AVFormatContext* raw = nullptr;
  if (int err =
          avformat_alloc_output_context2(&raw, nullptr, format, url.c_str());
      err < 0)
    return av_error(err, std::string{"creating the "} + format + " muxer");
  ctx_.reset(raw);
  return {};
}

caf::error output::alloc_av(const char* format, const std::string& url,
                            const packet_file_header& video,
                            const packet_file_header* audio, AVStream*& v,
                            AVStream*& a) {
  if (auto err = alloc(format, url))
    return err;
  auto vs = add_stream(video);
  if (!vs)
    return vs.error();
  v = *vs;
  if (audio != nullptr) {
    auto as = add_stream(*audio);
    if (!as)
      return as.error();
    a = *as;
  }
  return {};
}

caf::expected<AVStream*> output::add_stream(const packet_file_header& h) {
  AVStream* st = avformat_new_stream(ctx_.get(), nullptr);
  if (st == nullptr)
    return media_error("cannot add a stream to a muxer");
  if (auto err = set_stream_params(st, h))
    return err;
  return st;
}

caf::error output::open_buffer() {
  drop_io();
  if (int err = avio_open_dyn_buf(&ctx_->pb); err < 0)
    return av_error(err, "allocating a buffer");
  io_ = io::buffer;
  return {};
}

std::vector<uint8_t> output::take_buffer() {
  std::vector<uint8_t> bytes;
  if (io_ != io::buffer)
    return bytes;
  uint8_t* data = nullptr;
  int size = avio_close_dyn_buf(ctx_->pb, &data);
  ctx_->pb = nullptr;
  io_ = io::none;
  if (size > 0)
    bytes.assign(data, data + size);
  av_free(data);
  return bytes;
}

caf::error output::open_file(const std::string& path) {
  drop_io();
  if (int err = avio_open(&ctx_->pb, path.c_str(), AVIO_FLAG_WRITE); err < 0)
    return av_error(err, "creating " + path);
  io_ = io::file;
  return {};
}

caf::expected<int64_t> output::close_file(const std::string& path) {
  if (io_ != io::file)
    return media_error("no file open for " + path);
  avio_flush(ctx_->pb);
  int64_t size = avio_tell(ctx_->pb);
  int failed = ctx_->pb->error;
  int err = avio_closep(&ctx_->pb);
  io_ = io::none;
  if (failed < 0 || err < 0)
    return av_error(failed < 0 ? failed : err, "writing " + path);
  return size;
}

void output::drop_io() {
  if (!ctx_)
    return;
  if (io_ == io::buffer) {
    uint8_t* data = nullptr;
    avio_close_dyn_buf(ctx_->pb, &data);
    av_free(data);
  } else if (io_ == io::file) {
    avio_closep(&ctx_->pb);
  }
  ctx_->pb = nullptr;
  io_ = io::none;
}

caf::error write_packet(AVFormatContext* oc, AVStream* st, const AVPacket* pkt,
                        AVRational tb, packet_ptr& scratch,
                        const std::string& what) {
  if (int err = av_packet_ref(scratch.get(), pkt); err < 0)
    return av_error(err, "referencing a packet");
  scratch->stream_index = st->index;
  av_packet_rescale_ts(scratch.get(), tb, st->time_base);
  int err = av_write_frame(oc, scratch.get());
  av_packet_unref(scratch.get());
  if (err < 0)
    return av_error(err, "writing " + what);
  return {};
}

caf::error fmp4_track::open(const packet_file_header& h,
                            const std::string& what) {
  what_ = what;
  in_tb_ = AVRational{h.tb_num, h.tb_den};
  if (auto err = out_.alloc("mp4", what))
    return err;
  auto st = out_.add_stream(h);
  if (!st)
    return st.error();
  st_ = *st;
  if (auto err = out_.open_buffer())
    return err;
  AVDictionary* opts = nullptr;
  // As libavformat's own HLS and DASH muxers: fragments only when asked,
  // tfdt in every fragment, the moov (init segment) written with the
  // first fragment so that edit lists know the first timestamps.
  av_dict_set(&opts, "movflags",
              "+frag_custom+dash+delay_moov+skip_sidx+skip_trailer", 0);
  av_dict_set(&opts, "movie_timescale", movie_timescale, 0);
  int err = avformat_write_header(out_.get(), &opts);
  av_dict_free(&opts);
  if (err < 0)
    return av_error(err, "starting " + what);
  return {};
}

caf::error fmp4_track::write(const AVPacket* pkt) {
  if (auto err = write_packet(out_.get(), st_, pkt, in_tb_, scratch_, what_))
    return err;
  ++pending_;
  return {};
}

caf::error fmp4_track::cut(std::vector<uint8_t>& init,
                           std::vector<uint8_t>& fragment) {
  init.clear();
  if (!init_done_) {
    // With delay_moov the first flush writes ftyp and moov only.
    if (int err = av_write_frame(out_.get(), nullptr); err < 0)
      return av_error(err, "writing the init segment of " + what_);
    init = out_.take_buffer();
    if (auto err = out_.open_buffer())
      return err;
    init_done_ = true;
  }
  if (int err = av_write_frame(out_.get(), nullptr); err < 0)
    return av_error(err, "writing a fragment of " + what_);
  fragment = out_.take_buffer();
  pending_ = 0;
  if (init.empty() && !init_done_)
    return media_error("no init segment for " + what_);
  return out_.open_buffer();
}

caf::error ts_muxer::begin(const std::string& path) {
  if (auto err = out_.open_file(path))
    return err;
  if (!started_) {
    AVDictionary* opts = nullptr;
    // Timestamps as given: the same instants as the fMP4 segments.
    av_dict_set(&opts, "mpegts_copyts", "1", 0);
    int err = avformat_write_header(out_.get(), &opts);
    av_dict_free(&opts);
    if (err < 0)
      return av_error(err, "starting " + what_);
    started_ = true;
  } else {
    // A segment must be decodable on its own: PAT and PMT first.
    av_opt_set(out_.get()->priv_data, "mpegts_flags", "resend_headers", 0);
  }
  return {};
}

caf::expected<int64_t> ts_muxer::end(const std::string& path) {
  if (int err = av_write_frame(out_.get(), nullptr); err < 0)
    return av_error(err, "flushing " + what_);
  return out_.close_file(path);
}

caf::error mp4_muxer::open(const std::string& path,
                           const packet_file_header& video,
                           const packet_file_header* audio) {
  if (auto err = alloc("mp4", path, video, audio))
    return err;
  if (auto err = out_.open_file(path))
    return err;
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "movflags", "+faststart", 0);
  av_dict_set(&opts, "movie_timescale", movie_timescale, 0);
  int err = avformat_write_header(out_.get(), &opts);
  av_dict_free(&opts);
  if (err < 0)
    return av_error(err, "starting " + path);
  return {};
}

caf::expected<int64_t> mp4_muxer::finish() {
  if (int err = av_write_trailer(out_.get()); err < 0)
    return av_error(err, "finishing " + what_);
  return out_.close_file(what_);
}

// -- packets -----------------------------------------------------------------

caf::expected<packet_ptr> to_packet(const packet_record& rec, int64_t offset) {
  auto pkt = make_packet();
  if (int err = av_new_packet(pkt.get(), static_cast<int>(rec.data.size()));
      err < 0)
    return av_error(err, "allocating a packet");
  std::copy(rec.data.begin(), rec.data.end(), pkt->data);
  pkt->pts = rec.pts + offset;
  pkt->dts = rec.dts + offset;
  pkt->duration = rec.duration;
  pkt->flags = (rec.flags & packet_key) ? AV_PKT_FLAG_KEY : 0;
  return pkt;
}

caf::error audio_queue::open(const std::string& path) {
  auto r = packet_file_reader::open(path);
  if (!r)
    return r.error();
  reader_.emplace(std::move(*r));
  head_ = reader_->header();
  return {};
}

caf::expected<std::optional<int64_t>>
audio_queue::first_dts(const std::string& path) {
  auto r = packet_file_reader::open(path);
  if (!r)
    return r.error();
  packet_record rec;
  auto more = r->next(rec);
  if (!more)
    return more.error();
  if (!*more)
    return std::optional<int64_t>{};
  return std::optional<int64_t>{rec.dts};
}

caf::expected<const AVPacket*> audio_queue::at(int64_t i) {
  auto has = load(i);
  if (!has)
    return has.error();
  if (!*has)
    return static_cast<const AVPacket*>(nullptr);
  return static_cast<const AVPacket*>(queue_[i - base_].get());
}

void audio_queue::release_before(int64_t i) {
  while (base_ < i && !queue_.empty()) {
    queue_.pop_front();
    ++base_;
  }
}

caf::expected<bool> audio_queue::load(int64_t i) {
  while (base_ + static_cast<int64_t>(queue_.size()) <= i) {
    if (eof_)
      return false;
    auto more = reader_->next(rec_);
    if (!more)
      return more.error();
    if (!*more) {
      eof_ = true;
      return false;
    }
    auto pkt = to_packet(rec_, offset_);
    if (!pkt)
      return pkt.error();
    queue_.push_back(std::move(*pkt));
  }
  return true;
}

} // namespace reel::codec
