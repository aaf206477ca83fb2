#pragma once

// RAII for libav objects, after Chromium's media/ffmpeg/ffmpeg_deleters.h:
// the deleters are declared here without any libav include, so this header
// is cheap, and every libav object the codec module creates lives in one of
// these pointers from the moment it exists. Input and output format contexts
// are freed differently (avformat_close_input versus closing the muxer's
// AVIOContext and avformat_free_context), hence two pointer types.
//
// Private to codec/: nothing outside this folder includes it.

#include <memory>

struct AVAudioFifo;
struct AVCodecContext;
struct AVFormatContext;
struct AVFrame;
struct AVPacket;
struct SwrContext;
struct SwsContext;

namespace reel::codec {

struct input_context_deleter {
  void operator()(AVFormatContext* p) const; // avformat_close_input
};
struct output_context_deleter {
  void operator()(AVFormatContext* p) const; // avio_closep + free_context
};
struct codec_context_deleter {
  void operator()(AVCodecContext* p) const; // avcodec_free_context
};
struct frame_deleter {
  void operator()(AVFrame* p) const; // av_frame_free
};
struct packet_deleter {
  void operator()(AVPacket* p) const; // av_packet_free
};
struct sws_deleter {
  void operator()(SwsContext* p) const; // sws_freeContext
};
struct swr_deleter {
  void operator()(SwrContext* p) const; // swr_free
};
struct audio_fifo_deleter {
  void operator()(AVAudioFifo* p) const; // av_audio_fifo_free
};

using input_context_ptr =
    std::unique_ptr<AVFormatContext, input_context_deleter>;
using output_context_ptr =
    std::unique_ptr<AVFormatContext, output_context_deleter>;
using codec_context_ptr =
    std::unique_ptr<AVCodecContext, codec_context_deleter>;
using frame_ptr = std::unique_ptr<AVFrame, frame_deleter>;
using packet_ptr = std::unique_ptr<AVPacket, packet_deleter>;
using sws_ptr = std::unique_ptr<SwsContext, sws_deleter>;
using swr_ptr = std::unique_ptr<SwrContext, swr_deleter>;
using audio_fifo_ptr = std::unique_ptr<AVAudioFifo, audio_fifo_deleter>;

/// Factories: never null (they abort on allocation failure, like operator
/// new, rather than threading out-of-memory through every caller).
frame_ptr make_frame();
packet_ptr make_packet();

} // namespace reel::codec
