#include "actors/wire.hpp"

#include "cluster/data_plane.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"
#include "storage/keys.hpp"

#include <algorithm>
#include <cctype>

namespace reel::wire {

namespace {

caf::error bad(const std::string& why) {
  return make_error(ec::invalid_argument, why);
}

bool bounded(const std::string& s, size_t n) {
  return s.size() <= n;
}

constexpr size_t max_text = 64 * 1024; // titles, descriptions, reasons

} // namespace

bool hex_digest(const std::string& s) {
  return s.size() == 64 &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

bool plain_name(const std::string& s, size_t n) {
  if (s.empty() || s.size() > n || s == "." || s == "..")
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
           c == '-' || c == '.';
  });
}

bool tenant_name(const std::string& s) {
  if (s.empty() || s.size() > 64)
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

caf::error check(const member_info& m) {
  static const char* states[] = {"up", "suspect", "down", "draining"};
  if (!plain_name(m.node_id, 64))
    return bad("bad node id");
  if (!bounded(m.public_url, 512) || (m.public_url.rfind("http://", 0) != 0 &&
                                      m.public_url.rfind("https://", 0) != 0))
    return bad("bad public url");
  if (!plain_name(m.cluster_host, 255) &&
      m.cluster_host.find(':') == std::string::npos)
    return bad("bad cluster host");
  if (m.cluster_host.size() > 255 || m.cluster_port == 0)
    return bad("bad cluster address");
  if (std::none_of(std::begin(states), std::end(states),
                   [&](const char* x) { return m.state == x; }))
    return bad("bad state");
  if (m.queued < 0 || m.running < 0 || m.workers < 0 || m.workers > 4096 ||
      m.disk_bytes < 0)
    return bad("bad load");
  return {};
}

caf::error check(const video_record& v) {
  if (!is_uuid(v.id))
    return bad("the video id is not a UUID");
  if (!tenant_name(v.tenant))
    return bad("bad tenant");
  if (!valid_folder_path(v.folder))
    return bad("bad folder");
  if (!valid(v.state)
      || std::any_of(v.history.begin(), v.history.end(),
                     [](const state_change& h) { return !valid(h.state); }))
    return bad("bad state");
  if (!bounded(v.title, max_text) || !bounded(v.filename, 1024) ||
      !bounded(v.failure_reason, max_text) || !bounded(v.waiting, max_text) ||
      !bounded(v.created_via, 32) ||
      !bounded(v.info.description, max_text) || !bounded(v.import_url, 8192) ||
      v.import_headers.size() > 64)
    return bad("a text field is too long");
  if (!v.source_sha256.empty() && !hex_digest(v.source_sha256))
    return bad("bad source digest");
  if (!v.source_node.empty() && !plain_name(v.source_node))
    return bad("bad source node");
  if (v.rungs.size() > 16 || v.chunks.size() > 1'000'000 ||
      v.chunk_done.size() != v.chunks.size() || v.history.size() > 10'000 ||
      v.files.size() > 1'000'000 || v.renditions.size() > 16 ||
      v.upload.parts.size() > 100'000 || v.info.tags.size() > 1000 ||
      v.info.metadata.size() > 1000)
    return bad("a list is too long");
  for (auto& r : v.rungs)
    if (!plain_name(r.name, 16))
      return bad("bad rung name");
  // Names of media files: every node derives its own paths from them.
  auto media_name = [&](const std::string& name) {
    return name.empty() || cluster::valid(cluster::blob_ref{
                               cluster::blob_area::media, v.id, name});
  };
  for (auto& f : v.files)
    if (!media_name(f.name) || (!f.sha256.empty() && !hex_digest(f.sha256)))
      return bad("bad media file");
  for (auto& r : v.renditions)
    if (!media_name(r.playlist) || !media_name(r.mp4) ||
        !media_name(r.ts_playlist))
      return bad("bad rendition file");
  if (!media_name(v.master) || !media_name(v.master_ts) || !media_name(v.dash))
    return bad("bad manifest name");
  for (auto& p : v.upload.parts)
    if (!plain_name(p.node) || !hex_digest(p.sha256) || p.index < 0 ||
        p.bytes < 0)
      return bad("bad upload part");
  if (!v.info.poster.empty() &&
      !cluster::valid(
          cluster::blob_ref{cluster::blob_area::source, v.id, v.info.poster}))
    return bad("bad poster name");
  return {};
}

/// 1 to 19 decimal digits: a time in milliseconds.
static bool digits(const std::string& s) {
  return !s.empty() && s.size() <= 19
         && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

caf::error check(const replicated_row& row) {
  if (row.key.empty() || row.key.size() > 512 || row.value.size() > 64 * 1024)
    return bad("bad row size");
  switch (static_cast<cf>(row.family)) {
  case cf::keys: {
    auto marks = keys::revoked_key_prefix();
    if (row.key.rfind(marks, 0) == 0)
      return hex_digest(row.key.substr(marks.size()))
                 ? caf::error{}
                 : bad("bad revocation mark");
    if (!hex_digest(row.key))
      return bad("bad key id");
    if (row.erase)
      return {};
    api_key_record k;
    if (decode(row.value, k) || k.key_hash != row.key || !tenant_name(k.tenant))
      return bad("bad key row");
    return {};
  }
  case cf::folders: {
    if (row.erase)
      return {};
    folder_record f;
    if (decode(row.value, f) || !tenant_name(f.tenant) ||
        !valid_folder_path(f.path) || keys::folder(f.tenant, f.path) != row.key)
      return bad("bad folder row");
    return {};
  }
  case cf::tokens:
  case cf::webhooks: {
    // A deleted row's mark: the key it names, and when.
    auto marks = keys::gone_prefix();
    if (row.key.rfind(marks, 0) == 0) {
      auto named = row.key.substr(marks.size());
      bool token = static_cast<cf>(row.family) == cf::tokens;
      if (row.erase || !digits(row.value)
          || (token ? named.rfind(keys::upload_token_prefix(), 0) != 0
                    : named.find(keys::sep) == std::string::npos))
        return bad("bad deletion mark");
      return {};
    }
    if (static_cast<cf>(row.family) == cf::tokens)
      return row.key.rfind(keys::upload_token_prefix(), 0) == 0
                 ? caf::error{}
                 : bad("bad token row");
    if (row.erase)
      return {};
    webhook_record w;
    if (decode(row.value, w) || !tenant_name(w.tenant) ||
        keys::webhook(w.tenant, w.id) != row.key)
      return bad("bad webhook row");
    return {};
  }
  case cf::tombstones:
    // A deleted video's tombstone: its id, and when.
    if (row.erase || !is_uuid(row.key) || !digits(row.value))
      return bad("bad tombstone");
    return {};
  default:
    return bad("not a replicated family");
  }
}

caf::error check(const source_part& p) {
  if (!is_uuid(p.video_id))
    return bad("the video id is not a UUID");
  if (!tenant_name(p.tenant))
    return bad("bad tenant");
  if (p.mode != "bytes" && p.mode != "parts")
    return bad("bad upload mode");
  if (!plain_name(p.part.node) || !hex_digest(p.part.sha256) ||
      p.part.index < 0 || p.part.bytes < 0 || p.total < -1)
    return bad("bad upload part");
  return {};
}

caf::error check(const task& t, bool from_peer) {
  if (!is_uuid(t.video_id))
    return bad("the video id is not a UUID");
  if (static_cast<uint8_t>(t.kind) > static_cast<uint8_t>(task_kind::assemble))
    return bad("unknown kind");
  if (from_peer && t.kind != task_kind::chunk)
    return bad(std::string{"a peer may not ask for a "} + to_string(t.kind) +
               " task");
  for (auto* name : {&t.origin_node, &t.target_node})
    if (!name->empty() && !plain_name(*name, 128))
      return bad("bad node name");
  if (!t.source_sha256.empty() && !hex_digest(t.source_sha256))
    return bad("bad source digest");
  const auto& p = t.src;
  if (p.keyframes.size() > 10'000'000 || p.container.size() > 256 ||
      p.video_codec.size() > 64 || p.audio_codec.size() > 64 || p.width < 0 ||
      p.width > 16384 || p.height < 0 || p.height > 16384 || p.tb_num <= 0 ||
      p.tb_den <= 0)
    return bad("implausible probe");
  if (t.kind == task_kind::chunk) {
    if (t.index < 0 || t.index > 1'000'000 || t.part.index != t.index)
      return bad("bad chunk index");
    if (t.rungs.empty() || t.rungs.size() > 16)
      return bad("a chunk needs 1 to 16 rungs");
    for (auto& r : t.rungs)
      if (!plain_name(r.name, 16) || r.name.find('.') != std::string::npos ||
          r.width <= 0 || r.width > 8192 || r.height <= 0 || r.height > 8192 ||
          r.max_kbps <= 0 || r.max_kbps > 1'000'000 || r.crf < 0 || r.crf > 51)
        return bad("bad rung");
    if (t.part.end_pts <= t.part.start_pts ||
        t.part.segment_starts.size() > 100'000)
      return bad("bad chunk plan");
    if (!plain_name(t.options.preset, 16) || t.options.threads < 0 ||
        t.options.threads > 64)
      return bad("bad encoder options");
  }
  if (t.kind == task_kind::storyboard &&
      (!plain_name(t.rendition, 64) || t.rendition.size() < 5 ||
       t.rendition.compare(t.rendition.size() - 4, 4, ".mp4") != 0))
    return bad("bad rendition");
  if (!t.output_tag.empty() && !plain_name(t.output_tag, 64))
    return bad("bad output tag");
  return {};
}

void dropped(const char* message, const char* reason, const std::string& from,
             const std::string& detail) {
  metrics()
      .cluster_dropped.Add({{"message", message}, {"reason", reason}})
      .Increment();
  log::warn("cluster.message_dropped", {{"message", message},
                                        {"reason", reason},
                                        {"from", from},
                                        {"detail", detail.substr(0, 200)}});
}

} // namespace reel::wire
