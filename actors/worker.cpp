#include "actors/worker.hpp"

#include "cluster/data_plane.hpp"
#include "ops/log.hpp"
#include "ops/util.hpp"
#include "storage/url_import.hpp"

#include <caf/all.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

namespace reel {

const char* to_string(task_kind k) {
  switch (k) {
    case task_kind::probe: return "probe";
    case task_kind::chunk: return "chunk";
    case task_kind::audio: return "audio";
    case task_kind::images: return "images";
    case task_kind::storyboard: return "storyboard";
    case task_kind::import: return "import";
    case task_kind::assemble: return "assemble";
  }
  return "unknown";
}

namespace {

/// The (clipped) video's length in seconds.
double clip_length(const task& t) {
  auto rest = t.src.duration_s - t.clip.start_s;
  if (t.clip.duration_s > 0 && t.clip.duration_s < rest)
    return t.clip.duration_s;
  return rest > 0 ? rest : 0;
}

/// Poster (a sensible frame, not a black first one), its 200 px thumbnail
/// and five screenshots spread over the video: a few frames of the source.
caf::expected<images_result> make_images(const task& t) {
  images_result r;
  const auto& dir = t.images_dir;
  std::error_code ec_;
  std::filesystem::create_directories(dir + "/screenshots", ec_);
  if (ec_)
    return make_error(ec::storage_error,
                      "cannot create " + dir + ": " + ec_.message());
  // The client's choice (clamped into the video), else a sensible frame.
  auto at = t.poster_at_s >= 0
              ? caf::expected<double>{t.clip.start_s
                                      + std::min(t.poster_at_s,
                                                 std::max(0.0, clip_length(t) - 0.1))}
              : codec::choose_poster_time(t.source, t.src, t.clip);
  if (!at)
    return at.error();
  r.poster_time_s = *at;
  if (auto err = codec::write_poster(t.source, t.src, *at, 1080,
                                     dir + "/poster.jpg"))
    return err;
  if (auto err = codec::write_poster(t.source, t.src, *at, 200,
                                     dir + "/poster_thumb.jpg"))
    return err;
  auto length = clip_length(t);
  for (int i = 1; i <= 5; ++i) {
    // Spread over the video, each on the keyframe before its spot (one
    // decoded picture per still).
    auto when = codec::keyframe_time_before(
      t.src, t.clip.start_s + length * (2 * i - 1) / 10.0,
      t.clip.start_s + length * (i - 1) / 5.0);
    if (auto err = codec::write_poster(t.source, t.src, when, 1080,
                                       dir + "/screenshots/" + std::to_string(i)
                                         + ".jpg"))
      return err;
    r.screenshots = i;
  }
  return r;
}

/// The storyboard is made from the lowest rung's MP4 (already clipped and
/// upright): it decodes every few seconds of the whole video, which costs a
/// fraction of decoding the source.
caf::expected<images_result> make_storyboard(const task& t) {
  images_result r;
  auto low = codec::probe(t.source);
  if (!low)
    return low.error();
  auto sb = codec::write_storyboard(t.source, *low, {},
                                    t.images_dir + "/sprite.jpg",
                                    t.images_dir + "/sprite.vtt", "sprite.jpg");
  if (!sb)
    return sb.error();
  r.storyboard = *sb;
  return r;
}

/// Downloads the source from its URL (storage/url_import.hpp): to a
/// temporary name first, so a cut-off import leaves no partial source.
caf::error import_source(const task& t, task_result& r) {
  import_options opts;
  opts.max_bytes = t.max_bytes;
  opts.timeout_s = t.timeout_s;
  opts.allow = t.allow;
  for (auto& h : t.headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos)
      continue;
    auto value = h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    opts.headers.emplace_back(h.substr(0, colon), value);
  }
  auto partial = t.source + ".partial";
  std::error_code ec_;
  std::filesystem::create_directories(
    std::filesystem::path{t.source}.parent_path(), ec_);
  auto got = import_url(t.url, partial, opts);
  if (!got)
    return got.error();
  std::filesystem::rename(partial, t.source, ec_);
  if (ec_)
    return make_error(ec::storage_error, "cannot store the import: "
                                           + ec_.message());
  r.bytes = got->bytes;
  r.sha256 = got->sha256;
  r.filename = got->filename;
  return {};
}

/// Joins the parts of an upload into the source, then removes them.
caf::error assemble_source(const task& t, task_result& r) {
  std::error_code ec_;
  // Joined before a crash (the parts are removed only after): done.
  bool joined = std::filesystem::exists(t.source, ec_)
                && !std::filesystem::exists(t.inputs.back(), ec_);
  if (t.inputs.size() == 1 || joined) { // one part: it is the source
    if (!joined)
      std::filesystem::rename(t.inputs.front(), t.source, ec_);
    if (ec_)
      return make_error(ec::storage_error, "cannot store the source: "
                                             + ec_.message());
    auto sum = file_sha256(t.source);
    if (!sum)
      return sum.error();
    r.sha256 = *sum;
    r.bytes = static_cast<int64_t>(std::filesystem::file_size(t.source, ec_));
    return {};
  }
  auto partial = t.source + ".partial";
  int out = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   0644);
  if (out < 0)
    return make_error(ec::storage_error, "cannot create " + partial);
  std::vector<char> buf(1 << 20);
  caf::error err;
  for (auto& in_path : t.inputs) {
    int in = ::open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
      err = make_error(ec::storage_error, "missing chunk file " + in_path);
      break;
    }
    ssize_t n;
    while ((n = ::read(in, buf.data(), buf.size())) > 0)
      if (::write(out, buf.data(), static_cast<size_t>(n)) != n) {
        err = make_error(ec::storage_error, "cannot write the source "
                                            "(disk full?)");
        break;
      }
    ::close(in);
    if (n < 0 && !err)
      err = make_error(ec::storage_error, "cannot read " + in_path);
    if (err)
      break;
  }
  if (!err && ::fsync(out) != 0)
    err = make_error(ec::storage_error, "cannot sync the source");
  ::close(out);
  if (!err) {
    std::filesystem::rename(partial, t.source, ec_);
    if (ec_)
      err = make_error(ec::storage_error, "cannot store the source");
  }
  if (err) {
    std::filesystem::remove(partial, ec_);
    return err;
  }
  auto sum = file_sha256(t.source);
  if (!sum)
    return sum.error();
  r.sha256 = *sum;
  r.bytes = static_cast<int64_t>(std::filesystem::file_size(t.source, ec_));
  for (auto& in_path : t.inputs)
    std::filesystem::remove(in_path, ec_);
  return {};
}

} // namespace

task_result execute(const task& t, const worker_config& cfg) {
  task_result r;
  r.id = t.id;
  r.video_id = t.video_id;
  r.kind = t.kind;
  r.index = t.index;
  auto fail = [&](const caf::error& err) { r.error = message_of(err); };
  // A task from another node may find the source missing here: fetch it
  // from where it is (verified by its digest), once; later tasks of the
  // same video find it.
  std::error_code ec_;
  if (t.origin.port != 0 && !std::filesystem::exists(t.source, ec_)
      && t.kind != task_kind::import && t.kind != task_kind::assemble) {
    auto got = cluster::fetch_blob(t.origin.host, t.origin.port,
                                   cfg.cluster_secret,
                                   "sources/" + t.video_id + "/source",
                                   t.source, t.source_sha256);
    if (!got) {
      fail(got.error());
      return r;
    }
  }
  switch (t.kind) {
    case task_kind::probe: {
      auto p = codec::probe(t.source);
      if (p)
        r.probe = std::move(*p);
      else
        fail(p.error());
      break;
    }
    case task_kind::chunk: {
      std::filesystem::create_directories(
        std::filesystem::path{t.chunk.outputs.front()}.parent_path(), ec_);
      auto s = codec::encode_chunk(t.chunk);
      if (!s) {
        fail(s.error());
        break;
      }
      r.stats = std::move(*s);
      // Digests, so the owner can verify outputs it fetches from here.
      for (auto& out : t.chunk.outputs) {
        auto sum = file_sha256(out);
        if (!sum) {
          fail(sum.error());
          break;
        }
        r.output_sha256.push_back(*sum);
      }
      break;
    }
    case task_kind::audio: {
      auto s = codec::encode_audio(t.source, t.src, t.audio_output, t.clip);
      if (!s)
        fail(s.error());
      break;
    }
    case task_kind::images:
    case task_kind::storyboard: {
      auto i = t.kind == task_kind::images ? make_images(t) : make_storyboard(t);
      if (i)
        r.images = std::move(*i);
      else
        fail(i.error());
      break;
    }
    case task_kind::import:
    case task_kind::assemble: {
      auto err = t.kind == task_kind::import ? import_source(t, r)
                                             : assemble_source(t, r);
      if (err)
        fail(err);
      break;
    }
  }
  return r;
}

worker_actor::behavior_type
worker(worker_actor::stateful_pointer<worker_state> self, worker_config cfg) {
  return {
    [cfg](run_atom, const task& t) -> caf::result<task_result> {
      log::debug("task.start", {{"video", t.video_id},
                                {"kind", to_string(t.kind)},
                                {"index", std::to_string(t.index)}});
      auto start = std::chrono::steady_clock::now();
      auto r = execute(t, cfg);
      std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      log::debug("task.end", {{"video", t.video_id},
                              {"kind", to_string(t.kind)},
                              {"index", std::to_string(t.index)},
                              {"seconds", std::to_string(took.count())}});
      return r;
    },
  };
}

} // namespace reel
