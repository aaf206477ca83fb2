#include "storage/records.hpp"

#include "ops/util.hpp"
#include "storage/db.hpp"
#include "storage/keys.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace reel::codec {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(
  probe_result, container, duration_s, size_bytes, bit_rate, video_stream,
  video_codec, width, height, rotation, fps, tb_num, tb_den, start_pts,
  end_pts, frame_count, frame_ticks, keyframes, audio_stream, audio_codec, audio_channels,
  audio_sample_rate)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(rung, name, width, height,
                                                max_kbps, crf)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(chunk, index, start_pts,
                                                end_pts, segment_starts)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(rendition, name, width, height,
                                                bandwidth, average_bandwidth,
                                                codecs, playlist, segments,
                                                frames, mp4, mp4_size,
                                                ts_playlist)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(storyboard_result, interval_s,
                                                tiles, tile_width, tile_height,
                                                columns)

} // namespace reel::codec

namespace reel {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(file_record, name, size, sha256)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(state_change, state, at_ms,
                                                reason)

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(meta_entry, key, value)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(upload_part, index, bytes,
                                                node, sha256)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(upload_state, mode, total,
                                                parts)

void to_json(nlohmann::json& j, const video_info& x) {
  j = nlohmann::json{{"description", x.description},
                     {"public", x.is_public},
                     {"panoramic", x.panoramic},
                     {"mp4_support", x.mp4_support},
                     {"tags", x.tags},
                     {"metadata", x.metadata},
                     {"poster", x.poster},
                     {"poster_at_s", x.poster_at_s},
                     {"screenshot_id", x.screenshot_id},
                     {"client_user_id", x.client_user_id},
                     {"projection", x.projection},
                     {"transcribe_language", x.transcribe_language},
                     {"origin_label", x.origin_label},
                     {"declared_width", x.declared_width},
                     {"declared_height", x.declared_height},
                     {"declared_duration_s", x.declared_duration_s},
                     {"password_hash", x.password_hash},
                     {"views", x.views},
                     {"client_key", x.client_key}};
}

void from_json(const nlohmann::json& j, video_info& x) {
  video_info d;
  x.description = j.value("description", d.description);
  x.is_public = j.value("public", d.is_public);
  x.panoramic = j.value("panoramic", d.panoramic);
  x.mp4_support = j.value("mp4_support", d.mp4_support);
  x.tags = j.value("tags", d.tags);
  x.metadata = j.value("metadata", d.metadata);
  x.poster = j.value("poster", d.poster);
  x.poster_at_s = j.value("poster_at_s", d.poster_at_s);
  x.screenshot_id = j.value("screenshot_id", d.screenshot_id);
  x.client_user_id = j.value("client_user_id", d.client_user_id);
  x.projection = j.value("projection", d.projection);
  x.transcribe_language = j.value("transcribe_language", d.transcribe_language);
  x.origin_label = j.value("origin_label", d.origin_label);
  x.declared_width = j.value("declared_width", d.declared_width);
  x.declared_height = j.value("declared_height", d.declared_height);
  x.declared_duration_s = j.value("declared_duration_s", d.declared_duration_s);
  x.password_hash = j.value("password_hash", d.password_hash);
  x.views = j.value("views", d.views);
  x.client_key = j.value("client_key", d.client_key);
}

bool upload_complete(const upload_state& u) {
  if (u.total < 0 || u.parts.empty())
    return false;
  if (u.mode == "parts") {
    if (static_cast<int64_t>(u.parts.size()) != u.total)
      return false;
    for (size_t i = 0; i < u.parts.size(); ++i)
      if (u.parts[i].index != static_cast<int64_t>(i) + 1)
        return false;
    return true;
  }
  int64_t next = 0;
  for (auto& p : u.parts) { // kept sorted by index
    if (p.index != next)
      return false;
    next += p.bytes;
  }
  return next == u.total;
}

int64_t upload_received(const upload_state& u) {
  int64_t n = 0;
  for (auto& p : u.parts)
    n += p.bytes;
  return n;
}

std::string part_file(const upload_part& p) {
  return "part-" + std::to_string(p.index) + "-" + p.sha256.substr(0, 16);
}

caf::error add_part(upload_state& u, const std::string& mode, int64_t total,
                    const upload_part& p) {
  auto bad = [](const std::string& msg) {
    return make_error(ec::invalid_argument, msg);
  };
  if (!u.mode.empty() && u.mode != mode)
    return bad("this upload's chunks use another Content-Range form");
  if (total >= 0 && u.total >= 0 && total != u.total)
    return bad("the total differs from the earlier chunks' (" +
               std::to_string(u.total) + ")");
  auto known = total >= 0 ? total : u.total;
  bool bytes = mode == "bytes";
  if (p.bytes <= 0 || p.index < (bytes ? 0 : 1))
    return bad("empty chunk or invalid position");
  if (known >= 0 && (bytes ? p.index + p.bytes > known : p.index > known))
    return bad("the chunk lies past the end of the upload");
  for (auto& q : u.parts) {
    if (q.index == p.index && q.bytes == p.bytes && q.sha256 == p.sha256)
      return {}; // sent again (a retry): nothing changes
    bool overlap = bytes ? p.index < q.index + q.bytes && q.index < p.index + p.bytes
                         : p.index == q.index;
    if (overlap)
      return bad(bytes ? "the chunk overlaps bytes already received ("
                           + std::to_string(q.index) + "-"
                           + std::to_string(q.index + q.bytes - 1) + ")"
                       : "part " + std::to_string(p.index)
                           + " was already received");
  }
  if (!bytes && known >= 0)
    for (auto& q : u.parts)
      if (q.index > known)
        return bad("an earlier part lies past the total");
  u.mode = mode;
  u.total = known;
  auto at = std::find_if(u.parts.begin(), u.parts.end(),
                         [&](auto& q) { return q.index > p.index; });
  u.parts.insert(at, p);
  return {};
}

caf::error apply_patch(video_record& v, const nlohmann::json& patch) {
  if (!patch.is_object())
    return make_error(ec::invalid_argument, "the update must be an object");
  // The folder moves the video (null: to "root"); the caller checks that
  // the folder exists.
  auto folder = v.folder;
  if (auto f = patch.find("folder"); f != patch.end()) {
    if (f->is_null())
      folder = "root";
    else if (f->is_string() && valid_folder_path(f->get<std::string>()))
      folder = f->get<std::string>();
    else
      return make_error(ec::invalid_argument,
                        "folder must be a folder path such as root/marketing");
  }
  nlohmann::json j = v.info;
  j["title"] = v.title;
  for (auto& [key, value] : patch.items())
    if (key != "folder" && !j.contains(key))
      return make_error(ec::invalid_argument, key + " cannot be changed");
  auto rest = patch;
  rest.erase("folder");
  j.merge_patch(rest);
  // Every field keeps its type (a null resets it).
  nlohmann::json defaults = video_info{};
  defaults["title"] = std::string{};
  for (auto& [key, value] : j.items()) {
    if (value.is_null())
      value = defaults[key];
    // Numbers: an integer field takes integers only (a fraction or 1e300
    // would not fit); a fractional one any number.
    auto& want = defaults[key];
    bool same = value.type() == want.type()
                || (want.is_number_float() && value.is_number())
                || (want.is_number_integer() && value.is_number_integer());
    if (same && want.is_number_integer()
        && (value.is_number_unsigned()
              ? value.get<uint64_t>() > static_cast<uint64_t>(INT32_MAX)
              : (value.get<int64_t>() > INT32_MAX || value.get<int64_t>() < INT32_MIN))
        && key != "views" && key != "client_user_id")
      same = false;
    if (!same)
      return make_error(ec::invalid_argument,
                        key + " must be " + (want.is_number_integer()
                                               ? std::string{"an integer in range"}
                                               : std::string{want.type_name()}));
  }
  try {
    auto info = j.get<video_info>();
    v.title = j["title"].get<std::string>();
    v.info = std::move(info);
    v.folder = std::move(folder);
  } catch (const std::exception& e) {
    return make_error(ec::invalid_argument,
                      std::string{"invalid update: "} + e.what());
  }
  return {};
}

int compare_versions(const video_record& a, const video_record& b) {
  if (a.epoch != b.epoch)
    return a.epoch < b.epoch ? -1 : 1;
  if (a.version != b.version)
    return a.version < b.version ? -1 : 1;
  return 0;
}

bool supersedes(const video_record& incoming, const video_record& mine) {
  if (auto c = compare_versions(incoming, mine))
    return c > 0;
  // The same version written twice (two writers that did not see each
  // other): the same choice on every node, whatever arrives first.
  if (incoming.updated_ms != mine.updated_ms)
    return incoming.updated_ms > mine.updated_ms;
  return encode(incoming) > encode(mine);
}

void to_json(nlohmann::json& j, const video_record& x) {
#define REEL_JSON_OUT(name) {#name, x.name},
  j = nlohmann::json{REEL_VIDEO_RECORD_FIELDS(REEL_JSON_OUT)};
#undef REEL_JSON_OUT
}

void from_json(const nlohmann::json& j, video_record& x) {
  video_record d;
#define REEL_JSON_IN(name) x.name = j.value(#name, d.name);
  REEL_VIDEO_RECORD_FIELDS(REEL_JSON_IN)
#undef REEL_JSON_IN
  // Records of releases before random ids have no number: theirs is in
  // their id.
  if (x.number == 0)
    x.number = legacy_number_of_id(x.id);
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(api_key_record, key_hash,
                                                prefix, tenant, admin,
                                                created_ms, scopes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(folder_record, tenant, path,
                                                created_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(upload_token_record, token,
                                                tenant, ttl_s, created_ms,
                                                expires_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(webhook_record, id, tenant,
                                                url, events, secret, format,
                                                created_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(delivery_record, id,
                                                webhook_id, tenant, url,
                                                format, secret, event,
                                                video_id, body, status,
                                                attempts, created_ms, next_ms,
                                                done_ms, last_error)

namespace {

template <class T>
std::string encode_impl(const T& x) {
  return nlohmann::json(x).dump();
}

template <class T>
caf::error decode_impl(const std::string& bytes, T& x) {
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded())
    return make_error(ec::storage_error, "corrupt record: not JSON");
  try {
    x = j.get<T>();
  } catch (const std::exception& e) {
    return make_error(ec::storage_error,
                      std::string{"corrupt record: "} + e.what());
  }
  return {};
}

} // namespace

std::string encode(const video_record& x) { return encode_impl(x); }
std::string encode(const api_key_record& x) { return encode_impl(x); }
std::string encode(const folder_record& x) { return encode_impl(x); }
std::string encode(const upload_token_record& x) { return encode_impl(x); }
std::string encode(const webhook_record& x) { return encode_impl(x); }
std::string encode(const delivery_record& x) { return encode_impl(x); }
caf::error decode(const std::string& b, video_record& x) { return decode_impl(b, x); }
caf::error decode(const std::string& b, api_key_record& x) { return decode_impl(b, x); }
caf::error decode(const std::string& b, folder_record& x) { return decode_impl(b, x); }
caf::error decode(const std::string& b, upload_token_record& x) { return decode_impl(b, x); }
caf::error decode(const std::string& b, webhook_record& x) { return decode_impl(b, x); }
caf::error decode(const std::string& b, delivery_record& x) { return decode_impl(b, x); }

std::string at_rest_keys::token_digest(std::string_view token, size_t i) const {
  return hex(hmac_sha256(digest_keys.at(i), token));
}

namespace {

bool is_hex_digest(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

/// A secret sealed under the first key: the value to store instead when
/// `secret` is plain or sealed under another key; nothing when it is in
/// form (or does not open: kept as it is).
std::optional<std::string> resealed(const at_rest_keys& k,
                                    const std::string& secret) {
  if (secret.empty())
    return std::nullopt;
  if (!sealer::is_sealed(secret))
    return k.box.seal(secret);
  size_t i = 0;
  auto plain = k.box.open(secret, &i);
  if (!plain || i == 0)
    return std::nullopt;
  return k.box.seal(*plain);
}

} // namespace

std::optional<std::pair<std::string, std::string>>
at_rest_form(const at_rest_keys& k, cf family, const std::string& key,
             const std::string& value) {
  using row = std::pair<std::string, std::string>;
  if (!k.ready())
    return std::nullopt;
  auto prefix = keys::upload_token_prefix();
  if (family == cf::tokens && key.rfind(prefix, 0) == 0) {
    auto name = key.substr(prefix.size());
    if (value.empty()) // a deletion: of a row named by the token itself?
      return is_hex_digest(name) ? std::nullopt
                                 : std::optional<row>{row{
                                       keys::upload_token(k.token_digest(name)),
                                       std::string{}}};
    upload_token_record t;
    if (decode(value, t) || t.token.empty())
      return std::nullopt;
    std::string plain = t.token;
    bool reseal = true;
    if (sealer::is_sealed(t.token)) {
      size_t i = 0;
      auto opened = k.box.open(t.token, &i);
      if (!opened)
        return std::nullopt;
      plain = std::move(*opened);
      reseal = i != 0;
    }
    auto want = keys::upload_token(k.token_digest(plain));
    if (!reseal && want == key)
      return std::nullopt;
    if (reseal)
      t.token = k.box.seal(plain);
    return row{want, encode(t)};
  }
  if (family == cf::webhooks && !value.empty()) {
    webhook_record w;
    if (decode(value, w))
      return std::nullopt;
    auto sealed = resealed(k, w.secret);
    if (!sealed)
      return std::nullopt;
    w.secret = std::move(*sealed);
    return row{key, encode(w)};
  }
  if (family == cf::outbox && !value.empty()) {
    delivery_record d;
    if (decode(value, d))
      return std::nullopt;
    auto sealed = resealed(k, d.secret);
    if (!sealed)
      return std::nullopt;
    d.secret = std::move(*sealed);
    return row{key, encode(d)};
  }
  return std::nullopt;
}

int64_t folder_number(const std::string& tenant, const std::string& path) {
  auto h = sha256_hex(tenant + '\x1f' + path);
  return static_cast<int64_t>(std::stoull(h.substr(0, 12), nullptr, 16));
}

bool valid_folder_path(const std::string& path) {
  if (path == "root")
    return true;
  if (path.rfind("root/", 0) != 0)
    return false;
  size_t depth = 0;
  size_t start = 5;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos)
      end = path.size();
    auto len = end - start;
    if (len == 0 || len > 64 || ++depth > 8)
      return false;
    for (size_t i = start; i < end; ++i) {
      char c = path[i];
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                || (c >= '0' && c <= '9') || c == '_' || c == '-';
      if (!ok)
        return false;
    }
    start = end + 1;
  }
  return true;
}

} // namespace reel
