#pragma once

// The packet file: a tiny private container for encoded packets between
// encoding (one file per chunk and rung, one for the audio) and packaging.
// It keeps every timestamp, duration and flag exactly as the encoder gave
// them, with none of a muxer's edit lists, priming or rounding. Private to
// codec/.
//
// Layout, all integers little-endian:
//   header:  "REELPKT\0" (8 bytes), u32 version (1),
//            u16 length + codec name (avcodec_get_name, e.g. "h264"),
//            i32 tb_num, i32 tb_den, i32 width, i32 height,
//            i32 sample_rate, i32 channels, u32 extradata size + bytes
//   records: i64 pts, i64 dts, i64 duration, u32 flags, u32 size + bytes
// until the end of the file.

#include "ops/error.hpp"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace reel::codec {

struct packet_file_header {
  std::string codec; // e.g. "h264", "aac"
  int tb_num = 1;
  int tb_den = 1;
  int width = 0;
  int height = 0;
  int sample_rate = 0;
  int channels = 0;
  std::vector<uint8_t> extradata;
};

/// Record flags.
constexpr uint32_t packet_key = 1;

struct packet_record {
  int64_t pts = 0;
  int64_t dts = 0;
  int64_t duration = 0;
  uint32_t flags = 0;
  std::vector<uint8_t> data;
};

/// Writes `path` + ".tmp"; commit() fsyncs and renames it to `path`. A writer
/// destroyed before commit() removes its temporary file.
class packet_file_writer {
public:
  static caf::expected<packet_file_writer>
  create(const std::string& path, const packet_file_header& header);

  packet_file_writer(packet_file_writer&& other) noexcept;
  packet_file_writer& operator=(packet_file_writer&& other) noexcept;
  packet_file_writer(const packet_file_writer&) = delete;
  packet_file_writer& operator=(const packet_file_writer&) = delete;
  ~packet_file_writer();

  caf::error write(int64_t pts, int64_t dts, int64_t duration, uint32_t flags,
                   const uint8_t* data, size_t size);

  caf::error commit();

  /// Bytes of packet payload written so far.
  int64_t payload_bytes() const { return payload_bytes_; }

private:
  packet_file_writer() = default;
  void discard();

  std::string path_;
  std::FILE* file_ = nullptr;
  int64_t payload_bytes_ = 0;
};

/// Reads a packet file written by packet_file_writer.
class packet_file_reader {
public:
  static caf::expected<packet_file_reader> open(const std::string& path);

  packet_file_reader(packet_file_reader&& other) noexcept;
  packet_file_reader& operator=(packet_file_reader&& other) noexcept;
  packet_file_reader(const packet_file_reader&) = delete;
  packet_file_reader& operator=(const packet_file_reader&) = delete;
  ~packet_file_reader();

  const packet_file_header& header() const { return header_; }

  /// Reads the next record into `rec`: true, or false at the end of the
  /// file; an error for a damaged file.
  caf::expected<bool> next(packet_record& rec);

private:
  packet_file_reader() = default;

  std::string path_;
  std::FILE* file_ = nullptr;
  packet_file_header header_;
};

} // namespace reel::codec
