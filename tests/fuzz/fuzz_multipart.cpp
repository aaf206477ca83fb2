// multipart/form-data uploads: httplib's own multipart parser (in Debian's
// libcpp-httplib, whose parser class is not exported) driven through a
// real httplib::Server, over an in-memory stream, into reel's
// http::receive_multipart with the callbacks the dialects use. The input
// is the request body; its first line, when it is "--<boundary>", names
// the boundary (else the body is sent with a fixed one). Each input is
// sent twice: with Content-Length to an Uploads-API-like route (file part
// "video", a folder check, 1 MiB), and chunked to an api.video-like route
// (the first file part, 512 bytes). The stream hands the body over in
// short reads of a size picked by the input, as a socket would, except
// that the first read of the body holds its whole opening boundary line:
// httplib 0.11.4 refuses a valid body whose first read is shorter than
// that (yhirose/cpp-httplib#2159, fixed in 0.23.0; tests/fuzz/README.md),
// and the fuzzer would otherwise spend its time on that known bug.
//
// Checks receive_multipart's promises: at most 32 fields of at most
// 8 KiB, the file stored whole (size and SHA-256) and never over the
// limit, and no temporary file left behind when the upload is refused
// or has no file.

#include "tests/fuzz/fuzz.hpp"

#include "http/upload_receiver.hpp"
#include "ops/util.hpp"
#include "storage/blob_store.hpp"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

using namespace reel;
namespace fs = std::filesystem;

namespace {

constexpr int64_t uploads_max = 1 << 20;
constexpr int64_t apivideo_max = 512;
constexpr const char* default_boundary = "reel-fuzz-boundary";

/// A request read from memory: its first `whole` bytes as asked for, the
/// rest in reads of at most `step` bytes. What the server answers is
/// dropped.
class memory_stream : public httplib::Stream {
public:
  memory_stream(std::string data, size_t whole, size_t step)
      : data_(std::move(data)), whole_(whole), step_(step) {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    size_t most = pos_ < whole_ ? whole_ - pos_ : step_;
    size_t n = std::min({size, most, data_.size() - pos_});
    std::memcpy(ptr, data_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char*, size_t size) override {
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 50000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 8080;
  }
  socket_t socket() const override { return INVALID_SOCKET; }

private:
  std::string data_;
  size_t whole_;
  size_t step_;
  size_t pos_ = 0;
};

/// httplib's server, serving one request from a stream it is handed.
class harness_server : public httplib::Server {
public:
  void serve(httplib::Stream& strm) {
    bool closed = false;
    process_request(strm, true, closed, {});
  }
};

std::unique_ptr<blob_store> blobs;
std::unique_ptr<harness_server> server;
std::string tmp_dir;

std::string file_bytes(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

void receive(const httplib::Request& req, httplib::Response& res,
             const httplib::ContentReader& reader,
             const std::string& file_field, int64_t max_bytes) {
  // As the Uploads API: a folder named before the file is checked first.
  auto check = [](const std::string& name,
                  const std::string& value) -> caf::error {
    if (name == "folder" && value.rfind("root", 0) != 0)
      return make_error(ec::not_found, "Folder not found.");
    return {};
  };
  auto up = http::receive_multipart(req, reader, *blobs, file_field, max_bytes,
                                    check);
  if (!up) {
    FUZZ_CHECK(fs::is_empty(tmp_dir), "a refused upload leaves no file");
    res.status = 400;
    return;
  }
  FUZZ_CHECK(up->fields.size() <= 32, "at most 32 fields");
  for (auto& [name, value] : up->fields)
    FUZZ_CHECK(value.size() <= 8192, "fields of at most 8 KiB");
  FUZZ_CHECK(up->bytes <= max_bytes, "never more than max_bytes");
  if (up->has_file) {
    auto stored = file_bytes(up->tmp_path);
    FUZZ_CHECK(static_cast<int64_t>(stored.size()) == up->bytes,
               "the file is stored whole");
    FUZZ_CHECK(sha256_hex(stored) == up->sha256, "the digest is the file's");
    ::unlink(up->tmp_path.c_str());
  }
  FUZZ_CHECK(fs::is_empty(tmp_dir), "only the file part is kept");
  res.status = 201;
}

std::string boundary_of(const std::string& body) {
  if (body.rfind("--", 0) != 0)
    return default_boundary;
  auto line = body.substr(2, body.find('\n') - 2);
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
  bool plain = !line.empty() && line.size() <= 70 &&
               std::all_of(line.begin(), line.end(), [](unsigned char c) {
                 return c > 0x20 && c < 0x7f && c != ';' && c != '"';
               });
  return plain ? line : default_boundary;
}

/// The body in chunks: the first `first` bytes, then `piece` at a time.
std::string chunked(const std::string& body, size_t first, size_t piece) {
  std::ostringstream out;
  for (size_t i = 0, n = first; i < body.size(); i += n, n = piece) {
    n = std::min(n, body.size() - i);
    out << std::hex << n << "\r\n" << body.substr(i, n) << "\r\n";
  }
  out << "0\r\n\r\n";
  return out.str();
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto base = fs::temp_directory_path() /
              ("reel-fuzz-multipart-" + std::to_string(::getpid()));
  blobs = std::make_unique<blob_store>(base.string());
  if (blobs->init()) {
    std::fprintf(stderr, "cannot create %s\n", base.c_str());
    std::abort();
  }
  tmp_dir = (base / "tmp").string();
  std::atexit([] { fs::remove_all(blobs->root()); });
  server = std::make_unique<harness_server>();
  server->Post("/uploads",
               [](const httplib::Request& req, httplib::Response& res,
                  const httplib::ContentReader& reader) {
                 receive(req, res, reader, "video", uploads_max);
               });
  server->Post("/apivideo",
               [](const httplib::Request& req, httplib::Response& res,
                  const httplib::ContentReader& reader) {
                 receive(req, res, reader, "", apivideo_max);
               });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  auto boundary = boundary_of(body);
  auto type =
      "Content-Type: multipart/form-data; boundary=" + boundary + "\r\n";
  // "--" boundary CRLF: what httplib 0.11.4 needs in the body's first read.
  size_t opening = boundary.size() + 4;
  static const size_t steps[] = {1, 7, 100, 4096};
  size_t step = steps[size == 0 ? 3 : data[size - 1] % 4];

  auto head = "POST /uploads HTTP/1.1\r\nHost: fuzz\r\n" + type +
              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  memory_stream with_length{head + body, head.size() + opening, step};
  server->serve(with_length);

  head = "POST /apivideo HTTP/1.1\r\nHost: fuzz\r\n" + type +
         "Transfer-Encoding: chunked\r\n\r\n";
  auto chunks = chunked(body, opening, 1 + size % 61);
  auto first_chunk = chunks.find("\r\n") + 2 + std::min(opening, size);
  memory_stream with_chunks{head + chunks, head.size() + first_chunk, step};
  server->serve(with_chunks);
  return 0;
}
