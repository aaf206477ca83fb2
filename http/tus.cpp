// tus 1.0.0 on /upload/ (creation, termination, expiration), the way
// Gcore's Streaming API takes local files. Each upload is two files under
// <data_dir>/tus/ (not tmp/, which every start wipes): <id>.bin, the bytes
// received so far, and <id>.json, whom it is for and how far it has come
// (written to a temporary name and renamed). A PATCH streams its body
// straight into the .bin at the upload's offset through one buffer; the
// last byte hands the file to the node as the video's whole source, and
// the .json stays behind (without the .bin) as a record that the upload
// is complete, until it expires. The routes are the gate's
// (http/gate.hpp), access::capability: the upload token in the creation's
// Upload-Metadata is the credential, then the upload's random id (and the
// key that gave the token must still exist for every PATCH).

#include "http/tus.hpp"

#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/token.hpp"
#include "ops/util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

namespace reel::http {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* tus_version = "1.0.0";
constexpr const char* tus_extensions = "creation,termination,expiration";
/// An upload without a request for this long is removed (expiration).
constexpr int64_t idle_expiry_ms = int64_t{24} * 3600 * 1000;
/// The least time between two sweeps for expired uploads.
constexpr int64_t sweep_interval_ms = 60 * 1000;
/// Upload ids: this many random characters from [A-Za-z0-9].
constexpr size_t upload_id_chars = 24;
/// A PATCH body goes to the file through one buffer of this size.
constexpr size_t write_buffer_bytes = 1 << 20;
/// How long a request waits for the one before it on the same upload
/// (e.g. a PATCH whose client went away, not yet noticed) before 423.
constexpr std::chrono::milliseconds lock_wait{3000};
/// The Upload-Metadata header a creation request may send.
constexpr size_t max_metadata_bytes = 4096;

/// One upload, as its .json holds it.
struct upload_info {
  std::string id;
  std::string video;  // UUID
  std::string tenant;
  std::string key;    // id of the API key whose token began it (key_id_of);
                      // "" for uploads begun before tokens named keys
  int64_t length = 0; // Upload-Length
  int64_t offset = 0; // bytes stored (fsync'd)
  std::string filename;
  std::map<std::string, std::string> metadata; // as sent, but the token
  int64_t expires_ms = 0;
  bool complete = false; // handed to the node; the .bin is gone
};

json to_json(const upload_info& u) {
  return {{"video", u.video},       {"tenant", u.tenant},
          {"key", u.key},           {"length", u.length},
          {"offset", u.offset},     {"filename", u.filename},
          {"metadata", u.metadata}, {"expires_ms", u.expires_ms},
          {"complete", u.complete}};
}

bool from_json(const json& j, upload_info& u) {
  if (!j.is_object())
    return false;
  try {
    u.video = j.at("video").get<std::string>();
    u.tenant = j.at("tenant").get<std::string>();
    u.key = j.value("key", std::string{});
    u.length = j.at("length").get<int64_t>();
    u.offset = j.at("offset").get<int64_t>();
    u.filename = j.value("filename", std::string{});
    u.metadata = j.value("metadata", std::map<std::string, std::string>{});
    u.expires_ms = j.at("expires_ms").get<int64_t>();
    u.complete = j.value("complete", false);
  } catch (const json::exception&) {
    return false;
  }
  return is_uuid(u.video) && u.length > 0 && u.offset >= 0
         && u.offset <= u.length;
}

caf::error io_error(const std::string& what) {
  return make_error(ec::storage_error, what + ": " + strerror(errno));
}

/// Makes a directory's entries (a rename into it) durable.
caf::error fsync_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return io_error("cannot open " + path + " to sync");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0)
    return io_error("cannot sync " + path);
  return {};
}

/// Writes all of [p, p + n) at `at`.
bool pwrite_all(int fd, const char* p, size_t n, int64_t at) {
  while (n > 0) {
    auto w = ::pwrite(fd, p, n, static_cast<off_t>(at));
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += w;
    at += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

/// The uploads under one directory, and which of them a request is
/// working on (one at a time each).
class upload_store {
public:
  explicit upload_store(std::string dir) : dir_(std::move(dir)) {}

  caf::error init() {
    std::error_code err;
    fs::create_directories(dir_, err);
    if (err)
      return make_error(ec::storage_error,
                        "cannot create " + dir_ + ": " + err.message());
    return {};
  }

  std::string bin_path(const std::string& id) const {
    return dir_ + "/" + id + ".bin";
  }
  std::string json_path(const std::string& id) const {
    return dir_ + "/" + id + ".json";
  }

  /// The upload `id`; ec::not_found when there is none or it expired (then
  /// it is removed: call with the upload locked).
  caf::expected<upload_info> load(const std::string& id, int64_t now) {
    std::ifstream in{json_path(id), std::ios::binary};
    if (!in)
      return make_error(ec::not_found, "no such upload");
    std::stringstream text;
    text << in.rdbuf();
    upload_info u;
    auto j = json::parse(text.str(), nullptr, false);
    if (!from_json(j, u)) {
      log::warn("tus.unreadable", {{"upload", id}});
      return make_error(ec::not_found, "no such upload");
    }
    u.id = id;
    if (u.expires_ms < now) {
      remove(id);
      return make_error(ec::not_found, "the upload expired");
    }
    return u;
  }

  /// Writes the upload's .json durably (temporary name, fsync, rename).
  caf::error save(const upload_info& u) {
    auto path = json_path(u.id);
    auto tmp = path + ".tmp";
    auto text = to_json(u).dump();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0640);
    if (fd < 0)
      return io_error("cannot store the upload's state");
    bool ok = pwrite_all(fd, text.data(), text.size(), 0) && ::fsync(fd) == 0;
    auto saved_errno = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
      if (!ok)
        errno = saved_errno;
      auto err = io_error("cannot store the upload's state");
      ::unlink(tmp.c_str());
      return err;
    }
    return fsync_dir(dir_);
  }

  /// Registers a new upload: an empty .bin, then its .json.
  caf::error create(const upload_info& u) {
    int fd = ::open(bin_path(u.id).c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
      return io_error("cannot create the upload");
    ::close(fd);
    if (auto err = save(u)) {
      ::unlink(bin_path(u.id).c_str());
      return err;
    }
    return {};
  }

  void remove(const std::string& id) {
    ::unlink(json_path(id).c_str());
    ::unlink(bin_path(id).c_str());
    ::unlink((json_path(id) + ".tmp").c_str());
  }

  /// Takes the upload for one request, waiting up to `wait` for another
  /// request to give it up; false if it did not.
  bool lock(const std::string& id, std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> guard{mtx_};
    if (!freed_.wait_for(guard, wait, [&] { return busy_.count(id) == 0; }))
      return false;
    busy_.insert(id);
    return true;
  }

  void unlock(const std::string& id) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      busy_.erase(id);
    }
    freed_.notify_all();
  }

  /// Sweeps unless the last sweep was less than sweep_interval_ms ago.
  void maybe_sweep(int64_t now) {
    auto last = last_sweep_.load();
    if (now - last < sweep_interval_ms
        || !last_sweep_.compare_exchange_strong(last, now))
      return;
    sweep(now);
  }

  /// Removes every expired upload (but those a request holds), and the
  /// files of uploads whose .json never got written, once as old.
  void sweep(int64_t now) {
    last_sweep_ = now;
    std::error_code err;
    std::vector<std::string> ids;
    std::set<std::string> stray;
    for (auto& e : fs::directory_iterator(dir_, err)) {
      auto name = e.path().filename().string();
      auto dot = name.find('.');
      auto id = name.substr(0, dot);
      if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0
          && dot == name.size() - 5)
        ids.push_back(id);
      else
        stray.insert(id);
    }
    int removed = 0;
    for (auto& id : ids) {
      stray.erase(id);
      if (!lock(id, std::chrono::milliseconds{0}))
        continue;
      if (!load(id, now) && !fs::exists(json_path(id), err))
        ++removed; // expired
      unlock(id);
    }
    // Leftovers of a creation or a save cut off by a crash.
    for (auto& id : stray) {
      if (fs::exists(json_path(id), err)
          || !lock(id, std::chrono::milliseconds{0}))
        continue;
      for (auto path : {bin_path(id), json_path(id) + ".tmp"}) {
        struct stat st;
        if (::stat(path.c_str(), &st) == 0
            && int64_t{st.st_mtime} * 1000 + idle_expiry_ms < now) {
          ::unlink(path.c_str());
          ++removed;
        }
      }
      unlock(id);
    }
    if (removed > 0)
      log::info("tus.swept", {{"removed", std::to_string(removed)}});
  }

  /// Garbage collection (node::gc): removes every upload no request has
  /// touched since `before_ms`, expired or not (but those a request
  /// holds), and stray files as old.
  gc_count collect(int64_t before_ms) {
    gc_count out;
    std::error_code err;
    std::set<std::string> ids;
    for (auto& e : fs::directory_iterator(dir_, err))
      ids.insert(e.path().filename().string().substr(
        0, e.path().filename().string().find('.')));
    for (auto& id : ids) {
      if (!lock(id, std::chrono::milliseconds{0}))
        continue;
      // Last touched: when its expiry was last pushed back, else (no
      // readable .json) the newest of its files.
      int64_t touched = 0;
      std::ifstream in{json_path(id), std::ios::binary};
      upload_info u;
      bool known = in && from_json(json::parse(in, nullptr, false), u);
      if (known)
        touched = u.expires_ms - idle_expiry_ms;
      int64_t bytes = 0;
      bool any = false;
      for (auto path : {bin_path(id), json_path(id), json_path(id) + ".tmp"}) {
        struct stat st;
        if (::stat(path.c_str(), &st) != 0)
          continue;
        any = true;
        bytes += st.st_size;
        if (!known)
          touched = std::max(touched, int64_t{st.st_mtime} * 1000);
      }
      if (any && touched < before_ms) {
        remove(id);
        ++out.count;
        out.bytes += bytes;
      }
      unlock(id);
    }
    return out;
  }

private:
  std::string dir_;
  std::mutex mtx_;
  std::condition_variable freed_;
  std::set<std::string> busy_;
  std::atomic<int64_t> last_sweep_{0};
};

/// Holds an upload for the request that made it.
class upload_lock {
public:
  upload_lock(upload_store& s, std::string id, std::chrono::milliseconds wait)
    : s_(s), id_(std::move(id)), held_(s_.lock(id_, wait)) {}
  upload_lock(const upload_lock&) = delete;
  upload_lock& operator=(const upload_lock&) = delete;
  ~upload_lock() {
    if (held_)
      s_.unlock(id_);
  }
  explicit operator bool() const { return held_; }

private:
  upload_store& s_;
  std::string id_;
  bool held_;
};

/// Counts a PATCH in progress in reel_ingest_active.
struct active_upload {
  active_upload() { metrics().ingest_active.Increment(); }
  ~active_upload() { metrics().ingest_active.Decrement(); }
};

/// An RFC 7231 date (IMF-fixdate), e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(int64_t ms) {
  static const char* days[] = {"Sun", "Mon", "Tue", "Wed",
                               "Thu", "Fri", "Sat"};
  static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string base64_encode(std::string_view in) {
  static const char* alphabet
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8)
                 | uint8_t(in[i + 2]);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size())
      v |= uint8_t(in[i + 1]) << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

/// A non-negative decimal header value; nothing for anything else.
std::optional<int64_t> parse_size(const std::string& s) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), digit))
    return std::nullopt;
  return std::stoll(s);
}

std::string encode_metadata(const std::map<std::string, std::string>& m) {
  std::string out;
  for (auto& [k, v] : m) {
    if (!out.empty())
      out += ',';
    out += k;
    if (!v.empty())
      out += ' ' + base64_encode(v);
  }
  return out;
}

/// The video a client's video_id names: Gcore's integer id (through the
/// index of numbers), or a UUID. ec::invalid_argument for anything else,
/// ec::not_found for a number no video has.
caf::expected<std::string> video_of(node& n, std::string s) {
  if (is_uuid(s)) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return s;
  }
  auto number = parse_size(s);
  if (!number || *number <= 0 ||
      static_cast<uint64_t>(*number) > max_video_number)
    return make_error(ec::invalid_argument,
                      "video_id must be a video's integer id or UUID");
  auto v = n.video_by_number("", static_cast<uint64_t>(*number));
  if (!v)
    return v.error();
  return v->id;
}

/// Every tus response says which version it speaks.
void tus_headers(httplib::Response& res) {
  res.set_header("Tus-Resumable", tus_version);
}

void fail(httplib::Response& res, int status, const std::string& msg) {
  reply_json(res, status, {{"error", msg}});
}

/// The Tus-Resumable check of every request but OPTIONS: 412 otherwise.
bool version_ok(const httplib::Request& req, httplib::Response& res) {
  auto v = req.get_header_value("Tus-Resumable");
  if (v == tus_version)
    return true;
  res.set_header("Tus-Version", tus_version);
  fail(res, 412, v.empty() ? "missing Tus-Resumable header: this server "
                             "speaks tus 1.0.0"
                           : "unsupported tus version " + v
                               + ": this server speaks tus 1.0.0");
  return false;
}

/// The media type of Content-Type, without parameters, lower case.
std::string media_type(const httplib::Request& req) {
  auto t = req.get_header_value("Content-Type");
  t = t.substr(0, t.find(';'));
  auto e = t.find_last_not_of(" \t");
  t = e == std::string::npos ? std::string{} : t.substr(0, e + 1);
  std::transform(t.begin(), t.end(), t.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return t;
}

void state_headers(httplib::Response& res, const upload_info& u) {
  res.set_header("Upload-Offset", std::to_string(u.offset));
  res.set_header("Upload-Expires", http_date(u.expires_ms));
}

/// Whether the API key a tus token names (key_id_of) still exists and may
/// upload to `v`; answers 401 (or the store's error) itself otherwise.
bool key_allows(node& n, const std::string& key, const video_record& v,
                httplib::Response& res) {
  auto who = n.key_by_id(key);
  if (!who && code_of(who.error()) != ec::unauthorized) {
    fail(res, status_of(code_of(who.error())), message_of(who.error()));
    return false;
  }
  if (!who || (!who->admin && who->tenant != v.tenant)) {
    fail(res, 401, "the API key that gave the upload token was revoked");
    return false;
  }
  return true;
}

// Handlers.

void create(node& n, upload_store& store, const httplib::Request& req,
            httplib::Response& res) {
  tus_headers(res);
  if (!version_ok(req, res))
    return;
  auto now = now_ms();
  store.maybe_sweep(now);
  auto max = n.config().max_upload_bytes;
  if (req.has_header("Upload-Defer-Length")) {
    fail(res, 400, "Upload-Defer-Length is not supported: send "
                   "Upload-Length with the file's size");
    return;
  }
  if (!req.has_header("Upload-Length")) {
    fail(res, 400, "missing Upload-Length header: the file's size in bytes");
    return;
  }
  auto length = parse_size(req.get_header_value("Upload-Length"));
  if (!length) {
    fail(res, 400, "Upload-Length must be a number of bytes");
    return;
  }
  if (*length == 0) {
    fail(res, 400, "the file is empty");
    return;
  }
  if (*length > max) {
    res.set_header("Tus-Max-Size", std::to_string(max));
    fail(res, 413, "the file is larger than the maximum of "
                     + std::to_string(max) + " bytes");
    return;
  }
  auto header = req.get_header_value("Upload-Metadata");
  auto meta = header.size() <= max_metadata_bytes ? parse_tus_metadata(header)
                                                  : std::nullopt;
  if (!meta) {
    fail(res, 400, "malformed Upload-Metadata: expected comma-separated "
                   "\"key base64value\" pairs with unique keys");
    return;
  }
  auto token = meta->find("token");
  if (token == meta->end() || token->second.empty()) {
    fail(res, 401, "missing token: send the upload token of the video in "
                   "Upload-Metadata (\"token\")");
    return;
  }
  auto fields = verify_token(n.signing_secret(), "tus", token->second, now);
  if (!fields || fields->size() != 2) {
    fail(res, 401, "upload token " + (fields ? std::string{"invalid"}
                                             : message_of(fields.error())));
    return;
  }
  auto video = fields->front();
  auto key = (*fields)[1];
  if (auto named = meta->find("video_id"); named != meta->end()) {
    auto id = video_of(n, named->second);
    if (!id) {
      auto code = code_of(id.error());
      fail(res, status_of(code),
           code == ec::not_found ? "no such video" : message_of(id.error()));
      return;
    }
    if (*id != video) {
      fail(res, 401, "the upload token is for another video");
      return;
    }
  }
  auto v = n.get_video("", video);
  if (!v) {
    auto code = code_of(v.error());
    fail(res, status_of(code),
         code == ec::not_found ? "no such video" : message_of(v.error()));
    return;
  }
  if (!key_allows(n, key, *v, res))
    return;
  if (v->state != states::created || !v->import_url.empty()
      || !v->upload.parts.empty() || !v->source_sha256.empty()) {
    std::string how = !v->import_url.empty()    ? " (imported from a URL)"
                      : !v->upload.parts.empty() ? " (being uploaded)"
                                                 : "";
    fail(res, 409, "the video already has a source" + how + "; its state is "
                     + to_string(v->state));
    return;
  }
  upload_info u;
  u.id = random_token(upload_id_chars);
  u.video = v->id;
  u.tenant = v->tenant;
  u.key = key;
  u.length = *length;
  meta->erase("token"); // a credential: not kept
  u.filename = meta->count("filename") ? (*meta)["filename"] : std::string{};
  u.metadata = std::move(*meta);
  u.expires_ms = now + idle_expiry_ms;
  if (auto err = store.create(u)) {
    log::error("tus.create_failed", {{"error", message_of(err)}});
    fail(res, status_of(code_of(err)), message_of(err));
    return;
  }
  log::info("tus.created", {{"upload", u.id},
                            {"video", u.video},
                            {"bytes", std::to_string(u.length)}});
  res.status = 201;
  res.set_header("Location", n.config().public_url + "/upload/" + u.id);
  res.set_header("Upload-Expires", http_date(u.expires_ms));
}

/// The upload is whole: hands the file to the node as the video's source.
/// On failure nothing is left of the upload.
caf::expected<video_record> finish(node& n, upload_store& store,
                                   upload_info& u) {
  auto bin = store.bin_path(u.id);
  auto sum = file_sha256(bin);
  if (!sum) {
    store.remove(u.id);
    return sum.error();
  }
  upload_part part;
  part.index = 0;
  part.bytes = u.length;
  part.sha256 = *sum;
  auto v = n.add_source_part(u.tenant, u.video, "bytes", u.length, part, bin);
  if (!v) {
    log::warn("tus.refused", {{"upload", u.id},
                              {"video", u.video},
                              {"error", message_of(v.error())}});
    store.remove(u.id);
    return v.error();
  }
  // The .bin is the node's now; what stays says the upload is complete.
  u.complete = true;
  if (auto err = store.save(u))
    log::warn("tus.save_failed",
              {{"upload", u.id}, {"error", message_of(err)}});
  log::info("tus.complete", {{"upload", u.id},
                             {"video", u.video},
                             {"bytes", std::to_string(u.length)}});
  return v;
}

/// An upload whose last byte was stored but that the node did not get
/// (it stopped in between) is handed over now; false if that failed (the
/// upload is gone then).
bool settle(node& n, upload_store& store, upload_info& u) {
  if (u.complete || u.offset < u.length)
    return true;
  return static_cast<bool>(finish(n, store, u));
}

void head(node& n, upload_store& store, const httplib::Request& req,
          httplib::Response& res) {
  tus_headers(res);
  if (req.method != "HEAD") { // httplib routes HEAD through GET routes
    res.set_header("Allow", "HEAD, PATCH, DELETE, OPTIONS");
    fail(res, 405, "tus uploads answer HEAD, PATCH and DELETE");
    return;
  }
  res.set_header("Cache-Control", "no-store");
  if (!version_ok(req, res))
    return;
  auto now = now_ms();
  store.maybe_sweep(now);
  std::string id = req.matches[1];
  upload_lock lock{store, id, lock_wait};
  if (!lock) {
    res.status = 423;
    return;
  }
  auto u = store.load(id, now);
  if (!u || !settle(n, store, *u)) {
    res.status = 404;
    return;
  }
  res.status = 200;
  state_headers(res, *u);
  res.set_header("Upload-Length", std::to_string(u->length));
  if (!u->metadata.empty())
    res.set_header("Upload-Metadata", encode_metadata(u->metadata));
}

void patch(node& n, upload_store& store, const httplib::Request& req,
           httplib::Response& res, const httplib::ContentReader& reader) {
  tus_headers(res);
  // A refusal before the body is read ends the connection: the body is
  // still in it.
  auto refuse = [&](int status, const std::string& msg) {
    res.set_header("Connection", "close");
    fail(res, status, msg);
  };
  if (!version_ok(req, res)) {
    res.set_header("Connection", "close");
    return;
  }
  if (media_type(req) != "application/offset+octet-stream") {
    refuse(415, "Content-Type must be application/offset+octet-stream");
    return;
  }
  auto given = parse_size(req.get_header_value("Upload-Offset"));
  if (!given) {
    refuse(400, "missing or malformed Upload-Offset header");
    return;
  }
  bool chunked = req.get_header_value("Transfer-Encoding") == "chunked";
  std::optional<int64_t> content_length;
  if (req.has_header("Content-Length")) {
    content_length = parse_size(req.get_header_value("Content-Length"));
    if (!content_length) {
      refuse(400, "malformed Content-Length");
      return;
    }
  }
  auto now = now_ms();
  store.maybe_sweep(now);
  std::string id = req.matches[1];
  upload_lock lock{store, id, lock_wait};
  if (!lock) {
    refuse(423, "another request is writing to this upload");
    return;
  }
  auto u = store.load(id, now);
  if (!u) {
    refuse(404, message_of(u.error()));
    return;
  }
  if (!settle(n, store, *u)) {
    refuse(404, "the upload failed: start a new one");
    return;
  }
  if (!u->key.empty() && !u->complete) {
    auto v = n.get_video("", u->video);
    if (!v) {
      refuse(status_of(code_of(v.error())), message_of(v.error()));
      return;
    }
    if (!key_allows(n, u->key, *v, res)) {
      res.set_header("Connection", "close");
      return;
    }
  }
  if (*given != u->offset) {
    state_headers(res, *u);
    refuse(409, "Upload-Offset " + std::to_string(*given)
                  + " is not the upload's offset "
                  + std::to_string(u->offset));
    return;
  }
  if (content_length && u->offset + *content_length > u->length) {
    refuse(413, "the body would go past Upload-Length ("
                  + std::to_string(u->length) + " bytes)");
    return;
  }
  if (u->complete) { // an empty PATCH at the end of a complete upload
    state_headers(res, *u);
    res.status = 204;
    return;
  }
  auto bin = store.bin_path(id);
  int fd = ::open(bin.c_str(), O_WRONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_size < u->offset) {
    // The bytes the .json counts are not all there: the upload is lost.
    log::error("tus.lost", {{"upload", id}, {"video", u->video}});
    if (fd >= 0)
      ::close(fd);
    store.remove(id);
    refuse(404, "the upload's data is lost: start a new upload");
    return;
  }
  // Bytes past the offset never made it into the .json: not part of the
  // upload.
  if (::ftruncate(fd, u->offset) != 0) {
    auto err = io_error("cannot write the upload");
    ::close(fd);
    refuse(500, message_of(err));
    return;
  }
  active_upload active;
  auto& ingest = metrics().ingest_bytes;
  const int64_t start = u->offset;
  int64_t written = start; // bytes in the file
  std::vector<char> buf;
  buf.reserve(std::min<int64_t>(write_buffer_bytes, u->length - start));
  bool over = false;
  bool io_failed = false;
  int io_errno = 0;
  auto flush = [&] {
    if (buf.empty())
      return true;
    if (!pwrite_all(fd, buf.data(), buf.size(), written)) {
      io_failed = true;
      io_errno = errno;
      return false;
    }
    written += static_cast<int64_t>(buf.size());
    buf.clear();
    return true;
  };
  bool ok = true;
  // Without Content-Length and not chunked there is no body to wait for.
  if (content_length || chunked)
    ok = reader([&](const char* data, size_t len) {
      auto room = u->length - written - static_cast<int64_t>(buf.size());
      if (static_cast<int64_t>(len) > room) {
        over = true;
        return false;
      }
      ingest.Increment(static_cast<double>(len));
      while (len > 0) {
        auto take = std::min(len, write_buffer_bytes - buf.size());
        buf.insert(buf.end(), data, data + take);
        data += take;
        len -= take;
        if (buf.size() == write_buffer_bytes && !flush())
          return false;
      }
      return true;
    });
  // What arrived is kept, even when the client went away mid-body.
  if (!over)
    flush();
  else {
    written = start; // a body too long: none of it
    buf.clear();
  }
  if (::ftruncate(fd, written) != 0 || ::fsync(fd) != 0) {
    io_failed = true;
    io_errno = errno;
  }
  ::close(fd);
  if (io_failed) {
    // What is in the file may not be durable: only what was before.
    written = start;
    log::error("tus.write_failed",
               {{"upload", id}, {"error", strerror(io_errno)}});
  }
  u->offset = written;
  u->expires_ms = now_ms() + idle_expiry_ms;
  if (auto err = store.save(*u)) {
    fail(res, 500, message_of(err));
    return;
  }
  state_headers(res, *u);
  if (over || !ok)
    res.set_header("Connection", "close"); // the rest of the body is unread
  if (over) {
    fail(res, 413, "the body went past Upload-Length ("
                     + std::to_string(u->length) + " bytes)");
    return;
  }
  if (io_failed) {
    fail(res, 500, std::string{"cannot write the upload: "}
                     + strerror(io_errno));
    return;
  }
  if (!ok) {
    fail(res, 400, "the body ended early; " + std::to_string(written - start)
                     + " bytes of it were kept");
    return;
  }
  if (u->offset == u->length) {
    auto v = finish(n, store, *u);
    if (!v) {
      auto code = code_of(v.error());
      fail(res, status_of(code), code == ec::conflict
                                   ? "the video already has a source: "
                                       + message_of(v.error())
                                   : message_of(v.error()));
      return;
    }
  }
  res.status = 204;
}

void terminate(upload_store& store, const httplib::Request& req,
               httplib::Response& res) {
  tus_headers(res);
  if (!version_ok(req, res))
    return;
  auto now = now_ms();
  store.maybe_sweep(now);
  std::string id = req.matches[1];
  upload_lock lock{store, id, lock_wait};
  if (!lock) {
    fail(res, 423, "another request is writing to this upload");
    return;
  }
  auto u = store.load(id, now);
  if (!u) {
    fail(res, 404, message_of(u.error()));
    return;
  }
  store.remove(id);
  log::info("tus.terminated", {{"upload", id}, {"video", u->video}});
  res.status = 204;
}

} // namespace

std::string tus_token(node& n, const std::string& video_id,
                      const std::string& key_hash, int64_t ttl_s) {
  return sign_token(n.signing_secret(), "tus", {video_id, key_id_of(key_hash)},
                    now_ms() + ttl_s * 1000);
}

void add_tus(route_table& t, node& n) {
  auto store = std::make_shared<upload_store>(n.config().data_dir + "/tus");
  if (auto err = store->init())
    log::error("tus.init_failed", {{"error", message_of(err)}});
  else
    store->sweep(now_ms());
  n.add_gc_step("tus", [store](int64_t before_ms) {
    return store->collect(before_ms);
  });
  // Errors are {"error": "<why>"}, as Gcore's; each handler checks the
  // credential its request carries and answers tus's own statuses (412,
  // 415, 423, ...) itself.
  auto add = [&](const char* method, std::string pattern, body_kind body,
                 std::string name, route_handler h) {
    t.add({method, std::move(pattern), dialect::gcore, access::capability, "",
           names_video::none, body, std::move(name), std::move(h)});
  };
  const std::string upload = R"(/upload/([A-Za-z0-9]{1,64}))";
  add("OPTIONS", R"(/upload/(?:[A-Za-z0-9]{1,64})?)", body_kind::none,
      "tus.options", [&n](call& c) {
        tus_headers(c.res);
        c.res.set_header("Tus-Version", tus_version);
        c.res.set_header("Tus-Extension", tus_extensions);
        c.res.set_header("Tus-Max-Size",
                         std::to_string(n.config().max_upload_bytes));
        c.res.status = 204;
      });
  // Creation: the token in Upload-Metadata. (No creation-with-upload: a
  // body sent along is not read.)
  add("POST", R"(/upload/)", body_kind::none, "tus.create",
      [&n, store](call& c) { create(n, *store, c.req, c.res); });
  // HEAD (httplib answers HEAD with the GET route, without the body).
  add("GET", upload, body_kind::none, "tus.head",
      [&n, store](call& c) { head(n, *store, c.req, c.res); });
  add("PATCH", upload, body_kind::stream, "tus.patch",
      [&n, store](call& c) { patch(n, *store, c.req, c.res, *c.reader); });
  add("DELETE", upload, body_kind::none, "tus.delete",
      [store](call& c) { terminate(*store, c.req, c.res); });
}

} // namespace reel::http
