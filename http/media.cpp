// Media files with correct types, Accept-Ranges, single ranges answered 206
// (416 when unsatisfiable) and CORS. Files are streamed, never loaded whole.

#include "http/range.hpp"
#include "http/routes.hpp"
#include "ops/metrics.hpp"
#include "ops/token.hpp"
#include "ops/util.hpp"
#include "storage/blob_store.hpp"
#include "storage/db.hpp"

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

void plain(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_content(text + "\n", "text/plain");
}

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

void add_media(router& r, node& n) {
  r.get(R"(/media/([^/]+)/(.+))", "media",
        [&n](const httplib::Request& req, httplib::Response& res) {
          std::string id = req.matches[1];
          std::string rel = req.matches[2];
          std::string token;
          if (rel.rfind("token/", 0) == 0) { // token/<t>/<path>
            auto slash = rel.find('/', 6);
            if (slash == std::string::npos) {
              plain(res, 404, "not found");
              return;
            }
            token = rel.substr(6, slash - 6);
            rel = rel.substr(slash + 1);
          }
          // The record says who may play it and what the aliases name.
          auto rec = is_uuid(id) ? n.store().get_video(id)
                                 : caf::expected<std::optional<video_record>>{
                                   std::optional<video_record>{}};
          if (!rec || !*rec) {
            plain(res, 404, "not found");
            return;
          }
          auto& v = **rec;
          if (auto why = playback_denied(n, v, token); !why.empty()) {
            plain(res, 403, why);
            return;
          }
          if (rel == "mp4/source.mp4") { // the best download
            const codec::rendition* best = nullptr;
            for (auto& x : v.renditions)
              if (!x.mp4.empty() && (!best || x.height > best->height))
                best = &x;
            if (!best || !v.info.mp4_support) {
              plain(res, 404, "not found");
              return;
            }
            rel = best->mp4;
          }
          caf::expected<std::string> path{make_error(ec::not_found, "")};
          if (rel.rfind("source/", 0) == 0) {
            // The uploaded file itself, under the name it was sent with
            // (Flare's publicUrl).
            if (rel.substr(7) != v.filename || rel.find('/', 7) != std::string::npos) {
              plain(res, 404, "not found");
              return;
            }
            path = n.source_file(id);
          } else if (rel == "thumbnail.jpg" && req.has_param("time")) {
            // A frame at any time, made on first request, then cached.
            char* end = nullptr;
            auto text = req.get_param_value("time");
            double at = std::strtod(text.c_str(), &end);
            if (text.empty() || *end != '\0') {
              res.status = 400;
              res.set_content("time must be a number of seconds\n",
                              "text/plain");
              return;
            }
            path = n.thumbnail(id, at);
            if (!path && code_of(path.error()) == ec::invalid_argument) {
              res.status = 400;
              res.set_content(message_of(path.error()) + "\n", "text/plain");
              return;
            }
          } else {
            // Without a time, the thumbnail is the poster: the client's
            // if it set one.
            bool own = rel == "thumbnail.jpg" && !v.info.poster.empty();
            if (own)
              rel = v.info.poster; // its type by its name
            else if (rel == "thumbnail.jpg")
              rel = "poster.jpg";
            path = own ? n.poster_file(v) : n.media_file(id, rel);
          }
          if (!path) {
            res.status = 404;
            res.set_content("not found\n", "text/plain");
            return;
          }
          int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
          struct stat st {};
          if (fd < 0 || ::fstat(fd, &st) != 0) {
            if (fd >= 0)
              ::close(fd);
            res.status = 404;
            res.set_content("not found\n", "text/plain");
            return;
          }
          auto file = std::make_shared<fd_holder>(fd);
          auto size = static_cast<uint64_t>(st.st_size);
          res.set_header("Accept-Ranges", "bytes");
          // A restricted video's media stay in the viewer's own cache: a
          // shared one would hand them out without their token.
          bool playlist =
              rel.size() > 5 && rel.substr(rel.size() - 5) == ".m3u8";
          res.set_header("Cache-Control",
                         restricted(v) ? (playlist ? "private, max-age=60"
                                                   : "private, max-age=3600")
                         : playlist    ? "public, max-age=60"
                                       : "public, max-age=31536000");
          uint64_t first = 0;
          uint64_t length = size;
          auto range = parse_range(req.get_header_value("Range"), size);
          // httplib would apply the Range header a second time to what we
          // answer; this handler answers ranges itself.
          const_cast<httplib::Request&>(req).ranges.clear();
          switch (range.kind) {
            case range_kind::none:
              break;
            case range_kind::unsatisfiable:
              res.status = 416;
              res.set_header("Content-Range",
                             "bytes */" + std::to_string(size));
              res.set_content("requested range not satisfiable\n",
                              "text/plain");
              return;
            case range_kind::single:
              res.status = 206;
              first = range.first;
              length = range.last - range.first + 1;
              res.set_header("Content-Range",
                             "bytes " + std::to_string(range.first) + "-"
                               + std::to_string(range.last) + "/"
                               + std::to_string(size));
              break;
          }
          // Streamed bytes are counted as they go (res.body stays empty).
          auto* sent = &metrics().http_response_bytes.Add({{"route", "media"}});
          res.set_content_provider(
            static_cast<size_t>(length), content_type(rel),
            [file, first, length, sent](size_t offset, size_t want,
                                        httplib::DataSink& sink) {
              if (offset >= length)
                return false;
              char buf[1 << 16];
              auto n = std::min<size_t>({want, sizeof(buf),
                                         static_cast<size_t>(length - offset)});
              auto got = ::pread(file->fd, buf, n,
                                 static_cast<off_t>(first + offset));
              if (got <= 0)
                return false; // file shrank or failed: end the response
              sent->Increment(static_cast<double>(got));
              return sink.write(buf, static_cast<size_t>(got));
            });
        });
}

} // namespace reel::http
