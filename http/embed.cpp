// The player page every dialect hands out (/embed/{id}): hls.js from npm,
// served by reel itself at /player/hls.min.js.

#include "http/render.hpp"
#include "http/routes.hpp"
#include "ops/util.hpp"

#include <fstream>
#include <sstream>

namespace reel::http {

namespace {

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

/// The form a password-protected video's page shows instead of the video.
std::string password_form(const video_record& v, bool wrong) {
  return std::string{"<form class=\"note\" method=\"post\" action=\"/embed/"}
         + v.id + "/unlock\">"
         + (wrong ? "<p>Wrong password.</p>" : "")
         + "<label>This video is protected. Password: <input type=\"password\" "
           "name=\"password\" autofocus></label> <button>Play</button></form>";
}

/// Whether `password` opens video `v` ("<salt>$<sha256(salt+password)>").
bool password_opens(const video_record& v, const std::string& password) {
  auto& stored = v.info.password_hash;
  auto dollar = stored.find('$');
  if (dollar == std::string::npos)
    return false;
  return equal_secrets(sha256_hex(stored.substr(0, dollar) + password),
                       stored.substr(dollar + 1));
}

} // namespace

void add_embed(router& r, node& n) {
  // The password of a protected video, from its page's form: a playback
  // token, handed over by sending the browser back to the page with it.
  r.post(R"(/embed/([^/]+)/unlock)", "embed.unlock",
         [&n](const httplib::Request& req, httplib::Response& res) {
           std::string id = req.matches[1];
           auto v = is_uuid(id) ? n.get_video("", id)
                                : caf::expected<video_record>{
                                  make_error(ec::not_found, "")};
           if (!v || v->info.password_hash.empty()) {
             res.status = 404;
             res.set_content("not found\n", "text/plain");
             return;
           }
           httplib::Params form;
           httplib::detail::parse_query_text(req.body, form);
           auto given = form.find("password");
           if (given == form.end() || !password_opens(*v, given->second)) {
             res.status = 303;
             res.set_header("Location", "/embed/" + id + "?token=wrong");
             return;
           }
           res.status = 303;
           auto seg = playback_segment(n, *v); // "token/<t>/"
           res.set_header("Location", "/embed/" + id + "?token="
                                        + seg.substr(6, seg.size() - 7));
         });

  // A play started on the page: counted once per page load.
  r.post(R"(/embed/([^/]+)/view)", "embed.view",
         [&n](const httplib::Request& req, httplib::Response& res) {
           std::string id = req.matches[1];
           auto views = is_uuid(id) ? n.count_view(id)
                                    : caf::expected<int64_t>{
                                      make_error(ec::not_found, "")};
           res.status = views ? 204 : 404;
         });

  r.get(R"(/player/hls\.min\.js)", "player.js",
        [&n](const httplib::Request&, httplib::Response& res) {
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
        });

  r.get(R"(/embed/([^/]+))", "embed",
        [&n](const httplib::Request& req, httplib::Response& res) {
          std::string id = req.matches[1];
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
              res.set_content(page(v->title, password_form(*v, !token.empty())),
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
        });
}

} // namespace reel::http
