#include "actors/worker.hpp"

#include "actors/wire.hpp"

#include "cluster/data_plane.hpp"
#include "cluster/view.hpp"
#include "net/url_import.hpp"
#include "ops/log.hpp"
#include "ops/util.hpp"
#include "storage/blob_store.hpp"

#include <caf/all.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <chrono>
#include <filesystem>

namespace reel {

const char* to_string(task_kind k) {
  switch (k) {
  case task_kind::probe:
    return "probe";
  case task_kind::chunk:
    return "chunk";
  case task_kind::audio:
    return "audio";
  case task_kind::images:
    return "images";
  case task_kind::storyboard:
    return "storyboard";
  case task_kind::import:
    return "import";
  case task_kind::assemble:
    return "assemble";
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
caf::expected<images_result> make_images(const task& t, const task_files& f) {
  images_result r;
  const auto& dir = f.images_dir;
  const auto& source = f.source;
  std::error_code ec_;
  std::filesystem::create_directories(dir + "/screenshots", ec_);
  if (ec_)
    return file_error(ec_.value(), "cannot create " + dir);
  // The client's choice (clamped into the video), else a sensible frame.
  auto at =
      t.poster_at_s >= 0
          ? caf::expected<double>{t.clip.start_s +
                                  std::min(t.poster_at_s,
                                           std::max(0.0, clip_length(t) - 0.1))}
          : codec::choose_poster_time(source, t.src, t.clip);
  if (!at)
    return at.error();
  r.poster_time_s = *at;
  if (auto err =
          codec::write_poster(source, t.src, *at, 1080, dir + "/poster.jpg"))
    return err;
  if (auto err = codec::write_poster(source, t.src, *at, 200,
                                     dir + "/poster_thumb.jpg"))
    return err;
  auto length = clip_length(t);
  for (int i = 1; i <= 5; ++i) {
    // Spread over the video, each on the keyframe before its spot (one
    // decoded picture per still).
    auto when = codec::keyframe_time_before(
        t.src, t.clip.start_s + length * (2 * i - 1) / 10.0,
        t.clip.start_s + length * (i - 1) / 5.0);
    if (auto err = codec::write_poster(source, t.src, when, 1080,
                                       dir + "/screenshots/" +
                                           std::to_string(i) + ".jpg"))
      return err;
    r.screenshots = i;
  }
  return r;
}

/// The storyboard is made from the lowest rung's MP4 (already clipped and
/// upright): it decodes every few seconds of the whole video, which costs a
/// fraction of decoding the source.
caf::expected<images_result> make_storyboard(const task_files& f) {
  images_result r;
  auto low = codec::probe(f.source);
  if (!low)
    return low.error();
  auto sb =
      codec::write_storyboard(f.source, *low, {}, f.images_dir + "/sprite.jpg",
                              f.images_dir + "/sprite.vtt", "sprite.jpg");
  if (!sb)
    return sb.error();
  r.storyboard = *sb;
  return r;
}

/// Downloads the source from its URL (net/url_import.hpp): to a
/// temporary name first, so a cut-off import leaves no partial source.
caf::error import_source(const task& t, const task_files& f, task_result& r) {
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
  auto partial = f.source + ".partial";
  std::error_code ec_;
  std::filesystem::create_directories(
      std::filesystem::path{f.source}.parent_path(), ec_);
  auto got = import_url(t.url, partial, opts);
  if (!got)
    return got.error();
  std::filesystem::rename(partial, f.source, ec_);
  if (ec_)
    return file_error(ec_.value(), "cannot store the import");
  r.bytes = got->bytes;
  r.sha256 = got->sha256;
  r.filename = got->filename;
  return {};
}

/// Joins the parts of an upload into the source, then removes them.
caf::error assemble_source(const task_files& t, task_result& r) {
  std::error_code ec_;
  // Joined before a crash (the parts are removed only after): done.
  bool joined = std::filesystem::exists(t.source, ec_) &&
                !std::filesystem::exists(t.inputs.back(), ec_);
  if (t.inputs.size() == 1 || joined) { // one part: it is the source
    if (!joined)
      std::filesystem::rename(t.inputs.front(), t.source, ec_);
    if (ec_)
      return file_error(ec_.value(), "cannot store the source");
    auto sum = file_sha256(t.source);
    if (!sum)
      return sum.error();
    r.sha256 = *sum;
    r.bytes = static_cast<int64_t>(std::filesystem::file_size(t.source, ec_));
    return {};
  }
  auto partial = t.source + ".partial";
  int out =
      ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0)
    return file_error(errno, "cannot create " + partial);
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
        err = file_error(errno, "cannot write the source");
        break;
      }
    ::close(in);
    if (n < 0 && !err)
      err = file_error(errno, "cannot read " + in_path);
    if (err)
      break;
  }
  if (!err && ::fsync(out) != 0)
    err = file_error(errno, "cannot sync the source");
  ::close(out);
  if (!err) {
    std::filesystem::rename(partial, t.source, ec_);
    if (ec_)
      err = file_error(ec_.value(), "cannot store the source");
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

caf::error check_task(const task& t, bool from_peer) {
  if (auto err = wire::check(t, from_peer))
    return make_error(ec::invalid_argument, "task refused: " + message_of(err));
  return {};
}

caf::expected<task_files> files_of(const blob_store& blobs, const task& t) {
  if (auto err = check_task(t, false))
    return err;
  task_files f;
  const auto& id = t.video_id;
  const auto& tag = t.output_tag;
  f.source = blobs.source_path(id);
  switch (t.kind) {
  case task_kind::probe:
    break;
  case task_kind::chunk:
    for (auto& r : t.rungs)
      f.outputs.push_back(blobs.chunk_file(id, t.index, r.name) + tag);
    break;
  case task_kind::audio:
    f.audio = blobs.audio_file(id) + tag;
    break;
  case task_kind::images:
    f.images_dir = blobs.images_dir(id) + tag;
    break;
  case task_kind::storyboard:
    f.source = blobs.media_dir(id) + "/" + t.rendition;
    f.images_dir = blobs.media_dir(id) + tag;
    break;
  case task_kind::import:
    f.source += tag;
    break;
  case task_kind::assemble:
    for (auto& p : t.parts)
      f.inputs.push_back(blobs.source_file(id, part_file(p)));
    if (f.inputs.empty())
      return make_error(ec::invalid_argument, "nothing to assemble");
    break;
  }
  return f;
}

task_result execute(const task& t, const worker_config& cfg) {
  task_result r;
  r.id = t.id;
  r.video_id = t.video_id;
  r.kind = t.kind;
  r.index = t.index;
  auto fail = [&](const caf::error& err) {
    r.error = message_of(err);
    r.code = code_of(err);
    if (r.code == ec::none)
      r.code = ec::unspecified;
  };
  if (!cfg.blobs) {
    fail(make_error(ec::unavailable, "the worker has no data directory"));
    return r;
  }
  auto files = files_of(*cfg.blobs, t);
  if (!files) {
    fail(files.error());
    return r;
  }
  auto& f = *files;
  // A task from another node may find the source missing here: fetch it
  // from the node that has it (verified by its digest), once; later tasks
  // of the same video find it. The node is named by id and looked up in
  // this node's own view of the cluster.
  std::error_code ec_;
  if (!t.origin_node.empty() && cfg.view && cfg.link &&
      !std::filesystem::exists(f.source, ec_) && t.kind != task_kind::import &&
      t.kind != task_kind::assemble && t.kind != task_kind::storyboard) {
    auto origin = cfg.view->find(t.origin_node);
    if (!origin) {
      fail(make_error(ec::unavailable, "the source is on " + t.origin_node +
                                           ", which this node does not know"));
      return r;
    }
    auto got = cluster::fetch_blob(
        {origin->node_id, origin->cluster_host, origin->data_port}, *cfg.link,
        {cluster::blob_area::source, t.video_id, "source"}, f.source,
        t.source_sha256);
    if (!got) {
      fail(got.error());
      return r;
    }
  }
  switch (t.kind) {
  case task_kind::probe: {
    auto p = codec::probe(f.source);
    if (p)
      r.probe = std::move(*p);
    else
      fail(p.error());
    break;
  }
  case task_kind::chunk: {
    std::filesystem::create_directories(
        std::filesystem::path{f.outputs.front()}.parent_path(), ec_);
    codec::chunk_job job{f.source, t.src,     t.part,
                         t.rungs,  f.outputs, t.options};
    auto s = codec::encode_chunk(job);
    if (!s) {
      fail(s.error());
      break;
    }
    r.stats = std::move(*s);
    // Digests, so the owner can verify outputs it fetches from here.
    for (auto& out : f.outputs) {
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
    std::filesystem::create_directories(
        std::filesystem::path{f.audio}.parent_path(), ec_);
    auto s = codec::encode_audio(f.source, t.src, f.audio, t.clip);
    if (!s)
      fail(s.error());
    break;
  }
  case task_kind::images:
  case task_kind::storyboard: {
    auto i =
        t.kind == task_kind::images ? make_images(t, f) : make_storyboard(f);
    if (i)
      r.images = std::move(*i);
    else
      fail(i.error());
    break;
  }
  case task_kind::import:
  case task_kind::assemble: {
    auto err = t.kind == task_kind::import ? import_source(t, f, r)
                                           : assemble_source(f, r);
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
        std::chrono::duration<double> took =
            std::chrono::steady_clock::now() - start;
        log::debug("task.end", {{"video", t.video_id},
                                {"kind", to_string(t.kind)},
                                {"index", std::to_string(t.index)},
                                {"seconds", std::to_string(took.count())}});
        return r;
      },
  };
}

} // namespace reel
