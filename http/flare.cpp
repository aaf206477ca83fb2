// The Flare dialect (seeds 000 and 001; flare.link's API pages): personal
// access tokens with scopes, /api/video/create with the client's own ids
// (s3Key), presigned PUT uploads signed by this cluster, password-protected
// playback, /api/videos, and publicUrl: the uploaded file at
// /media/flare/<tenant>/<id>/<source>/<file name>.

#include "http/render.hpp"
#include "http/routes.hpp"
#include "http/upload_receiver.hpp"
#include "ops/crypto.hpp"
#include "ops/util.hpp"

#include <algorithm>

namespace reel::http {

namespace {

using json = nlohmann::ordered_json;
constexpr auto d = dialect::flare;
constexpr int64_t presign_ttl_s = 3600;          // by default
constexpr int64_t presign_max_ttl_s = 7 * 24 * 3600; // as S3 allows

/// A Flare video id: the s3Key it was made with, else reel's id (also for
/// a video made through another API with an Idempotency-Key).
std::string flare_id(const video_record& v) {
  auto& key = v.info.client_key;
  return key.empty() || key.rfind(idempotency_prefix, 0) == 0 ? v.id : key;
}

/// The video a Flare id names within a tenant: reel's UUID, or the s3Key
/// it was made with (through the index of keys).
caf::expected<video_record> video_named(node& n, const std::string& tenant,
                                        const std::string& id) {
  if (is_uuid(id))
    return n.get_video(tenant, id);
  if (id.empty() || id.size() > 1024)
    return make_error(ec::not_found, "video " + id + " not found");
  return n.video_by_key(tenant, id);
}

/// The label a video's publicUrl files its source under: the `source` it
/// was created with, else "source".
std::string source_label(const video_record& v) {
  return v.info.origin_label.empty() ? "source" : v.info.origin_label;
}

/// s3Keys: 1-128 of [A-Za-z0-9._-], not shaped like a UUID (those are
/// reel's own ids).
bool valid_key(const std::string& k) {
  if (k.empty() || k.size() > 128 || is_uuid(k))
    return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_'
           || c == '-';
  });
}

const char* upload_status_of(const video_record& v) {
  // A created video whose file is all in is about to be processed.
  if (v.state == states::created && !upload_complete(v.upload))
    return "uploading";
  if (v.state == states::ready)
    return "ready";
  if (v.state == states::failed)
    return "failed";
  return "processing";
}

json flare_video(node& n, const video_record& v) {
  auto base = n.config().public_url;
  auto media = base + "/media/" + v.id + "/";
  double duration = v.probed ? v.source.duration_s : v.info.declared_duration_s;
  json j = {{"id", flare_id(v)},
            {"title", v.title},
            {"fileName", v.filename},
            {"source", v.info.origin_label.empty() ? json(nullptr)
                                                   : json(v.info.origin_label)},
            {"width", v.probed ? v.source.width : v.info.declared_width},
            {"height", v.probed ? v.source.height : v.info.declared_height},
            {"duration", duration},
            {"uploadStatus", upload_status_of(v)},
            {"passwordProtected", !v.info.password_hash.empty()},
            {"views", v.info.views},
            {"embedUrl", base + "/embed/" + v.id},
            {"createdAt", iso8601_ms(v.created_ms)},
            {"updatedAt", iso8601_ms(v.updated_ms)}};
  // A password-protected video's media are reached through its page.
  if (v.info.password_hash.empty()) {
    j["playbackUrl"] = is_playable(v) ? json(hls_url(v, base)) : json(nullptr);
    j["thumbnailUrl"] = v.state == states::ready ? json(media + "thumbnail.jpg")
                                                 : json(nullptr);
  }
  if (v.state == states::failed)
    j["error"] = v.failure_reason;
  return j;
}

std::string content_type_for(const std::string& name) {
  auto dot = name.rfind('.');
  auto ext = dot == std::string::npos ? std::string{} : name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == "mp4" || ext == "m4v")
    return "video/mp4";
  if (ext == "mov")
    return "video/quicktime";
  if (ext == "webm")
    return "video/webm";
  if (ext == "mkv")
    return "video/x-matroska";
  return "application/octet-stream";
}

std::string percent_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// The signature of a presigned PUT: HMAC over method, path, content type,
/// expiry and the id of the key that asked for it (the URL dies with the
/// key), under the cluster's signing secret (any node checks it).
std::string presign_signature(node& n, const std::string& path,
                              const std::string& type, int64_t expires,
                              const std::string& key_id) {
  return hex(hmac_sha256(n.signing_secret(),
                         "PUT\n" + path + "\n" + type + "\n" +
                             std::to_string(expires) + "\n" + key_id));
}

/// A file name as a URL path segment can carry it: its last component,
/// printable, without '/', at most 200 bytes.
std::string clean_name(const std::string& name) {
  auto base = name.substr(name.find_last_of("/\\") + 1);
  std::string out;
  for (unsigned char c : base)
    if (c >= 0x20 && c != 0x7f)
      out.push_back(static_cast<char>(c));
  if (out.size() > 200)
    out.resize(200);
  return out == "." || out == ".." ? std::string{} : out;
}

/// The publicUrl of a video's uploaded file, the seed's shape
/// {base}/{videoId}/{source}/{fileName} with base <public url>/media/flare/
/// <tenant>: an s3Key names a video only within its tenant.
std::string public_url(node& n, const video_record& v) {
  return n.config().public_url + "/media/flare/" + v.tenant + "/" +
         percent_encode(flare_id(v)) + "/" + percent_encode(source_label(v)) +
         "/" + percent_encode(v.filename);
}

/// Flare's words for a missing or unknown token (the gate renders them).
caf::expected<principal> flare_token(node& n, const httplib::Request& req,
                                     httplib::Response&) {
  auto key = bearer_token(req);
  if (key.empty())
    return make_error(ec::unauthorized, "missing credentials: send "
                                        "Authorization: Bearer flr_pat_...");
  auto who = n.authenticate(key);
  if (!who && code_of(who.error()) == ec::unauthorized)
    return make_error(ec::unauthorized, "invalid access token");
  return who;
}

} // namespace

void add_flare_api(route_table& t, node& n) {
  t.authenticate_with(d, flare_token);
  using nv = names_video;
  using bk = body_kind;

  t.add({"POST", R"(/api/video/create)", d, access::key, scopes::videos_write,
         nv::none, bk::json, "flare.create", [&n](call& c) {
           auto& body = c.json;
           auto str = [&](const char* k) {
             auto x = body.value(k, json{});
             return x.is_string() ? x.get<std::string>() : std::string{};
           };
           for (auto k : {"fileName", "s3Key", "source", "title"})
             if (body.contains(k) && !body[k].is_null() &&
                 !body[k].is_string()) {
               c.fail(ec::invalid_argument,
                      std::string{k} + " must be a string", k);
               return;
             }
           for (auto k : {"width", "height", "duration"})
             if (body.contains(k) && !body[k].is_null() &&
                 (!body[k].is_number() || body[k].get<double>() < 0 ||
                  body[k].get<double>() > 1e7)) {
               c.fail(ec::invalid_argument,
                      std::string{k} + " must be a non-negative number", k);
               return;
             }
           auto file_name = clean_name(str("fileName"));
           if (file_name.empty()) {
             c.fail(ec::invalid_argument, "fileName is required", "fileName");
             return;
           }
           auto key = str("s3Key");
           if (!key.empty() && !valid_key(key)) {
             c.fail(ec::invalid_argument,
                    "s3Key must be 1-128 of letters, digits, '.', '_' and '-'",
                    "s3Key");
             return;
           }
           auto number = [&](const char* k) {
             auto x = body.value(k, json{});
             return x.is_number() ? x.get<double>() : 0.0;
           };
           video_record draft;
           draft.tenant = c.tenant();
           draft.folder = "root";
           draft.filename = file_name;
           draft.title = str("title").empty() ? file_name : str("title");
           // A random id like every video's; the key is checked (and its
           // creates decided one at a time) by the node that owns the key
           // (docs/cluster.md).
           draft.info.client_key = key;
           draft.info.origin_label = str("source");
           draft.info.declared_width = static_cast<int32_t>(number("width"));
           draft.info.declared_height = static_cast<int32_t>(number("height"));
           draft.info.declared_duration_s = number("duration");
           auto v = n.create_video(std::move(draft), {});
           if (!v) {
             if (code_of(v.error()) == ec::conflict)
               c.fail(ec::conflict,
                      "a video with s3Key " + key + " exists already", "s3Key");
             else
               c.fail(v.error());
             return;
           }
           c.reply(200, {{"success", true},
                         {"video",
                          {{"id", flare_id(*v)},
                           {"uploadStatus", upload_status_of(*v)}}}});
         }});

  // The video is named in the body (videoId), not the path: found here,
  // within the token's tenant.
  t.add({"POST", R"(/api/video/upload/presign)", d, access::key,
         scopes::uploads_write, nv::none, bk::json, "flare.presign",
         [&n](call& c) {
           auto id = c.json.value("videoId", json{});
           auto name = c.json.value("fileName", json{});
           if (!id.is_string() || !name.is_string() ||
               clean_name(name.get<std::string>()).empty()) {
             c.fail(ec::invalid_argument,
                    "videoId and fileName are required strings");
             return;
           }
           auto v = video_named(n, c.tenant(), id.get<std::string>());
           if (!v) {
             c.fail(v.error());
             return;
           }
           if (v->state != states::created || !v->import_url.empty() ||
               !v->upload.parts.empty()) {
             c.fail(ec::conflict, "the video has its file already", "videoId");
             return;
           }
           // reel's extension: "expiresIn" seconds (default an hour).
           auto ttl = c.json.value("expiresIn", json(presign_ttl_s));
           if (!ttl.is_number_integer() || ttl.get<int64_t>() < 1 ||
               ttl.get<int64_t>() > presign_max_ttl_s) {
             c.fail(ec::invalid_argument,
                    "expiresIn must be 1 to 604800 seconds", "expiresIn");
             return;
           }
           auto file = clean_name(name.get<std::string>());
           auto type = content_type_for(file);
           auto expires = now_ms() + ttl.get<int64_t>() * 1000;
           auto path = "/presigned/" + v->id + "/" + file;
           auto base = n.config().public_url;
           auto key_id = key_id_of(c.who->key_hash);
           auto url = base + "/presigned/" + v->id + "/" +
                      percent_encode(file) +
                      "?expires=" + std::to_string(expires) + "&key=" + key_id +
                      "&signature=" +
                      presign_signature(n, path, type, expires, key_id);
           // publicUrl serves the file under the video's own name, whatever
           // name this upload URL was signed for.
           c.reply(200, {{"uploadUrl", url},
                         {"method", "PUT"},
                         {"headers", {{"Content-Type", type}}},
                         {"publicUrl", public_url(n, *v)},
                         {"expiresAt", iso8601(expires)}});
         }});

  // The presigned PUT: no key, the URL's signature is the permission. The
  // video is looked up once the signature holds (an unsigned request
  // learns nothing of which videos exist).
  t.add({"PUT", R"(/presigned/([^/]+)/([^/]+))", d, access::capability, "",
         nv::none, bk::stream, "flare.put", [&n](call& c) {
           auto& req = c.req;
           auto id = c.arg(1);
           auto expires_text = req.get_param_value("expires");
           int64_t expires = 0;
           try {
             expires = std::stoll(expires_text);
           } catch (const std::exception&) {
             expires = 0;
           }
           auto type = req.get_header_value("Content-Type");
           auto key_id = req.get_param_value("key");
           bool signed_ok = is_uuid(id) && expires > 0 &&
                            equal_secrets(req.get_param_value("signature"),
                                          presign_signature(n, req.path, type,
                                                            expires, key_id));
           if (!signed_ok) {
             c.fail(ec::forbidden, "the upload URL's signature does not match "
                                   "(a changed URL or Content-Type?)");
             return;
           }
           if (expires <= now_ms()) {
             c.fail(ec::forbidden, "the upload URL has expired");
             return;
           }
           auto v = n.get_video("", id);
           if (!v) {
             c.fail(v.error());
             return;
           }
           // The key that asked for the URL must still be there.
           auto signer = n.key_by_id(key_id);
           if (!signer && code_of(signer.error()) != ec::unauthorized) {
             c.fail(signer.error());
             return;
           }
           if (!signer || (!signer->admin && signer->tenant != v->tenant)) {
             c.fail(ec::forbidden,
                    "the key that made this upload URL was revoked");
             return;
           }
           if (v->state != states::created || !v->upload.parts.empty()) {
             c.fail(ec::conflict, "the video has its file already");
             return;
           }
           auto up = receive_body(req, *c.reader, n.blobs(),
                                  n.config().max_upload_bytes);
           if (!up) {
             c.fail(up.error());
             return;
           }
           tmp_guard tmp{up->has_file ? up->tmp_path : std::string{}};
           if (!up->has_file) {
             c.fail(ec::invalid_argument, "the body is empty");
             return;
           }
           upload_part part;
           part.bytes = up->bytes;
           part.sha256 = up->sha256;
           auto done = n.add_source_part(v->tenant, v->id, "bytes", up->bytes,
                                         part, up->tmp_path);
           if (!done) {
             c.fail(done.error());
             return;
           }
           tmp.release();
           c.res.set_header("ETag", "\"" + up->sha256 + "\"");
           c.reply(200, {{"success", true},
                         {"video",
                          {{"id", flare_id(*done)},
                           {"uploadStatus", upload_status_of(*done)}}}});
         }});

  // publicUrl: the uploaded file, open like every media file (a password-
  // protected video's needs its playback token, ?token=). The tenant is in
  // the path, not a key, so the route finds its video itself. Added before
  // /media/<id>/... (add_media), which would take the path otherwise.
  t.add({"GET", R"(/media/flare/([^/]+)/([^/]+)/([^/]+)/([^/]+))",
         dialect::plain, access::open, "", nv::none, bk::none, "flare.media",
         [&n](call& c) {
           auto v = video_named(n, c.arg(1), c.arg(2));
           if (!v) {
             c.fail(v.error());
             return;
           }
           if (c.arg(3) != source_label(*v) || c.arg(4) != v->filename) {
             c.fail(ec::not_found, "not found");
             return;
           }
           serve_media(c, *v, c.req.get_param_value("token"),
                       "source/" + v->filename);
         }});

  t.add({"PATCH", R"(/api/video/update/([^/]+))", d, access::key,
         scopes::videos_write, nv::flare_key, bk::json, "flare.update",
         [&n](call& c) {
           auto& body = c.json;
           json patch = json::object();
           if (body.contains("title")) {
             auto& t = body["title"];
             if (!t.is_string() || t.get<std::string>().empty() ||
                 t.get<std::string>().size() > 4096) {
               c.fail(ec::invalid_argument, "title must be a non-empty string",
                      "title");
               return;
             }
             patch["title"] = t;
           }
           if (body.contains("password")) {
             auto& p = body["password"];
             if (p.is_null()) {
               patch["password_hash"] = "";
             } else if (p.is_string() && !p.get<std::string>().empty() &&
                        p.get<std::string>().size() <= 256) {
               patch["password_hash"] = hash_password(p.get<std::string>());
             } else {
               c.fail(ec::invalid_argument,
                      "password must be a non-empty string, or null to remove "
                      "it",
                      "password");
               return;
             }
           }
           auto updated =
               n.update_video(c.video->tenant, c.video->id, patch.dump());
           if (!updated)
             c.fail(updated.error());
           else
             c.reply(200,
                     {{"success", true}, {"video", flare_video(n, *updated)}});
         }});

  t.add({"GET", R"(/api/videos)", d, access::key, scopes::videos_read, nv::none,
         bk::none, "flare.list", [&n](call& c) {
           auto all = n.list_videos(c.tenant(), 0, INT32_MAX);
           if (!all) {
             c.fail(all.error());
             return;
           }
           json videos = json::array();
           for (auto& v : all->videos)
             videos.push_back(flare_video(n, v));
           c.reply(200, {{"success", true}, {"videos", videos}});
         }});

  t.add(
      {"GET", R"(/api/video/([^/]+))", d, access::key, scopes::videos_read,
       nv::flare_key, bk::none, "flare.get", [&n](call& c) {
         c.reply(200, {{"success", true}, {"video", flare_video(n, *c.video)}});
       }});
}

} // namespace reel::http
