// Media files with correct types, Accept-Ranges, single ranges answered 206
// (416 when unsatisfiable) and CORS. Files are streamed, never loaded whole.

#include "http/range.hpp"
#include "http/routes.hpp"
#include "ops/metrics.hpp"
#include "ops/token.hpp"
#include "ops/util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

namespace reel::http {

namespace {

constexpr int64_t playback_ttl_ms = int64_t{24} * 3600 * 1000;

const char* content_type(const std::string& path) {
  auto dot = path.rfind('.');
  auto ext = dot == std::string::npos ? std::string{} : path.substr(dot + 1);
  if (ext == "m3u8")
    return "application/vnd.apple.mpegurl";
  if (ext == "m4s")
    return "video/iso.segment";
  if (ext == "mp4")
    return "video/mp4";
  if (ext == "ts")
    return "video/mp2t";
  if (ext == "mpd")
    return "application/dash+xml";
  if (ext == "jpg" || ext == "jpeg")
    return "image/jpeg";
  if (ext == "png")
    return "image/png";
  if (ext == "vtt")
    return "text/vtt";
  if (ext == "m4a")
    return "audio/mp4";
  return "application/octet-stream";
}

/// Owns an open file for as long as a response streams from it.
struct fd_holder {
  explicit fd_holder(int f) : fd(f) {}
  fd_holder(const fd_holder&) = delete;
  fd_holder& operator=(const fd_holder&) = delete;
  ~fd_holder() { ::close(fd); }
  int fd;
};

} // namespace

bool restricted(const video_record& v) {
  return !v.info.is_public || !v.info.password_hash.empty();
}

namespace {

/// What a playback token given for a password carries: "p" and a digest of
/// the stored hash (not the hash itself: tokens travel in URLs).
std::string password_binding(const video_record& v) {
  return "p" +
         sha256_hex("reel playback\x1f" + v.info.password_hash).substr(0, 16);
}

/// pt.<video>.<k + key id | p + password digest>.<expiry>.<mac>
std::string playback_token(node& n, const video_record& v,
                           const std::string& binding) {
  return sign_token(n.signing_secret(), "pt", {v.id, binding},
                    now_ms() + playback_ttl_ms);
}

} // namespace

std::string playback_segment(node& n, const video_record& v,
                             const principal& who) {
  if (!restricted(v) || who.key_hash.empty())
    return {};
  return "token/" + playback_token(n, v, "k" + key_id_of(who.key_hash)) + "/";
}

std::string password_playback_token(node& n, const video_record& v) {
  return playback_token(n, v, password_binding(v));
}

std::string playback_denied(node& n, const video_record& v,
                            const std::string& token) {
  if (!restricted(v))
    return {};
  if (token.empty())
    return "this video is private: its media need a playback token";
  auto fields = verify_token(n.signing_secret(), "pt", token, now_ms());
  if (!fields)
    return "playback token: " + message_of(fields.error());
  if (fields->empty() || fields->front() != v.id)
    return "the playback token is for another video";
  if (fields->size() != 2 || (*fields)[1].empty())
    return "the playback token is of an older form: get a new one";
  auto& by = (*fields)[1];
  if (by.front() == 'p') {
    if (v.info.password_hash.empty() || !equal_secrets(by, password_binding(v)))
      return "the video's password has changed: enter it again";
    return {};
  }
  if (by.front() != 'k')
    return "invalid playback token";
  auto key = n.key_by_id(by.substr(1));
  if (!key)
    return code_of(key.error()) == ec::unauthorized
               ? "the API key that gave this playback token was revoked"
               : "the playback token cannot be checked now";
  if (!key->admin && key->tenant != v.tenant)
    return "the playback token is for another video";
  return {};
}

void serve_media(call& c, const video_record& v, const std::string& token,
                 std::string rel) {
  auto& n = c.n;
  auto& req = c.req;
  auto& res = c.res;
  if (auto why = playback_denied(n, v, token); !why.empty()) {
    c.fail(ec::forbidden, why);
    return;
  }
  auto not_found = [&c] { c.fail(ec::not_found, "not found"); };
  if (rel == "mp4/source.mp4") { // the best download
    const codec::rendition* best = nullptr;
    for (auto& x : v.renditions)
      if (!x.mp4.empty() && (!best || x.height > best->height))
        best = &x;
    if (!best || !v.info.mp4_support) {
      not_found();
      return;
    }
    rel = best->mp4;
  }
  caf::expected<std::string> path{make_error(ec::not_found, "")};
  if (rel.rfind("source/", 0) == 0) {
    // The uploaded file itself, under the name it was sent with (Flare's
    // publicUrl serves it too).
    if (rel.substr(7) != v.filename || rel.find('/', 7) != std::string::npos) {
      not_found();
      return;
    }
    path = n.source_file(v.id);
  } else if (rel == "thumbnail.jpg" && req.has_param("time")) {
    // A frame at any time, made on first request, then cached.
    char* end = nullptr;
    auto text = req.get_param_value("time");
    double at = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') {
      c.fail(ec::invalid_argument, "time must be a number of seconds");
      return;
    }
    path = n.thumbnail(v.id, at);
    if (!path && code_of(path.error()) == ec::invalid_argument) {
      c.fail(ec::invalid_argument, message_of(path.error()));
      return;
    }
  } else {
    // Without a time, the thumbnail is the poster: the client's if it set
    // one.
    bool own = rel == "thumbnail.jpg" && !v.info.poster.empty();
    if (own)
      rel = v.info.poster; // its type by its name
    else if (rel == "thumbnail.jpg")
      rel = "poster.jpg";
    path = own ? n.poster_file(v) : n.media_file(v.id, rel);
  }
  if (!path) {
    not_found();
    return;
  }
  int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    if (fd >= 0)
      ::close(fd);
    not_found();
    return;
  }
  auto file = std::make_shared<fd_holder>(fd);
  auto size = static_cast<uint64_t>(st.st_size);
  res.set_header("Accept-Ranges", "bytes");
  // A restricted video's media stay in the viewer's own cache: a shared
  // one would hand them out without their token.
  bool playlist = rel.size() > 5 && rel.substr(rel.size() - 5) == ".m3u8";
  res.set_header("Cache-Control", restricted(v)
                                      ? (playlist ? "private, max-age=60"
                                                  : "private, max-age=3600")
                                  : playlist ? "public, max-age=60"
                                             : "public, max-age=31536000");
  uint64_t first = 0;
  uint64_t length = size;
  auto range = parse_range(req.get_header_value("Range"), size);
  // httplib would apply the Range header a second time to what we answer;
  // this answers ranges itself.
  const_cast<httplib::Request&>(req).ranges.clear();
  switch (range.kind) {
  case range_kind::none:
    break;
  case range_kind::unsatisfiable:
    res.set_header("Content-Range", "bytes */" + std::to_string(size));
    c.fail(ec::range_not_satisfiable, "requested range not satisfiable");
    return;
  case range_kind::single:
    res.status = 206;
    first = range.first;
    length = range.last - range.first + 1;
    res.set_header("Content-Range", "bytes " + std::to_string(range.first) +
                                        "-" + std::to_string(range.last) + "/" +
                                        std::to_string(size));
    break;
  }
  // Streamed bytes are counted as they go (res.body stays empty).
  auto* sent = &metrics().http_response_bytes.Add({{"route", c.r.name}});
  res.set_content_provider(
      static_cast<size_t>(length), content_type(rel),
      [file, first, length, sent](size_t offset, size_t want,
                                  httplib::DataSink& sink) {
        if (offset >= length)
          return false;
        char buf[1 << 16];
        auto n = std::min<size_t>(
            {want, sizeof(buf), static_cast<size_t>(length - offset)});
        auto got =
            ::pread(file->fd, buf, n, static_cast<off_t>(first + offset));
        if (got <= 0)
          return false; // file shrank or failed: end the response
        sent->Increment(static_cast<double>(got));
        return sink.write(buf, static_cast<size_t>(got));
      });
}

void add_media(route_table& t, node&) {
  // Open: anyone who knows the id may fetch a public video's media; a
  // private or password-protected one's need the playback token in the
  // path (checked by serve_media).
  t.add({"GET", R"(/media/([^/]+)/(.+))", dialect::plain, access::open, "",
         names_video::uuid, body_kind::none, "media", [](call& c) {
           std::string rel = c.arg(2);
           std::string token;
           if (rel.rfind("token/", 0) == 0) { // token/<t>/<path>
             auto slash = rel.find('/', 6);
             if (slash == std::string::npos) {
               c.fail(ec::not_found, "not found");
               return;
             }
             token = rel.substr(6, slash - 6);
             rel = rel.substr(slash + 1);
           }
           serve_media(c, *c.video, token, std::move(rel));
         }});
}

} // namespace reel::http
