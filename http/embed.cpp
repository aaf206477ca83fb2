// The player page every dialect hands out (/embed/{id}): hls.js from npm,
// served by reel itself at /player/hls.min.js.

#include "http/render.hpp"
#include "http/routes.hpp"
#include "ops/crypto.hpp"
#include "ops/log.hpp"
#include "ops/util.hpp"

#include <arpa/inet.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace reel::http {

namespace {

/// Password tries per video and client address: this many wrong ones...
constexpr int max_wrong_passwords = 5;
/// ...within this window, then 429 until it ends (a right one resets).
constexpr int64_t password_window_ms = 10 * 60 * 1000;
/// Clients remembered at most (the oldest forgotten first).
constexpr size_t max_password_clients = 4096;
/// Password checks running at once: each scrypt takes about 32 MiB and
/// tens of milliseconds of one core.
constexpr int max_password_checks = 2;
/// How long an unlock waits for a free check before 503.
constexpr auto password_check_wait = std::chrono::seconds(2);

/// Counts password tries per (video, client). Every try counts when it
/// starts, so that tries sent at once cannot all pass; the right password
/// forgets the client. Bounded: expired entries are dropped first, then
/// the oldest.
class password_tries {
public:
  /// 0 when `who` may try now (the try is counted); else the seconds to
  /// wait.
  int64_t begin(const std::string& who, int64_t now) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = tries_.find(who);
    if (i != tries_.end() && now - i->second.since >= password_window_ms) {
      tries_.erase(i);
      i = tries_.end();
    }
    if (i == tries_.end()) {
      make_room(now);
      tries_.emplace(who, entry{now, 1});
      return 0;
    }
    if (i->second.count >= max_wrong_passwords)
      return (i->second.since + password_window_ms - now + 999) / 1000;
    ++i->second.count;
    return 0;
  }

  /// A try that was not made after all (no check was free).
  void cancel(const std::string& who) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = tries_.find(who);
    if (i != tries_.end() && --i->second.count <= 0)
      tries_.erase(i);
  }

  /// The right password: the client starts afresh.
  void forget(const std::string& who) {
    std::lock_guard<std::mutex> guard{mtx_};
    tries_.erase(who);
  }

private:
  struct entry {
    int64_t since; // the window's start
    int count;     // tries in it
  };

  void make_room(int64_t now) {
    if (tries_.size() < max_password_clients)
      return;
    for (auto i = tries_.begin(); i != tries_.end();)
      i = now - i->second.since >= password_window_ms ? tries_.erase(i)
                                                      : std::next(i);
    if (tries_.size() < max_password_clients)
      return;
    auto oldest =
        std::min_element(tries_.begin(), tries_.end(), [](auto& a, auto& b) {
          return a.second.since < b.second.since;
        });
    tries_.erase(oldest);
  }

  std::mutex mtx_;
  std::unordered_map<std::string, entry> tries_;
};

/// At most max_password_checks password checks at a time.
class check_slots {
public:
  bool acquire() {
    std::unique_lock<std::mutex> lock{mtx_};
    if (!free_cv_.wait_for(lock, password_check_wait,
                           [this] { return free_ > 0; }))
      return false;
    --free_;
    return true;
  }
  void release() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      ++free_;
    }
    free_cv_.notify_one();
  }

private:
  std::mutex mtx_;
  std::condition_variable free_cv_;
  int free_ = max_password_checks;
};

/// Whom password tries are counted for: the client's address; IPv6 by its
/// /64 (one host usually has a whole one).
std::string client_of(const httplib::Request& req) {
  unsigned char a[16];
  if (inet_pton(AF_INET6, req.remote_addr.c_str(), a) == 1) {
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0,    0,
                                                0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a, v4_mapped, 12) != 0)
      return hex(std::string_view{reinterpret_cast<char*>(a), 8}) + "::/64";
  }
  return req.remote_addr;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

/// A JSON string literal that is also safe inside a <script> element.
std::string script_string(const std::string& s) {
  auto j = nlohmann::ordered_json(s).dump();
  std::string out;
  for (char c : j)
    out += c == '<' ? std::string{"\\u003c"} : std::string(1, c);
  return out;
}

std::string page(const std::string& title, const std::string& body) {
  return R"(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>)" + html_escape(title)
         + R"(</title>
<style>
html, body { margin: 0; height: 100%; background: #000; color: #ddd;
  font-family: sans-serif; }
video { width: 100%; height: 100%; display: block; }
.note { display: flex; height: 100%; align-items: center;
  justify-content: center; }
</style>
</head>
<body>
)" + body + "\n</body>\n</html>\n";
}

/// The form a password-protected video's page shows instead of the video,
/// with a note above it ("" for none).
std::string password_form(const video_record& v, const std::string& note) {
  return std::string{"<form class=\"note\" method=\"post\" action=\"/embed/"} +
         v.id + "/unlock\">" +
         (note.empty() ? std::string{} : "<p>" + note + "</p>") +
         "<label>This video is protected. Password: <input type=\"password\" "
         "name=\"password\" autofocus></label> <button>Play</button></form>";
}

/// Whether `password` opens video `v` (scrypt, or the legacy salted
/// SHA-256 of hashes set before scrypt).
bool password_opens(const video_record& v, const std::string& password) {
  return check_password(v.info.password_hash, password);
}

} // namespace

void add_embed(route_table& t, node& n) {
  constexpr auto d = dialect::plain;
  // The password of a protected video, from its page's form: a playback
  // token, handed over by sending the browser back to the page with it.
  // Tries are limited per video and client, and the slow checks in number.
  auto tries = std::make_shared<password_tries>();
  auto slots = std::make_shared<check_slots>();
  // Open: the password in the form is what it checks.
  t.add({"POST", R"(/embed/([^/]+)/unlock)", d, access::open, "",
         names_video::uuid, body_kind::form, "embed.unlock",
         [&n, tries, slots](call& c) {
           auto& req = c.req;
           auto& res = c.res;
           auto& v = *c.video;
           auto& id = v.id;
           if (v.info.password_hash.empty()) {
             c.fail(ec::not_found, "not found");
             return;
           }
           auto refuse = [&](int status, int64_t after_s,
                             const std::string& note) {
             res.status = status;
             res.set_header("Retry-After", std::to_string(after_s));
             res.set_content(page(v.title, password_form(v, note)),
                             "text/html; charset=utf-8");
           };
           auto who = id + '\x1f' + client_of(req);
           if (auto wait_s = tries->begin(who, now_ms()); wait_s > 0) {
             log::warn("embed.unlock_limited",
                       {{"video", id}, {"client", req.remote_addr}});
             refuse(429, wait_s, "Too many attempts, try again later.");
             return;
           }
           if (!slots->acquire()) {
             tries->cancel(who);
             refuse(503, 1, "The server is busy, try again in a moment.");
             return;
           }
           auto given = c.form.find("password");
           bool opens = given != c.form.end() && given->second.size() <= 1024 &&
                        password_opens(v, given->second);
           slots->release();
           if (!opens) {
             res.status = 303;
             res.set_header("Location", "/embed/" + id + "?token=wrong");
             return;
           }
           tries->forget(who);
           res.status = 303;
           res.set_header("Location", "/embed/" + id + "?token=" +
                                          password_playback_token(n, v));
         }});

  // A play started on the page: counted once per page load (by the
  // video's owner: no record is read here, so the route names none).
  t.add({"POST", R"(/embed/([^/]+)/view)", d, access::open, "",
         names_video::none, body_kind::none, "embed.view", [&n](call& c) {
           auto id = c.arg(1);
           auto views = is_uuid(id) ? n.count_view(id)
                                    : caf::expected<int64_t>{
                                      make_error(ec::not_found, "")};
           c.res.status = views ? 204 : 404;
         }});

  t.add({"GET", R"(/player/hls\.min\.js)", d, access::open, "",
         names_video::none, body_kind::none, "player.js", [&n](call& c) {
          auto& res = c.res;
          std::ifstream in{n.config().player_dir + "/hls.min.js"};
          if (!in) {
            res.status = 404;
            res.set_content("hls.js is not installed (npm install)\n",
                            "text/plain");
            return;
          }
          std::stringstream ss;
          ss << in.rdbuf();
          res.set_header("Cache-Control", "public, max-age=86400");
          res.set_content(ss.str(), "application/javascript");
        }});

  // The page names its video itself: an unknown one is a page too ("This
  // video does not exist."), not the gate's line of text.
  t.add({"GET", R"(/embed/([^/]+))", d, access::open, "", names_video::none,
         body_kind::none, "embed", [&n](call& c) {
          auto& req = c.req;
          auto& res = c.res;
          std::string id = c.arg(1);
          auto v = is_uuid(id) ? n.get_video("", id)
                               : caf::expected<video_record>{
                                 make_error(ec::not_found, "no such video")};
          if (!v) {
            res.status = code_of(v.error()) == ec::not_found ? 404 : 503;
            res.set_content(page("Not found",
                                 "<div class=\"note\">This video does not "
                                 "exist.</div>"),
                            "text/html; charset=utf-8");
            return;
          }
          // A private video plays with the playback token it was given,
          // a password-protected one with the token its password gives;
          // its media URLs carry it.
          auto token = req.get_param_value("token");
          if (auto why = playback_denied(n, *v, token); !why.empty()) {
            res.status = 403;
            if (!v->info.password_hash.empty())
              res.set_content(
                  page(v->title,
                       password_form(*v, token.empty() ? std::string{}
                                         : token == "wrong"
                                             ? "Wrong password."
                                             : "Enter the password again.")),
                  "text/html; charset=utf-8");
            else
              res.set_content(page("Private video",
                                   "<div class=\"note\">This video is private: "
                                   "open it with the link you were given.</div>"),
                              "text/html; charset=utf-8");
            return;
          }
          auto media = n.config().public_url + "/media/" + v->id + "/";
          auto with_token = [&](std::string url) {
            if (restricted(*v) && url.rfind(media, 0) == 0)
              url.insert(media.size(), "token/" + token + "/");
            return url;
          };
          auto src = with_token(playback_url(*v, n.config().public_url));
          if (src.empty()) {
            auto note = v->state == states::failed
                          ? "This video could not be processed."
                          : "This video is being processed; try again soon.";
            res.set_content(page(v->title, std::string{"<div class=\"note\">"}
                                               + note + "</div>"),
                            "text/html; charset=utf-8");
            return;
          }
          // The poster exists once the video is ready (it may play before).
          auto poster = v->state == states::ready || !v->info.poster.empty()
                          ? " poster=\""
                              + html_escape(with_token(media + "thumbnail.jpg"))
                              + "\""
                          : std::string{};
          auto body = "<video id=\"player\" controls playsinline" + poster
                      + "></video>\n"
                      + R"(<script src="/player/hls.min.js"></script>
<script>
(function () {
  var src = )" + script_string(src) + R"(;
  var video = document.getElementById('player');
  if (window.Hls && Hls.isSupported()) {
    // Start at the beginning even while the playlist still grows.
    var hls = new Hls({ startPosition: 0 });
    hls.loadSource(src);
    hls.attachMedia(video);
    window.reelHls = hls;
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = src;
  }
  // One view per page load, counted when playback starts.
  video.addEventListener('play', function () {
    if (window.reelViewed) return;
    window.reelViewed = true;
    fetch(location.pathname + '/view', { method: 'POST', keepalive: true });
  });
})();
</script>)";
          res.set_content(page(v->title, body), "text/html; charset=utf-8");
        }});
}

} // namespace reel::http
