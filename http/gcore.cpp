// The Gcore Streaming dialect (seed 004; authority: Gcore's API reference
// and its generated SDK, G-Core/gcore-python, resources/streaming/videos
// and resources/streaming/directories): /streaming/videos with integer ids,
// imports from origin_url, clips, posters, converted_videos, sprites,
// uploads through tus (http/tus), and /streaming/directories over reel's
// folders. Every route is declared once in the gate's table
// (http/gate.hpp): Gcore's APIKey authentication, the scope, the video
// named by its integer id, the JSON body.

#include "http/gate.hpp"
#include "http/render.hpp"
#include "http/routes.hpp"
#include "http/tus.hpp"
#include "http/upload_receiver.hpp"
#include "ops/util.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

namespace reel::http {

namespace {

using json = nlohmann::ordered_json;
constexpr auto d = dialect::gcore;
constexpr int64_t max_poster_bytes = 1 << 20; // Gcore's limit
constexpr int64_t tus_token_ttl_s = 4 * 3600; // as Gcore's

/// The key of a Gcore request: `Authorization: APIKey <key>` (any case of
/// the scheme, as Gcore's docs write "apikey"), the bare `APIKey: <key>`
/// header, or a Bearer key.
caf::expected<principal> gcore_key(node& n, const httplib::Request& req,
                                   httplib::Response&) {
  std::string key;
  auto h = req.get_header_value("Authorization");
  auto scheme = h.substr(0, 7);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (h.size() > 7 && scheme == "apikey ")
    key = h.substr(7);
  else if (req.has_header("APIKey"))
    key = req.get_header_value("APIKey");
  else
    key = bearer_token(req);
  key.erase(0, key.find_first_not_of(' '));
  key.erase(key.find_last_not_of(' ') + 1);
  if (key.empty())
    return make_error(ec::unauthorized,
                      "missing credentials: send Authorization: APIKey <key>");
  auto who = n.authenticate(key);
  if (!who && code_of(who.error()) == ec::unauthorized)
    return make_error(ec::unauthorized, "invalid API key");
  return who;
}

/// Gcore's `client_id`, the account a video belongs to: for reel, its
/// tenant, as the first 48 bits of SHA-256 of the tenant's name (the same
/// for every video of a tenant, on every node; exact in JavaScript).
int64_t client_id_of(const std::string& tenant) {
  return static_cast<int64_t>(
    std::stoull(sha256_hex(tenant).substr(0, 12), nullptr, 16));
}

/// Gcore's status of a video.
const char* gcore_status(const video_record& v) {
  return reel::gcore_status(v.state, is_playable(v));
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
            {"client_id", client_id_of(v.tenant)},
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

/// The video with Gcore integer id `text` of `tenant` (through the index
/// of numbers).
caf::expected<video_record> find_number(node& n, const std::string& tenant,
                                        const std::string& text) {
  auto missing = make_error(ec::not_found, "video " + text + " not found");
  auto number = parse_number(text);
  if (!number)
    return missing;
  auto v = n.video_by_number(tenant, *number);
  if (v || code_of(v.error()) != ec::not_found)
    return v;
  return missing;
}

/// Decodes a poster given as a data: URI (JPEG, PNG; at most 1 MB) into a
/// temporary file under the node's blob store.
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

/// Fetches remote_poster_url (by the importer's rules, at most 1 MB): the
/// node downloads it in an actor of its own.
caf::expected<std::string> poster_from_url(node& n, const std::string& url) {
  auto got = n.fetch_image(url, max_poster_bytes, 20);
  if (!got) {
    // What the URL's server answers (404, too large, no such host) is the
    // client's to fix: 400. Only this node's own trouble is not.
    auto code = code_of(got.error());
    bool ours = code == ec::storage_error || code == ec::no_space;
    return make_error(ours ? code : ec::invalid_argument,
                      "remote_poster_url: " + message_of(got.error()));
  }
  return got;
}

/// Sets the poster a create or update asks for (poster or
/// remote_poster_url), after the video exists; `tenant` as for
/// node::update_video.
caf::expected<video_record> apply_poster(node& n, const std::string& tenant,
                                         const video_record& v,
                                         const json& body) {
  caf::expected<std::string> image{std::string{}};
  if (body.contains("poster") && body["poster"].is_string()
      && !body["poster"].get<std::string>().empty())
    image = poster_from_data_uri(n, body["poster"].get<std::string>());
  else if (body.contains("remote_poster_url")
           && body["remote_poster_url"].is_string()
           && !body["remote_poster_url"].get<std::string>().empty())
    image = poster_from_url(n, body["remote_poster_url"].get<std::string>());
  else if (body.value("remove_poster", false))
    return n.update_video(tenant, v.id, R"({"poster": ""})");
  if (!image)
    return image.error();
  if (image->empty())
    return v;
  tmp_guard tmp{*image};
  auto updated = n.set_poster(tenant, v.id, *image);
  if (!updated && code_of(updated.error()) == ec::invalid_argument)
    return make_error(ec::invalid_argument,
                      "poster: the image must be a JPEG or PNG file");
  return updated;
}

/// Gcore's fields of a create or update body as a reel patch, checking
/// their types.
caf::expected<nlohmann::json> gcore_patch(const json& body) {
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
  return patch;
}

/// An integer field within [lo, hi] (absent: `fallback`).
caf::expected<int64_t> int_field(const json& body, const char* name,
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

// Directories: reel's folders. A folder "root/a/b" is Gcore's directory
// "b" inside directory "a"; "root" is Gcore's top level (parent_id null),
// not a directory itself. A directory's id is folder_number(tenant, path).

/// The folder a path's last segment sits in, and that segment.
std::string parent_of(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}
std::string name_of(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

/// A tenant's folders, and what is in each (one level).
struct folder_view {
  std::string tenant;
  std::vector<folder_record> folders; // root included
  std::map<std::string, std::vector<std::string>> children; // path -> paths
  std::map<std::string, std::vector<video_record>> videos;  // path -> videos

  /// The folder (not root) whose directory id is `id`.
  const folder_record* by_id(int64_t id) const {
    for (auto& f : folders)
      if (f.path != "root" && folder_number(tenant, f.path) == id)
        return &f;
    return nullptr;
  }
  const folder_record* by_path(const std::string& path) const {
    for (auto& f : folders)
      if (f.path == path)
        return &f;
    return nullptr;
  }
  /// Gcore's items_count: subdirectories and videos, one level.
  int64_t items(const std::string& path) const {
    int64_t count = 0;
    if (auto i = children.find(path); i != children.end())
      count += static_cast<int64_t>(i->second.size());
    if (auto i = videos.find(path); i != videos.end())
      count += static_cast<int64_t>(i->second.size());
    return count;
  }
};

/// `with_videos` false: the folders alone (items() then counts only
/// subdirectories), for the routes that answer no count of videos.
caf::expected<folder_view> view_folders(node& n, const std::string& tenant,
                                        bool with_videos = true) {
  folder_view view;
  view.tenant = tenant;
  auto folders = n.list_folders(tenant);
  if (!folders)
    return folders.error();
  view.folders = std::move(*folders);
  std::sort(view.folders.begin(), view.folders.end(),
            [](auto& a, auto& b) { return a.path < b.path; });
  for (auto& f : view.folders)
    if (f.path != "root")
      view.children[parent_of(f.path)].push_back(f.path);
  if (!with_videos)
    return view;
  auto all = n.list_videos(tenant, 0, INT32_MAX);
  if (!all)
    return all.error();
  for (auto& v : all->videos)
    view.videos[v.folder].push_back(std::move(v));
  return view;
}

/// The path of the directory `id` names in `tenant` (not found for root
/// or another tenant's).
caf::expected<std::string> directory_path(node& n, const std::string& tenant,
                                          int64_t id) {
  auto folders = n.list_folders(tenant);
  if (!folders)
    return folders.error();
  for (auto& f : *folders)
    if (f.path != "root" && folder_number(f.tenant, f.path) == id)
      return f.path;
  return make_error(ec::not_found,
                    "directory " + std::to_string(id) + " not found");
}

/// The folder a create's directory_id names, or "root" without one.
caf::expected<std::string> folder_of(node& n, const std::string& tenant,
                                     const json& body) {
  if (!body.contains("directory_id") || body["directory_id"].is_null())
    return std::string{"root"};
  return directory_path(n, tenant, body["directory_id"].get<int64_t>());
}

/// Gcore's directory object (DirectoryBase). Folders keep no time of
/// change: updated_at is when it was made.
json directory_json(const folder_view& view, const folder_record& f) {
  auto parent = parent_of(f.path);
  return {{"id", folder_number(view.tenant, f.path)},
          {"name", name_of(f.path)},
          {"parent_id", parent == "root"
                          ? json(nullptr)
                          : json(folder_number(view.tenant, parent))},
          {"items_count", view.items(f.path)},
          {"created_at", iso8601(f.created_ms)},
          {"updated_at", iso8601(f.created_ms)}};
}

/// The tree under `path`: its subdirectories, each with its descendants.
json descendants(const folder_view& view, const std::string& path) {
  json out = json::array();
  auto i = view.children.find(path);
  if (i == view.children.end())
    return out;
  for (auto& child : i->second) {
    auto* f = view.by_path(child);
    if (!f)
      continue;
    auto j = directory_json(view, *f);
    j["descendants"] = descendants(view, child);
    out.push_back(std::move(j));
  }
  return out;
}

/// A directory name reel can keep: one folder path segment.
bool valid_directory_name(const json& name) {
  return name.is_string() && valid_folder_path("root/" + name.get<std::string>())
         && name.get<std::string>().find('/') == std::string::npos;
}

constexpr const char* name_rule =
  "name must be 1 to 64 letters, digits, '_' or '-' (reel's folders are "
  "paths)";

/// The parent a directory body names: "root" for null, else the folder of
/// that id; `fallback` when absent.
caf::expected<std::string> parent_path(const folder_view& view, const json& body,
                                       const std::string& fallback) {
  if (!body.contains("parent_id"))
    return fallback;
  auto& p = body["parent_id"];
  if (p.is_null())
    return std::string{"root"};
  if (!p.is_number_integer())
    return make_error(ec::invalid_argument,
                      "parent_id must be a directory's id or null");
  auto* f = view.by_id(p.get<int64_t>());
  if (!f)
    return make_error(ec::not_found, "directory "
                                       + std::to_string(p.get<int64_t>())
                                       + " not found");
  return f->path;
}

/// The directory a route's capture names.
caf::expected<folder_record> directory_arg(const folder_view& view,
                                           const std::string& text) {
  auto missing = make_error(ec::not_found, "directory " + text + " not found");
  if (text.empty() || text.size() > 16)
    return missing;
  auto* f = view.by_id(static_cast<int64_t>(std::stoll(text)));
  if (!f)
    return missing;
  return *f;
}

} // namespace

void add_gcore_api(route_table& t, node& n) {
  t.authenticate_with(d, gcore_key);
  auto add = [&](const char* method, std::string pattern, const char* scope,
                 names_video video, body_kind body, std::string name,
                 route_handler h) {
    t.add({method, std::move(pattern), d, access::key, scope, video, body,
           std::move(name), std::move(h)});
  };
  using nv = names_video;
  using bk = body_kind;

  add("POST", R"(/streaming/videos)", scopes::videos_write, nv::none, bk::json,
      "gcore.create", [&n](call& c) {
        if (!c.json.contains("video") || !c.json["video"].is_object()) {
          c.fail(ec::invalid_argument, "the body must be {\"video\": {...}}",
                 "video");
          return;
        }
        auto& body = c.json["video"];
        if (!body.contains("name") || !body["name"].is_string()
            || body["name"].get<std::string>().empty()) {
          c.fail(ec::invalid_argument, "name is required", "name");
          return;
        }
        auto patch = gcore_patch(body);
        auto priority = int_field(body, "priority", 0, -10, 10);
        auto clip_start = int_field(body, "clip_start_seconds", 0, 0, 1 << 30);
        auto clip_length = int_field(body, "clip_duration_seconds", 0, 1, 1 << 30);
        auto folder = patch && priority && clip_start && clip_length
                        ? folder_of(n, c.tenant(), body)
                        : caf::expected<std::string>{std::string{}};
        for (auto* err : {patch ? nullptr : &patch.error(),
                          priority ? nullptr : &priority.error(),
                          clip_start ? nullptr : &clip_start.error(),
                          clip_length ? nullptr : &clip_length.error(),
                          folder ? nullptr : &folder.error()})
          if (err) {
            c.fail(*err);
            return;
          }
        video_record draft;
        draft.tenant = c.tenant();
        draft.folder = *folder;
        draft.priority = static_cast<int32_t>(*priority);
        draft.clip_start_s = static_cast<double>(*clip_start);
        draft.clip_duration_s = static_cast<double>(*clip_length);
        if (auto err = apply_patch(draft, *patch)) {
          c.fail(err);
          return;
        }
        if (body.contains("origin_url") && !body["origin_url"].is_null()) {
          auto url = body["origin_url"].is_string()
                       ? body["origin_url"].get<std::string>()
                       : std::string{};
          if ((url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
              || url.size() > 4096) {
            c.fail(ec::invalid_argument, "origin_url must be an http(s) URL",
                   "origin_url");
            return;
          }
          draft.import_url = url;
          draft.filename = url.substr(url.find_last_of('/') + 1);
          draft.filename = draft.filename.substr(0, draft.filename.find('?'));
          // "Name: value" lines, each sent with the import.
          auto headers = body.value("origin_http_headers", json{});
          if (!headers.is_null() && !headers.is_string()) {
            c.fail(ec::invalid_argument, "origin_http_headers must be a string",
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
              c.fail(ec::invalid_argument,
                     "origin_http_headers must be lines of \"Name: value\"",
                     "origin_http_headers");
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
            c.fail(check.error(), "poster");
            return;
          }
          ::unlink(check->c_str());
        }
        c.idempotent(draft);
        auto v = n.create_video(std::move(draft), {});
        if (!v) {
          c.fail(v.error());
          return;
        }
        auto with_poster = apply_poster(n, c.tenant(), *v, body);
        if (!with_poster) {
          c.fail(with_poster.error(), "poster");
          return;
        }
        // Gcore answers a list holding the new video.
        c.reply(200, json::array({gcore_video(n, *with_poster, *c.who)}));
      });

  add("GET", R"(/streaming/videos)", scopes::videos_read, nv::none, bk::none,
      "gcore.list", [&n](call& c) {
        auto page = query_int(c.req, "page", 1, 1, 1000000);
        auto per_page = query_int(c.req, "per_page", 25, 1, 100);
        auto client = query_int(c.req, "client_user_id", 0, 0, INT64_MAX);
        if (!page || !per_page || !client) {
          c.fail(ec::invalid_argument,
                 "page, per_page (1-100) and client_user_id must be integers");
          return;
        }
        auto status = c.req.get_param_value("status");
        if (!status.empty() && status != "empty" && status != "pending"
            && status != "viewable" && status != "ready" && status != "error") {
          c.fail(ec::invalid_argument,
                 "status must be empty, pending, viewable, ready or error",
                 "status");
          return;
        }
        auto search = c.req.get_param_value("search");
        std::vector<uint64_t> ids;
        std::istringstream id_list{c.req.get_param_value("id")};
        for (std::string x; std::getline(id_list, x, ',');)
          if (auto number = parse_number(x))
            ids.push_back(*number);
        auto all = n.list_videos(c.tenant(), 0, INT32_MAX);
        if (!all) {
          c.fail(all.error());
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
              && v.id != search && v.title.find(search) == std::string::npos)
            continue;
          if (skip-- > 0)
            continue;
          if (static_cast<int64_t>(out.size()) >= *per_page)
            break;
          out.push_back(gcore_video(n, v, *c.who, false));
        }
        c.reply(200, out);
      });

  add("GET", R"(/streaming/videos/names)", scopes::videos_read, nv::none,
      bk::none, "gcore.names", [&n](call& c) {
        // ?ids=7,17 (Gcore's docs) or ?ids=7&ids=17 (its SDK).
        std::vector<std::string> ids;
        for (size_t i = 0; i < c.req.get_param_value_count("ids"); ++i) {
          std::istringstream list{c.req.get_param_value("ids", i)};
          for (std::string x; std::getline(list, x, ',');)
            if (!x.empty())
              ids.push_back(x);
        }
        if (ids.empty() || ids.size() > 1000) {
          c.fail(ec::invalid_argument, "ids must list 1 to 1000 video ids",
                 "ids");
          return;
        }
        json out = json::array();
        for (auto& id : ids)
          if (auto v = find_number(n, c.tenant(), id))
            out.push_back({{"id", v->number}, {"name", v->title}});
        c.reply(200, out);
      });

  add("GET", R"(/streaming/videos/(\d+))", scopes::videos_read,
      nv::gcore_number, bk::none, "gcore.get", [&n](call& c) {
        c.reply(200, gcore_video(n, *c.video, *c.who));
      });

  add("PATCH", R"(/streaming/videos/(\d+))", scopes::videos_write,
      nv::gcore_number, bk::json, "gcore.update", [&n](call& c) {
        // Gcore's PATCH is flat; {"video": {...}} is accepted too.
        json body = c.json.contains("video") && c.json["video"].is_object()
                      ? c.json["video"]
                      : c.json;
        auto patch = gcore_patch(body);
        if (!patch) {
          c.fail(patch.error());
          return;
        }
        auto tenant = c.reach();
        auto current = *c.video;
        // directory_id moves the video (null: to the top level), first and
        // alone: a video being processed keeps its record to itself and is
        // not moved (409), and then nothing else changes either.
        if (body.contains("directory_id")) {
          auto& want = body["directory_id"];
          auto folder = want.is_null()
                          ? caf::expected<std::string>{std::string{"root"}}
                          : directory_path(n, current.tenant,
                                           want.get<int64_t>());
          if (!folder) {
            c.fail(folder.error(), "directory_id");
            return;
          }
          if (*folder != current.folder) {
            auto moved = n.update_video(
              tenant, current.id, nlohmann::json{{"folder", *folder}}.dump());
            if (!moved) {
              c.fail(moved.error(), "directory_id");
              return;
            }
            if (moved->folder != *folder) {
              c.fail(ec::conflict,
                     "the video is being processed: it can be moved to "
                     "another directory once it is ready (or failed)",
                     "directory_id");
              return;
            }
            current = std::move(*moved);
          }
        }
        if (!patch->empty()) {
          auto updated = n.update_video(tenant, current.id, patch->dump());
          if (!updated) {
            c.fail(updated.error());
            return;
          }
          current = std::move(*updated);
        }
        auto with_poster = apply_poster(n, tenant, current, body);
        if (!with_poster) {
          c.fail(with_poster.error(), "poster");
          return;
        }
        c.reply(200, gcore_video(n, *with_poster, *c.who));
      });

  add("DELETE", R"(/streaming/videos/(\d+))", scopes::videos_write,
      nv::gcore_number, bk::none, "gcore.delete", [&n](call& c) {
        if (auto err = n.delete_video(c.reach(), c.video->id))
          c.fail(err);
        else
          c.res.status = 204;
      });

  // Gcore's direct upload: the parameters of a tus upload to this node.
  // Uploading a source is uploads:write (as Flare's presigned URLs).
  add("GET", R"(/streaming/videos/(\d+)/upload)", scopes::uploads_write,
      nv::gcore_number, bk::none, "gcore.upload_params", [&n](call& c) {
        auto& v = *c.video;
        if (v.state != states::created || !v.import_url.empty()
            || !v.upload.parts.empty()) {
          c.fail(ec::conflict,
                 "the video already has a source (or one is being imported)");
          return;
        }
        // This node takes the upload (a tus upload stays on one node), at
        // its public URL: Gcore's clients upload to
        // "https://{hostname}/upload/", so the hostname is the public URL
        // without its scheme (a path after the host included); `url` is
        // the whole endpoint, for a node served over plain HTTP.
        auto base = n.config().public_url;
        auto scheme = base.find("://");
        auto host = scheme == std::string::npos ? base : base.substr(scheme + 3);
        c.reply(200,
                {{"servers", json::array({{{"id", 1},
                                           {"hostname", host},
                                           {"url", base + "/upload/"},
                                           {"role", "upload"},
                                           {"active", true}}})},
                 {"token", tus_token(n, v.id, c.who->key_hash, tus_token_ttl_s)},
                 {"video", gcore_video(n, v, *c.who)}});
      });

  // Directories (Gcore's /streaming/directories) over the tenant's folders.

  add("POST", R"(/streaming/directories)", scopes::folders_write, nv::none,
      bk::json, "gcore.directory_create", [&n](call& c) {
        auto name = c.json.value("name", json{});
        if (!valid_directory_name(name)) {
          c.fail(ec::invalid_argument,
                 name.is_string() ? name_rule : "name is required", "name");
          return;
        }
        auto view = view_folders(n, c.tenant(), false);
        if (!view) {
          c.fail(view.error());
          return;
        }
        auto parent = parent_path(*view, c.json, "root");
        if (!parent) {
          c.fail(parent.error(), "parent_id");
          return;
        }
        auto path = *parent + "/" + name.get<std::string>();
        if (!valid_folder_path(path)) {
          c.fail(ec::invalid_argument, "directories nest at most 8 deep",
                 "parent_id");
          return;
        }
        auto f = n.create_folder(c.tenant(), path);
        if (!f) {
          c.fail(code_of(f.error()) == ec::conflict
                   ? make_error(ec::conflict,
                                "a directory named "
                                  + name.get<std::string>()
                                  + " is there already")
                   : f.error(),
                 "name");
          return;
        }
        view->folders.push_back(*f);
        c.reply(200, directory_json(*view, *f));
      });

  add("GET", R"(/streaming/directories/tree)", scopes::folders_read, nv::none,
      bk::none, "gcore.directory_tree", [&n](call& c) {
        auto view = view_folders(n, c.tenant());
        if (!view) {
          c.fail(view.error());
          return;
        }
        c.reply(200, {{"tree", descendants(*view, "root")}});
      });

  add("GET", R"(/streaming/directories/(\d+))", scopes::folders_read,
      nv::none, bk::none, "gcore.directory_get", [&n](call& c) {
        auto view = view_folders(n, c.tenant());
        if (!view) {
          c.fail(view.error());
          return;
        }
        auto f = directory_arg(*view, c.arg(1));
        if (!f) {
          c.fail(f.error());
          return;
        }
        // Its subdirectories, then its videos, in one list.
        auto j = directory_json(*view, *f);
        json items = json::array();
        if (auto i = view->children.find(f->path); i != view->children.end())
          for (auto& child : i->second)
            if (auto* sub = view->by_path(child)) {
              json item = directory_json(*view, *sub);
              item["item_type"] = "Directory";
              items.push_back(std::move(item));
            }
        if (auto i = view->videos.find(f->path); i != view->videos.end())
          for (auto& v : i->second) {
            json item = gcore_video(n, v, *c.who, false);
            item["item_type"] = "Video";
            items.push_back(std::move(item));
          }
        j["items"] = std::move(items);
        c.reply(200, {{"directory", j}});
      });

  // A folder's id comes from its path: renaming or moving one would change
  // its id, and reel cannot delete folders yet, so the old one would stay.
  // An update that changes nothing answers the directory; one that would
  // rename or move it is refused (409), saying what to do instead.
  add("PATCH", R"(/streaming/directories/(\d+))", scopes::folders_write,
      nv::none, bk::json, "gcore.directory_update", [&n](call& c) {
        auto view = view_folders(n, c.tenant());
        if (!view) {
          c.fail(view.error());
          return;
        }
        auto f = directory_arg(*view, c.arg(1));
        if (!f) {
          c.fail(f.error());
          return;
        }
        auto name = name_of(f->path);
        if (c.json.contains("name")) {
          if (!valid_directory_name(c.json["name"])) {
            c.fail(ec::invalid_argument, name_rule, "name");
            return;
          }
          name = c.json["name"].get<std::string>();
        }
        auto parent = parent_path(*view, c.json, parent_of(f->path));
        if (!parent) {
          c.fail(parent.error(), "parent_id");
          return;
        }
        if (*parent + "/" + name != f->path) {
          c.fail(ec::conflict,
                 "reel cannot rename or move a directory: its id comes from "
                 "its path. Create the directory you want (POST "
                 "/streaming/directories) and move the videos into it "
                 "(PATCH /streaming/videos/{id} with directory_id)",
                 c.json.contains("name") && name != name_of(f->path)
                   ? "name"
                   : "parent_id");
          return;
        }
        c.reply(200, directory_json(*view, *f));
      });

  // reel has no folder delete yet (a node facade call and its replication
  // are missing): an existing directory answers 405, saying so.
  add("DELETE", R"(/streaming/directories/(\d+))", scopes::folders_write,
      nv::none, bk::none, "gcore.directory_delete", [&n](call& c) {
        auto view = view_folders(n, c.tenant(), false);
        if (!view) {
          c.fail(view.error());
          return;
        }
        auto f = directory_arg(*view, c.arg(1));
        if (!f) {
          c.fail(f.error());
          return;
        }
        c.res.set_header("Allow", "GET, PATCH");
        c.reply(405, {{"error", "reel cannot delete directories yet: delete "
                                "or move the videos in it instead"}});
      });
}

} // namespace reel::http
