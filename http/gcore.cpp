// The Gcore Streaming dialect (seed 004; authority: Gcore's API reference
// and its generated SDK, G-Core/gcore-python, resources/streaming/videos):
// /streaming/videos with integer ids, imports from origin_url, clips,
// posters, converted_videos, sprites, and uploads through tus (http/tus).

#include "http/render.hpp"
#include "http/routes.hpp"
#include "http/tus.hpp"
#include "http/upload_receiver.hpp"
#include "ops/util.hpp"
#include "storage/blob_store.hpp"
#include "net/url_import.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace reel::http {

namespace {

using json = nlohmann::ordered_json;
constexpr auto d = dialect::gcore;
constexpr int64_t max_poster_bytes = 1 << 20; // Gcore's limit
constexpr int64_t tus_token_ttl_s = 4 * 3600; // as Gcore's

/// The key of a Gcore request: `Authorization: APIKey <key>` (any case of
/// the scheme), the bare `APIKey: <key>` header, or a Bearer key.
std::optional<principal> gcore_auth(node& n, const httplib::Request& req,
                                    httplib::Response& res) {
  std::string key;
  auto h = req.get_header_value("Authorization");
  if (h.size() > 7 && (h.compare(0, 7, "APIKey ") == 0
                       || h.compare(0, 7, "apikey ") == 0
                       || h.compare(0, 7, "Apikey ") == 0))
    key = h.substr(7);
  else if (req.has_header("APIKey"))
    key = req.get_header_value("APIKey");
  else
    key = bearer_token(req);
  key.erase(0, key.find_first_not_of(' '));
  if (key.empty()) {
    reply_error(d, ec::unauthorized,
                "missing credentials: send Authorization: APIKey <key>", res);
    return std::nullopt;
  }
  auto who = n.authenticate(key);
  if (!who) {
    render_error(d, code_of(who.error()) == ec::unauthorized
                      ? make_error(ec::unauthorized, "invalid API key")
                      : who.error(),
                 res);
    return std::nullopt;
  }
  return *who;
}

/// Gcore's status of a video.
const char* gcore_status(const video_record& v) {
  if (v.state == states::failed)
    return "error";
  if (v.state == states::ready)
    return "ready";
  if (is_playable(v))
    return "viewable";
  if (v.state == states::created)
    return "empty";
  return "pending";
}

/// The clipped length in milliseconds (0 before probing).
int64_t duration_ms(const video_record& v) {
  if (!v.probed)
    return 0;
  auto rest = v.source.duration_s - v.clip_start_s;
  auto len = v.clip_duration_s > 0 ? std::min(v.clip_duration_s, rest) : rest;
  return static_cast<int64_t>(std::llround(std::max(0.0, len) * 1000));
}

/// A small media file's text (the storyboard's WebVTT), or "".
std::string media_text(node& n, const std::string& id, const std::string& rel) {
  auto path = n.media_file(id, rel);
  if (!path)
    return {};
  std::ifstream in{*path};
  std::stringstream ss;
  ss << in.rdbuf();
  auto text = ss.str();
  return text.size() > (1 << 20) ? std::string{} : text;
}

/// The video object as `who` is shown it (a private video's URLs carry a
/// playback token of the caller's key).
json gcore_video(node& n, const video_record& v, const principal& who,
                 bool with_sprite = true) {
  auto base = n.config().public_url;
  auto seg = playback_segment(n, v, who);
  auto media = base + "/media/" + v.id + "/" + seg;
  auto s = v.source;
  json j = {{"id", v.number},
            {"name", v.title},
            {"description", v.info.description},
            {"slug", v.id},
            {"status", gcore_status(v)}};
  if (v.state == states::failed)
    j["error"] = v.failure_reason;
  bool ready = v.state == states::ready;
  j.update({
    {"duration", v.probed ? json(duration_ms(v)) : json(nullptr)},
    {"origin_size", v.source_bytes > 0 ? json(v.source_bytes) : json(nullptr)},
    {"origin_url", v.import_url.empty() ? json(nullptr) : json(v.import_url)},
    {"origin_video_duration",
     v.probed ? json(static_cast<int64_t>(std::llround(s.duration_s * 1000)))
              : json(nullptr)},
    {"origin_audio_channels",
     v.probed && s.audio_stream >= 0 ? json(s.audio_channels) : json(nullptr)},
    {"origin_width", v.probed ? json(s.width) : json(nullptr)},
    {"origin_height", v.probed ? json(s.height) : json(nullptr)},
    {"created_at", iso8601_ms(v.created_ms)},
    {"updated_at", iso8601_ms(v.updated_ms)},
    {"clip_start_seconds",
     v.clip_start_s > 0 ? json(static_cast<int64_t>(v.clip_start_s)) : json(nullptr)},
    {"clip_duration_seconds",
     v.clip_duration_s > 0 ? json(static_cast<int64_t>(v.clip_duration_s))
                           : json(nullptr)},
    {"priority", v.priority},
    {"directory_id", v.folder == "root"
                       ? json(nullptr)
                       : json(folder_number(v.tenant, v.folder))},
    {"client_user_id", v.info.client_user_id != 0 ? json(v.info.client_user_id)
                                                  : json(nullptr)},
    {"projection", v.info.projection},
    {"views", v.info.views},
  });
  bool playable = is_playable(v);
  j["hls_url"] = playable ? json(media + "master.m3u8") : json(nullptr);
  j["hls_cmaf_url"] = playable ? json(media + "master-cmaf.m3u8") : json(nullptr);
  j["dash_url"] = ready ? json(media + (v.dash.empty() ? "manifest.mpd" : v.dash))
                        : json(nullptr);
  auto iframe = base + "/embed/" + v.id;
  if (!seg.empty())
    iframe += "?token=" + seg.substr(6, seg.size() - 7);
  j["iframe_url"] = iframe;
  // Images: the client's poster if it set one, else the one made.
  bool custom = !v.info.poster.empty();
  json poster = custom ? json(media + "thumbnail.jpg")
                : ready ? json(media + "poster.jpg")
                        : json(nullptr);
  j["poster"] = poster;
  j["poster_thumb"] = ready ? json(media + "poster_thumb.jpg") : poster;
  json shots = json::array();
  if (ready)
    for (int i = 1; i <= v.screenshots; ++i)
      shots.push_back(media + "screenshots/" + std::to_string(i) + ".jpg");
  j["screenshot_id"] = v.info.screenshot_id;
  auto pick = v.info.screenshot_id;
  j["screenshot"] = pick >= 0 && pick < static_cast<int>(shots.size())
                      ? shots[static_cast<size_t>(pick)]
                      : poster;
  j["screenshots"] = shots;
  if (with_sprite) {
    j["sprite"] = ready ? json(media + "sprite.jpg") : json(nullptr);
    auto vtt = ready ? media_text(n, v.id, "sprite.vtt") : std::string{};
    j["sprite_vtt"] = vtt.empty() ? json(nullptr) : json(vtt);
  }
  // converted_videos: each rung's MP4 download.
  auto [rung_status, pct] = rung_progress(v);
  json converted = json::array();
  for (size_t i = 0; i < v.rungs.size(); ++i) {
    auto& r = v.rungs[i];
    const codec::rendition* out = nullptr;
    for (auto& x : v.renditions)
      if (x.name == r.name && !x.mp4.empty())
        out = &x;
    const char* status = v.state == states::failed ? "error"
                         : out                     ? "complete"
                                                   : "processing";
    json c = {{"id", v.number * 16 + i},
              {"name", "vod" + r.name},
              {"width", out ? out->width : r.width},
              {"height", out ? out->height : r.height},
              {"size", out ? json(out->mp4_size) : json(nullptr)},
              {"progress", out ? 100 : std::min(pct, 99)},
              {"status", status},
              {"mp4_url", out ? json(media + out->mp4) : json(nullptr)}};
    if (v.state == states::failed)
      c["error"] = v.failure_reason;
    converted.push_back(std::move(c));
  }
  (void) rung_status;
  j["converted_videos"] = converted;
  // Asked for and kept, but said plainly: there is no transcription.
  auto lang = v.info.transcribe_language;
  j["auto_transcribe_audio_language"] = lang.empty() ? json("disable") : json(lang);
  if (!lang.empty() && lang != "disable")
    j["auto_transcribe_audio_status"] =
      "not available: this server does not transcribe audio";
  return j;
}

/// A Gcore integer id (1 to 2^53 - 1) in decimal; nothing for anything
/// else.
std::optional<uint64_t> parse_number(const std::string& text) {
  if (text.empty() || text.size() > 16 ||
      text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  auto number = std::stoull(text);
  if (number == 0 || number > max_video_number)
    return std::nullopt;
  return number;
}

/// The video with Gcore integer id `text` of the caller's tenant (through
/// the index of numbers).
caf::expected<video_record> find_number(node& n, const principal& who,
                                        const std::string& text) {
  auto missing = make_error(ec::not_found, "video " + text + " not found");
  auto number = parse_number(text);
  if (!number)
    return missing;
  auto v = n.video_by_number(who.tenant, *number);
  if (v || code_of(v.error()) != ec::not_found)
    return v;
  return missing;
}

std::optional<video_record> find_video(node& n, const principal& who,
                                       const std::string& text,
                                       httplib::Response& res) {
  auto v = find_number(n, who, text);
  if (!v) {
    render_error(d, v.error(), res);
    return std::nullopt;
  }
  return std::move(*v);
}

/// Decodes a poster given as a data: URI (JPEG, PNG; at most 1 MB) into a
/// temporary file under the blob store.
caf::expected<std::string> poster_from_data_uri(node& n, const std::string& uri) {
  auto bad = [](const std::string& why) {
    return make_error(ec::invalid_argument, "poster: " + why);
  };
  if (uri.rfind("data:", 0) != 0)
    return bad("must be a data: URI (data:image/jpeg;base64,...)");
  auto comma = uri.find(',');
  if (comma == std::string::npos)
    return bad("the data: URI has no data");
  auto head = uri.substr(5, comma - 5);
  if (head.size() < 7 || head.substr(head.size() - 7) != ";base64")
    return bad("the data: URI must be base64");
  auto type = head.substr(0, head.size() - 7);
  if (type != "image/jpeg" && type != "image/png" && type != "image/jpg")
    return bad("only image/jpeg and image/png are supported");
  if ((uri.size() - comma - 1) / 4 * 3 > max_poster_bytes + 3)
    return bad("the image is larger than 1 MB");
  auto bytes = base64_decode(std::string_view{uri}.substr(comma + 1));
  if (!bytes || bytes->empty())
    return bad("the base64 data is invalid");
  if (static_cast<int64_t>(bytes->size()) > max_poster_bytes)
    return bad("the image is larger than 1 MB");
  auto tmp = n.blobs().new_tmp_path();
  std::ofstream out{tmp, std::ios::binary};
  out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out)
    return make_error(ec::storage_error, "cannot store the poster");
  return tmp;
}

/// Fetches remote_poster_url (by the importer's rules, at most 1 MB).
caf::expected<std::string> poster_from_url(node& n, const std::string& url) {
  import_options opts;
  opts.max_bytes = max_poster_bytes;
  opts.timeout_s = 20;
  opts.allow = n.config().import_allow;
  auto tmp = n.blobs().new_tmp_path();
  auto got = import_url(url, tmp, opts);
  if (!got)
    return make_error(code_of(got.error()) == ec::too_large
                        ? ec::invalid_argument
                        : code_of(got.error()),
                      "remote_poster_url: " + message_of(got.error()));
  return tmp;
}

/// Sets the poster a create or update asks for (poster or
/// remote_poster_url), after the video exists.
caf::expected<video_record> apply_poster(node& n, const principal& who,
                                         const video_record& v,
                                         const nlohmann::json& body) {
  caf::expected<std::string> image{std::string{}};
  if (body.contains("poster") && body["poster"].is_string()
      && !body["poster"].get<std::string>().empty())
    image = poster_from_data_uri(n, body["poster"].get<std::string>());
  else if (body.contains("remote_poster_url")
           && body["remote_poster_url"].is_string()
           && !body["remote_poster_url"].get<std::string>().empty())
    image = poster_from_url(n, body["remote_poster_url"].get<std::string>());
  else if (body.value("remove_poster", false))
    return n.update_video(who.tenant, v.id, R"({"poster": ""})");
  if (!image)
    return image.error();
  if (image->empty())
    return v;
  tmp_guard tmp{*image};
  auto updated = n.set_poster(who.tenant, v.id, *image);
  if (!updated && code_of(updated.error()) == ec::invalid_argument)
    return make_error(ec::invalid_argument,
                      "poster: the image must be a JPEG or PNG file");
  return updated;
}

/// Gcore's fields of a create or update body as a reel patch, checking
/// their types; `err` says what is wrong.
caf::expected<nlohmann::json> gcore_patch(node& n, const principal& who,
                                          const nlohmann::json& body) {
  nlohmann::json patch = nlohmann::json::object();
  auto bad = [](const std::string& field, const std::string& what) {
    return make_error(ec::invalid_argument, field + " must be " + what);
  };
  for (auto [from, to] : {std::pair{"name", "title"},
                          std::pair{"description", "description"},
                          std::pair{"projection", "projection"}}) {
    if (!body.contains(from) || body[from].is_null())
      continue;
    if (!body[from].is_string() || body[from].get<std::string>().size() > 4096)
      return bad(from, "a string of at most 4096 characters");
    patch[to] = body[from];
  }
  if (patch.contains("title") && patch["title"].get<std::string>().empty())
    return bad("name", "a non-empty string");
  if (patch.contains("projection")) {
    auto p = patch["projection"].get<std::string>();
    if (p != "regular" && p != "vr360" && p != "vr180" && p != "vr360tb")
      return bad("projection", "one of regular, vr360, vr180, vr360tb");
  }
  if (body.contains("client_user_id") && !body["client_user_id"].is_null()) {
    if (!body["client_user_id"].is_number_integer())
      return bad("client_user_id", "an integer");
    patch["client_user_id"] = body["client_user_id"];
  }
  if (body.contains("screenshot_id") && !body["screenshot_id"].is_null()) {
    auto& s = body["screenshot_id"];
    if (!s.is_number_integer() || s.get<int64_t>() < -1 || s.get<int64_t>() > 100)
      return bad("screenshot_id", "-1 (the poster) or a screenshot's index");
    patch["screenshot_id"] = s;
  }
  if (body.contains("auto_transcribe_audio_language")
      && !body["auto_transcribe_audio_language"].is_null()) {
    auto& l = body["auto_transcribe_audio_language"];
    if (!l.is_string() || l.get<std::string>().size() > 16)
      return bad("auto_transcribe_audio_language",
                 "\"disable\", \"auto\" or a language code");
    patch["transcribe_language"] = l;
  }
  for (auto field : {"poster", "remote_poster_url"})
    if (body.contains(field) && !body[field].is_null() && !body[field].is_string())
      return bad(field, "a string");
  if (body.contains("directory_id") && !body["directory_id"].is_null()
      && !body["directory_id"].is_number_integer())
    return bad("directory_id", "an integer");
  (void) n;
  (void) who;
  return patch;
}

/// The folder a directory_id names, or "root" without one.
caf::expected<std::string> folder_of(node& n, const principal& who,
                                     const nlohmann::json& body) {
  if (!body.contains("directory_id") || body["directory_id"].is_null())
    return std::string{"root"};
  auto want = body["directory_id"].get<int64_t>();
  auto folders = n.list_folders(who.tenant);
  if (!folders)
    return folders.error();
  for (auto& f : *folders)
    if (f.path != "root" && folder_number(f.tenant, f.path) == want)
      return f.path;
  return make_error(ec::not_found,
                    "directory " + std::to_string(want) + " not found");
}

/// An integer field within [lo, hi] (absent: `fallback`).
caf::expected<int64_t> int_field(const nlohmann::json& body, const char* name,
                                 int64_t fallback, int64_t lo, int64_t hi) {
  if (!body.contains(name) || body[name].is_null())
    return fallback;
  auto& x = body[name];
  if (!x.is_number_integer() || x.get<int64_t>() < lo || x.get<int64_t>() > hi)
    return make_error(ec::invalid_argument,
                      std::string{name} + " must be an integer from "
                        + std::to_string(lo) + " to " + std::to_string(hi));
  return x.get<int64_t>();
}

/// The body of a request as a JSON object, or a 400 answered.
std::optional<nlohmann::json> gcore_body(const httplib::Request& req,
                                         httplib::Response& res) {
  auto j = nlohmann::json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    reply_error(d, ec::invalid_argument, "the body must be a JSON object", res);
    return std::nullopt;
  }
  return j;
}

/// Handlers of /streaming/videos/{id}...: authenticated, with the video.
template <class F>
router::handler for_video(node& n, F h) {
  return [&n, h](const httplib::Request& req, httplib::Response& res) {
    auto who = gcore_auth(n, req, res);
    if (!who)
      return;
    if (auto v = find_video(n, *who, req.matches[1], res))
      h(*who, *v, req, res);
  };
}

} // namespace

void add_gcore_api(router& r, node& n) {
  r.post(R"(/streaming/videos)", "gcore.create",
         [&n](const httplib::Request& req, httplib::Response& res) {
           auto who = gcore_auth(n, req, res);
           if (!who)
             return;
           auto wrapper = gcore_body(req, res);
           if (!wrapper)
             return;
           if (!wrapper->contains("video") || !(*wrapper)["video"].is_object()) {
             reply_error(d, ec::invalid_argument,
                         "the body must be {\"video\": {...}}", res, "video");
             return;
           }
           auto& body = (*wrapper)["video"];
           if (!body.contains("name") || !body["name"].is_string()
               || body["name"].get<std::string>().empty()) {
             reply_error(d, ec::invalid_argument, "name is required", res, "name");
             return;
           }
           auto patch = gcore_patch(n, *who, body);
           auto priority = int_field(body, "priority", 0, -10, 10);
           auto clip_start = int_field(body, "clip_start_seconds", 0, 0, 1 << 30);
           auto clip_length = int_field(body, "clip_duration_seconds", 0, 1, 1 << 30);
           auto folder = patch && priority && clip_start && clip_length
                           ? folder_of(n, *who, body)
                           : caf::expected<std::string>{std::string{}};
           for (auto* err : {patch ? nullptr : &patch.error(),
                             priority ? nullptr : &priority.error(),
                             clip_start ? nullptr : &clip_start.error(),
                             clip_length ? nullptr : &clip_length.error(),
                             folder ? nullptr : &folder.error()})
             if (err) {
               render_error(d, *err, res);
               return;
             }
           video_record draft;
           draft.tenant = who->tenant;
           draft.folder = *folder;
           draft.priority = static_cast<int32_t>(*priority);
           draft.clip_start_s = static_cast<double>(*clip_start);
           draft.clip_duration_s = static_cast<double>(*clip_length);
           if (auto err = apply_patch(draft, *patch)) {
             render_error(d, err, res);
             return;
           }
           if (body.contains("origin_url") && !body["origin_url"].is_null()) {
             auto url = body["origin_url"].is_string()
                          ? body["origin_url"].get<std::string>()
                          : std::string{};
             if ((url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
                 || url.size() > 4096) {
               reply_error(d, ec::invalid_argument,
                           "origin_url must be an http(s) URL", res,
                           "origin_url");
               return;
             }
             draft.import_url = url;
             draft.filename = url.substr(url.find_last_of('/') + 1);
             draft.filename = draft.filename.substr(0, draft.filename.find('?'));
             // "Name: value" lines, each sent with the import.
             auto headers = body.value("origin_http_headers", nlohmann::json{});
             if (!headers.is_null() && !headers.is_string()) {
               reply_error(d, ec::invalid_argument,
                           "origin_http_headers must be a string", res,
                           "origin_http_headers");
               return;
             }
             std::istringstream lines{headers.is_string()
                                        ? headers.get<std::string>()
                                        : std::string{}};
             for (std::string line; std::getline(lines, line);) {
               if (!line.empty() && line.back() == '\r')
                 line.pop_back();
               if (line.empty())
                 continue;
               if (line.find(':') == std::string::npos
                   || draft.import_headers.size() >= 16) {
                 reply_error(d, ec::invalid_argument,
                             "origin_http_headers must be lines of "
                             "\"Name: value\"",
                             res, "origin_http_headers");
                 return;
               }
               draft.import_headers.push_back(line);
             }
           }
           // The poster is checked before the video is made.
           if (body.contains("poster") && body["poster"].is_string()
               && !body["poster"].get<std::string>().empty()) {
             auto check = poster_from_data_uri(n, body["poster"].get<std::string>());
             if (!check) {
               render_error(d, check.error(), res, "poster");
               return;
             }
             ::unlink(check->c_str());
           }
           auto v = n.create_video(std::move(draft), {});
           if (!v) {
             render_error(d, v.error(), res);
             return;
           }
           auto with_poster = apply_poster(n, *who, *v, body);
           if (!with_poster) {
             render_error(d, with_poster.error(), res, "poster");
             return;
           }
           // Gcore answers a list holding the new video.
           reply_json(res, 200,
                      json::array({gcore_video(n, *with_poster, *who)}));
         });

  r.get(R"(/streaming/videos)", "gcore.list",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = gcore_auth(n, req, res);
          if (!who)
            return;
          auto page = query_int(req, "page", 1, 1, 1000000);
          auto per_page = query_int(req, "per_page", 25, 1, 100);
          auto client = query_int(req, "client_user_id", 0, 0, INT64_MAX);
          if (!page || !per_page || !client) {
            reply_error(d, ec::invalid_argument,
                        "page, per_page (1-100) and client_user_id must be "
                        "integers",
                        res);
            return;
          }
          auto status = req.get_param_value("status");
          if (!status.empty() && status != "empty" && status != "pending"
              && status != "viewable" && status != "ready" && status != "error") {
            reply_error(d, ec::invalid_argument,
                        "status must be empty, pending, viewable, ready or "
                        "error",
                        res, "status");
            return;
          }
          auto search = req.get_param_value("search");
          std::vector<uint64_t> ids;
          std::istringstream id_list{req.get_param_value("id")};
          for (std::string x; std::getline(id_list, x, ',');)
            if (auto number = parse_number(x))
              ids.push_back(*number);
          auto all = n.list_videos(who->tenant, 0, INT32_MAX);
          if (!all) {
            render_error(d, all.error(), res);
            return;
          }
          json out = json::array();
          int64_t skip = (*page - 1) * *per_page;
          for (auto& v : all->videos) {
            auto number = v.number;
            if (!status.empty() && status != gcore_status(v))
              continue;
            if (*client != 0 && v.info.client_user_id != *client)
              continue;
            if (!ids.empty()
                && std::find(ids.begin(), ids.end(), number) == ids.end())
              continue;
            if (!search.empty() && std::to_string(number) != search
                && v.id != search
                && v.title.find(search) == std::string::npos)
              continue;
            if (skip-- > 0)
              continue;
            if (static_cast<int64_t>(out.size()) >= *per_page)
              break;
            out.push_back(gcore_video(n, v, *who, false));
          }
          reply_json(res, 200, out);
        });

  r.get(R"(/streaming/videos/names)", "gcore.names",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = gcore_auth(n, req, res);
          if (!who)
            return;
          // ?ids=7,17 (Gcore's docs) or ?ids=7&ids=17 (its SDK).
          std::vector<std::string> ids;
          for (size_t i = 0; i < req.get_param_value_count("ids"); ++i) {
            std::istringstream list{req.get_param_value("ids", i)};
            for (std::string x; std::getline(list, x, ',');)
              if (!x.empty())
                ids.push_back(x);
          }
          if (ids.empty() || ids.size() > 1000) {
            reply_error(d, ec::invalid_argument,
                        "ids must list 1 to 1000 video ids", res, "ids");
            return;
          }
          json out = json::array();
          for (auto& id : ids)
            if (auto v = find_number(n, *who, id))
              out.push_back({{"id", v->number}, {"name", v->title}});
          reply_json(res, 200, out);
        });

  r.get(R"(/streaming/videos/(\d+))", "gcore.get",
        for_video(n, [&n](const principal& who, const video_record& v,
                          const httplib::Request&, httplib::Response& res) {
          reply_json(res, 200, gcore_video(n, v, who));
        }));

  r.patch(R"(/streaming/videos/(\d+))", "gcore.update",
          for_video(n, [&n](const principal& who, const video_record& v,
                            const httplib::Request& req,
                            httplib::Response& res) {
            auto body = gcore_body(req, res);
            if (!body)
              return;
            // The SDK wraps nothing here; accept {"video": {...}} too.
            if (body->contains("video") && (*body)["video"].is_object())
              *body = (*body)["video"];
            auto patch = gcore_patch(n, who, *body);
            if (!patch) {
              render_error(d, patch.error(), res);
              return;
            }
            if (body->contains("directory_id"))
              reply_error(d, ec::invalid_argument,
                          "directory_id cannot be changed yet; it is set at "
                          "creation",
                          res, "directory_id");
            else if (auto updated = n.update_video(who.tenant, v.id, patch->dump()); !updated)
              render_error(d, updated.error(), res);
            else if (auto with_poster = apply_poster(n, who, *updated, *body); !with_poster)
              render_error(d, with_poster.error(), res, "poster");
            else
              reply_json(res, 200, gcore_video(n, *with_poster, who));
          }));

  r.del(R"(/streaming/videos/(\d+))", "gcore.delete",
        for_video(n, [&n](const principal& who, const video_record& v,
                          const httplib::Request&, httplib::Response& res) {
          if (auto err = n.delete_video(who.tenant, v.id))
            render_error(d, err, res);
          else
            res.status = 204;
        }));

  r.get(R"(/streaming/videos/(\d+)/upload)", "gcore.upload_params",
        for_video(n, [&n](const principal& who, const video_record& v,
                          const httplib::Request&, httplib::Response& res) {
          if (v.state != states::created || !v.import_url.empty()
              || !v.upload.parts.empty()) {
            reply_error(d, ec::conflict,
                        "the video already has a source (or one is being "
                        "imported)",
                        res);
            return;
          }
          // This node takes the upload: tus keeps an upload on one node.
          auto host = n.config().public_url;
          host = host.substr(host.find("://") + 3);
          reply_json(
              res, 200,
              {{"servers", json::array({{{"id", 1},
                                         {"hostname", host},
                                         {"role", "upload"},
                                         {"active", true}}})},
               {"token", tus_token(n, v.id, who.key_hash, tus_token_ttl_s)},
               {"video", gcore_video(n, v, who)}});
        }));
}

} // namespace reel::http
