#include "cluster/data_plane.hpp"

#include "ops/log.hpp"
#include "ops/util.hpp"

#include <asio.hpp>
#include <zlib.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <vector>

namespace fs = std::filesystem;

namespace reel::cluster {

namespace {

using asio::ip::tcp;

constexpr char magic[4] = {'R', 'E', 'E', 'L'};
constexpr uint8_t version = 1;
constexpr size_t frame_bytes = 256 * 1024;
constexpr int max_connections = 64;

enum status : uint8_t { ok = 0, not_found = 1, refused = 2 };

bool safe_name(const std::string& s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 128)
    return false;
  for (char c : s) {
    bool good = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!good)
      return false;
  }
  return true;
}

void put_u16(std::string& out, uint16_t x) {
  out.push_back(static_cast<char>(x >> 8));
  out.push_back(static_cast<char>(x));
}
void put_u32(std::string& out, uint32_t x) {
  for (int i = 3; i >= 0; --i)
    out.push_back(static_cast<char>(x >> (8 * i)));
}
void put_u64(std::string& out, uint64_t x) {
  for (int i = 7; i >= 0; --i)
    out.push_back(static_cast<char>(x >> (8 * i)));
}
uint64_t get_be(const unsigned char* p, int n) {
  uint64_t x = 0;
  for (int i = 0; i < n; ++i)
    x = (x << 8) | p[i];
  return x;
}

std::string request_mac(const std::string& secret, const std::string& path,
                        uint64_t offset) {
  return hmac_sha256(secret, path + "|" + std::to_string(offset));
}

void set_timeouts(tcp::socket& s, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

} // namespace

bool servable_path(const std::string& rel) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= rel.size()) {
    auto end = rel.find('/', start);
    if (end == std::string::npos)
      end = rel.size();
    parts.push_back(rel.substr(start, end - start));
    start = end + 1;
  }
  if (parts.size() < 3 || parts.size() > 5)
    return false;
  for (auto& p : parts)
    if (!safe_name(p))
      return false;
  if (parts[0] == "sources")
    return parts.size() == 3 && is_uuid(parts[1])
           && (parts[2] == "source" || parts[2].rfind("part-", 0) == 0
               || parts[2].rfind("poster-", 0) == 0);
  if (parts[0] == "media" || parts[0] == "work")
    return is_uuid(parts[1]);
  return false;
}

struct blob_server::impl {
  std::string data_dir;
  std::string secret;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::atomic<int> connections{0};
  std::mutex mtx;
  std::vector<std::thread> workers;

  void serve(tcp::socket sock) {
    try {
      set_timeouts(sock, 30000);
      unsigned char head[7];
      asio::read(sock, asio::buffer(head, sizeof(head)));
      if (std::memcmp(head, magic, 4) != 0 || head[4] != version)
        return;
      auto len = static_cast<size_t>(get_be(head + 5, 2));
      std::string path(len, '\0');
      asio::read(sock, asio::buffer(path.data(), len));
      unsigned char tail[8 + 32];
      asio::read(sock, asio::buffer(tail, sizeof(tail)));
      auto offset = get_be(tail, 8);
      std::string mac(reinterpret_cast<char*>(tail + 8), 32);
      std::string answer;
      if (!equal_secrets(mac, request_mac(secret, path, offset))
          || !servable_path(path)) {
        answer.push_back(static_cast<char>(refused));
        put_u64(answer, 0);
        asio::write(sock, asio::buffer(answer));
        log::warn("blob.refused", {{"path", path}});
        return;
      }
      std::ifstream in{data_dir + "/" + path, std::ios::binary};
      std::error_code ec_;
      auto size = fs::file_size(data_dir + "/" + path, ec_);
      if (!in || ec_) {
        answer.push_back(static_cast<char>(not_found));
        put_u64(answer, 0);
        asio::write(sock, asio::buffer(answer));
        return;
      }
      answer.push_back(static_cast<char>(ok));
      put_u64(answer, size);
      asio::write(sock, asio::buffer(answer));
      // The digest covers the whole file, so the sender reads the part the
      // receiver already has too (it is not sent).
      sha256 digest;
      std::vector<char> buf(frame_bytes);
      uint64_t pos = 0;
      while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        auto n = static_cast<size_t>(in.gcount());
        if (n == 0)
          break;
        digest.update(buf.data(), n);
        auto begin = pos;
        pos += n;
        if (pos <= offset)
          continue;
        size_t skip = begin < offset ? static_cast<size_t>(offset - begin) : 0;
        std::string frame;
        put_u32(frame, static_cast<uint32_t>(n - skip));
        put_u32(frame, static_cast<uint32_t>(
                         crc32(0, reinterpret_cast<const Bytef*>(buf.data() + skip),
                               static_cast<uInt>(n - skip))));
        asio::write(sock, std::array<asio::const_buffer, 2>{
                            asio::buffer(frame),
                            asio::buffer(buf.data() + skip, n - skip)});
      }
      std::string end;
      put_u32(end, 0);
      put_u32(end, 0);
      auto sum = digest.hex_digest();
      std::string raw;
      for (size_t i = 0; i < sum.size(); i += 2)
        raw.push_back(static_cast<char>(std::stoi(sum.substr(i, 2), nullptr, 16)));
      asio::write(sock, std::array<asio::const_buffer, 2>{asio::buffer(end),
                                                          asio::buffer(raw)});
    } catch (const std::exception& e) {
      log::debug("blob.connection_ended", {{"reason", e.what()}});
    }
  }
};

blob_server::blob_server(std::string data_dir, std::string secret)
  : impl_(std::make_unique<impl>()) {
  impl_->data_dir = std::move(data_dir);
  impl_->secret = std::move(secret);
}

blob_server::~blob_server() {
  stop();
}

caf::error blob_server::start(const std::string& host, uint16_t port) {
  try {
    tcp::endpoint ep{asio::ip::make_address(host), port};
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
  } catch (const std::exception& e) {
    return make_error(ec::unavailable, "data plane cannot listen on " + host
                                         + ":" + std::to_string(port) + ": "
                                         + e.what());
  }
  auto* d = impl_.get();
  d->accept_thread = std::thread{[d] {
    while (!d->stopping) {
      std::error_code err;
      tcp::socket sock{d->io};
      d->acceptor.accept(sock, err);
      if (err || d->stopping)
        continue;
      if (d->connections >= max_connections)
        continue; // closed: the peer retries
      ++d->connections;
      std::lock_guard<std::mutex> guard{d->mtx};
      d->workers.emplace_back([d, s = std::move(sock)]() mutable {
        d->serve(std::move(s));
        --d->connections;
      });
    }
  }};
  return {};
}

uint16_t blob_server::port() const {
  std::error_code err;
  return impl_->acceptor.local_endpoint(err).port();
}

void blob_server::stop() {
  if (impl_->stopping.exchange(true))
    return;
  std::error_code err;
  // Wake the blocking accept with a connection of our own.
  if (impl_->acceptor.is_open()) {
    auto ep = impl_->acceptor.local_endpoint(err);
    if (!err) {
      asio::io_context io;
      tcp::socket s{io};
      s.connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), ep.port()},
                err);
    }
  }
  if (impl_->accept_thread.joinable())
    impl_->accept_thread.join();
  impl_->acceptor.close(err);
  std::lock_guard<std::mutex> guard{impl_->mtx};
  for (auto& w : impl_->workers)
    if (w.joinable())
      w.join();
}

namespace {

/// One fetch per destination at a time in this process: two would append
/// to the same part file.
std::shared_ptr<std::mutex> dest_lock(const std::string& dest) {
  static std::mutex mtx;
  static std::map<std::string, std::weak_ptr<std::mutex>> locks;
  std::lock_guard<std::mutex> guard{mtx};
  auto& weak = locks[dest];
  auto strong = weak.lock();
  if (!strong) {
    strong = std::make_shared<std::mutex>();
    weak = strong;
  }
  for (auto i = locks.begin(); i != locks.end();) // drop unused entries
    i = i->second.expired() ? locks.erase(i) : std::next(i);
  return strong;
}

caf::expected<fetch_stats> fetch_locked(const std::string& host, uint16_t port,
                                        const std::string& secret,
                                        const std::string& rel,
                                        const std::string& dest,
                                        const std::string& expected_sha256,
                                        int timeout_ms);

} // namespace

caf::expected<fetch_stats> fetch_blob(const std::string& host, uint16_t port,
                                      const std::string& secret,
                                      const std::string& rel,
                                      const std::string& dest,
                                      const std::string& expected_sha256,
                                      int timeout_ms) {
  if (!servable_path(rel))
    return make_error(ec::invalid_argument, "not a blob path: " + rel);
  auto lock = dest_lock(dest);
  std::lock_guard<std::mutex> guard{*lock};
  // Another fetch may have brought it meanwhile.
  std::error_code ec_;
  if (fs::exists(dest, ec_)) {
    if (expected_sha256.empty())
      return fetch_stats{};
    auto have = file_sha256(dest);
    if (have && *have == expected_sha256)
      return fetch_stats{};
  }
  return fetch_locked(host, port, secret, rel, dest, expected_sha256,
                      timeout_ms);
}

namespace {

caf::expected<fetch_stats> fetch_locked(const std::string& host, uint16_t port,
                                        const std::string& secret,
                                        const std::string& rel,
                                        const std::string& dest,
                                        const std::string& expected_sha256,
                                        int timeout_ms) {
  auto part = dest + ".part";
  std::error_code ec_;
  fs::create_directories(fs::path{dest}.parent_path(), ec_);
  fetch_stats stats;
  stats.resumed_from = fs::exists(part, ec_)
                         ? static_cast<int64_t>(fs::file_size(part, ec_))
                         : 0;
  try {
    asio::io_context io;
    tcp::socket sock{io};
    set_timeouts(sock, timeout_ms);
    sock.connect(tcp::endpoint{asio::ip::make_address(host), port});
    set_timeouts(sock, timeout_ms);
    std::string req(magic, 4);
    req.push_back(static_cast<char>(version));
    put_u16(req, static_cast<uint16_t>(rel.size()));
    req += rel;
    auto offset = static_cast<uint64_t>(stats.resumed_from);
    put_u64(req, offset);
    req += request_mac(secret, rel, offset);
    asio::write(sock, asio::buffer(req));
    unsigned char head[9];
    asio::read(sock, asio::buffer(head, sizeof(head)));
    if (head[0] == not_found)
      return make_error(ec::not_found, rel + " is not on " + host + ":"
                                         + std::to_string(port));
    if (head[0] != ok)
      return make_error(ec::forbidden, "the peer refused " + rel);
    auto size = get_be(head + 1, 8);
    if (offset > size) { // a stale part from another version: start over
      fs::remove(part, ec_);
      return fetch_locked(host, port, secret, rel, dest, expected_sha256,
                          timeout_ms);
    }
    std::ofstream out{part, std::ios::binary | std::ios::app};
    if (!out)
      return make_error(ec::storage_error, "cannot write " + part);
    std::vector<char> buf(frame_bytes);
    for (;;) {
      unsigned char fh[8];
      asio::read(sock, asio::buffer(fh, sizeof(fh)));
      auto len = static_cast<size_t>(get_be(fh, 4));
      auto crc = static_cast<uint32_t>(get_be(fh + 4, 4));
      if (len == 0)
        break;
      if (len > buf.size())
        return make_error(ec::media_error, "bad frame from peer");
      asio::read(sock, asio::buffer(buf.data(), len));
      if (crc32(0, reinterpret_cast<const Bytef*>(buf.data()),
                static_cast<uInt>(len))
          != crc)
        return make_error(ec::storage_error,
                          "checksum mismatch in a frame of " + rel);
      out.write(buf.data(), static_cast<std::streamsize>(len));
      stats.bytes += static_cast<int64_t>(len);
    }
    unsigned char digest[32];
    asio::read(sock, asio::buffer(digest, sizeof(digest)));
    out.close();
    auto sent = hex(std::string_view(reinterpret_cast<char*>(digest), 32));
    auto got = file_sha256(part);
    if (!got)
      return got.error();
    if (*got != sent
        || (!expected_sha256.empty() && *got != expected_sha256)) {
      fs::remove(part, ec_); // a corrupt part is not resumed
      return make_error(ec::storage_error, "digest mismatch for " + rel);
    }
    fs::rename(part, dest, ec_);
    if (ec_)
      return make_error(ec::storage_error, "cannot store " + dest);
  } catch (const std::exception& e) {
    return make_error(ec::unavailable, "fetching " + rel + " from " + host
                                         + ":" + std::to_string(port)
                                         + " failed: " + e.what());
  }
  return stats;
}

} // namespace

} // namespace reel::cluster
