#include "storage/blob_store.hpp"

#include "ops/util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

namespace fs = std::filesystem;

namespace reel {

namespace {

caf::error fs_error(const std::string& what, const std::error_code& err) {
  return make_error(ec::storage_error, what + ": " + err.message());
}

bool safe_segment(const std::string& s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 128)
    return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok)
      return false;
  }
  return true;
}

} // namespace

blob_store::blob_store(std::string data_dir) : root_(std::move(data_dir)) {
}

caf::error blob_store::init() {
  for (auto* sub : {"sources", "work", "media", "tmp"}) {
    std::error_code err;
    fs::create_directories(fs::path{root_} / sub, err);
    if (err)
      return fs_error("cannot create " + root_ + "/" + sub, err);
  }
  return {};
}

namespace {

/// The directory name of video `id` in an area: the id itself when it is a
/// UUID, else a name no directory has (a UUID never contains '!').
std::string video_dir_name(const std::string& id) {
  return is_uuid(id) ? id : std::string{"!not-a-video-id"};
}

} // namespace

std::string blob_store::source_path(const std::string& id) const {
  return root_ + "/sources/" + video_dir_name(id) + "/source";
}

std::string blob_store::work_dir(const std::string& id) const {
  return root_ + "/work/" + video_dir_name(id);
}

std::string blob_store::media_dir(const std::string& id) const {
  return root_ + "/media/" + video_dir_name(id);
}

std::string blob_store::chunk_file(const std::string& id, int32_t index,
                                   const std::string& rung) const {
  char name[32];
  std::snprintf(name, sizeof(name), "/c%05d-", index);
  return work_dir(id) + name + (safe_segment(rung) ? rung : "!") + ".pkt";
}

std::string blob_store::audio_file(const std::string& id) const {
  return work_dir(id) + "/audio.pkt";
}

std::string blob_store::images_dir(const std::string& id) const {
  return work_dir(id) + "/images";
}

std::string blob_store::new_tmp_path() const {
  return root_ + "/tmp/upload-" + make_uuid();
}

std::string blob_store::source_file(const std::string& id,
                                    const std::string& name) const {
  return root_ + "/sources/" + video_dir_name(id) + "/"
         + (safe_segment(name) ? name : std::string{"!"});
}

caf::error blob_store::adopt_source(const std::string& tmp,
                                   const std::string& id,
                                   const std::string& name) {
  if (!is_uuid(id) || !safe_segment(name))
    return make_error(ec::invalid_argument, "not a video's source file");
  auto dst = source_file(id, name);
  std::error_code err;
  fs::create_directories(fs::path{dst}.parent_path(), err);
  if (err)
    return fs_error("cannot create source directory", err);
  if (auto e = fsync_path(tmp))
    return e;
  fs::rename(tmp, dst, err);
  if (err)
    return fs_error("cannot store source", err);
  return fsync_path(fs::path{dst}.parent_path().string());
}

caf::expected<std::string> blob_store::media_file(const std::string& id,
                                                  const std::string& rel) const {
  if (!is_uuid(id))
    return make_error(ec::not_found, "no such video");
  std::string path = media_dir(id);
  size_t start = 0;
  while (start <= rel.size()) {
    auto end = rel.find('/', start);
    if (end == std::string::npos)
      end = rel.size();
    auto seg = rel.substr(start, end - start);
    if (!safe_segment(seg))
      return make_error(ec::not_found, "no such file");
    path += "/" + seg;
    start = end + 1;
  }
  std::error_code err;
  if (!fs::is_regular_file(path, err))
    return make_error(ec::not_found, "no such file");
  return path;
}

caf::expected<std::vector<file_record>>
blob_store::index_media(const std::string& id) const {
  std::vector<file_record> out;
  std::error_code err;
  auto base = fs::path{media_dir(id)};
  for (auto it = fs::recursive_directory_iterator(base, err);
       !err && it != fs::recursive_directory_iterator(); it.increment(err)) {
    if (!it->is_regular_file())
      continue;
    out.push_back(file_record{fs::relative(it->path(), base).string(),
                              static_cast<int64_t>(it->file_size()), {}});
  }
  if (err)
    return fs_error("cannot list media of " + id, err);
  // Digests on two threads: this runs once per video, at its very end, when
  // the other core is often idle.
  caf::error failure;
  std::mutex mtx;
  auto hash_from = [&](size_t first) {
    for (size_t i = first; i < out.size(); i += 2) {
      auto sum = file_sha256((base / out[i].name).string());
      std::lock_guard<std::mutex> guard{mtx};
      if (!sum) {
        failure = sum.error();
        return;
      }
      out[i].sha256 = std::move(*sum);
    }
  };
  std::thread other{hash_from, size_t{1}};
  hash_from(0);
  other.join();
  if (failure)
    return failure;
  std::sort(out.begin(), out.end(),
            [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

caf::error blob_store::sync_media(const std::string& id) const {
  // One syncfs for the file system instead of an fsync per file.
  return syncfs_path(media_dir(id));
}

void blob_store::remove_video(const std::string& id) const {
  if (!is_uuid(id))
    return;
  std::error_code err; // best effort: a missing directory is fine
  fs::remove_all(fs::path{source_path(id)}.parent_path(), err);
  fs::remove_all(work_dir(id), err);
  fs::remove_all(media_dir(id), err);
}

void blob_store::clean_tmp() const {
  std::error_code err;
  for (auto& e : fs::directory_iterator(root_ + "/tmp", err))
    fs::remove_all(e.path(), err);
}

int64_t blob_store::used_bytes() const {
  int64_t total = 0;
  std::error_code err;
  for (auto* sub : {"sources", "work", "media"})
    for (auto it = fs::recursive_directory_iterator(root_ + "/" + sub, err);
         !err && it != fs::recursive_directory_iterator(); it.increment(err))
      if (it->is_regular_file(err))
        total += static_cast<int64_t>(it->file_size(err));
  return total;
}

namespace {

/// The modification time of `path` (not following a link), ms since the
/// epoch; 0 if it cannot be read.
int64_t mtime_ms(const fs::path& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0)
    return 0;
  return int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/// `path` and everything below it: file bytes and the newest mtime.
blob_dir measure(const fs::path& path) {
  blob_dir d;
  d.newest_ms = mtime_ms(path);
  std::error_code err;
  if (!fs::is_directory(fs::symlink_status(path, err))) {
    d.bytes = static_cast<int64_t>(fs::file_size(path, err));
    if (err)
      d.bytes = 0;
    return d;
  }
  for (auto it = fs::recursive_directory_iterator(path, err);
       !err && it != fs::recursive_directory_iterator(); it.increment(err)) {
    d.newest_ms = std::max(d.newest_ms, mtime_ms(it->path()));
    std::error_code size_err;
    if (it->is_regular_file(size_err))
      d.bytes += static_cast<int64_t>(it->file_size(size_err));
  }
  return d;
}

} // namespace

gc_count blob_store::remove_tmp_before(int64_t before_ms) const {
  gc_count out;
  std::error_code err;
  std::vector<fs::path> old;
  for (auto& e : fs::directory_iterator(root_ + "/tmp", err))
    if (measure(e.path()).newest_ms < before_ms)
      old.push_back(e.path());
  for (auto& path : old) {
    auto d = measure(path);
    std::error_code gone;
    fs::remove_all(path, gone);
    if (!gone) {
      ++out.count;
      out.bytes += d.bytes;
    }
  }
  return out;
}

std::vector<blob_dir> blob_store::video_dirs() const {
  std::vector<blob_dir> out;
  for (auto* area : {"sources", "work", "media"}) {
    std::error_code err;
    for (auto& e : fs::directory_iterator(root_ + "/" + area, err)) {
      auto d = measure(e.path());
      d.area = area;
      d.name = e.path().filename().string();
      out.push_back(std::move(d));
    }
  }
  return out;
}

gc_count blob_store::remove_dir(const blob_dir& d) const {
  if (d.name.empty() || d.name == "." || d.name == ".."
      || d.name.find('/') != std::string::npos)
    return {};
  std::error_code err;
  fs::remove_all(fs::path{root_} / d.area / d.name, err);
  if (err)
    return {};
  return gc_count{1, d.bytes};
}

gc_count blob_store::remove_parts(const std::string& id) const {
  gc_count out;
  std::error_code err;
  std::vector<fs::path> parts;
  for (auto& e : fs::directory_iterator(
         fs::path{source_path(id)}.parent_path(), err))
    if (e.path().filename().string().rfind("part-", 0) == 0)
      parts.push_back(e.path());
  for (auto& path : parts) {
    auto bytes = measure(path).bytes;
    std::error_code gone;
    if (fs::remove(path, gone) && !gone) {
      ++out.count;
      out.bytes += bytes;
    }
  }
  return out;
}

caf::error syncfs_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return make_error(ec::storage_error, "cannot open " + path + " to sync");
  int rc = ::syncfs(fd);
  ::close(fd);
  if (rc != 0)
    return make_error(ec::storage_error, "syncfs failed for " + path);
  return {};
}

caf::error fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    return make_error(ec::storage_error, "cannot open " + path + " to sync");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0)
    return make_error(ec::storage_error, "fsync failed for " + path);
  return {};
}

} // namespace reel
