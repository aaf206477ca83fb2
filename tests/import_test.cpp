#define BOOST_TEST_MODULE import
#include <boost/test/unit_test.hpp>

#include "ops/util.hpp"
#include "net/url_import.hpp"

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

namespace fs = std::filesystem;
using namespace reel;

namespace {

/// 300 KB that are not all the same byte.
std::string sample_body() {
  std::string s(300 * 1000, '\0');
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = static_cast<char>((i * 7919) >> 3);
  return s;
}

/// Sends `body` chunked, in 16 KiB pieces.
void send_chunked(httplib::Response& res, std::string body) {
  res.set_chunked_content_provider(
      "video/mp4",
      [body = std::move(body)](size_t off, httplib::DataSink& sink) {
        auto n = std::min<size_t>(16384, body.size() - off);
        sink.write(body.data() + off, n);
        if (off + n == body.size())
          sink.done();
        return true;
      });
}

/// An origin on 127.0.0.1 (or HTTPS with a self-signed certificate).
struct origin {
  std::unique_ptr<httplib::Server> svr;
  std::thread thread;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::string body = sample_body();
  std::string seen_token; // X-Token of the last /file.bin request

  explicit origin(
      std::unique_ptr<httplib::Server> s = std::make_unique<httplib::Server>())
      : svr(std::move(s)) {
    auto& srv = *svr;
    srv.Get("/file.bin",
            [this](const httplib::Request& req, httplib::Response& res) {
              seen_token = req.get_header_value("X-Token");
              res.set_content(body, "video/mp4");
            });
    srv.Get(R"(/dir/.*)",
            [this](const httplib::Request&, httplib::Response& res) {
              res.set_content(body, "video/mp4");
            });
    srv.Get("/chunked",
            [this](const httplib::Request&, httplib::Response& res) {
              send_chunked(res, body);
            });
    // /redirect/N redirects N times, alternating relative and absolute
    // Locations, then to /file.bin.
    srv.Get(R"(/redirect/(\d+))", [this](const httplib::Request& req,
                                         httplib::Response& res) {
      int n = std::stoi(req.matches[1]);
      if (n == 0)
        res.set_redirect("/file.bin");
      else if (n % 2 == 0)
        res.set_redirect(std::to_string(n - 1)); // relative to /redirect/
      else
        res.set_redirect("http://127.0.0.1:" + std::to_string(port) +
                         "/redirect/" + std::to_string(n - 1));
    });
    srv.Get("/loop", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("/loop");
    });
    srv.Get("/to-other",
            [this](const httplib::Request&, httplib::Response& res) {
              res.set_redirect("http://127.0.0.2:" + std::to_string(port) +
                               "/file.bin");
            });
    srv.Get("/to-name",
            [this](const httplib::Request&, httplib::Response& res) {
              res.set_redirect("http://localhost:" + std::to_string(port) +
                               "/file.bin");
            });
    // Headers, then nothing (until the test ends).
    srv.Get("/stall", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider(
          "video/mp4", [this](size_t, httplib::DataSink&) {
            for (int i = 0; i < 400 && !stopping; ++i)
              std::this_thread::sleep_for(std::chrono::milliseconds{50});
            return false;
          });
    });
    srv.Get("/missing", [](const httplib::Request&, httplib::Response& res) {
      res.status = 404;
      res.set_content("no such file", "text/plain");
    });
    port = srv.bind_to_any_port("127.0.0.1");
    BOOST_REQUIRE(port > 0);
    thread = std::thread([&srv] { srv.listen_after_bind(); });
    // stop() before the loop runs would be lost.
    while (!srv.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }

  ~origin() {
    stopping = true;
    svr->stop();
    thread.join();
  }

  std::string url(const std::string& path,
                  const std::string& host = "127.0.0.1") const {
    return "http://" + host + ":" + std::to_string(port) + path;
  }
};

struct temp_dir {
  std::string path = "/tmp/reel-import-test-" + make_uuid();
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() { fs::remove_all(path); }
  std::string dest() const { return path + "/source"; }
};

import_options loopback_allowed() {
  import_options o;
  o.max_bytes = 1 << 20;
  o.timeout_s = 30;
  o.allow = {"127.0.0.0/8"};
  return o;
}

/// The message of a failed import, for test output ("" when it worked).
std::string why(const caf::expected<import_result>& r) {
  return r ? std::string{} : message_of(r.error());
}

/// Fails unless `r` failed with `code` and a message holding `in_message`.
void expect_error(const caf::expected<import_result>& r, ec code,
                  const std::string& in_message) {
  BOOST_REQUIRE_MESSAGE(!r, "imported " << (r ? r->final_url : ""));
  BOOST_TEST(code_of(r.error()) == code, message_of(r.error()));
  BOOST_TEST(message_of(r.error()).find(in_message) != std::string::npos,
             message_of(r.error()));
}

} // namespace

BOOST_AUTO_TEST_CASE(downloads_a_body_with_its_size_and_digest) {
  origin o;
  temp_dir dir;
  auto r = import_url(o.url("/file.bin"), dir.dest(), loopback_allowed());
  BOOST_REQUIRE_MESSAGE(r, why(r));
  BOOST_TEST(r->bytes == static_cast<int64_t>(o.body.size()));
  BOOST_TEST(r->sha256 == sha256_hex(o.body));
  BOOST_TEST(*file_sha256(dir.dest()) == sha256_hex(o.body));
  BOOST_TEST(r->filename == "file.bin");
  BOOST_TEST(r->content_type == "video/mp4");
  BOOST_TEST(r->final_url == o.url("/file.bin"));
}

BOOST_AUTO_TEST_CASE(downloads_a_chunked_body) {
  origin o;
  temp_dir dir;
  auto r = import_url(o.url("/chunked"), dir.dest(), loopback_allowed());
  BOOST_REQUIRE_MESSAGE(r, why(r));
  BOOST_TEST(r->bytes == static_cast<int64_t>(o.body.size()));
  BOOST_TEST(r->sha256 == sha256_hex(o.body));
}

BOOST_AUTO_TEST_CASE(filename_is_the_decoded_last_segment) {
  origin o;
  temp_dir dir;
  auto r = import_url(o.url("/dir/My%20Clip%2F.mp4?sig=a+b#frag"), dir.dest(),
                      loopback_allowed());
  BOOST_REQUIRE_MESSAGE(r, why(r));
  BOOST_TEST(r->filename == "My Clip.mp4");
  auto bare = import_url(o.url("/dir/"), dir.dest(), loopback_allowed());
  BOOST_REQUIRE_MESSAGE(bare, why(bare));
  BOOST_TEST(bare->filename == "source");
}

BOOST_AUTO_TEST_CASE(extra_headers_are_sent_and_checked) {
  origin o;
  temp_dir dir;
  auto opts = loopback_allowed();
  opts.headers = {{"X-Token", "secret"}};
  auto r = import_url(o.url("/file.bin"), dir.dest(), opts);
  BOOST_REQUIRE_MESSAGE(r, why(r));
  BOOST_TEST(o.seen_token == "secret");
  opts.headers = {{"host", "example.com"}};
  expect_error(import_url(o.url("/file.bin"), dir.dest(), opts),
               ec::invalid_argument, "Host");
  opts.headers = {{"X-Token", "a\r\nX-Evil: 1"}};
  expect_error(import_url(o.url("/file.bin"), dir.dest(), opts),
               ec::invalid_argument, "line break");
  BOOST_TEST(!fs::exists(dir.dest()));
}

BOOST_AUTO_TEST_CASE(loopback_is_refused_without_allow) {
  origin o;
  temp_dir dir;
  import_options opts;
  opts.max_bytes = 1 << 20;
  expect_error(import_url(o.url("/file.bin"), dir.dest(), opts),
               ec::invalid_argument,
               "refusing to import from private address 127.0.0.1");
  expect_error(import_url(o.url("/file.bin", "localhost"), dir.dest(), opts),
               ec::invalid_argument, "refusing to import from private address");
  expect_error(import_url("http://[::1]:" + std::to_string(o.port) + "/x",
                          dir.dest(), opts),
               ec::invalid_argument, "private address ::1");
  // Another way to write 127.0.0.1 is resolved and refused all the same.
  expect_error(import_url(o.url("/file.bin", "2130706433"), dir.dest(), opts),
               ec::invalid_argument, "private address 127.0.0.1");
  BOOST_TEST(!fs::exists(dir.dest()));
}

BOOST_AUTO_TEST_CASE(loopback_is_allowed_by_cidr_or_host_name) {
  origin o;
  temp_dir dir;
  auto opts = loopback_allowed();
  auto r = import_url(o.url("/file.bin"), dir.dest(), opts);
  BOOST_REQUIRE_MESSAGE(r, why(r));
  opts.allow = {"LocalHost"};
  r = import_url(o.url("/file.bin", "localhost"), dir.dest(), opts);
  BOOST_REQUIRE_MESSAGE(r, why(r));
  BOOST_TEST(r->bytes == static_cast<int64_t>(o.body.size()));
  // The name does not exempt the address written out.
  expect_error(import_url(o.url("/file.bin"), dir.dest(), opts),
               ec::invalid_argument, "private address 127.0.0.1");
  opts.allow = {"10.0.0.0/33"};
  expect_error(import_url(o.url("/file.bin"), dir.dest(), opts),
               ec::invalid_argument, "10.0.0.0/33");
}

BOOST_AUTO_TEST_CASE(redirect_chains_are_followed) {
  origin o;
  temp_dir dir;
  auto r = import_url(o.url("/redirect/4"), dir.dest(), loopback_allowed());
  BOOST_REQUIRE_MESSAGE(r, why(r));
  BOOST_TEST(r->sha256 == sha256_hex(o.body));
  BOOST_TEST(r->final_url == o.url("/file.bin"));
  BOOST_TEST(r->filename == "4"); // the URL asked for, not where it led
}

BOOST_AUTO_TEST_CASE(each_redirect_hop_is_checked_again) {
  origin o;
  temp_dir dir;
  auto opts = loopback_allowed();
  opts.allow = {"localhost"};
  // Allowed by name, then sent to an address the name does not cover.
  expect_error(import_url(o.url("/to-other", "localhost"), dir.dest(), opts),
               ec::invalid_argument, "private address 127.0.0.2");
  BOOST_TEST(!fs::exists(dir.dest()));
}

BOOST_AUTO_TEST_CASE(extra_headers_stay_with_their_origin) {
  origin o;
  temp_dir dir;
  auto opts = loopback_allowed();
  opts.allow = {"127.0.0.0/8", "localhost"};
  opts.headers = {{"X-Token", "secret"}};
  auto r = import_url(o.url("/redirect/1"), dir.dest(), opts); // same origin
  BOOST_REQUIRE_MESSAGE(r, why(r));
  BOOST_TEST(o.seen_token == "secret");
  r = import_url(o.url("/to-name"), dir.dest(), opts); // another origin
  BOOST_REQUIRE_MESSAGE(r, why(r));
  BOOST_TEST(o.seen_token == "");
}

BOOST_AUTO_TEST_CASE(too_many_redirects_are_refused) {
  origin o;
  temp_dir dir;
  expect_error(import_url(o.url("/loop"), dir.dest(), loopback_allowed()),
               ec::invalid_argument, "too many redirects");
  auto opts = loopback_allowed();
  opts.max_redirects = 3;
  expect_error(import_url(o.url("/redirect/4"), dir.dest(), opts),
               ec::invalid_argument, "too many redirects");
  auto r = import_url(o.url("/redirect/2"), dir.dest(), opts);
  BOOST_TEST(static_cast<bool>(r));
  BOOST_TEST(r->bytes == static_cast<int64_t>(o.body.size()));
}

BOOST_AUTO_TEST_CASE(bodies_over_the_limit_are_refused_and_removed) {
  origin o;
  temp_dir dir;
  auto opts = loopback_allowed();
  opts.max_bytes = 100 * 1000;
  // Content-Length says so before the body.
  expect_error(import_url(o.url("/file.bin"), dir.dest(), opts), ec::too_large,
               "100000 bytes");
  BOOST_TEST(!fs::exists(dir.dest()));
  // Chunked: counted while streaming.
  expect_error(import_url(o.url("/chunked"), dir.dest(), opts), ec::too_large,
               "100000 bytes");
  BOOST_TEST(!fs::exists(dir.dest()));
  // Exactly at the limit is fine.
  opts.max_bytes = static_cast<int64_t>(o.body.size());
  auto r = import_url(o.url("/chunked"), dir.dest(), opts);
  BOOST_REQUIRE_MESSAGE(r, why(r));
}

BOOST_AUTO_TEST_CASE(a_stalled_server_times_out) {
  origin o;
  temp_dir dir;
  auto opts = loopback_allowed();
  opts.timeout_s = 2;
  auto start = std::chrono::steady_clock::now();
  expect_error(import_url(o.url("/stall"), dir.dest(), opts), ec::timeout,
               "within 2 s");
  // Bounded by the deadline, not by the server (which stalls for 20 s).
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST((took < std::chrono::seconds{15}));
  BOOST_TEST(!fs::exists(dir.dest()));
}

BOOST_AUTO_TEST_CASE(a_silent_listener_times_out) {
  // Accepts connections (in the kernel's backlog) and never says a word:
  // neither an HTTP answer nor a TLS handshake.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  BOOST_REQUIRE(::listen(fd, 8) == 0);
  BOOST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) ==
                0);
  auto port = std::to_string(ntohs(addr.sin_port));
  temp_dir dir;
  auto opts = loopback_allowed();
  opts.timeout_s = 2;
  for (auto scheme : {"http", "https"}) {
    BOOST_TEST_CONTEXT(scheme) {
      auto start = std::chrono::steady_clock::now();
      expect_error(
          import_url(std::string{scheme} + "://127.0.0.1:" + port + "/a.mp4",
                     dir.dest(), opts),
          ec::timeout, "within 2 s");
      auto took = std::chrono::steady_clock::now() - start;
      BOOST_TEST((took < std::chrono::seconds{15}));
    }
  }
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(http_errors_name_the_status) {
  origin o;
  temp_dir dir;
  expect_error(import_url(o.url("/missing"), dir.dest(), loopback_allowed()),
               ec::unavailable, "404");
  BOOST_TEST(!fs::exists(dir.dest()));
  // Nothing listening.
  auto port = o.port;
  {
    origin gone;
    port = gone.port;
  }
  expect_error(import_url("http://127.0.0.1:" + std::to_string(port) + "/",
                          dir.dest(), loopback_allowed()),
               ec::unavailable, "cannot connect");
}

BOOST_AUTO_TEST_CASE(https_certificates_are_verified) {
  temp_dir dir;
  auto key = dir.path + "/key.pem";
  auto cert = dir.path + "/cert.pem";
  auto cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
             "/CN=localhost -keyout " +
             key + " -out " + cert + " >/dev/null 2>&1";
  // The openssl command is installed with reel's dependencies.
  BOOST_REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0,
                        "openssl cannot make a certificate");
  origin o{std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str())};
  auto url = "https://localhost:" + std::to_string(o.port) + "/file.bin";
  auto opts = loopback_allowed();
  opts.allow = {"localhost"};
  expect_error(import_url(url, dir.dest(), opts), ec::unavailable,
               "certificate");
  BOOST_TEST(!fs::exists(dir.dest()));
}

BOOST_AUTO_TEST_CASE(bad_urls_are_refused) {
  temp_dir dir;
  auto opts = loopback_allowed();
  auto refused = [&](const std::string& url, const std::string& why) {
    BOOST_TEST_CONTEXT(url) {
      expect_error(import_url(url, dir.dest(), opts), ec::invalid_argument,
                   why);
    }
  };
  refused("ftp://example.com/a.mp4", "unsupported URL scheme \"ftp\"");
  refused("file:///etc/passwd", "unsupported URL scheme");
  refused("http:///a.mp4", "no host");
  refused("http://", "no host");
  refused("example.com/a.mp4", "not an absolute");
  refused("http://user:pw@example.com/a.mp4", "user names and passwords");
  refused("http://evil@127.0.0.1/", "user names and passwords");
  refused("http://example.com:99999/", "bad port");
  refused("http://example.com:x/", "bad port");
  refused("http://exa mple.com/", "spaces");
  refused("http://example.com/a\r\nX: y", "control characters");
  refused("http://[::1/", "unterminated");
  refused("http://::1/", "brackets");
  refused("http://[nope]/", "bad IPv6");
  BOOST_TEST(!fs::exists(dir.dest()));
}

BOOST_AUTO_TEST_CASE(private_and_public_addresses) {
  for (auto ip : {"10.0.0.1",
                  "10.255.255.255",
                  "172.16.0.1",
                  "172.31.255.254",
                  "192.168.1.1",
                  "127.0.0.1",
                  "127.8.9.10",
                  "169.254.169.254",
                  "100.64.0.1",
                  "100.127.255.255",
                  "0.0.0.0",
                  "255.255.255.255",
                  "224.0.0.1",
                  "198.18.0.1",
                  "192.0.2.1",
                  "::",
                  "::1",
                  "fc00::1",
                  "fd12:3456::1",
                  "fe80::1",
                  "febf::1",
                  "ff02::1",
                  "::ffff:127.0.0.1",
                  "::ffff:10.1.2.3",
                  "64:ff9b::a00:1",
                  "2002:c0a8:101::1",
                  "2001:db8::1",
                  "not an address",
                  ""})
    BOOST_TEST(is_private_address(ip), ip);
  for (auto ip :
       {"8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1",
        "192.169.0.1", "2001:4860::8888", "2606:4700:4700::1111",
        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"})
    BOOST_TEST(!is_private_address(ip), ip);
}
