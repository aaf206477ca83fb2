// The api.video dialect (seed 002; authority: api.video's OpenAPI document
// and its official clients): /auth, /videos, sources uploaded whole or in
// chunks, status, thumbnails, tags, upload tokens, webhooks. Every route is
// declared once in the gate's table (http/gate.hpp) with the scope it
// needs; docs/api.md has the mapping and the scopes.

#include "http/gate.hpp"
#include "http/range.hpp"
#include "http/render.hpp"
#include "http/routes.hpp"
#include "http/upload_receiver.hpp"
#include "ops/token.hpp"
#include "ops/util.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

namespace reel::http {

namespace {

using json = nlohmann::ordered_json;
constexpr auto d = dialect::apivideo;

constexpr int64_t refresh_ttl_s = 30 * 24 * 3600;
/// api.video's limit for a source sent in one request, and for a chunk.
constexpr int64_t max_request_bytes = int64_t{200} << 20;
constexpr int64_t max_thumbnail_bytes = int64_t{8} << 20;

/// Answers one of api.video's documented problems.
void problem(httplib::Response& res, int status, const std::string& slug,
             const std::string& title, const std::string& name = {},
             const std::string& detail = {}) {
  auto type = "https://docs.api.video/reference/" + slug;
  json body = {{"type", type}, {"title", title}, {"name", name},
               {"status", status}};
  if (!detail.empty())
    body["detail"] = detail;
  if (status == 400)
    body["problems"] = json::array({{{"type", type}, {"title", title},
                                     {"name", name}}});
  if (status == 401)
    res.set_header("WWW-Authenticate", "Basic");
  reply_json(res, status, body);
}

void not_found(httplib::Response& res, const std::string& name = "videoId") {
  problem(res, 404, "resource-not-found",
          "The requested resource was not found.", name);
}

/// api.video dates: ISO 8601 with an explicit offset.
json atom_time(int64_t ms) {
  if (ms <= 0)
    return nullptr;
  auto s = iso8601(ms);
  s.pop_back(); // Z
  return s + "+00:00";
}

/// Authenticates api.video's ways: HTTP Basic with the API key as user
/// name (what the official clients send), or a Bearer access token from
/// /auth/api-key (or the key itself). A refusal is answered here, in
/// api.video's words for each. api.video has no admin: every key acts on
/// its own tenant (the gate finds videos there only).
caf::expected<principal> av_auth(node& n, const httplib::Request& req,
                                 httplib::Response& res) {
  auto refused = make_error(ec::unauthorized, "refused");
  auto h = req.get_header_value("Authorization");
  if (h.empty()) {
    problem(res, 401, "authentication-missing-authorization-header",
            "The \"Authorization\" header is missing.");
    return refused;
  }
  auto invalid_header = [&]() -> caf::expected<principal> {
    problem(res, 401, "authentication-invalid-authorization-header-value",
            "The \"Authorization\" header value is invalid.");
    return refused;
  };
  caf::expected<principal> who{make_error(ec::unauthorized, "")};
  bool token = false;
  std::string why; // for a token: expired, or invalid
  if (h.size() > 6 && (h.compare(0, 6, "Basic ") == 0
                       || h.compare(0, 6, "basic ") == 0)) {
    auto decoded = base64_decode(h.substr(6));
    if (!decoded)
      return invalid_header();
    who = n.authenticate(decoded->substr(0, decoded->find(':')));
  } else if (auto bearer = bearer_token(req); !bearer.empty()) {
    if (bearer.rfind("at.", 0) == 0) {
      token = true;
      auto fields = verify_token(n.signing_secret(), "at", bearer, now_ms());
      who = fields && !fields->empty()
              ? n.key_principal(fields->front())
              : caf::expected<principal>{make_error(ec::unauthorized, "")};
      why = !fields ? message_of(fields.error())
                    : !who ? message_of(who.error()) : std::string{};
    } else {
      who = n.authenticate(bearer);
    }
  } else {
    return invalid_header();
  }
  if (who) {
    who->admin = false;
    return who;
  }
  if (code_of(who.error()) != ec::unauthorized)
    return who.error(); // the gate answers it
  if (token)
    problem(res, 401, "authentication-invalid-access-token",
            "The access token is invalid or expired.", "", why);
  else
    problem(res, 401, "authentication-invalid-api-key",
            "The API key is invalid.");
  return refused;
}

/// A fresh pair of tokens for the key whose digest is `key_hash`.
json token_pair(node& n, const std::string& key_hash) {
  auto now = now_ms();
  auto nonce = random_token(12);
  auto access_ttl_s = n.config().access_token_ttl;
  return {{"token_type", "Bearer"},
          {"expires_in", access_ttl_s},
          {"access_token", sign_token(n.signing_secret(), "at",
                                      {key_hash, nonce},
                                      now + access_ttl_s * 1000)},
          {"refresh_token", sign_token(n.signing_secret(), "rt",
                                       {key_hash, nonce},
                                       now + refresh_ttl_s * 1000)}};
}

/// The video object as `who` is shown it: a private video's assets carry a
/// playback token of the caller's key (none for an upload token's holder).
json av_video(node& n, const video_record& v, const principal& who) {
  auto base = n.config().public_url;
  auto tok = playback_segment(n, v, who);
  auto media = base + "/media/" + v.id + "/" + tok;
  auto player = base + "/embed/" + v.id;
  if (!tok.empty()) // "token/<t>/" -> "?token=<t>"
    player += "?token=" + tok.substr(6, tok.size() - 7);
  json tags = json::array();
  for (auto& t : v.info.tags)
    tags.push_back(t);
  json metadata = json::array();
  for (auto& m : v.info.metadata)
    metadata.push_back({{"key", m.key}, {"value", m.value}});
  json assets = {
    {"iframe", "<iframe src=\"" + player
                 + "\" width=\"100%\" height=\"100%\" frameborder=\"0\" "
                   "scrolling=\"no\" allowfullscreen=\"true\"></iframe>"},
    {"player", player},
    {"hls", media + "master.m3u8"},
    {"thumbnail", media + "thumbnail.jpg"},
  };
  if (v.info.mp4_support)
    assets["mp4"] = media + "mp4/source.mp4";
  json source = {{"uri", "/videos/" + v.id + "/source"}};
  if (!v.import_url.empty())
    source["type"] = "url";
  else if (v.state != states::created || !v.upload.parts.empty())
    source["type"] = "upload";
  return {{"videoId", v.id},
          {"title", v.title},
          {"description", v.info.description},
          {"public", v.info.is_public},
          {"panoramic", v.info.panoramic},
          {"mp4Support", v.info.mp4_support},
          {"tags", tags},
          {"metadata", metadata},
          {"createdAt", atom_time(v.created_ms)},
          {"publishedAt", atom_time(v.created_ms)},
          {"updatedAt", atom_time(v.updated_ms)},
          {"discarded", false},
          {"discardedAt", nullptr},
          {"deletesAt", nullptr},
          {"language", nullptr},
          {"languageOrigin", nullptr},
          {"source", source},
          {"assets", assets}};
}

json av_status(const video_record& v) {
  json ingest = nullptr;
  auto& u = v.upload;
  if (!u.parts.empty() || !v.source_sha256.empty() || !v.import_url.empty()) {
    const char* status = "uploaded";
    if (v.state == states::created)
      status = v.import_url.empty() ? "uploading" : "ingesting";
    else if (!v.import_url.empty())
      status = "ingested";
    json size = v.source_bytes > 0 ? json(v.source_bytes)
                : u.mode == "bytes" && u.total >= 0 ? json(u.total)
                                                    : json(nullptr);
    ingest = {{"status", status}, {"filesize", size}};
    json bytes = json::array();
    json parts = json::array();
    for (auto& p : u.parts) {
      if (u.mode == "bytes")
        bytes.push_back({{"from", p.index},
                         {"to", p.index + p.bytes - 1},
                         {"total", u.total}});
      else
        parts.push_back(p.index);
    }
    ingest["receivedBytes"] = bytes;
    if (u.mode == "parts")
      ingest["receivedParts"] = {{"parts", parts},
                                 {"total", u.total >= 0 ? json(u.total)
                                                        : json(nullptr)}};
  }
  json qualities = json::array();
  auto rung_status = rung_progress(v).first;
  // The MP4 downloads are written when packaging ends.
  std::string mp4_status = v.state == states::ready    ? "encoded"
                           : v.state == states::failed ? "failed"
                           : rung_status == std::string{"waiting"}
                             ? "waiting"
                             : "encoding";
  for (std::string type : {"hls", "mp4"}) {
    if (type == "mp4" && !v.info.mp4_support)
      continue;
    for (auto& r : v.rungs)
      qualities.push_back({{"type", type},
                           {"quality", r.name},
                           {"status", type == "hls" ? std::string{rung_status}
                                                    : mp4_status}});
  }
  json meta = nullptr;
  if (v.probed) {
    auto& s = v.source;
    bool upright = s.rotation % 180 == 0;
    int w = upright ? s.width : s.height;
    int h = upright ? s.height : s.width;
    int g = std::gcd(w, h);
    meta = {{"width", w},
            {"height", h},
            {"bitrate", std::round(s.bit_rate / 1000.0 * 1000) / 1000},
            {"duration", static_cast<int64_t>(std::llround(s.duration_s))},
            {"framerate", static_cast<int64_t>(std::llround(s.fps))},
            {"samplerate", s.audio_stream >= 0 ? json(s.audio_sample_rate)
                                               : json(nullptr)},
            {"videoCodec", s.video_codec},
            {"audioCodec", s.audio_stream >= 0 ? json(s.audio_codec)
                                               : json(nullptr)},
            {"aspectRatio", g > 0 ? json(std::to_string(w / g) + "/"
                                         + std::to_string(h / g))
                                  : json(nullptr)}};
  }
  return {{"ingest", ingest},
          {"encoding", {{"playable", is_playable(v)},
                        {"qualities", qualities},
                        {"metadata", meta}}}};
}

/// A timecode: "HH:MM:SS", "HH:MM:SS.mmm", "HH:MM:SS:FF" (frames, at
/// `fps`) or plain seconds.
std::optional<double> parse_timecode(const std::string& s, double fps) {
  if (s.empty() || s.size() > 32)
    return std::nullopt;
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    auto c = s.find(':', start);
    parts.push_back(s.substr(start, c - start));
    if (c == std::string::npos)
      break;
    start = c + 1;
  }
  auto number = [](const std::string& x, bool frac) -> std::optional<double> {
    if (x.empty())
      return std::nullopt;
    for (char c : x)
      if (!(std::isdigit(static_cast<unsigned char>(c)) || (frac && c == '.')))
        return std::nullopt;
    char* end = nullptr;
    double v = std::strtod(x.c_str(), &end);
    return *end == '\0' ? std::optional<double>{v} : std::nullopt;
  };
  if (parts.size() == 1)
    return number(parts[0], true);
  if (parts.size() < 3 || parts.size() > 4)
    return std::nullopt;
  auto h = number(parts[0], false);
  auto m = number(parts[1], false);
  auto sec = number(parts[2], parts.size() == 3);
  if (!h || !m || !sec || *m >= 60 || *sec >= 60)
    return std::nullopt;
  double t = *h * 3600 + *m * 60 + *sec;
  if (parts.size() == 4) {
    auto f = number(parts[3], false);
    if (!f)
      return std::nullopt;
    t += *f / (fps > 0 ? fps : 25.0);
  }
  return t;
}

/// The problem for a part the owner refused (storage/records add_part).
void part_refused(httplib::Response& res, const caf::error& err,
                  const std::string& mode) {
  auto msg = message_of(err);
  if (code_of(err) == ec::conflict) {
    problem(res, 400, "video-source-already-uploaded",
            "The source of the video is already uploaded.", "file", msg);
    return;
  }
  if (code_of(err) != ec::invalid_argument) {
    render_error(d, err, res);
    return;
  }
  auto has = [&](const char* s) { return msg.find(s) != std::string::npos; };
  if (has("another Content-Range form"))
    problem(res, 400, mode == "bytes" ? "video-content-range-started-with-part"
                                      : "video-content-range-started-with-bytes",
            "This upload was started with another \"Content-Range\" form.",
            "Content-Range", msg);
  else if (has("overlaps"))
    problem(res, 400, "video-content-range-by-bytes-range-overlap",
            "The range in the \"Content-Range\" header overlaps with a "
            "previous one you already sent for this video.",
            "Content-Range", msg);
  else if (has("already received"))
    problem(res, 400, "video-content-range-by-part-part-already-sent",
            "The \"part\" value in the \"Content-Range\" header collides with "
            "a previous one you already sent for this video.",
            "Content-Range", msg);
  else if (has("total differs"))
    problem(res, 400, mode == "bytes"
                        ? "video-content-range-by-bytes-different-total-bytes"
                        : "video-content-range-by-part-different-total-parts",
            "The total in the \"Content-Range\" header differs from the one "
            "you already set for this video.",
            "Content-Range", msg);
  else
    problem(res, 400, "video-content-range-invalid",
            "The \"Content-Range\" header does not fit this upload.",
            "Content-Range", msg);
}

/// Receives one source request (whole, or a chunk with Content-Range) for
/// the video `id`, or, with `id` empty, for the video named by a
/// "videoId" field or else a new one titled after the file (upload
/// tokens). Answers 201 with the video.
void receive_source(node& n, const principal& who, std::string id,
                    const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader) {
  auto& tenant = who.tenant;
  auto range = parse_content_range(req.get_header_value("Content-Range"));
  if (!range) {
    problem(res, 400, "video-content-range-malformed",
            "The value of the \"Content-Range\" header is malformed, the "
            "expected format is \"bytes <from_byte>-<to_byte>/<total_bytes>\" "
            "or \"part <part>/<total_parts>\".",
            "Content-Range");
    return;
  }
  auto limit = std::min(max_request_bytes, n.config().max_upload_bytes);
  auto up = receive_multipart(req, reader, n.blobs(), "", limit);
  if (!up) {
    if (code_of(up.error()) == ec::too_large)
      problem(res, 400, "uploaded-file-too-large",
              "The uploaded file is too large.", "file",
              "one request carries at most " + std::to_string(limit)
                + " bytes; send larger files in chunks with Content-Range");
    else if (code_of(up.error()) == ec::invalid_argument)
      problem(res, 400, "uploaded-file-invalid-file",
              "The uploaded file is invalid.", "file", message_of(up.error()));
    else
      render_error(d, up.error(), res);
    return;
  }
  tmp_guard tmp{up->has_file ? up->tmp_path : std::string{}};
  if (!up->has_file) {
    problem(res, 400, "uploaded-file-no-file",
            "There is no uploaded file in the request.", "file");
    return;
  }
  if (up->extra_files > 0) {
    problem(res, 400, "uploaded-file-multiple-files",
            "There is more than one uploaded file in the request.", "file");
    return;
  }
  if (up->bytes == 0) {
    problem(res, 400, "uploaded-file-empty", "The uploaded file is empty.",
            "file");
    return;
  }
  if (range->mode == "bytes" && range->last - range->first + 1 != up->bytes) {
    problem(res, 400, "video-content-range-by-bytes-range-mismatch",
            "The size of the file you sent is different than the range "
            "length you set in the \"Content-Range\" header.",
            "Content-Range");
    return;
  }
  if (id.empty()) {
    auto given = up->fields.find("videoId");
    if (given != up->fields.end() && !given->second.empty()) {
      id = given->second;
      if (!is_uuid(id)) {
        not_found(res);
        return;
      }
    } else {
      video_record draft;
      draft.tenant = tenant;
      draft.folder = "root";
      auto name = up->filename.substr(up->filename.find_last_of("/\\") + 1);
      draft.title = name.empty() ? "upload" : name;
      draft.filename = draft.title;
      auto v = n.create_video(std::move(draft), {});
      if (!v) {
        render_error(d, v.error(), res);
        return;
      }
      id = v->id;
    }
  }
  // Without Content-Range the request is the whole source.
  std::string mode = range->mode.empty() ? "bytes" : range->mode;
  upload_part part;
  part.index = range->mode.empty() ? 0 : range->first;
  part.bytes = up->bytes;
  part.sha256 = up->sha256;
  int64_t total = range->mode.empty() ? up->bytes : range->total;
  auto v = n.add_source_part(tenant, id, mode, total, part, up->tmp_path);
  if (!v) {
    if (code_of(v.error()) == ec::not_found)
      not_found(res);
    else
      part_refused(res, v.error(), mode);
    return;
  }
  tmp.release(); // adopted (or removed) by the node
  reply_json(res, 201, av_video(n, *v, who));
}

/// Answers the video (with `status`) or the error that came instead.
void reply_video(node& n, const principal& who, httplib::Response& res,
                 const caf::expected<video_record>& v, int status = 200) {
  if (v)
    reply_json(res, status, av_video(n, *v, who));
  else
    render_error(d, v.error(), res);
}

/// The gate's refusals as api.video words them: a missing video names its
/// field (videoId), and a body that is not a JSON object is an invalid
/// payload (a body over max_json_body keeps its 413).
void av_refusal(step s, const caf::error& err, httplib::Response& res) {
  auto code = code_of(err);
  if (s == step::video && code == ec::not_found)
    not_found(res);
  else if (s == step::body && code == ec::too_large)
    problem(res, 413, "invalid-payload", "The payload is invalid.", "",
            message_of(err));
  else if (s == step::body)
    problem(res, 400, "invalid-payload", "The payload is invalid.", "",
            message_of(err));
  else
    render_error(d, err, res);
}

/// Documented fields of a create or update payload that reel does not
/// support, with why: refused, rather than dropped silently. A value that
/// asks for nothing (null, false, "", an empty list) is what reel does
/// anyway and is accepted.
constexpr std::pair<const char*, const char*> unsupported_fields[] = {
  {"playerId", "reel has no player themes: the player is /embed/{videoId}"},
  {"watermark", "reel does not burn watermarks into videos"},
  {"language", "reel makes no transcripts or captions"},
  {"transcript", "reel makes no transcripts"},
  {"transcriptSummary", "reel makes no summaries"},
  {"transcriptSummaryAttributes", "reel makes no summaries"},
};

/// Refuses the unsupported fields `body` sets (400 invalid-attribute,
/// `name` the first of them, `problems` each); false when it answered.
bool supported_only(const json& body, httplib::Response& res) {
  std::vector<std::pair<std::string, std::string>> refused;
  for (auto [field, why] : unsupported_fields) {
    auto x = body.find(field);
    if (x == body.end() || x->is_null() || (x->is_boolean() && !x->get<bool>())
        || (x->is_array() && x->empty())
        || (x->is_string() && x->get_ref<const std::string&>().empty()))
      continue;
    refused.emplace_back(field, why);
  }
  if (refused.empty())
    return true;
  auto type = std::string{"https://docs.api.video/reference/invalid-attribute"};
  auto title = "This attribute is not supported.";
  std::string detail;
  json problems = json::array();
  for (auto& [field, why] : refused) {
    detail += (detail.empty() ? "" : "; ") + field + ": " + why;
    problems.push_back({{"type", type}, {"title", title}, {"name", field}});
  }
  reply_json(res, 400, {{"type", type},
                        {"title", title},
                        {"name", refused.front().first},
                        {"status", 400},
                        {"detail", detail},
                        {"problems", problems}});
  return false;
}

/// Maps api.video's fields of a create or update payload to a reel patch
/// (apply_patch); answers a 400 and returns nothing for a wrong type or a
/// field reel does not support.
std::optional<nlohmann::json> to_patch(const json& body,
                                       httplib::Response& res) {
  if (!supported_only(body, res))
    return std::nullopt;
  nlohmann::json patch = nlohmann::json::object();
  auto wrong = [&](const std::string& name, const std::string& what) {
    problem(res, 400, "invalid-attribute",
            "This attribute must be " + what + ".", name);
    return std::nullopt;
  };
  for (auto [from, to, type] :
       {std::tuple{"title", "title", 's'}, {"description", "description", 's'},
        {"public", "public", 'b'}, {"panoramic", "panoramic", 'b'},
        {"mp4Support", "mp4_support", 'b'}}) {
    if (!body.contains(from) || body[from].is_null())
      continue;
    auto& x = body[from];
    if (type == 's' && !x.is_string())
      return wrong(from, "a string");
    if (type == 'b' && !x.is_boolean())
      return wrong(from, "a boolean");
    if (type == 's' && x.get<std::string>().size() > 4096)
      return wrong(from, "at most 4096 characters long");
    patch[to] = x;
  }
  if (body.contains("tags") && !body["tags"].is_null()) {
    auto& tags = body["tags"];
    if (!tags.is_array() || tags.size() > 100)
      return wrong("tags", "an array");
    for (auto& t : tags)
      if (!t.is_string() || t.get<std::string>().empty()
          || t.get<std::string>().size() > 255)
        return wrong("tags", "an array of non-empty strings");
    patch["tags"] = tags;
  }
  if (body.contains("metadata") && !body["metadata"].is_null()) {
    auto& meta = body["metadata"];
    if (!meta.is_array() || meta.size() > 100)
      return wrong("metadata", "an array");
    for (auto& m : meta)
      if (!m.is_object() || !m.contains("key") || !m["key"].is_string()
          || !m.contains("value") || !m["value"].is_string()
          || m["key"].get<std::string>().empty())
        return wrong("metadata", "an array of {\"key\", \"value\"} strings");
    patch["metadata"] = meta;
  }
  return patch;
}

/// Pagination as api.video answers it.
json pagination(const std::string& path, int64_t page, int64_t size,
                int64_t total, int64_t on_page) {
  int64_t pages = (total + size - 1) / size;
  auto uri = [&](int64_t p) {
    return path + "?currentPage=" + std::to_string(p)
           + "&pageSize=" + std::to_string(size);
  };
  json links = json::array({{{"rel", "self"}, {"uri", uri(page)}},
                            {{"rel", "first"}, {"uri", uri(1)}}});
  if (page > 1)
    links.push_back({{"rel", "previous"}, {"uri", uri(page - 1)}});
  if (page < pages)
    links.push_back({{"rel", "next"}, {"uri", uri(page + 1)}});
  links.push_back({{"rel", "last"}, {"uri", uri(std::max<int64_t>(pages, 1))}});
  return {{"currentPage", page}, {"pageSize", size}, {"pagesTotal", pages},
          {"itemsTotal", total}, {"currentPageItems", on_page},
          {"links", links}};
}

/// Answers one page of `items` (rendered by `render`) with its pagination.
template <class T, class F>
void reply_page(httplib::Response& res, const std::string& path,
                const std::vector<T>& items, std::pair<int64_t, int64_t> pg,
                F render) {
  auto [page, size] = pg;
  auto total = static_cast<int64_t>(items.size());
  json data = json::array();
  for (auto i = (page - 1) * size; i < total && i < page * size; ++i)
    data.push_back(render(items[static_cast<size_t>(i)]));
  auto on_page = static_cast<int64_t>(data.size());
  reply_json(res, 200, {{"data", data},
                        {"pagination",
                         pagination(path, page, size, total, on_page)}});
}

/// currentPage and pageSize, or a 400 answered.
/// A list's `sortBy` (one of `fields`, else `fallback`) and `sortOrder`
/// (asc or desc, else asc); nothing, after answering 400 in api.video's
/// words, for another value.
std::optional<std::pair<std::string, std::string>>
sorting(const httplib::Request& req, httplib::Response& res,
        const std::vector<std::string>& fields, const std::string& fallback) {
  auto by = req.has_param("sortBy") ? req.get_param_value("sortBy") : fallback;
  auto order = req.has_param("sortOrder") ? req.get_param_value("sortOrder")
                                          : std::string{"asc"};
  if (std::find(fields.begin(), fields.end(), by) == fields.end()) {
    std::string list;
    for (auto& f : fields)
      list += (list.empty() ? "" : ", ") + f;
    problem(res, 400, "invalid-query-parameter",
            "This parameter must be one of " + list + ".", "sortBy");
    return std::nullopt;
  }
  if (order != "asc" && order != "desc") {
    problem(res, 400, "invalid-query-parameter",
            "This parameter must be asc or desc.", "sortOrder");
    return std::nullopt;
  }
  return std::pair{by, order};
}

std::optional<std::pair<int64_t, int64_t>> paging(const httplib::Request& req,
                                                  httplib::Response& res) {
  auto page = query_int(req, "currentPage", 1, 1, 1000000);
  auto size = query_int(req, "pageSize", 25, 1, 100);
  if (!page || !size) {
    problem(res, 400, "invalid-query-parameter",
            "This parameter is out of the allowed range of values.",
            !page ? "currentPage" : "pageSize");
    return std::nullopt;
  }
  return std::pair{*page, *size};
}

json av_upload_token(const upload_token_record& t) {
  json j = {{"token", t.token}, {"ttl", t.ttl_s},
            {"createdAt", atom_time(t.created_ms)}};
  if (t.expires_ms > 0)
    j["expiresAt"] = atom_time(t.expires_ms);
  return j;
}

json av_webhook(const webhook_record& w) {
  return {{"webhookId", w.id},
          {"createdAt", atom_time(w.created_ms)},
          {"events", w.events},
          {"url", w.url},
          {"signatureSecret", w.secret}};
}

bool contains_ci(const std::string& hay, const std::string& needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a))
                                 == std::tolower(static_cast<unsigned char>(b));
                        });
  return it != hay.end();
}

/// `s` for a tag search: lower case, and the Latin letters of Latin-1 and
/// Latin Extended-A without their accents (é -> e, Ł -> l, ß -> s);
/// other characters unchanged.
std::string fold(const std::string& s) {
  // Base letters of U+00C0-U+00FF and U+0100-U+017F; '?' keeps the
  // character (× and ÷).
  static constexpr char latin1[] =
    "aaaaaaaceeeeiiiidnooooo?ouuuuytsaaaaaaaceeeeiiiidnooooo?ouuuuyty";
  static constexpr char extended_a[] =
    "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiiiiijjkkkllllllllll"
    "nnnnnnnnnoooooooorrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs";
  static_assert(sizeof(latin1) - 1 == 64 && sizeof(extended_a) - 1 == 128);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(std::tolower(c)));
      continue;
    }
    // Two-byte UTF-8 sequences of U+00C0-U+017F: C3 80-BF, C4 80-BF,
    // C5 80-BF.
    if (c >= 0xc3 && c <= 0xc5 && i + 1 < s.size()) {
      auto c2 = static_cast<unsigned char>(s[i + 1]);
      if ((c2 & 0xc0) == 0x80) {
        unsigned cp = ((c & 0x1fu) << 6) | (c2 & 0x3fu);
        char base = cp >= 0x100 ? extended_a[cp - 0x100]
                    : cp >= 0xc0 ? latin1[cp - 0xc0]
                                 : '?';
        if (base != '?') {
          out.push_back(base);
          ++i;
          continue;
        }
      }
    }
    out.push_back(static_cast<char>(c));
  }
  return out;
}

} // namespace

void add_apivideo_api(route_table& t, node& n) {
  t.authenticate_with(d, av_auth);
  t.refuse_with(d, av_refusal);
  auto add = [&](const char* method, std::string pattern, access who,
                 const char* scope, names_video video, body_kind body,
                 std::string name, route_handler h) {
    t.add({method, std::move(pattern), d, who, scope, video, body,
           "apivideo." + std::move(name), std::move(h)});
  };
  using nv = names_video;
  using bk = body_kind;

  // /auth/*: api.video documents them as not rate limited; they check the
  // key (or refresh token) they are given themselves.
  add("POST", R"(/auth/api-key)", access::open, "", nv::none, bk::json,
      "auth", [&n](call& c) {
        auto key = c.json.value("apiKey", json{});
        auto who = key.is_string() ? n.authenticate(key.get<std::string>())
                                   : caf::expected<principal>{
                                     make_error(ec::unauthorized, "")};
        if (!who) {
          if (code_of(who.error()) == ec::unauthorized)
            problem(c.res, 400, "authentication-invalid-user-credentials",
                    "The user credentials were incorrect.");
          else
            c.fail(who.error());
          return;
        }
        c.reply(200, token_pair(n, sha256_hex(key.get<std::string>())));
      });

  add("POST", R"(/auth/refresh)", access::open, "", nv::none, bk::json,
      "refresh", [&n](call& c) {
        auto token = c.json.value("refreshToken", json{});
        auto fields = token.is_string()
                        ? verify_token(n.signing_secret(), "rt",
                                       token.get<std::string>(), now_ms())
                        : caf::expected<std::vector<std::string>>{
                          make_error(ec::unauthorized, "")};
        if (!fields || fields->empty() || !n.key_principal(fields->front())) {
          problem(c.res, 400, "authentication-invalid-user-credentials",
                  "The user credentials were incorrect.", "refreshToken",
                  "the refresh token is invalid, expired or its key revoked");
          return;
        }
        c.reply(200, token_pair(n, fields->front()));
      });

  add("POST", R"(/videos)", access::key, scopes::videos_write, nv::none,
      bk::json, "create", [&n](call& c) {
        auto& body = c.json;
        if (!body.contains("title") || !body["title"].is_string()
            || body["title"].get<std::string>().empty()) {
          problem(c.res, 400, "attribute-required",
                  "This attribute is required.", "title");
          return;
        }
        auto patch = to_patch(body, c.res);
        if (!patch)
          return;
        video_record draft;
        draft.tenant = c.tenant();
        draft.folder = "root";
        if (auto err = apply_patch(draft, *patch)) {
          c.fail(err);
          return;
        }
        if (body.contains("clip") && !body["clip"].is_null()) {
          auto& clip = body["clip"];
          auto tc = [&](const char* k) -> std::optional<double> {
            if (!clip.is_object() || !clip.contains(k))
              return std::nullopt;
            return clip[k].is_string()
                     ? parse_timecode(clip[k].get<std::string>(), 0)
                     : std::nullopt;
          };
          auto from = clip.is_object() && clip.contains("startTimecode")
                        ? tc("startTimecode")
                        : std::optional<double>{0.0};
          auto to = clip.is_object() && clip.contains("endTimecode")
                      ? tc("endTimecode")
                      : std::optional<double>{0.0};
          if (!clip.is_object() || !from || !to
              || (*to > 0 && *to <= *from)) {
            problem(c.res, 400, "invalid-attribute",
                    "This attribute must be a clip with startTimecode "
                    "before endTimecode (HH:MM:SS[.mmm]).",
                    "clip");
            return;
          }
          draft.clip_start_s = *from;
          draft.clip_duration_s = *to > 0 ? *to - *from : 0;
        }
        std::string copy_tmp;
        if (body.contains("source") && !body["source"].is_null()) {
          auto& src = body["source"];
          auto s = src.is_string() ? src.get<std::string>() : std::string{};
          if (s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0) {
            if (s.size() > 4096) {
              problem(c.res, 400, "invalid-attribute",
                      "This attribute must be a URL.", "source");
              return;
            }
            draft.import_url = s;
            draft.filename = s.substr(s.find_last_of('/') + 1);
          } else if (is_uuid(s)) {
            auto tmp = n.copy_source(c.tenant(), s);
            if (!tmp) {
              if (code_of(tmp.error()) == ec::not_found)
                not_found(c.res, "source");
              else
                c.fail(tmp.error(), "source");
              return;
            }
            copy_tmp = *tmp;
            auto from = n.get_video(c.tenant(), s);
            if (from) {
              draft.source_bytes = from->source_bytes;
              draft.source_sha256 = from->source_sha256;
              draft.filename = from->filename;
            }
          } else {
            problem(c.res, 400, "invalid-attribute",
                    "This attribute must be an http(s) URL or the id of "
                    "one of your videos.",
                    "source");
            return;
          }
        }
        c.idempotent(draft);
        auto v = n.create_video(std::move(draft), copy_tmp);
        if (!v) {
          if (!copy_tmp.empty())
            ::unlink(copy_tmp.c_str());
          c.fail(v.error());
          return;
        }
        c.reply(201, av_video(n, *v, *c.who));
      });

  add("GET", R"(/videos)", access::key, scopes::videos_read, nv::none,
      bk::none, "list", [&n](call& c) {
        auto& req = c.req;
        auto pg = paging(req, c.res);
        if (!pg)
          return;
        auto sort = sorting(req, c.res,
                            {"title", "createdAt", "publishedAt", "updatedAt"},
                            "createdAt");
        if (!sort)
          return;
        auto& [sort_by, order] = *sort;
        auto all = n.list_videos(c.tenant(), 0, INT32_MAX);
        if (!all) {
          c.fail(all.error());
          return;
        }
        // Filters: title and description contain, every tag, every
        // metadata pair.
        auto title = req.get_param_value("title");
        auto description = req.get_param_value("description");
        std::vector<std::string> tags;
        for (size_t i = 0; i < req.get_param_value_count("tags[]"); ++i)
          tags.push_back(req.get_param_value("tags[]", i));
        std::vector<meta_entry> meta;
        for (auto& [k, val] : req.params)
          if (k.size() > 10 && k.rfind("metadata[", 0) == 0 && k.back() == ']')
            meta.push_back({k.substr(9, k.size() - 10), val});
        std::vector<video_record> hits;
        for (auto& v : all->videos) {
          if (!title.empty() && !contains_ci(v.title, title))
            continue;
          if (!description.empty()
              && !contains_ci(v.info.description, description))
            continue;
          bool ok = true;
          for (auto& t : tags)
            ok = ok && std::find(v.info.tags.begin(), v.info.tags.end(), t)
                         != v.info.tags.end();
          for (auto& m : meta)
            ok = ok && std::any_of(v.info.metadata.begin(),
                                   v.info.metadata.end(), [&](auto& e) {
                                     return e.key == m.key && e.value == m.value;
                                   });
          if (ok)
            hits.push_back(std::move(v));
        }
        auto key = [&](const video_record& v) {
          return sort_by == "title"       ? v.title
                 : sort_by == "updatedAt" ? std::to_string(1e15 + v.updated_ms)
                                          : std::to_string(1e15 + v.created_ms);
        };
        std::stable_sort(hits.begin(), hits.end(), [&](auto& a, auto& b) {
          return order == "asc" ? key(a) < key(b) : key(b) < key(a);
        });
        reply_page(c.res, "/videos", hits, *pg, [&](const video_record& v) {
          return av_video(n, v, *c.who);
        });
      });

  add("GET", R"(/videos/([^/]+))", access::key, scopes::videos_read, nv::uuid,
      bk::none, "get",
      [&n](call& c) { c.reply(200, av_video(n, *c.video, *c.who)); });

  add("PATCH", R"(/videos/([^/]+))", access::key, scopes::videos_write,
      nv::uuid, bk::json, "update", [&n](call& c) {
        auto& body = c.json;
        if (body.contains("title") && body["title"].is_string()
            && body["title"].get<std::string>().empty()) {
          problem(c.res, 400, "invalid-attribute",
                  "This attribute must not be empty.", "title");
          return;
        }
        if (auto patch = to_patch(body, c.res))
          reply_video(n, *c.who, c.res,
                      n.update_video(c.tenant(), c.video->id, patch->dump()));
      });

  add("DELETE", R"(/videos/([^/]+))", access::key, scopes::videos_write,
      nv::uuid, bk::none, "delete", [&n](call& c) {
        if (auto err = n.delete_video(c.tenant(), c.video->id))
          c.fail(err);
        else
          c.res.status = 204;
      });

  // The video is checked before the body is read: a wrong id costs the
  // client no upload.
  add("POST", R"(/videos/([^/]+)/source)", access::key, scopes::uploads_write,
      nv::uuid, bk::stream, "source", [&n](call& c) {
        auto& v = *c.video;
        if (v.state != states::created || !v.import_url.empty())
          problem(c.res, 400, "video-source-already-uploaded",
                  "The source of the video is already uploaded.", "file");
        else
          receive_source(n, *c.who, v.id, c.req, c.res, *c.reader);
      });

  // The upload token in the query is the credential.
  add("POST", R"(/upload)", access::capability, "", nv::none, bk::stream,
      "upload", [&n](call& c) {
        auto token = c.req.get_param_value("token");
        if (token.empty()) {
          problem(c.res, 401, "authentication-missing-upload-token",
                  "The upload token is missing.", "token");
          return;
        }
        auto t = n.upload_token(token);
        if (!t) {
          problem(c.res, 401, "authentication-invalid-upload-token",
                  "The upload token is invalid or expired.", "token");
          return;
        }
        // No key: a private video's assets get no playback token.
        principal holder;
        holder.tenant = t->tenant;
        receive_source(n, holder, {}, c.req, c.res, *c.reader);
      });

  add("GET", R"(/videos/([^/]+)/status)", access::key, scopes::videos_read,
      nv::uuid, bk::none, "status",
      [](call& c) { c.reply(200, av_status(*c.video)); });

  add("POST", R"(/videos/([^/]+)/thumbnail)", access::key,
      scopes::videos_write, nv::uuid, bk::stream, "thumbnail_upload",
      [&n](call& c) {
        auto up = receive_multipart(c.req, *c.reader, n.blobs(), "",
                                    max_thumbnail_bytes);
        if (!up) {
          if (code_of(up.error()) == ec::too_large)
            problem(c.res, 400, "uploaded-file-too-large",
                    "The uploaded file is too large.", "file",
                    "thumbnails are at most 8 MiB");
          else
            c.fail(up.error(), "file");
          return;
        }
        tmp_guard tmp{up->has_file ? up->tmp_path : std::string{}};
        if (!up->has_file || up->bytes == 0) {
          problem(c.res, 400, "uploaded-file-no-file",
                  "There is no uploaded file in the request.", "file");
          return;
        }
        auto updated = n.set_poster(c.tenant(), c.video->id, up->tmp_path);
        if (!updated && code_of(updated.error()) == ec::invalid_argument)
          problem(c.res, 400, "uploaded-file-extension-invalid",
                  "Only JPEG and PNG images are supported.", "file");
        else
          reply_video(n, *c.who, c.res, std::move(updated));
      });

  add("PATCH", R"(/videos/([^/]+)/thumbnail)", access::key,
      scopes::videos_write, nv::uuid, bk::json, "thumbnail_pick",
      [&n](call& c) {
        auto& v = *c.video;
        auto tc = c.json.value("timecode", json{});
        auto at = tc.is_string()
                    ? parse_timecode(tc.get<std::string>(), v.source.fps)
                    : std::nullopt;
        if (!at) {
          problem(c.res, 400, tc.is_null() ? "attribute-required"
                                           : "invalid-attribute",
                  tc.is_null() ? "This attribute is required."
                               : "This attribute must be a timecode "
                                 "(HH:MM:SS.mmm).",
                  "timecode");
          return;
        }
        if (!v.probed || v.state == states::failed) {
          // No frames yet: the poster is taken there once there are.
          nlohmann::json patch = {{"poster_at_s", *at}};
          reply_video(n, *c.who, c.res,
                      n.update_video(c.tenant(), v.id, patch.dump()));
          return;
        }
        // Past the end: the first frame, as api.video does.
        auto frame = n.thumbnail(v.id, *at);
        if (!frame && code_of(frame.error()) == ec::invalid_argument)
          frame = n.thumbnail(v.id, 0);
        if (!frame) {
          c.fail(frame.error());
          return;
        }
        tmp_guard tmp{n.blobs().new_tmp_path()};
        std::error_code err;
        std::filesystem::copy_file(*frame, tmp.path, err);
        if (err)
          c.fail(ec::storage_error, "cannot copy the frame: " + err.message());
        else
          reply_video(n, *c.who, c.res,
                      n.set_poster(c.tenant(), v.id, tmp.path));
      });

  // The tags the tenant's videos carry, with how many videos carry each.
  add("GET", R"(/tags)", access::key, scopes::videos_read, nv::none, bk::none,
      "tags", [&n](call& c) {
        auto& req = c.req;
        auto pg = paging(req, c.res);
        if (!pg)
          return;
        auto sort = sorting(req, c.res, {"value", "videoCount"}, "value");
        if (!sort)
          return;
        auto& [sort_by, order] = *sort;
        auto all = n.list_videos(c.tenant(), 0, INT32_MAX);
        if (!all) {
          c.fail(all.error());
          return;
        }
        auto wanted = fold(req.get_param_value("value"));
        std::map<std::string, int64_t> counts;
        for (auto& v : all->videos) {
          // A tag a video carries twice counts that video once.
          std::set<std::string> seen(v.info.tags.begin(), v.info.tags.end());
          for (auto& tag : seen)
            if (wanted.empty() || fold(tag).find(wanted) != std::string::npos)
              ++counts[tag];
        }
        using tag_count = std::pair<std::string, int64_t>;
        std::vector<tag_count> tags(counts.begin(), counts.end());
        bool desc = order == "desc";
        std::stable_sort(tags.begin(), tags.end(),
                         [&](const tag_count& a, const tag_count& b) {
                           if (sort_by == "videoCount" && a.second != b.second)
                             return desc ? a.second > b.second
                                         : a.second < b.second;
                           return desc ? a.first > b.first : a.first < b.first;
                         });
        reply_page(c.res, "/tags", tags, *pg, [](const tag_count& x) {
          return json{{"value", x.first}, {"videoCount", x.second}};
        });
      });

  add("POST", R"(/webhooks)", access::key, scopes::webhooks_write, nv::none,
      bk::json, "webhook_create", [&n](call& c) {
        auto& body = c.json;
        for (auto field : {"events", "url"})
          if (!body.contains(field)) {
            problem(c.res, 400, "attribute-required",
                    "This attribute is required.", field);
            return;
          }
        auto& events = body["events"];
        auto& url = body["url"];
        if (!events.is_array()
            || !std::all_of(events.begin(), events.end(),
                            [](auto& e) { return e.is_string(); })) {
          problem(c.res, 400, "invalid-attribute",
                  "This attribute must be an array.", "events");
          return;
        }
        if (!url.is_string()) {
          problem(c.res, 400, "invalid-attribute",
                  "This attribute must be a string.", "url");
          return;
        }
        auto w = n.create_webhook(c.tenant(), url.get<std::string>(),
                                  events.get<std::vector<std::string>>(),
                                  "apivideo");
        if (!w) {
          c.fail(w.error(), message_of(w.error()).find("url") == 0 ? "url"
                                                                   : "events");
          return;
        }
        c.reply(201, av_webhook(*w));
      });

  add("GET", R"(/webhooks)", access::key, scopes::webhooks_read, nv::none,
      bk::none, "webhook_list", [&n](call& c) {
        auto pg = paging(c.req, c.res);
        if (!pg)
          return;
        auto all = n.list_webhooks(c.tenant());
        if (!all) {
          c.fail(all.error());
          return;
        }
        auto event = c.req.get_param_value("events");
        std::vector<webhook_record> hits;
        for (auto& w : *all)
          if (w.format == "apivideo"
              && (event.empty()
                  || std::find(w.events.begin(), w.events.end(), event)
                       != w.events.end()))
            hits.push_back(w);
        reply_page(c.res, "/webhooks", hits, *pg, av_webhook);
      });

  add("GET", R"(/webhooks/([^/]+))", access::key, scopes::webhooks_read,
      nv::none, bk::none, "webhook_get", [&n](call& c) {
        auto all = n.list_webhooks(c.tenant());
        if (!all) {
          c.fail(all.error());
          return;
        }
        for (auto& w : *all)
          if (w.id == c.arg(1) && w.format == "apivideo") {
            c.reply(200, av_webhook(w));
            return;
          }
        not_found(c.res, "webhookId");
      });

  add("DELETE", R"(/webhooks/([^/]+))", access::key, scopes::webhooks_write,
      nv::none, bk::none, "webhook_delete", [&n](call& c) {
        if (auto err = n.delete_webhook(c.tenant(), c.arg(1))) {
          if (code_of(err) == ec::not_found)
            not_found(c.res, "webhookId");
          else
            c.fail(err);
          return;
        }
        c.res.status = 204;
      });

  // Upload tokens grant uploads: making, listing (they are shown whole),
  // reading and deleting them all need uploads:write.
  add("POST", R"(/upload-tokens)", access::key, scopes::uploads_write,
      nv::none, bk::json, "token_create", [&n](call& c) {
        auto ttl = c.json.value("ttl", json(0));
        if (!ttl.is_number_integer() || ttl.get<int64_t>() < 0
            || ttl.get<int64_t>() > 2147483647) {
          problem(c.res, 400, "invalid-attribute",
                  "This attribute must be an integer between 0 and "
                  "2147483647.",
                  "ttl");
          return;
        }
        auto tok = n.create_upload_token(c.tenant(), ttl.get<int64_t>());
        if (!tok) {
          c.fail(tok.error());
          return;
        }
        c.reply(200, av_upload_token(*tok));
      });

  add("GET", R"(/upload-tokens)", access::key, scopes::uploads_write,
      nv::none, bk::none, "token_list", [&n](call& c) {
        auto pg = paging(c.req, c.res);
        if (!pg)
          return;
        auto all = n.list_upload_tokens(c.tenant());
        if (!all) {
          c.fail(all.error());
          return;
        }
        auto by = c.req.get_param_value("sortBy");
        bool desc = c.req.get_param_value("sortOrder") == "desc";
        std::stable_sort(all->begin(), all->end(), [&](auto& a, auto& b) {
          auto ka = by == "ttl" ? a.ttl_s : a.created_ms;
          auto kb = by == "ttl" ? b.ttl_s : b.created_ms;
          return desc ? kb < ka : ka < kb;
        });
        reply_page(c.res, "/upload-tokens", *all, *pg, av_upload_token);
      });

  add("GET", R"(/upload-tokens/([^/]+))", access::key, scopes::uploads_write,
      nv::none, bk::none, "token_get", [&n](call& c) {
        auto tok = n.upload_token(c.arg(1));
        if (!tok || tok->tenant != c.tenant()) {
          not_found(c.res, "uploadToken");
          return;
        }
        c.reply(200, av_upload_token(*tok));
      });

  add("DELETE", R"(/upload-tokens/([^/]+))", access::key,
      scopes::uploads_write, nv::none, bk::none, "token_delete",
      [&n](call& c) {
        if (auto err = n.delete_upload_token(c.tenant(), c.arg(1))) {
          if (code_of(err) == ec::not_found)
            not_found(c.res, "uploadToken");
          else
            c.fail(err);
          return;
        }
        c.res.status = 204;
      });
}

} // namespace reel::http
