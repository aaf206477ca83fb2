#include "http/upload_receiver.hpp"

#include "ops/metrics.hpp"
#include "ops/util.hpp"
#include "storage/blob_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace reel::http {

namespace {

constexpr size_t max_fields = 32;
constexpr size_t max_field_bytes = 8192;
constexpr size_t buffer_bytes = 1 << 20;

/// A file written through one buffer, removed unless released.
class tmp_file {
public:
  explicit tmp_file(std::string path) : path_(std::move(path)) {
    buf_.reserve(buffer_bytes);
  }
  ~tmp_file() {
    if (fd_ >= 0)
      ::close(fd_);
    if (!released_)
      ::unlink(path_.c_str());
  }
  caf::error open() {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd_ < 0)
      return make_error(ec::storage_error,
                        "cannot store the upload: " + std::string{strerror(errno)});
    return {};
  }
  bool write(const char* data, size_t len) {
    digest_.update(data, len);
    if (buf_.size() + len > buffer_bytes && !flush())
      return false;
    if (len >= buffer_bytes)
      return write_all(data, len);
    buf_.insert(buf_.end(), data, data + len);
    return true;
  }
  bool flush() {
    if (buf_.empty())
      return true;
    bool ok = write_all(buf_.data(), buf_.size());
    buf_.clear();
    return ok;
  }
  std::string finish_digest() { return digest_.hex_digest(); }
  const std::string& error_text() const { return error_; }
  /// The error of a failed write, as caf::error (a full disk says so).
  caf::error failure() const {
    if (errno_ == ENOSPC)
      return make_error(ec::no_space,
                        "the disk is full: no space left for the upload");
    return make_error(ec::storage_error, "cannot store the upload: " + error_);
  }
  void release() { released_ = true; }

private:
  bool write_all(const char* p, size_t n) {
    while (n > 0) {
      auto w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR)
          continue;
        errno_ = errno;
        error_ = strerror(errno);
        return false;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  std::string path_;
  int fd_ = -1;
  std::vector<char> buf_;
  sha256 digest_;
  bool released_ = false;
  std::string error_;
  int errno_ = 0;
};

struct active_upload {
  active_upload() { metrics().ingest_active.Increment(); }
  ~active_upload() { metrics().ingest_active.Decrement(); }
};

} // namespace

tmp_guard::~tmp_guard() {
  if (!path.empty())
    ::unlink(path.c_str());
}

caf::expected<received_upload>
receive_multipart(const httplib::Request& req,
                  const httplib::ContentReader& reader, blob_store& blobs,
                  const std::string& file_field, int64_t max_bytes,
                  const field_check& check) {
  if (!req.is_multipart_form_data())
    return make_error(ec::invalid_argument,
                      "the body must be multipart/form-data");
  auto too_large = [&] {
    return make_error(ec::too_large, "the file is larger than the "
                                     "maximum of "
                                       + std::to_string(max_bytes) + " bytes");
  };
  if (req.has_header("Content-Length")) {
    auto len = std::strtoll(req.get_header_value("Content-Length").c_str(),
                            nullptr, 10);
    if (len > max_bytes + (1 << 20))
      return too_large();
  }
  active_upload guard;
  received_upload out;
  out.tmp_path = blobs.new_tmp_path();
  tmp_file file{out.tmp_path};
  if (auto err = file.open())
    return err;
  std::string current;  // name of the part being read
  bool in_file = false;
  bool over = false;
  bool bad = false;
  bool io_failed = false;
  bool skipping = false; // in a second file part
  int64_t skipped = 0;
  caf::error refused;
  // The field read last is complete once the next part starts.
  auto check_done_field = [&] {
    if (!check || in_file || current.empty() || refused)
      return true;
    refused = check(current, out.fields[current]);
    return !refused;
  };
  auto& ingest = metrics().ingest_bytes;
  bool ok = reader(
    [&](const httplib::MultipartFormData& part) {
      if (!check_done_field())
        return false;
      bool is_file = file_field.empty() ? !part.filename.empty()
                                        : part.name == file_field;
      if (is_file && out.has_file) {
        ++out.extra_files; // read past, not kept
        in_file = false;
        current.clear();
        skipping = true;
        return true;
      }
      skipping = false;
      if (is_file) {
        in_file = true;
        out.has_file = true;
        out.filename = part.filename;
      } else {
        in_file = false;
        if (out.fields.size() >= max_fields) {
          bad = true;
          return false;
        }
        out.fields[part.name]; // present, even if empty
      }
      current = part.name;
      return true;
    },
    [&](const char* data, size_t len) {
      if (skipping) {
        skipped += static_cast<int64_t>(len);
        over = out.bytes + skipped > max_bytes;
        return !over;
      }
      if (in_file) {
        out.bytes += static_cast<int64_t>(len);
        ingest.Increment(static_cast<double>(len));
        if (out.bytes > max_bytes) {
          over = true;
          return false;
        }
        if (!file.write(data, len)) {
          io_failed = true;
          return false;
        }
        return true;
      }
      auto& v = out.fields[current];
      if (v.size() + len > max_field_bytes) {
        bad = true;
        return false;
      }
      v.append(data, len);
      return true;
    });
  if (ok)
    check_done_field();
  if (refused)
    return refused;
  if (over)
    return too_large();
  if (io_failed)
    return file.failure();
  if (bad)
    return make_error(ec::invalid_argument,
                      "malformed form: too many or too large fields");
  if (!ok)
    return make_error(ec::invalid_argument,
                      "malformed multipart body (bad boundary or body ended "
                      "early)");
  if (!file.flush())
    return file.failure();
  out.sha256 = file.finish_digest();
  if (out.has_file)
    file.release();
  return out;
}

caf::expected<received_upload> receive_body(const httplib::Request& req,
                                            const httplib::ContentReader& reader,
                                            blob_store& blobs, int64_t max_bytes) {
  auto too_large = make_error(ec::too_large, "the file is larger than the "
                                             "maximum of "
                                               + std::to_string(max_bytes)
                                               + " bytes");
  if (req.has_header("Content-Length")
      && std::strtoll(req.get_header_value("Content-Length").c_str(), nullptr,
                      10)
           > max_bytes)
    return too_large;
  active_upload guard;
  received_upload out;
  out.tmp_path = blobs.new_tmp_path();
  tmp_file file{out.tmp_path};
  if (auto err = file.open())
    return err;
  bool over = false;
  bool io_failed = false;
  auto& ingest = metrics().ingest_bytes;
  bool ok = reader([&](const char* data, size_t len) {
    out.bytes += static_cast<int64_t>(len);
    ingest.Increment(static_cast<double>(len));
    if (out.bytes > max_bytes) {
      over = true;
      return false;
    }
    if (!file.write(data, len)) {
      io_failed = true;
      return false;
    }
    return true;
  });
  if (over)
    return too_large;
  if (io_failed || !file.flush())
    return file.failure();
  if (!ok)
    return make_error(ec::invalid_argument, "the body ended early");
  out.sha256 = file.finish_digest();
  out.has_file = out.bytes > 0;
  if (out.has_file)
    file.release();
  return out;
}

} // namespace reel::http
