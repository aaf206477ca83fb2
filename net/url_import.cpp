#include "net/url_import.hpp"

#include "ops/util.hpp"

#include <httplib.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

namespace reel {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr const char* ca_bundle = "/etc/ssl/certs/ca-certificates.crt";

// -- addresses --

/// An IPv4 (4 bytes used) or IPv6 address in network order.
struct ip_addr {
  int family = AF_INET;
  std::array<uint8_t, 16> b{};
};

std::optional<ip_addr> parse_ip(const std::string& s) {
  ip_addr a;
  if (inet_pton(AF_INET, s.c_str(), a.b.data()) == 1)
    return a;
  a.family = AF_INET6;
  if (inet_pton(AF_INET6, s.c_str(), a.b.data()) == 1)
    return a;
  return std::nullopt;
}

std::string to_string(const ip_addr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(a.family, a.b.data(), buf, sizeof(buf));
  return buf;
}

ip_addr v4(const uint8_t* p) {
  ip_addr a;
  std::copy(p, p + 4, a.b.begin());
  return a;
}

/// Whether the first `bits` bits of `a` equal those of `net` (same family).
bool prefix_matches(const ip_addr& a, const ip_addr& net, int bits) {
  if (a.family != net.family)
    return false;
  int i = 0;
  for (; bits >= 8; bits -= 8, ++i)
    if (a.b[i] != net.b[i])
      return false;
  if (bits == 0)
    return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (a.b[i] & mask) == (net.b[i] & mask);
}

bool in(const ip_addr& a, const char* net, int bits) {
  return prefix_matches(a, *parse_ip(net), bits);
}

/// ::ffff:a.b.c.d -> a.b.c.d; anything else unchanged.
ip_addr unmap(const ip_addr& a) {
  if (a.family == AF_INET6 && in(a, "::ffff:0:0", 96))
    return v4(a.b.data() + 12);
  return a;
}

bool private_v4(const ip_addr& a) {
  static const std::pair<const char*, int> ranges[] = {
      {"0.0.0.0", 8},       // "this network", unspecified
      {"10.0.0.0", 8},      // private
      {"100.64.0.0", 10},   // CGNAT
      {"127.0.0.0", 8},     // loopback
      {"169.254.0.0", 16},  // link-local (cloud metadata services)
      {"172.16.0.0", 12},   // private
      {"192.0.0.0", 24},    // IETF protocol assignments
      {"192.0.2.0", 24},    // documentation
      {"192.88.99.0", 24},  // 6to4 relay anycast
      {"192.168.0.0", 16},  // private
      {"198.18.0.0", 15},   // benchmarking
      {"198.51.100.0", 24}, // documentation
      {"203.0.113.0", 24},  // documentation
      {"224.0.0.0", 4},     // multicast
      {"240.0.0.0", 4},     // reserved, broadcast
  };
  for (auto& [net, bits] : ranges)
    if (in(a, net, bits))
      return true;
  return false;
}

bool private_addr(const ip_addr& a) {
  if (a.family == AF_INET)
    return private_v4(a);
  if (in(a, "::ffff:0:0", 96) || in(a, "64:ff9b::", 96))
    return private_v4(v4(a.b.data() + 12));
  if (in(a, "2002::", 16)) // 6to4 carries an IPv4 address in bits 16-47
    return private_v4(v4(a.b.data() + 2));
  // Global unicast is 2000::/3; the rest (::, ::1, IPv4-compatible, fc00::/7,
  // fe80::/10, ff00::/8, 64:ff9b:1::/48, 100::/64, ...) is not public.
  if (!in(a, "2000::", 3))
    return true;
  return in(a, "2001::", 23)        // IETF protocol assignments, Teredo
         || in(a, "2001:db8::", 32) // documentation
         || in(a, "3fff::", 20);    // documentation
}

// -- allow list --

struct cidr {
  ip_addr net;
  int bits = 0;
};

struct allow_list {
  std::vector<cidr> nets;
  std::vector<std::string> hosts; // lower case, no trailing dot
};

bool is_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string normal_host(std::string h) {
  h = lower(std::move(h));
  if (!h.empty() && h.back() == '.')
    h.pop_back();
  return h;
}

caf::expected<allow_list> parse_allow(const std::vector<std::string>& entries) {
  allow_list out;
  for (auto& e : entries) {
    auto bad = [&] {
      return make_error(ec::invalid_argument,
                        "bad import allow entry \"" + e +
                            "\": expected a CIDR, an address or a host name");
    };
    if (e.empty())
      return bad();
    auto slash = e.find('/');
    auto ip = parse_ip(e.substr(0, slash));
    if (slash == std::string::npos) {
      if (ip)
        out.nets.push_back(
            {unmap(*ip), unmap(*ip).family == AF_INET ? 32 : 128});
      else
        out.hosts.push_back(normal_host(e));
      continue;
    }
    auto len = e.substr(slash + 1);
    if (!ip || !is_digits(len) || len.size() > 3)
      return bad();
    int bits = std::stoi(len);
    if (bits > (ip->family == AF_INET ? 32 : 128))
      return bad();
    out.nets.push_back({*ip, bits});
  }
  return out;
}

bool allowed(const allow_list& allow, const ip_addr& a) {
  auto plain = unmap(a);
  for (auto& n : allow.nets)
    if (prefix_matches(a, n.net, n.bits) ||
        prefix_matches(plain, n.net, n.bits))
      return true;
  return false;
}

bool allowed_host(const allow_list& allow, const std::string& host) {
  return std::find(allow.hosts.begin(), allow.hosts.end(), host) !=
         allow.hosts.end();
}

// -- URLs --

struct url_parts {
  std::string scheme; // "http" or "https"
  std::string host;   // lower case; an IPv6 literal without brackets
  uint16_t port = 0;
  std::string target; // path and query, never empty

  bool ipv6_literal() const { return host.find(':') != std::string::npos; }

  bool default_port() const { return port == (scheme == "https" ? 443 : 80); }

  std::string authority() const {
    auto h = ipv6_literal() ? "[" + host + "]" : host;
    return default_port() ? h : h + ":" + std::to_string(port);
  }

  std::string str() const { return scheme + "://" + authority() + target; }

  bool same_origin(const url_parts& o) const {
    return scheme == o.scheme && host == o.host && port == o.port;
  }
};

caf::error bad_url(const std::string& why) {
  return make_error(ec::invalid_argument, "bad URL: " + why);
}

bool has_control_chars(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

/// Percent-encodes the bytes a request line must not carry raw (non-ASCII);
/// the rest is sent as given, so that signed query strings stay intact.
std::string encode_target(const std::string& s) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      out += '%';
      out += digits[u >> 4];
      out += digits[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

bool is_scheme(const std::string& s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0])))
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' ||
           c == '-' || c == '.';
  });
}

caf::expected<url_parts> parse_url(std::string s) {
  if (s.empty())
    return bad_url("empty");
  if (has_control_chars(s))
    return bad_url("spaces or control characters in " + s);
  s = s.substr(0, s.find('#'));
  auto sep = s.find("://");
  if (sep == std::string::npos || !is_scheme(s.substr(0, sep)))
    return bad_url(s + " is not an absolute http(s) URL");
  url_parts u;
  u.scheme = lower(s.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https")
    return make_error(ec::invalid_argument,
                      "unsupported URL scheme \"" + u.scheme +
                          "\": only http and https sources can be imported");
  auto rest = s.substr(sep + 3);
  auto end = rest.find_first_of("/?");
  auto authority = rest.substr(0, end);
  u.target = end == std::string::npos ? "/" : rest.substr(end);
  if (u.target[0] == '?')
    u.target = "/" + u.target;
  u.target = encode_target(u.target);
  if (authority.find('@') != std::string::npos)
    return make_error(ec::invalid_argument,
                      "bad URL: user names and passwords in URLs are not "
                      "accepted (send credentials as request headers)");
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos)
      return bad_url("unterminated [ in " + s);
    u.host = authority.substr(1, close - 1);
    ip_addr a;
    if (inet_pton(AF_INET6, u.host.c_str(), a.b.data()) != 1)
      return bad_url("bad IPv6 address [" + u.host + "]");
    auto after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':')
      return bad_url("unexpected text after ] in " + s);
    if (!after.empty())
      port = after.substr(1);
    u.host = lower(u.host);
  } else {
    auto colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
      if (port.find(':') != std::string::npos)
        return bad_url("IPv6 addresses must be in brackets: " + s);
    }
    u.host = normal_host(u.host);
    if (u.host.empty())
      return bad_url("no host in " + s);
    for (char c : u.host)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' &&
          c != '.' && c != '_')
        return bad_url("bad host name " + u.host);
  }
  u.port = u.scheme == "https" ? 443 : 80;
  if (!port.empty()) {
    if (!is_digits(port) || port.size() > 5 || std::stoi(port) == 0 ||
        std::stoi(port) > 65535)
      return bad_url("bad port in " + s);
    u.port = static_cast<uint16_t>(std::stoi(port));
  }
  return u;
}

/// RFC 3986 5.2.4, on the path only.
std::string remove_dot_segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1; // past the leading '/'
  bool trailing = false;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos)
      end = path.size();
    auto seg = path.substr(start, end - start);
    trailing = end == path.size() && (seg.empty() || seg == "." || seg == "..");
    if (seg == "..") {
      if (!out.empty())
        out.pop_back();
    } else if (seg != "." && !(seg.empty() && end == path.size())) {
      out.push_back(seg);
    }
    start = end + 1;
  }
  std::string r;
  for (auto& seg : out)
    r += "/" + seg;
  if (r.empty() || trailing)
    r += "/";
  return r;
}

std::string with_clean_path(const std::string& target) {
  auto q = target.find('?');
  auto path = target.substr(0, q);
  return remove_dot_segments(path) +
         (q == std::string::npos ? "" : target.substr(q));
}

/// Resolves a Location header against the URL that sent it.
caf::expected<url_parts> resolve_location(const url_parts& base,
                                          std::string loc) {
  auto b = loc.find_first_not_of(" \t");
  auto e = loc.find_last_not_of(" \t");
  loc = b == std::string::npos ? "" : loc.substr(b, e - b + 1);
  if (loc.empty())
    return make_error(ec::unavailable,
                      "the server sent a redirect without a Location");
  if (has_control_chars(loc))
    return make_error(ec::unavailable,
                      "the server sent a bad redirect Location");
  loc = loc.substr(0, loc.find('#'));
  auto colon = loc.find(':');
  auto slash = loc.find('/');
  if (colon != std::string::npos &&
      (slash == std::string::npos || colon < slash) &&
      is_scheme(loc.substr(0, colon)))
    return parse_url(loc);
  if (loc.rfind("//", 0) == 0)
    return parse_url(base.scheme + ":" + loc);
  auto u = base;
  if (loc.empty()) {
    // a bare fragment: the same resource
  } else if (loc[0] == '/') {
    u.target = with_clean_path(encode_target(loc));
  } else if (loc[0] == '?') {
    u.target =
        base.target.substr(0, base.target.find('?')) + encode_target(loc);
  } else {
    auto path = base.target.substr(0, base.target.find('?'));
    u.target = with_clean_path(path.substr(0, path.rfind('/') + 1) +
                               encode_target(loc));
  }
  return u;
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() &&
        std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

/// Strict UTF-8 (RFC 3629: no overlong forms, no surrogates).
bool valid_utf8(const std::string& s) {
  auto at = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  for (size_t i = 0; i < s.size();) {
    auto c = at(i);
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf; // range of the second byte
    if (c < 0x80) {
      n = 0;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      lo = c == 0xe0 ? 0xa0 : 0x80;
      hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      lo = c == 0xf0 ? 0x90 : 0x80;
      hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
      return false;
    }
    if (s.size() - i <= n)
      return false;
    for (size_t k = 1; k <= n; ++k) {
      auto x = at(i + k);
      if (x < (k == 1 ? lo : 0x80) || x > (k == 1 ? hi : 0xbf))
        return false;
    }
    i += n + 1;
  }
  return true;
}

/// The last path segment, decoded, as a safe file name; "" if there is none.
std::string segment_name(const url_parts& u) {
  auto path = u.target.substr(0, u.target.find('?'));
  auto name = percent_decode(path.substr(path.rfind('/') + 1));
  std::string out;
  for (char c : name) {
    auto x = static_cast<unsigned char>(c);
    if (x < 0x20 || x == 0x7f || c == '/' || c == '\\')
      continue;
    out += c;
  }
  if (!valid_utf8(out))
    for (auto& c : out)
      if (static_cast<unsigned char>(c) >= 0x80)
        c = '_';
  if (out.size() > 200) { // at a character boundary
    size_t p = 200;
    while (p > 0 && (static_cast<unsigned char>(out[p]) & 0xc0) == 0x80)
      --p;
    out.resize(p);
  }
  auto b = out.find_first_not_of(' ');
  auto e = out.find_last_not_of(' ');
  out = b == std::string::npos ? "" : out.substr(b, e - b + 1);
  if (out == "." || out == "..")
    return {};
  return out;
}

// -- resolving --

/// Resolves `u.host` and checks every address; returns those to connect to.
/// (getaddrinfo blocks for as long as the system resolver takes: its own
/// timeouts, not the import deadline, bound this step.)
caf::expected<std::vector<std::string>> vet_host(const url_parts& u,
                                                 const allow_list& allow) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(u.host.c_str(), nullptr, &hints, &res); rc != 0)
    return make_error(ec::unavailable, "cannot resolve host " + u.host + ": " +
                                           gai_strerror(rc));
  std::vector<ip_addr> addrs;
  for (auto* p = res; p != nullptr; p = p->ai_next) {
    ip_addr a;
    if (p->ai_family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(p->ai_addr);
      std::memcpy(a.b.data(), &sin->sin_addr, 4);
    } else if (p->ai_family == AF_INET6) {
      a.family = AF_INET6;
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(p->ai_addr);
      std::memcpy(a.b.data(), &sin6->sin6_addr, 16);
    } else {
      continue;
    }
    if (std::none_of(addrs.begin(), addrs.end(), [&](const ip_addr& x) {
          return x.family == a.family && x.b == a.b;
        }))
      addrs.push_back(a);
  }
  freeaddrinfo(res);
  if (addrs.empty())
    return make_error(ec::unavailable, "host " + u.host + " has no address");
  // A literal address is never exempted by name: an allowed name must not
  // open a way to numerically written private addresses.
  bool by_name = !parse_ip(u.host) && allowed_host(allow, u.host);
  std::vector<std::string> out;
  for (auto& a : addrs) {
    auto text = to_string(a);
    if (private_addr(a) && !by_name && !allowed(allow, a))
      return make_error(ec::invalid_argument,
                        "refusing to import from private address " + text +
                            (text == u.host ? "" : " (" + u.host + ")"));
    out.push_back(text);
  }
  return out;
}

// -- the download --

/// Stops a client when the deadline passes: shutting its socket down ends a
/// blocked read at once (httplib's stop() is safe from another thread).
class watchdog {
public:
  watchdog(httplib::ClientImpl& cli, clock_type::time_point deadline)
      : thread_([this, &cli, deadline] {
          std::unique_lock<std::mutex> lock{mtx_};
          if (cv_.wait_until(lock, deadline, [this] { return done_; }))
            return;
          fired_ = true;
          lock.unlock();
          cli.stop();
        }) {}

  ~watchdog() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  bool fired() const { return fired_; }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> fired_{false};
  std::thread thread_; // last: starts once the members above exist
};

/// The output file; removed again unless kept.
class dest_file {
public:
  explicit dest_file(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }

  ~dest_file() {
    if (fd_ >= 0)
      ::close(fd_);
    if (!keep_)
      ::unlink(path_.c_str());
  }

  dest_file(const dest_file&) = delete;
  dest_file& operator=(const dest_file&) = delete;

  bool ok() const { return fd_ >= 0; }

  bool write(const char* p, size_t n) {
    while (n > 0) {
      auto w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  caf::error close_and_keep() {
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0)
      return make_error(ec::storage_error,
                        "cannot write " + path_ + ": " + std::strerror(errno));
    keep_ = true;
    return {};
  }

private:
  std::string path_;
  int fd_ = -1;
  bool keep_ = false;
};

caf::error
check_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
  for (auto& [name, value] : headers) {
    if (lower(name) == "host")
      return make_error(ec::invalid_argument,
                        "the Host header cannot be set for an import");
    if (name.empty() || std::any_of(name.begin(), name.end(), [](char c) {
          auto u = static_cast<unsigned char>(c);
          return u <= 0x20 || u >= 0x7f || c == ':';
        }))
      return make_error(ec::invalid_argument,
                        "bad request header name \"" + name + "\"");
    if (value.find_first_of(std::string{"\r\n\0", 3}) != std::string::npos)
      return make_error(ec::invalid_argument,
                        "request header " + name +
                            " contains a line break or NUL");
  }
  return {};
}

/// What one request came to.
struct hop_outcome {
  enum kind { done, redirect, failed } what = failed;
  std::string location; // redirect
  caf::error err;       // failed
  bool retry_next_address = false;
};

struct download_state {
  const import_options& opts;
  clock_type::time_point deadline;
  dest_file& file;
  import_result& result;
  reel::sha256 hash;
};

caf::error timeout_error(const import_options& opts) {
  return make_error(ec::timeout, "the import did not finish within " +
                                     std::to_string(opts.timeout_s) + " s");
}

hop_outcome fetch(const url_parts& u, const std::string& ip,
                  const httplib::Headers& headers, download_state& st) {
  hop_outcome out;
  auto now = clock_type::now();
  if (now >= st.deadline) {
    out.err = timeout_error(st.opts);
    return out;
  }
  std::unique_ptr<httplib::ClientImpl> cli;
  if (u.scheme == "https") {
    auto ssl = std::make_unique<httplib::SSLClient>(u.host, u.port);
    if (::access(ca_bundle, R_OK) == 0)
      ssl->set_ca_cert_path(ca_bundle);
    ssl->enable_server_certificate_verification(true);
    cli = std::move(ssl);
  } else {
    cli = std::make_unique<httplib::ClientImpl>(u.host, u.port);
  }
  // Connect to the vetted address; the name still goes into Host, SNI and
  // the certificate check.
  cli->set_hostname_addr_map({{u.host, ip}});
  cli->set_follow_location(false);
  cli->set_keep_alive(false);
  cli->set_url_encode(false); // parse_url made the target safe already
  // Per-call limits for a server that goes silent. Where the deadline is
  // nearer, they end a second after it, so that the watchdog always gets
  // there first and the error says "timeout", not "read failed".
  auto left =
      std::chrono::duration_cast<std::chrono::microseconds>(st.deadline - now) +
      std::chrono::seconds{1};
  auto cap = [&](std::chrono::seconds s) {
    return std::min<std::chrono::microseconds>(left, s);
  };
  cli->set_connection_timeout(cap(std::chrono::seconds{30}));
  cli->set_read_timeout(cap(std::chrono::seconds{60}));
  cli->set_write_timeout(cap(std::chrono::seconds{30}));
  watchdog dog{*cli, st.deadline};

  caf::error why; // set by the handlers when they cancel
  auto on_response = [&](const httplib::Response& r) {
    if (r.status >= 300 && r.status < 400) {
      out.what = hop_outcome::redirect;
      out.location = r.get_header_value("Location");
      if (out.location.empty()) {
        out.what = hop_outcome::failed;
        why = make_error(ec::unavailable, "the server answered HTTP " +
                                              std::to_string(r.status) +
                                              " without a Location");
      }
      return false;
    }
    if (r.status < 200 || r.status >= 300) {
      auto reason = r.reason.empty() ? "" : " " + r.reason;
      why = make_error(ec::unavailable, "the server answered HTTP " +
                                            std::to_string(r.status) + reason +
                                            " for " + u.str());
      return false;
    }
    if (r.has_header("Content-Length")) {
      auto len = r.get_header_value("Content-Length");
      bool big = is_digits(len) &&
                 (len.size() > 18 || std::stoll(len) > st.opts.max_bytes);
      if (big) {
        why = make_error(ec::too_large,
                         "the source is " + len + " bytes, over the limit of " +
                             std::to_string(st.opts.max_bytes) + " bytes");
        return false;
      }
    }
    st.result.content_type = r.get_header_value("Content-Type");
    return true;
  };
  auto on_data = [&](const char* data, size_t n) {
    if (clock_type::now() >= st.deadline) {
      why = timeout_error(st.opts);
      return false;
    }
    if (st.result.bytes + static_cast<int64_t>(n) > st.opts.max_bytes) {
      why = make_error(ec::too_large, "the source is over the limit of " +
                                          std::to_string(st.opts.max_bytes) +
                                          " bytes");
      return false;
    }
    if (!st.file.write(data, n)) {
      why = make_error(ec::storage_error,
                       std::string{"cannot write the source: "} +
                           std::strerror(errno));
      return false;
    }
    st.hash.update(data, n);
    st.result.bytes += static_cast<int64_t>(n);
    return true;
  };
  auto res = cli->Get(u.target, headers, on_response, on_data);
  if (res) {
    // Every status but 2xx was cancelled above; 204 comes here unseen.
    out.what = hop_outcome::done;
    return out;
  }
  if (out.what == hop_outcome::redirect)
    return out;
  out.what = hop_outcome::failed;
  if (why) {
    out.err = std::move(why);
    return out;
  }
  if (dog.fired() || clock_type::now() >= st.deadline) {
    out.err = timeout_error(st.opts);
    return out;
  }
  auto where = u.authority() + (ip == u.host ? "" : " (" + ip + ")");
  switch (res.error()) {
  case httplib::Error::Connection:
  case httplib::Error::ConnectionTimeout:
    out.retry_next_address = st.result.bytes == 0;
    out.err = make_error(ec::unavailable, "cannot connect to " + where);
    break;
  case httplib::Error::SSLConnection:
    out.err =
        make_error(ec::unavailable, "TLS handshake with " + where + " failed");
    break;
  case httplib::Error::SSLServerVerification:
    out.err = make_error(ec::unavailable, "the TLS certificate of " + u.host +
                                              " could not be verified");
    break;
  case httplib::Error::SSLLoadingCerts:
    out.err = make_error(ec::unavailable, "cannot load the CA certificates");
    break;
  case httplib::Error::Read:
    out.err = make_error(ec::unavailable, "the connection to " + where +
                                              " broke off or stalled");
    break;
  case httplib::Error::Write:
    out.err =
        make_error(ec::unavailable, "cannot send the request to " + where);
    break;
  default:
    out.err =
        make_error(ec::unavailable, "the download from " + where + " failed (" +
                                        httplib::to_string(res.error()) + ")");
  }
  return out;
}

} // namespace

caf::expected<int>
post_url(const std::string& url, const std::string& body,
         const std::string& content_type,
         const std::vector<std::pair<std::string, std::string>>& headers,
         const std::vector<std::string>& allow_entries, int timeout_s) {
  auto u = parse_url(url);
  if (!u)
    return u.error();
  auto allow = parse_allow(allow_entries);
  if (!allow)
    return allow.error();
  if (auto err = check_headers(headers))
    return err;
  auto ips = vet_host(*u, *allow);
  if (!ips)
    return ips.error();
  httplib::Headers h;
  for (auto& [name, value] : headers)
    h.emplace(name, value);
  std::string last;
  for (auto& ip : *ips) {
    std::unique_ptr<httplib::ClientImpl> cli;
    if (u->scheme == "https") {
      auto ssl = std::make_unique<httplib::SSLClient>(u->host, u->port);
      if (::access(ca_bundle, R_OK) == 0)
        ssl->set_ca_cert_path(ca_bundle);
      ssl->enable_server_certificate_verification(true);
      cli = std::move(ssl);
    } else {
      cli = std::make_unique<httplib::ClientImpl>(u->host, u->port);
    }
    cli->set_hostname_addr_map({{u->host, ip}});
    cli->set_follow_location(false);
    cli->set_keep_alive(false);
    cli->set_url_encode(false);
    cli->set_connection_timeout(std::chrono::seconds{timeout_s});
    cli->set_read_timeout(std::chrono::seconds{timeout_s});
    cli->set_write_timeout(std::chrono::seconds{timeout_s});
    auto r = cli->Post(u->target.c_str(), h, body, content_type.c_str());
    if (r)
      return r->status;
    last = httplib::to_string(r.error());
  }
  return make_error(ec::unavailable, "cannot reach " + u->authority() + ": "
                                       + last);
}

bool is_private_address(const std::string& ip) {
  auto a = parse_ip(ip);
  return !a || private_addr(*a);
}

caf::expected<import_result> import_url(const std::string& url,
                                        const std::string& dest,
                                        const import_options& opts) {
  dest_file file{dest};
  if (!file.ok())
    return make_error(ec::storage_error,
                      "cannot create " + dest + ": " + std::strerror(errno));
  if (opts.max_bytes <= 0 || opts.timeout_s <= 0 || opts.max_redirects < 0)
    return make_error(ec::invalid_argument, "import limits must be positive");
  auto allow = parse_allow(opts.allow);
  if (!allow)
    return allow.error();
  if (auto err = check_headers(opts.headers))
    return err;
  auto first = parse_url(url);
  if (!first)
    return first.error();

  // Video files are stored as sent, not re-compressed on the way.
  httplib::Headers plain{{"Accept-Encoding", "identity"},
                         {"User-Agent", "reel-import"}};
  httplib::Headers extra = plain; // for the URL's own origin
  for (auto& h : opts.headers)
    extra.erase(h.first); // a caller's value replaces a default
  for (auto& [name, value] : opts.headers)
    extra.emplace(name, value);

  import_result result;
  download_state st{opts,
                    clock_type::now() + std::chrono::seconds{opts.timeout_s},
                    file,
                    result,
                    {}};
  auto u = *first;
  for (int hop = 0;; ++hop) {
    auto ips = vet_host(u, *allow);
    if (!ips)
      return ips.error();
    hop_outcome out;
    for (auto& ip : *ips) {
      out = fetch(u, ip, u.same_origin(*first) ? extra : plain, st);
      if (!out.retry_next_address)
        break;
    }
    if (out.what == hop_outcome::failed)
      return out.err;
    if (out.what == hop_outcome::done)
      break;
    if (hop >= opts.max_redirects)
      return make_error(ec::invalid_argument,
                        "too many redirects (more than " +
                            std::to_string(opts.max_redirects) + ") from " +
                            url);
    auto next = resolve_location(u, out.location);
    if (!next)
      return next.error();
    u = *next;
  }
  if (auto err = file.close_and_keep())
    return err;
  result.sha256 = st.hash.hex_digest();
  result.final_url = u.str();
  result.filename = segment_name(*first);
  if (result.filename.empty())
    result.filename = segment_name(u);
  if (result.filename.empty())
    result.filename = "source";
  return result;
}

} // namespace reel
