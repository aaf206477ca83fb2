#pragma once

// Test support: a real reeld process on a free 127.0.0.1 port with its own
// data directory, clips generated with ffmpeg's lavfi sources, curl for
// uploads and ffprobe for checking outputs. Header-only, for the
// integration test binaries.

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace reel::test {

using json = nlohmann::json;
using namespace std::chrono_literals;

/// Runs a shell command, returns (exit status, stdout).
inline std::pair<int, std::string> sh(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p{popen(cmd.c_str(), "r"), pclose};
  if (!p)
    throw std::runtime_error("popen failed: " + cmd);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0)
    out.append(buf.data(), n);
  int rc = pclose(p.release());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

/// A port on 127.0.0.1 that nothing listens on, picked at random below the
/// kernel's ephemeral range so that the outgoing connections of tests running
/// alongside cannot take it before the server binds it (tests/free_port.py
/// follows the same rule).
inline uint16_t free_port() {
  int low = 32768;
  if (std::ifstream range{"/proc/sys/net/ipv4/ip_local_port_range"}; range)
    range >> low;
  int high = std::max(low - 1, 11000);
  std::random_device rd;
  std::uniform_int_distribution<int> pick{10000, high - 1};
  auto try_bind = [](uint16_t port) -> uint16_t {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    uint16_t got = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      socklen_t len = sizeof(addr);
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
      got = ntohs(addr.sin_port);
    }
    ::close(fd);
    return got;
  };
  for (int i = 0; i < 200; ++i)
    if (auto p = try_bind(static_cast<uint16_t>(pick(rd))))
      return p;
  return try_bind(0);
}

/// The last `bytes` of a file: what a failed start printed.
inline std::string tail_of(const std::string& path, std::streamoff bytes = 2000) {
  std::ifstream in{path, std::ios::binary | std::ios::ate};
  if (!in)
    return {};
  auto size = static_cast<std::streamoff>(in.tellg());
  in.seekg(std::max<std::streamoff>(0, size - bytes));
  return std::string{std::istreambuf_iterator<char>{in}, {}};
}

inline std::string temp_dir(const std::string& tag) {
  std::random_device rd;
  auto path = std::filesystem::temp_directory_path()
              / ("reel-" + tag + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path);
  return path.string();
}

/// A clip made by ffmpeg: moving test pattern with detail, and a tone.
inline std::string make_clip(const std::string& dir, const std::string& name,
                             int width, int height, double seconds,
                             bool audio = true, int fps = 25, int gop = 25) {
  auto path = dir + "/" + name;
  std::string cmd = "ffmpeg -v error -y -f lavfi -i testsrc2=size="
                    + std::to_string(width) + "x" + std::to_string(height)
                    + ":rate=" + std::to_string(fps);
  if (audio)
    cmd += " -f lavfi -i sine=frequency=440:sample_rate=48000";
  cmd += " -t " + std::to_string(seconds)
         + " -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g "
         + std::to_string(gop);
  if (audio)
    cmd += " -c:a aac -b:a 96k";
  cmd += " " + quote(path) + " 2>&1";
  auto [rc, out] = sh(cmd);
  if (rc != 0)
    throw std::runtime_error("ffmpeg failed: " + out);
  return path;
}

struct probe_info {
  int width = 0;
  int height = 0;
  long frames = 0;
  double duration = 0;
  bool has_audio = false;
};

/// ffprobe of a file or URL: first video stream's size and counted frames.
inline probe_info ffprobe(const std::string& input) {
  probe_info info;
  auto [rc, out] = sh("ffprobe -v error -count_frames -show_entries "
                      "stream=codec_type,width,height,nb_read_frames:"
                      "format=duration -of json "
                      + quote(input));
  if (rc != 0)
    throw std::runtime_error("ffprobe failed on " + input + ": " + out);
  auto j = json::parse(out);
  for (auto& s : j["streams"]) {
    if (s["codec_type"] == "video" && info.width == 0) {
      info.width = s.value("width", 0);
      info.height = s.value("height", 0);
      info.frames = std::stol(s.value("nb_read_frames", std::string{"0"}));
    } else if (s["codec_type"] == "audio") {
      info.has_audio = true;
    }
  }
  if (j.contains("format") && j["format"].contains("duration"))
    info.duration = std::stod(j["format"]["duration"].get<std::string>());
  return info;
}

struct http_answer {
  int status = 0;
  std::string body;
  json j;
  std::string header_block;
};

/// A reeld child process.
class reeld_process {
public:
  explicit reeld_process(std::vector<std::string> extra = {},
                         std::string data_dir = {})
    : extra_(std::move(extra)),
      data_(data_dir.empty() ? temp_dir("data") : std::move(data_dir)),
      port_(free_port()) {
    start();
  }

  ~reeld_process() {
    stop();
    std::error_code ec;
    if (owns_data_)
      std::filesystem::remove_all(data_, ec);
  }

  void start() {
    auto log = data_ + ".log";
    pid_ = fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<std::string> args{REEL_BUILD_DIR "/reeld",
                                    "--listen",
                                    "127.0.0.1:" + std::to_string(port_),
                                    "--data",
                                    data_,
                                    "--bootstrap-key",
                                    key,
                                    "--chunk-seconds",
                                    "2",
                                    "--segment-seconds",
                                    "2"};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      httplib::Client cli{"127.0.0.1", port_};
      cli.set_connection_timeout(1);
      if (auto r = cli.Get("/healthz"); r && r->status == 200)
        return;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("reeld exited at start; log: " + log + "\n"
                                 + tail_of(log));
      }
      std::this_thread::sleep_for(100ms);
    }
    throw std::runtime_error("reeld did not become healthy; log: " + log);
  }

  /// SIGTERM, and SIGKILL if it does not stop within 20 s.
  void stop() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(100ms);
    }
    kill9();
  }

  void kill9() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  /// Pauses (SIGSTOP) or resumes (SIGCONT) the process: a hung node.
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  /// Keeps the data directory after this object is gone.
  void keep_data() { owns_data_ = false; }

  std::string base() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  uint16_t port() const { return port_; }
  const std::string& data() const { return data_; }

  http_answer request(const std::string& method, const std::string& path,
                      const std::string& bearer = key,
                      const std::string& body = {},
                      httplib::Headers headers = {}) const {
    httplib::Client cli{"127.0.0.1", port_};
    cli.set_read_timeout(60);
    if (!bearer.empty())
      headers.emplace("Authorization", "Bearer " + bearer);
    httplib::Result r{nullptr, httplib::Error::Unknown};
    if (method == "GET")
      r = cli.Get(path.c_str(), headers);
    else if (method == "DELETE")
      r = cli.Delete(path.c_str(), headers);
    else
      r = cli.Post(path.c_str(), headers, body, "application/json");
    if (!r)
      throw std::runtime_error("request failed: " + method + " " + path);
    http_answer a;
    a.status = r->status;
    a.body = r->body;
    a.j = json::parse(r->body, nullptr, false);
    for (auto& [k, v] : r->headers)
      a.header_block += k + ": " + v + "\n";
    return a;
  }

  /// Uploads with curl through the Uploads API.
  http_answer upload(const std::string& file, const std::string& folder = "root",
                     const std::string& bearer = key,
                     const std::string& extra_args = {}) const {
    std::string cmd = "curl -s -S -o - -w '\\n%{http_code}' -X POST";
    if (!bearer.empty())
      cmd += " -H " + quote("Authorization: Bearer " + bearer);
    if (!file.empty())
      cmd += " -F " + quote("video=@" + file);
    if (!folder.empty())
      cmd += " -F " + quote("folder=" + folder);
    cmd += " " + extra_args + " " + base() + "/api/client/v1/uploads";
    auto [rc, out] = sh(cmd);
    http_answer a;
    auto nl = out.rfind('\n');
    if (nl == std::string::npos)
      throw std::runtime_error("curl failed: " + out);
    a.status = std::stoi(out.substr(nl + 1));
    a.body = out.substr(0, nl);
    a.j = json::parse(a.body, nullptr, false);
    return a;
  }

  /// Polls the native model until `pred` holds or `timeout` passes; the
  /// last record seen.
  json wait_video(const std::string& id, std::function<bool(const json&)> pred,
                  std::chrono::seconds timeout = 120s) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    json last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto a = request("GET", "/v1/videos/" + id);
      if (a.status == 200) {
        last = a.j;
        if (pred(last))
          return last;
      }
      std::this_thread::sleep_for(200ms);
    }
    return last;
  }

  json wait_terminal(const std::string& id,
                     std::chrono::seconds timeout = 120s) const {
    return wait_video(
      id,
      [](const json& v) {
        return v["state"] == "ready" || v["state"] == "failed";
      },
      timeout);
  }

  static inline const std::string key = "sk-integration-test-key";

private:
  std::vector<std::string> extra_;
  std::string data_;
  uint16_t port_;
  pid_t pid_ = -1;
  bool owns_data_ = true;
};

} // namespace reel::test
