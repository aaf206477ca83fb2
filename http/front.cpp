#include "http/front.hpp"

#include "ops/log.hpp"
#include "ops/metrics.hpp"

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

// What is written by hand here, and why: the head reader (httplib has no
// incremental parser to call, and its own reader is what grows without
// bound), the httplib::Stream over a connection (httplib's SocketStream is
// internal to the shared library and owns a blocking socket), and a small
// next layer for asio::ssl::stream whose synchronous reads and writes wait
// with a timeout (Asio's own either block forever or, on a non-blocking
// socket, drop TLS output a write could not finish). Accepting, async I/O
// and TLS are Asio's; request processing is httplib's.

namespace reel::http {

// ------------------------------------------------------------- processor

namespace {

/// Whether the answer being written on this thread said Connection: close
/// (set by the processor's post-routing handler).
thread_local bool t_answer_closes = false;

std::chrono::milliseconds to_ms(time_t sec, time_t usec) {
  return std::chrono::milliseconds{static_cast<int64_t>(sec) * 1000 +
                                   static_cast<int64_t>(usec) / 1000};
}

} // namespace

processor::processor() {
  httplib::Server::set_post_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (hook_)
          hook_(req, res);
        if (!res.has_header("X-Content-Type-Options"))
          res.set_header("X-Content-Type-Options", "nosniff");
        t_answer_closes = res.get_header_value("Connection") == "close";
      });
}

bool processor::process(httplib::Stream& strm, bool close_connection,
                        bool& connection_closed, bool& answer_closes,
                        const std::function<void(httplib::Request&)>& setup) {
  t_answer_closes = false;
  bool ok = process_request(strm, close_connection, connection_closed, setup);
  answer_closes = t_answer_closes;
  return ok;
}

std::chrono::milliseconds processor::read_timeout() const {
  return to_ms(read_timeout_sec_, read_timeout_usec_);
}

std::chrono::milliseconds processor::write_timeout() const {
  return to_ms(write_timeout_sec_, write_timeout_usec_);
}

std::chrono::milliseconds processor::keep_alive_timeout() const {
  return to_ms(keep_alive_timeout_sec_, 0);
}

// ------------------------------------------------------------------ TLS

namespace {

using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

std::unique_ptr<asio::ssl::context> make_tls_context(const std::string& cert,
                                                     const std::string& key,
                                                     caf::error& err) {
  auto ctx =
      std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  auto* h = ctx->native_handle();
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION |
                             SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  ERR_clear_error();
  asio::error_code ec;
  ctx->use_certificate_chain_file(cert, ec);
  if (!ec)
    ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
  ERR_clear_error();
  if (ec) {
    err = make_error(ec::invalid_argument,
                     "--tls-cert/--tls-key: cannot serve TLS with " + cert +
                         " and " + key + ": " + ec.message());
    return nullptr;
  }
  return ctx;
}

} // namespace

caf::error check_tls_server(const std::string& cert, const std::string& key) {
  caf::error err;
  make_tls_context(cert, key, err);
  return err;
}

// ----------------------------------------------- blocking with a timeout

namespace {

/// Waits until `fd` is ready for `events` (or has an error to report),
/// at most until `deadline`; false when the deadline passed.
bool wait_fd(int fd, short events, steady::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - steady::now())
                    .count();
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0)));
    if (r > 0)
      return true;
    if (r == 0 || errno != EINTR)
      return false;
  }
}

/// A connected TCP socket as the next layer of asio::ssl::stream (and
/// the plain transport): asynchronous operations are the socket's own,
/// synchronous ones (on a worker thread) wait at most the read or write
/// timeout, then fail with timed_out. They never leave data half-written:
/// a write either completes, fails, or times out (and the connection is
/// closed then).
class timed_socket {
public:
  using lowest_layer_type = tcp::socket::lowest_layer_type;
  using executor_type = tcp::socket::executor_type;

  explicit timed_socket(tcp::socket s) : sock_(std::move(s)) {}

  executor_type get_executor() { return sock_.get_executor(); }
  lowest_layer_type& lowest_layer() { return sock_.lowest_layer(); }
  const lowest_layer_type& lowest_layer() const { return sock_.lowest_layer(); }

  void set_timeouts(std::chrono::milliseconds read,
                    std::chrono::milliseconds write) {
    read_timeout_ = read;
    write_timeout_ = write;
  }

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers, asio::error_code& ec) {
    ec = {};
    asio::mutable_buffer b = first(buffers);
    if (b.size() == 0)
      return 0;
    int fd = sock_.native_handle();
    std::optional<steady::time_point> deadline;
    for (;;) {
      auto n = ::recv(fd, b.data(), b.size(), MSG_DONTWAIT);
      if (n > 0)
        return static_cast<size_t>(n);
      if (n == 0) {
        ec = asio::error::eof;
        return 0;
      }
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ec.assign(errno, asio::system_category());
        return 0;
      }
      if (!deadline)
        deadline = steady::now() + read_timeout_;
      if (!wait_fd(fd, POLLIN, *deadline)) {
        ec = asio::error::timed_out;
        return 0;
      }
    }
  }

  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers, asio::error_code& ec) {
    ec = {};
    asio::const_buffer b = first(buffers);
    if (b.size() == 0)
      return 0;
    int fd = sock_.native_handle();
    std::optional<steady::time_point> deadline;
    for (;;) {
      auto n = ::send(fd, b.data(), b.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0)
        return static_cast<size_t>(n);
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ec.assign(errno, asio::system_category());
        return 0;
      }
      if (!deadline)
        deadline = steady::now() + write_timeout_;
      if (!wait_fd(fd, POLLOUT, *deadline)) {
        ec = asio::error::timed_out;
        return 0;
      }
    }
  }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    sock_.async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    sock_.async_write_some(buffers, std::forward<Handler>(handler));
  }

private:
  template <class Buffers>
  static auto first(const Buffers& buffers) {
    auto i = asio::buffer_sequence_begin(buffers);
    auto e = asio::buffer_sequence_end(buffers);
    using buffer_type = std::decay_t<decltype(*i)>;
    for (; i != e; ++i)
      if (buffer_type b(*i); b.size() > 0)
        return b;
    return buffer_type{};
  }

  tcp::socket sock_;
  std::chrono::milliseconds read_timeout_{30000};
  std::chrono::milliseconds write_timeout_{30000};
};

using tls_stream = asio::ssl::stream<timed_socket>;

// ---------------------------------------------------------------- heads

enum class head_result {
  need_more,
  complete,
  line_too_long,   // 414
  too_large,       // 431
  too_many_fields, // 431
};

/// Follows a request head as its bytes arrive, the way httplib reads it:
/// the request line up to the first LF, then lines up to the first one
/// that is exactly CRLF. Bytes already looked at are not looked at again.
struct head_scan {
  size_t pos = 0;        // the next byte to look at
  size_t line_start = 0; // where the current header line begins
  size_t line_end = 0;   // where the request line ends (0: not yet)
  size_t fields = 0;

  head_result feed(const char* p, size_t avail, const front_config& cfg) {
    while (pos < avail) {
      auto* nl =
          static_cast<const char*>(std::memchr(p + pos, '\n', avail - pos));
      if (nl == nullptr) {
        pos = avail;
        break;
      }
      size_t end = static_cast<size_t>(nl - p) + 1;
      pos = end;
      if (line_end == 0) {
        if (end > cfg.max_request_line)
          return head_result::line_too_long;
        line_end = end;
        line_start = end;
        continue;
      }
      if (end - line_end > cfg.max_header_bytes)
        return head_result::too_large;
      if (end - line_start == 2 && p[line_start] == '\r')
        return head_result::complete;
      if (++fields > cfg.max_header_fields)
        return head_result::too_many_fields;
      line_start = end;
    }
    if (line_end == 0)
      return avail > cfg.max_request_line ? head_result::line_too_long
                                          : head_result::need_more;
    return avail - line_end > cfg.max_header_bytes ? head_result::too_large
                                                   : head_result::need_more;
  }
};

// ---------------------------------------------------------- worker pool

/// Threads that run one request each: `least` kept, more started while
/// every one is busy, up to `most`; those above `least` end after a
/// minute without work.
class worker_pool {
public:
  worker_pool(size_t least, size_t most, prometheus::Gauge& busy,
              prometheus::Gauge& idle)
      : least_(least), most_(std::max(least, most)), busy_(busy),
        idle_gauge_(idle) {}

  ~worker_pool() { shutdown(); }

  void start() {
    std::lock_guard<std::mutex> guard{mtx_};
    while (threads_ < least_ && spawn(true))
      ;
  }

  void submit(std::function<void()> job) {
    std::lock_guard<std::mutex> guard{mtx_};
    jobs_.push_back(std::move(job));
    queued_ = jobs_.size();
    if (idle_ < jobs_.size() && threads_ < most_)
      spawn(threads_ < least_);
    cv_.notify_one();
  }

  /// Whether jobs wait and no more threads may start for them.
  bool saturated() const {
    return queued_.load(std::memory_order_relaxed) > 0 &&
           threads_now_.load(std::memory_order_relaxed) >= most_;
  }

  /// Runs every job queued, then ends the threads.
  void shutdown() {
    std::unique_lock<std::mutex> lock{mtx_};
    stopping_ = true;
    cv_.notify_all();
    done_.wait(lock, [this] { return threads_ == 0; });
  }

private:
  bool spawn(bool kept) { // with mtx_ held
    try {
      std::thread{[this, kept] { work(kept); }}.detach();
    } catch (const std::system_error& e) {
      log::error("http.thread_failed", {{"error", e.what()}});
      return false;
    }
    threads_now_ = ++threads_;
    return true;
  }

  void work(bool kept) {
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      ++idle_;
      idle_gauge_.Set(static_cast<double>(idle_));
      auto ready = [this] { return stopping_ || !jobs_.empty(); };
      bool timed_out = false;
      if (kept)
        cv_.wait(lock, ready);
      else
        timed_out = !cv_.wait_for(lock, std::chrono::minutes{1}, ready);
      --idle_;
      idle_gauge_.Set(static_cast<double>(idle_));
      if (jobs_.empty()) {
        if (stopping_ || timed_out)
          break;
        continue;
      }
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      queued_ = jobs_.size();
      lock.unlock();
      busy_.Increment();
      job();
      busy_.Decrement();
      lock.lock();
    }
    threads_now_ = --threads_;
    // Nothing of *this is touched once the lock is released: shutdown()
    // may return and the pool go away.
    done_.notify_all();
  }

  const size_t least_;
  const size_t most_;
  prometheus::Gauge& busy_;
  prometheus::Gauge& idle_gauge_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::condition_variable done_;
  std::deque<std::function<void()>> jobs_;
  std::atomic<size_t> queued_{0};
  std::atomic<size_t> threads_now_{0}; // threads_, for saturated()
  size_t threads_ = 0;
  size_t idle_ = 0;
  bool stopping_ = false;
};

// ---------------------------------------------------------- connections

constexpr size_t initial_buffer = 4096;
/// Gathered small writes (an answer's status line and headers with a
/// small body go out in one send).
constexpr size_t gather_limit = 16384;
/// After the last answer on a connection: how long, and how many bytes,
/// the front reads and drops what the client still sends before it closes
/// (closing with unread bytes resets the connection, and the client may
/// lose the answer).
constexpr std::chrono::milliseconds linger_time{2000};
constexpr size_t linger_bytes = 1 << 20;
/// How long a worker that answered a request waits for the next one on
/// the same connection before handing it to the I/O thread (not at all
/// when requests wait for a worker and no more may start, nor when half
/// of max_threads already wait so). Keep-alive clients under load send
/// their next request within it and skip two thread switches
/// (docs/reliability.md has the figures). An idle connection holds a
/// worker this long after each answer, never longer.
constexpr std::chrono::milliseconds next_request_wait{5};

/// At a stop, how long requests being answered may still take before
/// their connections are shut down.
constexpr std::chrono::seconds stop_grace_time{10};

enum class phase {
  handshake, // TLS handshake under way
  idle,      // waiting for the first byte of a request head
  head,      // a head is arriving
  busy,      // queued for or run by a worker
  closing,   // the last answer is out; draining or TLS shutdown
  closed,
};

enum class outcome { keep, close, abort };

} // namespace

struct connection;

struct front::impl {
  processor& proc;
  front_config cfg;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::unique_ptr<asio::ssl::context> tls;
  asio::steady_timer sweep_timer{io};
  asio::steady_timer accept_retry{io};
  asio::steady_timer stop_grace{io};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      guard;
  std::atomic<bool> stopping{false};
  /// Workers waiting for a connection's next request, and how many may.
  std::atomic<size_t> lingering{0};
  size_t max_lingering;
  // Everything below is touched on the I/O thread only.
  bool stop_begun = false;
  std::list<std::shared_ptr<connection>> all; // every open connection
  std::list<connection*> waiting; // closable for a newcomer, oldest first
  size_t open = 0;
  size_t max_buffer;
  std::chrono::milliseconds read_timeout;
  std::chrono::milliseconds write_timeout;
  std::chrono::milliseconds keep_alive_timeout;
  size_t keep_alive_max;
  steady::time_point accept_logged{};
  uint16_t bound_port = 0;
  // Metrics.
  prometheus::Gauge& m_open;
  prometheus::Counter& m_refused;
  prometheus::Counter& m_evicted;
  prometheus::Counter& m_too_large;
  prometheus::Counter& m_too_many_fields;
  prometheus::Counter& m_timeout;
  prometheus::Gauge& m_waiting;
  worker_pool pool;

  impl(processor& p, front_config c);

  void accept();
  void on_accept(const asio::error_code& ec, tcp::socket sock);
  void admit(tcp::socket sock);
  void wait_head(connection& c);
  void on_read(connection& c, const asio::error_code& ec, size_t n);
  void check_head(connection& c);
  void refuse(connection& c, int status, const char* text,
              const std::string& why, prometheus::Counter& counter);
  void dispatch(connection& c);
  void after_request(connection& c, outcome o);
  void enter_waiting(connection& c, steady::time_point deadline);
  void leave_waiting(connection& c);
  bool evict_one();
  void closed(connection& c);
  void sweep();
  void arm_sweep();
  void begin_stop();
  void maybe_finish();
};

namespace {

prometheus::Labels listener(const std::string& name) {
  return {{"listener", name}};
}

} // namespace

/// One accepted connection. Its state and buffer belong to the I/O thread,
/// except while it is `busy`: then to the one worker answering it.
struct connection : std::enable_shared_from_this<connection> {
  explicit connection(front::impl& f) : f(f) {}
  virtual ~connection() = default;

  // On the I/O thread.
  virtual void start() = 0;
  /// Reads into the buffer's free space, then calls f.on_read.
  virtual void read_async() = 0;
  /// Writes `answer`, then closes gracefully.
  virtual void answer_async() = 0;
  virtual void close_gracefully() = 0;
  virtual void close_now() = 0;
  // On a worker thread.
  virtual void serve() = 0;

  /// Room after `end` for at least one byte: moves the unread bytes to the
  /// front, or grows the buffer up to max_buffer.
  bool make_room() {
    if (!buf) {
      buf.reset(new char[initial_buffer]);
      cap = initial_buffer;
    }
    if (end < cap)
      return true;
    if (begin > 0) {
      std::memmove(buf.get(), buf.get() + begin, end - begin);
      end -= begin;
      begin = 0;
      return true;
    }
    if (cap >= f.max_buffer)
      return false;
    auto bigger = std::min(cap * 2, f.max_buffer);
    std::unique_ptr<char[]> b{new char[bigger]};
    std::memcpy(b.get(), buf.get(), end);
    buf = std::move(b);
    cap = bigger;
    return true;
  }

  /// Gives back a grown buffer once nothing is left in it.
  void shrink() {
    if (begin == end) {
      begin = end = 0;
      if (cap > initial_buffer) {
        buf.reset(new char[initial_buffer]);
        cap = initial_buffer;
      }
    }
  }

  front::impl& f;
  phase state = phase::idle;
  steady::time_point deadline;
  bool is_waiting = false;
  std::list<connection*>::iterator wait_pos;
  std::list<std::shared_ptr<connection>>::iterator all_pos;
  // Bytes read and not yet consumed: [begin, end) of buf.
  std::unique_ptr<char[]> buf;
  size_t cap = 0;
  size_t begin = 0;
  size_t end = 0;
  head_scan scan;
  size_t requests_left = 0;
  size_t discarded = 0;
  std::string answer; // the front's own answer being written
  std::string remote_ip;
  int remote_port = 0;
  std::string local_ip;
  int local_port = 0;
  int fd = -1;
};

namespace {

/// httplib's view of a connection while a worker answers one request on
/// it: the bytes already read first (the head, any body bytes and
/// pipelined requests that came with it), then the socket, with the read
/// and write timeouts; small writes gathered until a read, a large write
/// or the end of the answer.
template <class Transport>
class connection_stream final : public httplib::Stream {
public:
  connection_stream(connection& c, Transport& s) : c_(c), s_(s) {}

  bool is_readable() const override {
    if (c_.begin < c_.end)
      return true;
    if constexpr (std::is_same_v<Transport, tls_stream>)
      if (SSL_pending(s_.native_handle()) > 0)
        return true;
    return wait_fd(c_.fd, POLLIN, steady::now() + c_.f.read_timeout);
  }

  bool is_writable() const override {
    return !failed_ &&
           wait_fd(c_.fd, POLLOUT, steady::now() + c_.f.write_timeout);
  }

  ssize_t read(char* ptr, size_t size) override {
    if (c_.begin < c_.end)
      return take(ptr, size);
    if (failed_ || !flush())
      return -1;
    asio::error_code ec;
    if (size >= c_.cap / 2) {
      auto n = s_.read_some(asio::buffer(ptr, size), ec);
      return ec ? fail(ec) : static_cast<ssize_t>(n);
    }
    c_.begin = c_.end = 0;
    auto n = s_.read_some(asio::buffer(c_.buf.get(), c_.cap), ec);
    if (ec)
      return fail(ec);
    c_.end = n;
    return take(ptr, size);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (failed_)
      return -1;
    if (out_.size() + size <= gather_limit) {
      out_.append(ptr, size);
      return static_cast<ssize_t>(size);
    }
    if (!flush())
      return -1;
    if (size < gather_limit) {
      out_.append(ptr, size);
      return static_cast<ssize_t>(size);
    }
    asio::error_code ec;
    auto n = s_.write_some(asio::buffer(ptr, size), ec);
    return ec ? fail(ec) : static_cast<ssize_t>(n);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.remote_ip;
    port = c_.remote_port;
  }

  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.local_ip;
    port = c_.local_port;
  }

  socket_t socket() const override { return c_.fd; }

  /// Sends what was gathered; false if that failed.
  bool flush() {
    size_t done = 0;
    while (done < out_.size() && !failed_) {
      asio::error_code ec;
      auto n = s_.write_some(
          asio::buffer(out_.data() + done, out_.size() - done), ec);
      if (ec)
        fail(ec);
      done += n;
    }
    out_.clear();
    return !failed_;
  }

  /// Whether reading or writing failed (the connection is unusable).
  bool failed() const { return failed_; }

private:
  ssize_t take(char* ptr, size_t size) {
    auto n = std::min(size, c_.end - c_.begin);
    std::memcpy(ptr, c_.buf.get() + c_.begin, n);
    c_.begin += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t fail(const asio::error_code& ec) {
    // A clean end of the stream reads as 0 bytes, like a socket's; httplib
    // treats it as the end of the request either way.
    failed_ = true;
    return ec == asio::error::eof ? 0 : -1;
  }

  connection& c_;
  Transport& s_;
  std::string out_;
  bool failed_ = false;
};

/// A connection over `Transport`: timed_socket (plain HTTP) or tls_stream.
template <class Transport>
class basic_connection final : public connection {
public:
  static constexpr bool is_tls = std::is_same_v<Transport, tls_stream>;

  template <class... Args>
  basic_connection(front::impl& f, Args&&... args)
      : connection(f), s_(std::forward<Args>(args)...) {
    socket_layer().set_timeouts(f.read_timeout, f.write_timeout);
  }

  void start() override {
    if constexpr (is_tls) {
      state = phase::handshake;
      f.enter_waiting(*this, steady::now() + f.cfg.head_timeout);
      s_.async_handshake(
          asio::ssl::stream_base::server,
          [self = shared_from_this(), this](const asio::error_code& ec) {
            if (state == phase::closed)
              return;
            if (ec)
              close_now();
            else
              f.wait_head(*this);
          });
    } else {
      f.wait_head(*this);
    }
  }

  void read_async() override {
    if (!make_room()) { // cannot happen: the scan refuses such a head first
      close_now();
      return;
    }
    s_.async_read_some(asio::buffer(buf.get() + end, cap - end),
                       [self = shared_from_this(),
                        this](const asio::error_code& ec, size_t n) {
                         f.on_read(*this, ec, n);
                       });
  }

  void answer_async() override {
    state = phase::closing;
    f.enter_waiting(*this, steady::now() + linger_time);
    asio::async_write(
        s_, asio::buffer(answer),
        [self = shared_from_this(), this](const asio::error_code& ec, size_t) {
          if (state == phase::closed)
            return;
          if (ec)
            close_now();
          else
            close_gracefully();
        });
  }

  void close_gracefully() override {
    state = phase::closing;
    f.enter_waiting(*this, steady::now() + linger_time);
    if constexpr (is_tls) {
      // close_notify, then the peer's (or the deadline).
      s_.async_shutdown([self = shared_from_this(),
                         this](const asio::error_code&) { close_now(); });
    } else {
      // Half-close, then read and drop what still comes until the client
      // closes (on_read), at most linger_time and linger_bytes.
      asio::error_code ec;
      lowest().shutdown(tcp::socket::shutdown_send, ec);
      begin = end = 0;
      discarded = 0;
      read_async();
    }
  }

  void close_now() override {
    if (state == phase::closed)
      return;
    state = phase::closed;
    asio::error_code ec;
    lowest().close(ec);
    f.closed(*this); // last: it may release this connection
  }

  void serve() override {
    connection_stream<Transport> strm{*this, s_};
    auto o = answer_one(strm);
    // The next request on a busy keep-alive connection usually follows
    // within a few milliseconds: wait that long for it here (see
    // next_request_wait) instead of handing the connection to the I/O
    // thread and back.
    while (o == outcome::keep && next_head_here())
      o = answer_one(strm);
    asio::post(f.io, [self = shared_from_this(), this, o] {
      f.after_request(*this, o);
    });
  }

  tcp::socket::lowest_layer_type& lowest() { return s_.lowest_layer(); }

private:
  /// httplib answers the request whose head is buffered.
  outcome answer_one(connection_stream<Transport>& strm) {
    bool close_connection = requests_left <= 1 || f.stopping.load();
    bool connection_closed = false;
    bool answer_closes = false;
    bool ok = false;
    try {
      if constexpr (is_tls)
        ok = f.proc.process(
            strm, close_connection, connection_closed, answer_closes,
            [this](httplib::Request& req) { req.ssl = s_.native_handle(); });
      else
        ok = f.proc.process(strm, close_connection, connection_closed,
                            answer_closes, nullptr);
    } catch (const std::exception& e) {
      log::error("http.exception", {{"error", e.what()}});
    }
    ok = strm.flush() && ok;
    --requests_left;
    return strm.failed() ? outcome::abort
           : ok && !close_connection && !connection_closed && !answer_closes
               ? outcome::keep
               : outcome::close;
  }

  /// Whether a whole request head is in the buffer now, waiting at most
  /// linger_time for it. Anything else (a part of a head, nothing, the
  /// client gone) is left to the I/O thread.
  bool next_head_here() {
    if (begin == end) {
      if (f.stopping.load() || f.pool.saturated())
        return false;
      if (f.lingering.fetch_add(1) >= f.max_lingering) {
        --f.lingering;
        return false;
      }
      begin = end = 0;
      asio::error_code ec;
      socket_layer().set_timeouts(next_request_wait, f.write_timeout);
      auto n = s_.read_some(asio::buffer(buf.get(), cap), ec);
      socket_layer().set_timeouts(f.read_timeout, f.write_timeout);
      --f.lingering;
      if (ec) // timed out, or gone: the I/O thread sees which
        return false;
      end = n;
    }
    head_scan scan_here;
    return scan_here.feed(buf.get() + begin, end - begin, f.cfg) ==
           head_result::complete;
  }

  timed_socket& socket_layer() {
    if constexpr (is_tls)
      return s_.next_layer();
    else
      return s_;
  }

  Transport s_;
};

} // namespace

// ------------------------------------------------------------- the front

front::impl::impl(processor& p, front_config c)
    : proc(p), cfg(std::move(c)),
      max_lingering(std::max<size_t>(cfg.max_threads / 2, 1)),
    max_buffer(cfg.max_request_line + cfg.max_header_bytes + 4096),
      read_timeout(p.read_timeout()), write_timeout(p.write_timeout()),
      keep_alive_timeout(p.keep_alive_timeout()),
      keep_alive_max(std::max<size_t>(p.keep_alive_max_count(), 1)),
      m_open(metrics().http_connections.Add(listener(cfg.name))),
      m_refused(metrics().http_connections_refused.Add(listener(cfg.name))),
      m_evicted(metrics().http_connections_evicted.Add(listener(cfg.name))),
      m_too_large(metrics().http_heads_refused.Add(
          {{"listener", cfg.name}, {"reason", "too_large"}})),
      m_too_many_fields(metrics().http_heads_refused.Add(
          {{"listener", cfg.name}, {"reason", "too_many_fields"}})),
      m_timeout(metrics().http_heads_refused.Add(
          {{"listener", cfg.name}, {"reason", "timeout"}})),
      m_waiting(metrics().http_requests_waiting.Add(listener(cfg.name))),
      pool(cfg.min_threads, cfg.max_threads,
           metrics().http_worker_threads.Add(
               {{"listener", cfg.name}, {"state", "busy"}}),
           metrics().http_worker_threads.Add(
               {{"listener", cfg.name}, {"state", "idle"}})) {}

void front::impl::accept() {
  acceptor.async_accept([this](const asio::error_code& ec, tcp::socket sock) {
    on_accept(ec, std::move(sock));
  });
}

void front::impl::on_accept(const asio::error_code& ec, tcp::socket sock) {
  if (stop_begun || !acceptor.is_open())
    return;
  if (!ec) {
    admit(std::move(sock));
    accept();
    return;
  }
  if (ec == asio::error::no_descriptors || ec == asio::error::no_memory ||
      ec == asio::error::no_buffer_space || ec.value() == ENFILE) {
    // Out of file descriptors: make room by closing the connection that
    // has waited longest, or try again shortly.
    auto now = steady::now();
    if (now - accept_logged > std::chrono::seconds{10}) {
      accept_logged = now;
      log::warn("http.accept_failed", {{"listener", cfg.name},
                                       {"error", ec.message()},
                                       {"open", std::to_string(open)}});
    }
    if (!evict_one()) {
      accept_retry.expires_after(std::chrono::milliseconds{100});
      accept_retry.async_wait([this](const asio::error_code& e) {
        if (!e && !stop_begun)
          accept();
      });
      return;
    }
  }
  accept(); // e.g. a connection reset before it was accepted
}

void front::impl::admit(tcp::socket sock) {
  if (open >= cfg.max_connections && !evict_one()) {
    // Every open connection is being answered: no room.
    m_refused.Increment();
    if (!tls) {
      static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                 "Content-Type: text/plain; charset=utf-8\r\n"
                                 "Content-Length: 32\r\n"
                                 "Connection: close\r\n"
                                 "Retry-After: 1\r\n"
                                 "X-Content-Type-Options: nosniff\r\n"
                                 "\r\n"
                                 "too many connections; try again\n";
      // Best effort: a new socket's send buffer is empty.
      [[maybe_unused]] auto n =
          ::send(sock.native_handle(), busy, sizeof busy - 1,
                 MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    asio::error_code ec;
    sock.close(ec);
    return;
  }
  asio::error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  auto remote = sock.remote_endpoint(ec);
  if (ec) { // already gone
    sock.close(ec);
    return;
  }
  auto local = sock.local_endpoint(ec);
  int fd = sock.native_handle();
  std::shared_ptr<connection> c;
  if (tls)
    c = std::make_shared<basic_connection<tls_stream>>(*this, std::move(sock),
                                                       *tls);
  else
    c = std::make_shared<basic_connection<timed_socket>>(*this,
                                                         std::move(sock));
  c->fd = fd;
  c->remote_ip = remote.address().to_string();
  c->remote_port = remote.port();
  c->local_ip = local.address().to_string();
  c->local_port = local.port();
  c->requests_left = keep_alive_max;
  all.push_back(c);
  c->all_pos = std::prev(all.end());
  ++open;
  m_open.Increment();
  c->start();
}

void front::impl::wait_head(connection& c) {
  c.scan = head_scan{};
  if (c.begin == c.end) {
    c.shrink();
    c.state = phase::idle;
    enter_waiting(c, steady::now() + keep_alive_timeout);
    c.read_async();
  } else { // pipelined: the next head has begun
    c.state = phase::head;
    enter_waiting(c, steady::now() + cfg.head_timeout);
    check_head(c);
  }
}

void front::impl::on_read(connection& c, const asio::error_code& ec, size_t n) {
  if (c.state == phase::closed)
    return;
  if (ec) { // the client closed or reset, or the socket was closed
    c.close_now();
    return;
  }
  if (c.state == phase::closing) { // lingering: drop what comes
    c.discarded += n;
    c.begin = c.end = 0;
    if (c.discarded > linger_bytes)
      c.close_now();
    else
      c.read_async();
    return;
  }
  if (c.state == phase::idle) {
    c.state = phase::head;
    c.deadline = steady::now() + cfg.head_timeout;
  }
  c.end += n;
  check_head(c);
}

void front::impl::check_head(connection& c) {
  switch (c.scan.feed(c.buf.get() + c.begin, c.end - c.begin, cfg)) {
  case head_result::need_more:
    c.read_async();
    return;
  case head_result::complete:
    dispatch(c);
    return;
  case head_result::line_too_long:
    refuse(c, 414, "URI Too Long",
           "the request line is longer than " +
               std::to_string(cfg.max_request_line) + " bytes",
           m_too_large);
    return;
  case head_result::too_large:
    refuse(c, 431, "Request Header Fields Too Large",
           "the request header fields are larger than " +
               std::to_string(cfg.max_header_bytes) + " bytes",
           m_too_large);
    return;
  case head_result::too_many_fields:
    refuse(c, 431, "Request Header Fields Too Large",
           "more than " + std::to_string(cfg.max_header_fields) +
               " request header fields",
           m_too_many_fields);
    return;
  }
}

void front::impl::refuse(connection& c, int status, const char* text,
                         const std::string& why, prometheus::Counter& counter) {
  counter.Increment();
  c.begin = c.end = 0;
  auto body = why + "\n";
  c.answer = "HTTP/1.1 " + std::to_string(status) + " " + text +
             "\r\nContent-Type: text/plain; charset=utf-8"
             "\r\nContent-Length: " +
             std::to_string(body.size()) +
             "\r\nConnection: close"
             "\r\nAccess-Control-Allow-Origin: *"
             "\r\nX-Content-Type-Options: nosniff\r\n\r\n" +
             body;
  c.answer_async();
}

void front::impl::dispatch(connection& c) {
  leave_waiting(c);
  c.state = phase::busy;
  m_waiting.Increment();
  pool.submit([self = c.shared_from_this(), this] {
    m_waiting.Decrement();
    self->serve();
  });
}

void front::impl::after_request(connection& c, outcome o) {
  if (c.state == phase::closed)
    return;
  if (o == outcome::abort || stop_begun)
    c.close_now();
  else if (o == outcome::close)
    c.close_gracefully();
  else
    wait_head(c);
}

void front::impl::enter_waiting(connection& c, steady::time_point deadline) {
  c.deadline = deadline;
  if (c.is_waiting) {
    waiting.splice(waiting.end(), waiting, c.wait_pos);
  } else {
    waiting.push_back(&c);
    c.wait_pos = std::prev(waiting.end());
    c.is_waiting = true;
  }
}

void front::impl::leave_waiting(connection& c) {
  if (c.is_waiting) {
    waiting.erase(c.wait_pos);
    c.is_waiting = false;
  }
}

bool front::impl::evict_one() {
  if (waiting.empty())
    return false;
  m_evicted.Increment();
  waiting.front()->close_now();
  return true;
}

void front::impl::closed(connection& c) {
  leave_waiting(c);
  --open;
  m_open.Decrement();
  // Released after the handler that closed it has returned.
  auto last = std::move(*c.all_pos);
  all.erase(c.all_pos);
  asio::post(io, [last = std::move(last)] {});
  maybe_finish();
}

void front::impl::sweep() {
  auto now = steady::now();
  for (auto i = waiting.begin(); i != waiting.end();) {
    auto* c = *i++; // closing or answering may move or drop it
    if (c->deadline > now)
      continue;
    // A head that did not arrive in time is counted and dropped (a read
    // is still pending: no answer is written), like a connection idle
    // past the keep-alive timeout, a handshake past its deadline and a
    // connection done lingering.
    if (c->state == phase::head)
      m_timeout.Increment();
    c->close_now();
  }
}

void front::impl::arm_sweep() {
  sweep_timer.expires_after(std::chrono::milliseconds{250});
  sweep_timer.async_wait([this](const asio::error_code& ec) {
    if (ec)
      return;
    sweep();
    if (!(stop_begun && open == 0))
      arm_sweep();
  });
}

void front::impl::begin_stop() {
  if (stop_begun)
    return;
  stop_begun = true;
  asio::error_code ec;
  acceptor.close(ec);
  accept_retry.cancel();
  while (!waiting.empty())
    waiting.front()->close_now();
  // Requests being answered get a while to finish; then their sockets are
  // shut down, so that a body that trickles in (or an answer a client
  // reads slowly) cannot hold the stop up to the read or write timeout,
  // again and again.
  stop_grace.expires_after(stop_grace_time);
  stop_grace.async_wait([this](const asio::error_code& ec) {
    if (ec)
      return;
    for (auto& c : all)
      if (c->state == phase::busy)
        ::shutdown(c->fd, SHUT_RDWR);
  });
  maybe_finish();
}

void front::impl::maybe_finish() {
  if (stop_begun && open == 0) {
    sweep_timer.cancel();
    stop_grace.cancel();
    guard.reset();
  }
}

front::front(processor& proc, front_config cfg)
    : impl_(std::make_unique<impl>(proc, std::move(cfg))) {}

front::~front() = default;

caf::error front::bind() {
  auto& f = *impl_;
  auto where = f.cfg.host + ":" + std::to_string(f.cfg.port);
  if (!f.cfg.tls_cert.empty()) {
    caf::error err;
    f.tls = make_tls_context(f.cfg.tls_cert, f.cfg.tls_key, err);
    if (err)
      return err;
  }
  // Every connection is a descriptor: allow as many as the hard limit.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  asio::error_code ec;
  tcp::resolver resolver{f.io};
  auto results = resolver.resolve(
      f.cfg.host, std::to_string(f.cfg.port),
      tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty())
    return make_error(ec::unavailable, "cannot listen on " + where + ": " +
                                           (ec ? ec.message() : "no address"));
  for (const auto& r : results) {
    auto ep = r.endpoint();
    f.acceptor.open(ep.protocol(), ec);
    if (ec)
      continue;
    // SO_REUSEADDR only: with SO_REUSEPORT a second node could bind the
    // same port and take half its connections.
    f.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec)
      f.acceptor.bind(ep, ec);
    if (!ec)
      f.acceptor.listen(1024, ec);
    if (!ec)
      break;
    asio::error_code ignored;
    f.acceptor.close(ignored);
  }
  if (ec || !f.acceptor.is_open())
    return make_error(ec::unavailable,
                      "cannot listen on " + where + ": " + ec.message());
  f.bound_port = f.acceptor.local_endpoint(ec).port();
  f.proc.set_listening(f.acceptor.native_handle());
  return {};
}

uint16_t front::port() const {
  return impl_->bound_port;
}

void front::run() {
  auto& f = *impl_;
  f.guard.emplace(f.io.get_executor());
  f.pool.start();
  f.accept();
  f.arm_sweep();
  for (;;) {
    try {
      f.io.run();
      break;
    } catch (const std::exception& e) {
      log::error("http.front_exception",
                 {{"listener", f.cfg.name}, {"error", e.what()}});
    }
  }
  f.pool.shutdown();
}

void front::stop() {
  auto& f = *impl_;
  f.stopping = true;
  f.proc.set_listening(-1);
  asio::post(f.io, [&f] { f.begin_stop(); });
}

} // namespace reel::http
