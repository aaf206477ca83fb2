// The Flare dialect (seeds 000 and 001; flare.link's API pages): personal
// access tokens with scopes, /api/video/create with the client's own ids
// (s3Key), presigned PUT uploads signed by this cluster, password-protected
// playback, /api/videos.

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

/// The key of the request, which must carry `scope`; answers 401 or 403
/// itself otherwise.
std::optional<principal> flare_auth(node& n, const httplib::Request& req,
                                    httplib::Response& res,
                                    const std::string& scope) {
  auto key = bearer_token(req);
  if (key.empty()) {
    reply_error(d, ec::unauthorized,
                "missing credentials: send Authorization: Bearer flr_pat_...",
                res);
    return std::nullopt;
  }
  auto who = n.authenticate(key);
  if (!who) {
    render_error(d, code_of(who.error()) == ec::unauthorized
                      ? make_error(ec::unauthorized, "invalid access token")
                      : who.error(),
                 res);
    return std::nullopt;
  }
  if (!who->may(scope)) {
    reply_error(d, ec::forbidden,
                "this token lacks the " + scope + " scope", res);
    return std::nullopt;
  }
  return *who;
}

/// A Flare video id: the s3Key it was made with, else reel's id.
std::string flare_id(const video_record& v) {
  return v.info.client_key.empty() ? v.id : v.info.client_key;
}

/// The video a Flare id names within a tenant: reel's UUID, or the s3Key
/// it was made with (through the index of keys).
caf::expected<video_record> video_named(node& n, const std::string& tenant,
                                        const std::string& id) {
  return is_uuid(id) ? n.get_video(tenant, id) : n.video_by_key(tenant, id);
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

/// The video `id` (a Flare id) of the caller, or a 404 answered.
std::optional<video_record> find_video(node& n, const principal& who,
                                       const std::string& id,
                                       httplib::Response& res) {
  auto v = video_named(n, who.tenant, id);
  if (!v) {
    if (code_of(v.error()) == ec::not_found)
      reply_error(d, ec::not_found, "video " + id + " not found", res);
    else
      render_error(d, v.error(), res);
    return std::nullopt;
  }
  return std::move(*v);
}

std::optional<nlohmann::json> flare_body(const httplib::Request& req,
                                         httplib::Response& res) {
  auto j = nlohmann::json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    reply_error(d, ec::invalid_argument, "the body must be a JSON object", res);
    return std::nullopt;
  }
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

} // namespace

void add_flare_api(router& r, node& n) {
  r.post(R"(/api/video/create)", "flare.create",
         [&n](const httplib::Request& req, httplib::Response& res) {
           auto who = flare_auth(n, req, res, "videos:write");
           if (!who)
             return;
           auto body = flare_body(req, res);
           if (!body)
             return;
           auto str = [&](const char* k) {
             auto x = body->value(k, nlohmann::json{});
             return x.is_string() ? x.get<std::string>() : std::string{};
           };
           for (auto k : {"fileName", "s3Key", "source", "title"})
             if (body->contains(k) && !(*body)[k].is_null()
                 && !(*body)[k].is_string()) {
               reply_error(d, ec::invalid_argument,
                           std::string{k} + " must be a string", res, k);
               return;
             }
           for (auto k : {"width", "height", "duration"})
             if (body->contains(k) && !(*body)[k].is_null()
                 && (!(*body)[k].is_number() || (*body)[k].get<double>() < 0
                     || (*body)[k].get<double>() > 1e7)) {
               reply_error(d, ec::invalid_argument,
                           std::string{k} + " must be a non-negative number",
                           res, k);
               return;
             }
           auto file_name = clean_name(str("fileName"));
           if (file_name.empty()) {
             reply_error(d, ec::invalid_argument, "fileName is required", res,
                         "fileName");
             return;
           }
           auto key = str("s3Key");
           if (!key.empty() && !valid_key(key)) {
             reply_error(d, ec::invalid_argument,
                         "s3Key must be 1-128 of letters, digits, '.', '_' and "
                         "'-'",
                         res, "s3Key");
             return;
           }
           video_record draft;
           draft.tenant = who->tenant;
           draft.folder = "root";
           draft.filename = file_name;
           draft.title = str("title").empty() ? file_name : str("title");
           // A random id like every video's; the key is checked (and its
           // creates decided one at a time) by the node that owns the key
           // (docs/cluster.md).
           draft.info.client_key = key;
           draft.info.origin_label = str("source");
           draft.info.declared_width =
             static_cast<int32_t>(body->value("width", 0.0));
           draft.info.declared_height =
             static_cast<int32_t>(body->value("height", 0.0));
           draft.info.declared_duration_s = body->value("duration", 0.0);
           auto v = n.create_video(std::move(draft), {});
           if (!v) {
             if (code_of(v.error()) == ec::conflict)
               reply_error(d, ec::conflict,
                           "a video with s3Key " + key + " exists already", res,
                           "s3Key");
             else
               render_error(d, v.error(), res);
             return;
           }
           reply_json(res, 200, {{"success", true},
                                 {"video", {{"id", flare_id(*v)},
                                            {"uploadStatus", upload_status_of(*v)}}}});
         });

  r.post(R"(/api/video/upload/presign)", "flare.presign",
         [&n](const httplib::Request& req, httplib::Response& res) {
           auto who = flare_auth(n, req, res, "uploads:write");
           if (!who)
             return;
           auto body = flare_body(req, res);
           if (!body)
             return;
           auto id = body->value("videoId", nlohmann::json{});
           auto name = body->value("fileName", nlohmann::json{});
           if (!id.is_string() || !name.is_string()
               || clean_name(name.get<std::string>()).empty()) {
             reply_error(d, ec::invalid_argument,
                         "videoId and fileName are required strings", res);
             return;
           }
           auto v = find_video(n, *who, id.get<std::string>(), res);
           if (!v)
             return;
           if (v->state != states::created || !v->import_url.empty()
               || !v->upload.parts.empty()) {
             reply_error(d, ec::conflict, "the video has its file already",
                         res, "videoId");
             return;
           }
           // reel's extension: "expiresIn" seconds (default an hour).
           auto ttl = body->value("expiresIn", nlohmann::json(presign_ttl_s));
           if (!ttl.is_number_integer() || ttl.get<int64_t>() < 1
               || ttl.get<int64_t>() > presign_max_ttl_s) {
             reply_error(d, ec::invalid_argument,
                         "expiresIn must be 1 to 604800 seconds", res,
                         "expiresIn");
             return;
           }
           auto file = clean_name(name.get<std::string>());
           auto type = content_type_for(file);
           auto expires = now_ms() + ttl.get<int64_t>() * 1000;
           auto path = "/presigned/" + v->id + "/" + file;
           auto base = n.config().public_url;
           auto key_id = key_id_of(who->key_hash);
           auto url = base + "/presigned/" + v->id + "/" +
                      percent_encode(file) +
                      "?expires=" + std::to_string(expires) + "&key=" + key_id +
                      "&signature=" +
                      presign_signature(n, path, type, expires, key_id);
           reply_json(res, 200,
                      {{"uploadUrl", url},
                       {"method", "PUT"},
                       {"headers", {{"Content-Type", type}}},
                       {"publicUrl", base + "/media/" + v->id + "/source/"
                                       + percent_encode(file)},
                       {"expiresAt", iso8601(expires)}});
         });

  // The presigned PUT: no key, the URL's signature is the permission.
  r.put(R"(/presigned/([^/]+)/([^/]+))", "flare.put",
        [&n](const httplib::Request& req, httplib::Response& res,
             const httplib::ContentReader& reader) {
          std::string id = req.matches[1];
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
            reply_error(d, ec::forbidden,
                        "the upload URL's signature does not match (a changed "
                        "URL or Content-Type?)",
                        res);
            return;
          }
          if (expires <= now_ms()) {
            reply_error(d, ec::forbidden, "the upload URL has expired", res);
            return;
          }
          auto v = n.get_video("", id);
          if (!v) {
            render_error(d, v.error(), res);
            return;
          }
          // The key that asked for the URL must still be there.
          auto signer = n.key_by_id(key_id);
          if (!signer && code_of(signer.error()) != ec::unauthorized) {
            render_error(d, signer.error(), res);
            return;
          }
          if (!signer || (!signer->admin && signer->tenant != v->tenant)) {
            reply_error(d, ec::forbidden,
                        "the key that made this upload URL was revoked", res);
            return;
          }
          if (v->state != states::created || !v->upload.parts.empty()) {
            reply_error(d, ec::conflict, "the video has its file already", res);
            return;
          }
          auto up = receive_body(req, reader, n.blobs(),
                                 n.config().max_upload_bytes);
          if (!up) {
            render_error(d, up.error(), res);
            return;
          }
          tmp_guard tmp{up->has_file ? up->tmp_path : std::string{}};
          if (!up->has_file) {
            reply_error(d, ec::invalid_argument, "the body is empty", res);
            return;
          }
          upload_part part;
          part.bytes = up->bytes;
          part.sha256 = up->sha256;
          auto done = n.add_source_part(v->tenant, v->id, "bytes", up->bytes,
                                        part, up->tmp_path);
          if (!done) {
            render_error(d, done.error(), res);
            return;
          }
          tmp.release();
          res.set_header("ETag", "\"" + up->sha256 + "\"");
          reply_json(res, 200, {{"success", true},
                                {"video", {{"id", flare_id(*done)},
                                           {"uploadStatus",
                                            upload_status_of(*done)}}}});
        });

  r.patch(R"(/api/video/update/([^/]+))", "flare.update",
          [&n](const httplib::Request& req, httplib::Response& res) {
            auto who = flare_auth(n, req, res, "videos:write");
            if (!who)
              return;
            auto v = find_video(n, *who, req.matches[1], res);
            if (!v)
              return;
            auto body = flare_body(req, res);
            if (!body)
              return;
            nlohmann::json patch = nlohmann::json::object();
            if (body->contains("title")) {
              auto& t = (*body)["title"];
              if (!t.is_string() || t.get<std::string>().empty()
                  || t.get<std::string>().size() > 4096) {
                reply_error(d, ec::invalid_argument,
                            "title must be a non-empty string", res, "title");
                return;
              }
              patch["title"] = t;
            }
            if (body->contains("password")) {
              auto& p = (*body)["password"];
              if (p.is_null()) {
                patch["password_hash"] = "";
              } else if (p.is_string() && !p.get<std::string>().empty()
                         && p.get<std::string>().size() <= 256) {
                patch["password_hash"] = hash_password(p.get<std::string>());
              } else {
                reply_error(d, ec::invalid_argument,
                            "password must be a non-empty string, or null to "
                            "remove it",
                            res, "password");
                return;
              }
            }
            auto updated = n.update_video(who->tenant, v->id, patch.dump());
            if (!updated)
              render_error(d, updated.error(), res);
            else
              reply_json(res, 200, {{"success", true},
                                    {"video", flare_video(n, *updated)}});
          });

  r.get(R"(/api/videos)", "flare.list",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = flare_auth(n, req, res, "videos:read");
          if (!who)
            return;
          auto all = n.list_videos(who->tenant, 0, INT32_MAX);
          if (!all) {
            render_error(d, all.error(), res);
            return;
          }
          json videos = json::array();
          for (auto& v : all->videos)
            videos.push_back(flare_video(n, v));
          reply_json(res, 200, {{"success", true}, {"videos", videos}});
        });

  r.get(R"(/api/video/([^/]+))", "flare.get",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = flare_auth(n, req, res, "videos:read");
          if (!who)
            return;
          if (auto v = find_video(n, *who, req.matches[1], res))
            reply_json(res, 200, {{"success", true},
                                  {"video", flare_video(n, *v)}});
        });
}

} // namespace reel::http
