#include "cluster/data_plane.hpp"

#include "ops/log.hpp"
#include "ops/util.hpp"

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <zlib.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace fs = std::filesystem;

namespace reel::cluster {

namespace {

using asio::ip::tcp;
using ssl_stream = asio::ssl::stream<tcp::socket>;

constexpr char magic[4] = {'R', 'E', 'E', 'L'};
constexpr uint8_t version = 2;
constexpr size_t frame_bytes = 256 * 1024;
constexpr size_t max_name = 200;
// "REEL", version, area, UUID, name length.
constexpr size_t fixed_head = 4 + 1 + 1 + 16 + 1;

enum status : uint8_t { ok = 0, not_found = 1, refused = 2 };

bool safe_segment(std::string_view s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 128)
    return false;
  for (char c : s) {
    bool good = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!good)
      return false;
  }
  return true;
}

const char* area_dir(blob_area a) {
  switch (a) {
  case blob_area::source:
    return "sources";
  case blob_area::media:
    return "media";
  case blob_area::work:
    return "work";
  }
  return nullptr;
}

void put_u32(unsigned char* p, uint32_t x) {
  for (int i = 3; i >= 0; --i)
    *p++ = static_cast<unsigned char>(x >> (8 * i));
}
void put_u64(unsigned char* p, uint64_t x) {
  for (int i = 7; i >= 0; --i)
    *p++ = static_cast<unsigned char>(x >> (8 * i));
}
uint64_t get_be(const unsigned char* p, int n) {
  uint64_t x = 0;
  for (int i = 0; i < n; ++i)
    x = (x << 8) | p[i];
  return x;
}

/// The 16 bytes of a UUID's text, and back.
bool uuid_bytes(const std::string& id, unsigned char* out) {
  if (!is_uuid(id))
    return false;
  int k = 0;
  for (size_t i = 0; i < id.size(); ++i) {
    if (id[i] == '-')
      continue;
    auto hi = std::stoi(id.substr(i, 2), nullptr, 16);
    out[k++] = static_cast<unsigned char>(hi);
    ++i;
  }
  return k == 16;
}

std::string uuid_text(const unsigned char* b) {
  auto h = hex(std::string_view(reinterpret_cast<const char*>(b), 16));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" +
         h.substr(16, 4) + "-" + h.substr(20, 12);
}

/// The common name of the peer's certificate on a TLS connection.
std::string peer_name(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert)
    return {};
  char buf[256] = {};
  auto n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
                                     NID_commonName, buf, sizeof(buf));
  X509_free(cert);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string{};
}

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

} // namespace

bool valid(const blob_ref& r) {
  if (!area_dir(r.area) || !is_uuid(r.video_id) || r.name.empty() ||
      r.name.size() > max_name)
    return false;
  size_t segments = 0;
  size_t start = 0;
  while (start <= r.name.size()) {
    auto end = std::min(r.name.find('/', start), r.name.size());
    if (!safe_segment(std::string_view(r.name).substr(start, end - start)))
      return false;
    ++segments;
    start = end + 1;
  }
  if (r.area == blob_area::source)
    return segments == 1 &&
           (r.name == "source" || r.name.rfind("part-", 0) == 0 ||
            r.name.rfind("poster-", 0) == 0);
  return segments <= 3;
}

std::string relative_path(const blob_ref& r) {
  return std::string{area_dir(r.area)} + "/" + r.video_id + "/" + r.name;
}

std::optional<blob_ref> ref_of(const std::string& rel) {
  auto a = rel.find('/');
  auto b = a == std::string::npos ? a : rel.find('/', a + 1);
  if (b == std::string::npos)
    return std::nullopt;
  auto dir = rel.substr(0, a);
  blob_ref r;
  r.area = dir == "sources" ? blob_area::source
           : dir == "media" ? blob_area::media
           : dir == "work"  ? blob_area::work
                            : static_cast<blob_area>(0);
  r.video_id = rel.substr(a + 1, b - a - 1);
  r.name = rel.substr(b + 1);
  if (!valid(r))
    return std::nullopt;
  return r;
}

// -- TLS ------------------------------------------------------------------

/// A connection kept between fetches (either kind: sync_conn below).
struct pooled_conn {
  virtual ~pooled_conn() = default;
  std::chrono::steady_clock::time_point idle_since;
};

struct link_security::impl {
  std::unique_ptr<asio::ssl::context> ctx; // null: plaintext
  // Connections to other nodes' blob servers, idle between fetches, by
  // "node host:port": at most a few per peer, dropped after a while (the
  // server waits blob_server_options::idle_timeout_ms for a next request).
  std::mutex pool_mtx;
  std::map<std::string, std::vector<std::unique_ptr<pooled_conn>>> pool;
};

link_security::~link_security() = default;

caf::expected<std::shared_ptr<link_security>>
link_security::load(const credentials& c) {
  std::shared_ptr<link_security> out{new link_security};
  out->impl_ = std::make_unique<impl>();
  try {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls);
    // Members speak TLS 1.3 only, with certificates checked both ways.
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_3_VERSION);
    ctx->use_certificate_chain_file(c.cert_file);
    ctx->use_private_key_file(c.key_file, asio::ssl::context::pem);
    ctx->load_verify_file(c.ca_file);
    ctx->set_verify_mode(asio::ssl::verify_peer |
                         asio::ssl::verify_fail_if_no_peer_cert);
    out->impl_->ctx = std::move(ctx);
  } catch (const std::exception& e) {
    return make_error(ec::unspecified,
                      std::string{"cannot load the data plane's TLS "
                                  "credentials: "} +
                          e.what());
  }
  return out;
}

std::shared_ptr<link_security> link_security::plaintext() {
  std::shared_ptr<link_security> out{new link_security};
  out->impl_ = std::make_unique<impl>();
  return out;
}

bool link_security::tls() const {
  return impl_ && impl_->ctx;
}

// -- server ---------------------------------------------------------------

struct blob_server::impl : std::enable_shared_from_this<blob_server::impl> {
  std::string data_dir;
  std::shared_ptr<link_security> security;
  blob_server_options opts;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::steady_timer retry{io};
  std::thread thread;
  std::atomic<int> open{0};
  std::atomic<bool> stopping{false};

  void accept();
  template <class Stream>
  void start_session(tcp::socket sock);
};

namespace {

/// One connection of the blob server: handshake, request, the file in
/// frames. Every step has a deadline; a missed one closes the connection.
template <class Stream>
class session : public std::enable_shared_from_this<session<Stream>> {
public:
  template <class... Args>
  session(std::shared_ptr<blob_server::impl> srv, Args&&... args)
      : srv_(std::move(srv)), stream_(std::forward<Args>(args)...),
        timer_(srv_->io) {
    ++srv_->open;
  }

  ~session() { --srv_->open; }

  void start() {
    auto self = this->shared_from_this();
    deadline(srv_->opts.request_timeout_ms);
    if constexpr (std::is_same_v<Stream, ssl_stream>) {
      stream_.async_handshake(
          asio::ssl::stream_base::server, [self](const std::error_code& err) {
            if (err)
              return self->close("handshake: " + err.message());
            self->read_head();
          });
    } else {
      read_head();
    }
  }

private:
  auto& socket() { return stream_.lowest_layer(); }

  void deadline(int ms) {
    timer_.expires_after(std::chrono::milliseconds(ms));
    std::weak_ptr<session> weak = this->shared_from_this();
    timer_.async_wait([weak](const std::error_code& err) {
      if (auto self = weak.lock(); self && !err)
        self->close("deadline passed");
    });
  }

  void close(const std::string& why) {
    if (!why.empty())
      log::debug("blob.connection_ended", {{"reason", why}});
    std::error_code ignored;
    timer_.cancel();
    socket().close(ignored);
  }

  void read_head() {
    auto self = this->shared_from_this();
    asio::async_read(stream_, asio::buffer(head_.data(), fixed_head),
                     [self](const std::error_code& err, size_t) {
                       if (err)
                         return self->close("request: " + err.message());
                       self->read_rest();
                     });
  }

  void read_rest() {
    if (std::memcmp(head_.data(), magic, 4) != 0 || head_[4] != version)
      return close("not a blob request");
    auto name_len = head_[22];
    if (name_len == 0 || name_len > max_name)
      return refuse("bad name length");
    rest_.resize(name_len + 8u);
    auto self = this->shared_from_this();
    asio::async_read(stream_, asio::buffer(rest_),
                     [self](const std::error_code& err, size_t) {
                       if (err)
                         return self->close("request: " + err.message());
                       self->open_blob();
                     });
  }

  void open_blob() {
    blob_ref ref;
    ref.area = static_cast<blob_area>(head_[5]);
    ref.video_id = uuid_text(head_.data() + 6);
    ref.name = rest_.substr(0, rest_.size() - 8);
    offset_ = get_be(reinterpret_cast<const unsigned char*>(rest_.data()) +
                         rest_.size() - 8,
                     8);
    if (!valid(ref))
      return refuse("not a blob: " + ref.name);
    auto path = srv_->data_dir + "/" + relative_path(ref);
    file_.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st {};
    if (file_.fd < 0 || ::fstat(file_.fd, &st) != 0 || !S_ISREG(st.st_mode))
      return answer(not_found, 0, false, true);
    size_ = static_cast<uint64_t>(st.st_size);
    buf_.resize(frame_bytes);
    answer(ok, size_, true);
  }

  void refuse(const std::string& why) {
    log::warn("blob.refused", {{"reason", why}});
    answer(refused, 0, false);
  }

  /// `then_send`: stream the file next; `keep`: else wait for another
  /// request on this connection.
  void answer(status s, uint64_t size, bool then_send, bool keep = false) {
    reply_[0] = static_cast<unsigned char>(s);
    put_u64(reply_.data() + 1, size);
    auto self = this->shared_from_this();
    deadline(srv_->opts.write_timeout_ms);
    asio::async_write(stream_, asio::buffer(reply_.data(), 9),
                      [self, then_send, keep](const std::error_code& err,
                                              size_t) {
                        if (err)
                          return self->close(err.message());
                        if (then_send)
                          return self->next_frame();
                        if (keep)
                          return self->next_request();
                        self->close("");
                      });
  }

  /// Reads the next piece of the file; the digest covers all of it, so the
  /// part the receiver already has is read too (but not sent).
  void next_frame() {
    auto self = this->shared_from_this();
    auto n =
        ::pread(file_.fd, buf_.data(), buf_.size(), static_cast<off_t>(pos_));
    if (n < 0)
      return close("read failed");
    if (n == 0)
      return end();
    digest_->update(buf_.data(), static_cast<size_t>(n));
    auto begin = pos_;
    pos_ += static_cast<uint64_t>(n);
    if (pos_ <= offset_) {
      // Skipped: let other connections run between pieces.
      asio::post(srv_->io, [self] { self->next_frame(); });
      return;
    }
    size_t skip = begin < offset_ ? static_cast<size_t>(offset_ - begin) : 0;
    auto len = static_cast<size_t>(n) - skip;
    put_u32(frame_head_.data(), static_cast<uint32_t>(len));
    put_u32(frame_head_.data() + 4,
            static_cast<uint32_t>(
                crc32(0, reinterpret_cast<const Bytef*>(buf_.data() + skip),
                      static_cast<uInt>(len))));
    deadline(srv_->opts.write_timeout_ms);
    std::array<asio::const_buffer, 2> bufs{
        asio::buffer(frame_head_.data(), 8),
        asio::buffer(buf_.data() + skip, len)};
    asio::async_write(stream_, bufs,
                      [self](const std::error_code& err, size_t) {
                        if (err)
                          return self->close("write: " + err.message());
                        self->next_frame();
                      });
  }

  void end() {
    std::memset(frame_head_.data(), 0, 8);
    auto sum = digest_->hex_digest();
    for (size_t i = 0; i < 32; ++i)
      raw_sum_[i] = static_cast<unsigned char>(
          std::stoi(sum.substr(2 * i, 2), nullptr, 16));
    auto self = this->shared_from_this();
    deadline(srv_->opts.write_timeout_ms);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(frame_head_.data(), 8),
                                           asio::buffer(raw_sum_.data(), 32)};
    asio::async_write(stream_, bufs,
                      [self](const std::error_code& err, size_t) {
                        if (err)
                          return self->close(err.message());
                        self->next_request();
                      });
  }

  /// The connection stays for the peer's next request (a node fetching a
  /// video's media asks for many files): one TLS handshake, not one per
  /// file. It may wait `idle_timeout_ms` for it.
  void next_request() {
    file_ = {};
    buf_.clear();
    pos_ = offset_ = size_ = 0;
    digest_.emplace();
    deadline(srv_->opts.idle_timeout_ms);
    read_head();
  }

  std::shared_ptr<blob_server::impl> srv_;
  Stream stream_;
  asio::steady_timer timer_;
  std::array<unsigned char, fixed_head> head_{};
  std::string rest_;
  std::array<unsigned char, 9> reply_{};
  std::array<unsigned char, 8> frame_head_{};
  std::array<unsigned char, 32> raw_sum_{};
  struct owned_fd {
    int fd = -1;
    owned_fd() = default;
    owned_fd(const owned_fd&) = delete;
    owned_fd& operator=(owned_fd&& x) noexcept {
      std::swap(fd, x.fd);
      return *this;
    }
    ~owned_fd() {
      if (fd >= 0)
        ::close(fd);
    }
  };
  owned_fd file_;
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
  uint64_t pos_ = 0;
  std::vector<char> buf_;
  std::optional<sha256> digest_{std::in_place};
};

} // namespace

template <class Stream>
void blob_server::impl::start_session(tcp::socket sock) {
  if constexpr (std::is_same_v<Stream, ssl_stream>) {
    std::make_shared<session<ssl_stream>>(shared_from_this(), std::move(sock),
                                          *security->get().ctx)
        ->start();
  } else {
    std::make_shared<session<tcp::socket>>(shared_from_this(), std::move(sock))
        ->start();
  }
}

void blob_server::impl::accept() {
  auto self = shared_from_this();
  acceptor.async_accept([self](const std::error_code& err, tcp::socket sock) {
    if (self->stopping)
      return;
    if (err) {
      if (err == asio::error::operation_aborted)
        return;
      // Out of descriptors (a flood): wait a moment instead of spinning.
      self->retry.expires_after(std::chrono::milliseconds(50));
      self->retry.async_wait([self](const std::error_code& e) {
        if (!e)
          self->accept();
      });
      return;
    }
    if (self->open >= self->opts.max_connections) {
      std::error_code ignored;
      sock.close(ignored); // full: the peer retries
    } else if (self->security->tls()) {
      self->start_session<ssl_stream>(std::move(sock));
    } else {
      self->start_session<tcp::socket>(std::move(sock));
    }
    self->accept();
  });
}

blob_server::blob_server(std::string data_dir,
                         std::shared_ptr<link_security> security,
                         blob_server_options opts)
    : impl_(std::make_shared<impl>()) {
  impl_->data_dir = std::move(data_dir);
  impl_->security = std::move(security);
  impl_->opts = opts;
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
    impl_->acceptor.listen(1024);
  } catch (const std::exception& e) {
    return make_error(ec::unavailable, "data plane cannot listen on " + host +
                                           ":" + std::to_string(port) + ": " +
                                           e.what());
  }
  impl_->accept();
  auto d = impl_;
  impl_->thread = std::thread{[d] { d->io.run(); }};
  return {};
}

uint16_t blob_server::port() const {
  std::error_code err;
  return impl_->acceptor.local_endpoint(err).port();
}

int blob_server::open_connections() const {
  return impl_->open;
}

void blob_server::stop() {
  if (impl_->stopping.exchange(true))
    return;
  asio::post(impl_->io, [d = impl_] {
    std::error_code ignored;
    d->acceptor.close(ignored);
    d->retry.cancel();
  });
  // Sessions still open end with the loop: their sockets close with it.
  impl_->io.stop();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

// -- client ---------------------------------------------------------------

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

/// Blocking operations with a deadline each, on a private io_context.
template <class Stream>
class sync_conn : public pooled_conn {
public:
  template <class... Args>
  explicit sync_conn(Args&&... args)
      : stream(io, std::forward<Args>(args)...) {}

  template <class Op>
  std::error_code run(Op op, int timeout_ms) {
    std::error_code result = asio::error::would_block;
    op([&result](const std::error_code& err, auto&&...) { result = err; });
    io.restart();
    io.run_for(std::chrono::milliseconds(timeout_ms));
    if (result == asio::error::would_block) { // the deadline passed
      std::error_code ignored;
      stream.lowest_layer().close(ignored);
      io.restart();
      io.run();
      return asio::error::timed_out;
    }
    return result;
  }

  void read(void* p, size_t n, int timeout_ms) {
    auto err =
        run([&](auto h) { asio::async_read(stream, asio::buffer(p, n), h); },
            timeout_ms);
    if (err)
      throw std::system_error(err);
  }

  asio::io_context io;
  Stream stream;
};

caf::error storage_failure(const std::string& what) {
  return make_error(ec::storage_error, what + ": " + std::strerror(errno));
}

/// Connects and, over TLS, checks that the peer is the node it should be.
template <class Stream>
caf::error open_conn(sync_conn<Stream>& c, const blob_endpoint& from,
                     int timeout_ms) {
  auto where = from.host + ":" + std::to_string(from.port);
  tcp::resolver resolver{c.io};
  std::error_code err;
  auto eps = resolver.resolve(from.host, std::to_string(from.port), err);
  if (!err)
    err = c.run(
        [&](auto h) { asio::async_connect(c.stream.lowest_layer(), eps, h); },
        timeout_ms);
  if (err)
    return make_error(ec::unavailable,
                      "cannot reach " + where + ": " + err.message());
  c.stream.lowest_layer().set_option(tcp::no_delay(true), err);
  if constexpr (std::is_same_v<Stream, ssl_stream>) {
    err = c.run(
        [&](auto h) {
          c.stream.async_handshake(asio::ssl::stream_base::client, h);
        },
        timeout_ms);
    if (err)
      return make_error(ec::forbidden,
                        "TLS with " + where + " failed: " + err.message());
    auto name = peer_name(c.stream.native_handle());
    if (!from.node_id.empty() && name != from.node_id)
      return make_error(ec::forbidden,
                        where + " is " + name + ", not " + from.node_id);
  }
  return {};
}

/// One request over an open connection. Sets `reusable` when the exchange
/// ended cleanly (the connection may serve another request).
template <class Stream>
caf::expected<fetch_stats>
fetch_over(sync_conn<Stream>& c, const blob_endpoint& from, const blob_ref& ref,
           const std::string& dest, const std::string& expected_sha256,
           int timeout_ms, bool& reusable) {
  reusable = false;
  auto part = dest + ".part";
  std::error_code ec_;
  fs::create_directories(fs::path{dest}.parent_path(), ec_);
  fetch_stats stats;
  stats.resumed_from = fs::exists(part, ec_)
                           ? static_cast<int64_t>(fs::file_size(part, ec_))
                           : 0;
  auto where = from.host + ":" + std::to_string(from.port);
  std::vector<unsigned char> req(fixed_head);
  std::memcpy(req.data(), magic, 4);
  req[4] = version;
  req[5] = static_cast<unsigned char>(ref.area);
  uuid_bytes(ref.video_id, req.data() + 6);
  req[22] = static_cast<unsigned char>(ref.name.size());
  req.insert(req.end(), ref.name.begin(), ref.name.end());
  auto offset = static_cast<uint64_t>(stats.resumed_from);
  unsigned char off[8];
  put_u64(off, offset);
  req.insert(req.end(), off, off + 8);
  auto err =
      c.run([&](auto h) { asio::async_write(c.stream, asio::buffer(req), h); },
            timeout_ms);
  if (err)
    throw std::system_error(err);
  unsigned char head[9];
  c.read(head, sizeof(head), timeout_ms);
  if (head[0] == not_found) {
    reusable = true;
    return make_error(ec::not_found,
                      relative_path(ref) + " is not on " + where);
  }
  if (head[0] != ok)
    return make_error(ec::forbidden, where + " refused " + relative_path(ref));
  auto size = get_be(head + 1, 8);
  if (offset > size) // a stale part of another version: start over
    return make_error(ec::conflict, "stale part");
  // The digest covers the whole file: the part already here first.
  sha256 digest;
  fd_guard out;
  out.fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out.fd < 0)
    return storage_failure("cannot write " + part);
  std::vector<char> buf(frame_bytes);
  for (uint64_t pos = 0; pos < offset;) {
    auto n = ::pread(out.fd, buf.data(), buf.size(), static_cast<off_t>(pos));
    if (n <= 0)
      return storage_failure("cannot read " + part);
    digest.update(buf.data(), static_cast<size_t>(n));
    pos += static_cast<uint64_t>(n);
  }
  for (;;) {
    unsigned char fh[8];
    c.read(fh, sizeof(fh), timeout_ms);
    auto len = static_cast<size_t>(get_be(fh, 4));
    auto crc = static_cast<uint32_t>(get_be(fh + 4, 4));
    if (len == 0)
      break;
    if (len > buf.size())
      return make_error(ec::media_error, "bad frame from " + where);
    c.read(buf.data(), len, timeout_ms);
    if (crc32(0, reinterpret_cast<const Bytef*>(buf.data()),
              static_cast<uInt>(len)) != crc)
      return make_error(ec::storage_error, "checksum mismatch in a frame of " +
                                               relative_path(ref));
    if (::write(out.fd, buf.data(), len) != static_cast<ssize_t>(len))
      return storage_failure("cannot write " + part);
    digest.update(buf.data(), len);
    stats.bytes += static_cast<int64_t>(len);
  }
  unsigned char sum[32];
  c.read(sum, sizeof(sum), timeout_ms);
  reusable = true; // the whole answer was read
  auto sent = hex(std::string_view(reinterpret_cast<char*>(sum), 32));
  auto got = digest.hex_digest();
  if (got != sent || (!expected_sha256.empty() && got != expected_sha256)) {
    fs::remove(part, ec_); // a corrupt part is not resumed
    return make_error(ec::storage_error,
                      "digest mismatch for " + relative_path(ref));
  }
  // Durable before it counts: the file, then its name in the directory.
  if (::fsync(out.fd) != 0)
    return storage_failure("cannot sync " + part);
  fs::rename(part, dest, ec_);
  if (ec_)
    return make_error(ec::storage_error,
                      "cannot store " + dest + ": " + ec_.message());
  fd_guard dir;
  dir.fd = ::open(fs::path{dest}.parent_path().c_str(),
                  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir.fd < 0 || ::fsync(dir.fd) != 0)
    return storage_failure("cannot sync the directory of " + dest);
  return stats;
}

constexpr size_t max_idle_per_peer = 4;
// Shorter than the server's idle timeout, so a pooled connection is not
// one the server is about to close.
constexpr auto max_idle_age = std::chrono::seconds(10);

/// An idle connection to `key`, if one is fresh enough.
template <class Stream>
std::unique_ptr<sync_conn<Stream>> take(link_security::impl& sec,
                                        const std::string& key) {
  std::lock_guard<std::mutex> guard{sec.pool_mtx};
  auto i = sec.pool.find(key);
  if (i == sec.pool.end())
    return nullptr;
  auto now = std::chrono::steady_clock::now();
  while (!i->second.empty()) {
    auto c = std::move(i->second.back());
    i->second.pop_back();
    if (now - c->idle_since < max_idle_age)
      return std::unique_ptr<sync_conn<Stream>>{
          static_cast<sync_conn<Stream>*>(c.release())};
  }
  return nullptr;
}

void give(link_security::impl& sec, const std::string& key,
          std::unique_ptr<pooled_conn> c) {
  c->idle_since = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> guard{sec.pool_mtx};
  auto& idle = sec.pool[key];
  if (idle.size() < max_idle_per_peer)
    idle.push_back(std::move(c));
}

template <class Stream, class... Args>
caf::expected<fetch_stats>
fetch_pooled(link_security::impl& sec, const blob_endpoint& from,
             const blob_ref& ref, const std::string& dest,
             const std::string& expected_sha256, int timeout_ms,
             Args&&... args) {
  auto key =
      from.node_id + " " + from.host + ":" + std::to_string(from.port);
  // A pooled connection the server closed meanwhile fails at once: then
  // once more on a fresh one.
  for (int round = 0; round < 2; ++round) {
    auto c = round == 0 ? take<Stream>(sec, key) : nullptr;
    bool fresh = !c;
    if (fresh) {
      c = std::make_unique<sync_conn<Stream>>(std::forward<Args>(args)...);
      if (auto err = open_conn(*c, from, timeout_ms))
        return err;
    }
    bool reusable = false;
    try {
      auto r = fetch_over(*c, from, ref, dest, expected_sha256, timeout_ms,
                          reusable);
      if (reusable)
        give(sec, key, std::move(c));
      return r;
    } catch (const std::system_error& e) {
      if (fresh)
        throw;
    }
  }
  return make_error(ec::unavailable, "unreachable"); // not reached
}

} // namespace

caf::expected<fetch_stats>
fetch_blob(const blob_endpoint& from, const link_security& security,
           const blob_ref& ref, const std::string& dest,
           const std::string& expected_sha256, int timeout_ms) {
  if (!valid(ref))
    return make_error(ec::invalid_argument, "not a blob: " + ref.name);
  if (from.port == 0)
    return make_error(ec::unavailable,
                      "no data plane known for " +
                          (from.node_id.empty() ? from.host : from.node_id));
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
  for (int attempt = 0;; ++attempt) {
    try {
      auto& sec = security.get();
      auto r = security.tls()
                   ? fetch_pooled<ssl_stream>(sec, from, ref, dest,
                                              expected_sha256, timeout_ms,
                                              *sec.ctx)
                   : fetch_pooled<tcp::socket>(sec, from, ref, dest,
                                               expected_sha256, timeout_ms);
      if (!r && code_of(r.error()) == ec::conflict && attempt == 0) {
        fs::remove(dest + ".part", ec_); // stale part: once more from 0
        continue;
      }
      return r;
    } catch (const std::system_error& e) {
      return make_error(ec::unavailable, "fetching " + relative_path(ref) +
                                             " from " + from.host + ":" +
                                             std::to_string(from.port) +
                                             " failed: " + e.what());
    }
  }
}

} // namespace reel::cluster
