#include "codec/packet_file.hpp"

#include "codec/ffmpeg_glue.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

#include <unistd.h>

namespace reel::codec {

namespace {

constexpr char magic[8] = {'R', 'E', 'E', 'L', 'P', 'K', 'T', '\0'};
constexpr uint32_t version = 1;
// A sanity bound on one record or the extradata: larger means damage.
constexpr uint32_t max_blob = 256u << 20;

caf::error io_error(const std::string& what, const std::string& path) {
  return file_error(errno, what + " " + path);
}

void put_u16(std::vector<uint8_t>& out, uint16_t x) {
  out.push_back(static_cast<uint8_t>(x));
  out.push_back(static_cast<uint8_t>(x >> 8));
}

void put_u32(std::vector<uint8_t>& out, uint32_t x) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<uint8_t>(x >> (8 * i)));
}

void put_u64(std::vector<uint8_t>& out, uint64_t x) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<uint8_t>(x >> (8 * i)));
}

uint64_t get_le(const uint8_t* p, int n) {
  uint64_t x = 0;
  for (int i = n - 1; i >= 0; --i)
    x = (x << 8) | p[i];
  return x;
}

// Reads exactly n bytes: 1, 0 at a clean end of file (nothing read), -1 on a
// short read.
int read_exact(std::FILE* f, void* buf, size_t n) {
  size_t got = std::fread(buf, 1, n, f);
  if (got == n)
    return 1;
  return got == 0 ? 0 : -1;
}

} // namespace

// -- writer ------------------------------------------------------------------

caf::expected<packet_file_writer>
packet_file_writer::create(const std::string& path,
                           const packet_file_header& header) {
  packet_file_writer w;
  w.path_ = path;
  auto tmp = path + ".tmp";
  w.file_ = std::fopen(tmp.c_str(), "wb");
  if (w.file_ == nullptr)
    return io_error("cannot create", tmp);
  std::vector<uint8_t> buf(magic, magic + sizeof(magic));
  put_u32(buf, version);
  put_u16(buf, static_cast<uint16_t>(header.codec.size()));
  buf.insert(buf.end(), header.codec.begin(), header.codec.end());
  for (int x : {header.tb_num, header.tb_den, header.width, header.height,
                header.sample_rate, header.channels})
    put_u32(buf, static_cast<uint32_t>(x));
  put_u32(buf, static_cast<uint32_t>(header.extradata.size()));
  buf.insert(buf.end(), header.extradata.begin(), header.extradata.end());
  if (std::fwrite(buf.data(), 1, buf.size(), w.file_) != buf.size())
    return io_error("cannot write", tmp);
  return w;
}

packet_file_writer::packet_file_writer(packet_file_writer&& other) noexcept
    : path_(std::move(other.path_)), file_(std::exchange(other.file_, nullptr)),
      payload_bytes_(other.payload_bytes_) {}

packet_file_writer&
packet_file_writer::operator=(packet_file_writer&& other) noexcept {
  if (this != &other) {
    discard();
    path_ = std::move(other.path_);
    file_ = std::exchange(other.file_, nullptr);
    payload_bytes_ = other.payload_bytes_;
  }
  return *this;
}

packet_file_writer::~packet_file_writer() {
  discard();
}

void packet_file_writer::discard() {
  if (file_ == nullptr)
    return;
  std::fclose(file_);
  file_ = nullptr;
  ::unlink((path_ + ".tmp").c_str());
}

caf::error packet_file_writer::write(int64_t pts, int64_t dts, int64_t duration,
                                     uint32_t flags, const uint8_t* data,
                                     size_t size) {
  if (file_ == nullptr)
    return make_error(ec::storage_error, "packet file " + path_ + " closed");
  std::vector<uint8_t> head;
  head.reserve(32);
  put_u64(head, static_cast<uint64_t>(pts));
  put_u64(head, static_cast<uint64_t>(dts));
  put_u64(head, static_cast<uint64_t>(duration));
  put_u32(head, flags);
  put_u32(head, static_cast<uint32_t>(size));
  if (std::fwrite(head.data(), 1, head.size(), file_) != head.size() ||
      std::fwrite(data, 1, size, file_) != size)
    return io_error("cannot write", path_ + ".tmp");
  payload_bytes_ += static_cast<int64_t>(size);
  return {};
}

caf::error packet_file_writer::commit() {
  if (file_ == nullptr)
    return make_error(ec::storage_error, "packet file " + path_ + " closed");
  auto tmp = path_ + ".tmp";
  bool ok = std::fflush(file_) == 0 && ::fsync(fileno(file_)) == 0;
  ok = std::fclose(std::exchange(file_, nullptr)) == 0 && ok;
  if (!ok) {
    auto err = io_error("cannot write", tmp);
    ::unlink(tmp.c_str());
    return err;
  }
  return commit_file(tmp, path_);
}

// -- reader ------------------------------------------------------------------

caf::expected<packet_file_reader>
packet_file_reader::open(const std::string& path) {
  packet_file_reader r;
  r.path_ = path;
  r.file_ = std::fopen(path.c_str(), "rb");
  if (r.file_ == nullptr)
    return io_error("cannot open", path);
  auto damaged = [&] { return media_error("damaged packet file " + path); };
  uint8_t fixed[14];
  if (read_exact(r.file_, fixed, sizeof(fixed)) != 1 ||
      std::memcmp(fixed, magic, sizeof(magic)) != 0)
    return damaged();
  if (get_le(fixed + 8, 4) != version)
    return media_error("packet file " + path + " has an unknown version");
  auto name_len = static_cast<size_t>(get_le(fixed + 12, 2));
  r.header_.codec.resize(name_len);
  if (name_len > 0 &&
      read_exact(r.file_, r.header_.codec.data(), name_len) != 1)
    return damaged();
  uint8_t ints[28];
  if (read_exact(r.file_, ints, sizeof(ints)) != 1)
    return damaged();
  auto& h = r.header_;
  int* fields[] = {&h.tb_num, &h.tb_den,      &h.width,
                   &h.height, &h.sample_rate, &h.channels};
  for (int i = 0; i < 6; ++i)
    *fields[i] = static_cast<int32_t>(get_le(ints + 4 * i, 4));
  auto extra = static_cast<uint32_t>(get_le(ints + 24, 4));
  if (extra > max_blob || h.tb_num <= 0 || h.tb_den <= 0)
    return damaged();
  h.extradata.resize(extra);
  if (extra > 0 && read_exact(r.file_, h.extradata.data(), extra) != 1)
    return damaged();
  return r;
}

packet_file_reader::packet_file_reader(packet_file_reader&& other) noexcept
    : path_(std::move(other.path_)), file_(std::exchange(other.file_, nullptr)),
      header_(std::move(other.header_)) {}

packet_file_reader&
packet_file_reader::operator=(packet_file_reader&& other) noexcept {
  if (this != &other) {
    if (file_ != nullptr)
      std::fclose(file_);
    path_ = std::move(other.path_);
    file_ = std::exchange(other.file_, nullptr);
    header_ = std::move(other.header_);
  }
  return *this;
}

packet_file_reader::~packet_file_reader() {
  if (file_ != nullptr)
    std::fclose(file_);
}

caf::expected<bool> packet_file_reader::next(packet_record& rec) {
  uint8_t head[32];
  int got = read_exact(file_, head, sizeof(head));
  if (got == 0 && std::feof(file_))
    return false;
  auto damaged = [this] { return media_error("damaged packet file " + path_); };
  if (got != 1)
    return damaged();
  rec.pts = static_cast<int64_t>(get_le(head, 8));
  rec.dts = static_cast<int64_t>(get_le(head + 8, 8));
  rec.duration = static_cast<int64_t>(get_le(head + 16, 8));
  rec.flags = static_cast<uint32_t>(get_le(head + 24, 4));
  auto size = static_cast<uint32_t>(get_le(head + 28, 4));
  if (size > max_blob)
    return damaged();
  rec.data.resize(size);
  if (size > 0 && read_exact(file_, rec.data.data(), size) != 1)
    return damaged();
  return true;
}

} // namespace reel::codec
