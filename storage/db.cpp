#include "storage/db.hpp"

#include "storage/keys.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <filesystem>

namespace reel {

namespace {

const char* family_names[] = {"videos", "video_index", "keys", "folders",
                              "meta", "tokens", "webhooks", "outbox"};
static_assert(sizeof(family_names) / sizeof(family_names[0])
              == static_cast<size_t>(cf::count_));

caf::error to_error(const rocksdb::Status& st) {
  if (st.ok())
    return {};
  return make_error(ec::storage_error, "rocksdb: " + st.ToString());
}

rocksdb::WriteOptions synced() {
  rocksdb::WriteOptions w;
  w.sync = true; // a transition is on disk before it is acted on
  return w;
}

} // namespace

db::~db() {
  close();
}

void db::close() {
  for (auto* h : handles_)
    if (db_)
      db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  handles_.clear();
  if (db_)
    db_->Close().PermitUncheckedError(); // closing: nothing left to do
  db_.reset();
}

caf::expected<std::unique_ptr<db>> db::open(const std::string& dir) {
  std::error_code err;
  std::filesystem::create_directories(dir, err);
  if (err)
    return make_error(ec::storage_error,
                      "cannot create " + dir + ": " + err.message());
  std::unique_ptr<db> result{new db};
  if (auto e = result->open_dir(dir))
    return e;
  return result;
}

caf::error db::open_dir(const std::string& dir) {
  rocksdb::DBOptions opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  opts.max_background_jobs = 2;
  opts.keep_log_file_num = 4;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  rocksdb::ColumnFamilyOptions cf_opts;
  cf_opts.OptimizeForSmallDb();
  families.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_opts);
  for (auto* name : family_names)
    families.emplace_back(name, cf_opts);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(opts, dir, families, &handles, &raw);
  if (!st.ok())
    return to_error(st);
  dir_ = dir;
  db_.reset(raw);
  // handles[0] is the default family, which we do not use.
  db_->DestroyColumnFamilyHandle(handles[0]).PermitUncheckedError();
  handles_.assign(handles.begin() + 1, handles.end());
  return {};
}

caf::error db::scrub(const std::vector<cf>& families) {
  rocksdb::CompactRangeOptions opts;
  opts.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto family : families)
    if (auto err = to_error(db_->CompactRange(
            opts, handles_[static_cast<int>(family)], nullptr, nullptr)))
      return err;
  close();
  return open_dir(dir_);
}

caf::error db::put(cf family, const std::string& key,
                   const std::string& value) {
  return to_error(db_->Put(synced(), handles_[static_cast<int>(family)], key,
                           value));
}

caf::expected<std::optional<std::string>> db::get(cf family,
                                                  const std::string& key) {
  std::string value;
  auto st = db_->Get(rocksdb::ReadOptions{}, handles_[static_cast<int>(family)],
                     key, &value);
  if (st.IsNotFound())
    return std::optional<std::string>{};
  if (!st.ok())
    return to_error(st);
  return std::optional<std::string>{std::move(value)};
}

caf::error db::del(cf family, const std::string& key) {
  return to_error(
    db_->Delete(synced(), handles_[static_cast<int>(family)], key));
}

caf::error
db::scan(cf family, const std::string& prefix,
         const std::function<bool(const std::string&, const std::string&)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it{
    db_->NewIterator(rocksdb::ReadOptions{}, handles_[static_cast<int>(family)])};
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto k = it->key();
    if (!k.starts_with(prefix))
      break;
    if (!fn(k.ToString(), it->value().ToString()))
      break;
  }
  return to_error(it->status());
}

caf::error db::put_video(const video_record& v,
                          const std::vector<row_write>& with) {
  rocksdb::WriteBatch batch;
  auto st = batch.Put(handles_[static_cast<int>(cf::videos)], keys::video(v.id),
                      encode(v));
  if (st.ok())
    st = batch.Put(handles_[static_cast<int>(cf::video_index)],
                   keys::video_index(v.tenant, v.created_ms, v.id), "");
  for (auto& row : with)
    if (st.ok())
      st = batch.Put(handles_[static_cast<int>(row.family)], row.key,
                     row.value);
  if (!st.ok())
    return to_error(st);
  return to_error(db_->Write(synced(), &batch));
}

caf::error db::delete_video(const video_record& v) {
  rocksdb::WriteBatch batch;
  auto st = batch.Delete(handles_[static_cast<int>(cf::videos)],
                         keys::video(v.id));
  if (st.ok())
    st = batch.Delete(handles_[static_cast<int>(cf::video_index)],
                      keys::video_index(v.tenant, v.created_ms, v.id));
  if (!st.ok())
    return to_error(st);
  return to_error(db_->Write(synced(), &batch));
}

caf::expected<std::optional<video_record>> db::get_video(const std::string& id,
                                                         uint64_t* version) {
  auto raw = get(cf::videos, keys::video(id));
  if (!raw)
    return raw.error();
  if (!*raw)
    return std::optional<video_record>{};
  if (version)
    *version = std::hash<std::string>{}(**raw);
  // Decoding a record's JSON is most of a read's cost: the last decoded
  // form of each video is kept with the bytes it came from, and used while
  // the stored bytes are the same (so a read never sees an old record).
  {
    std::lock_guard<std::mutex> guard{decoded_mtx_};
    auto i = decoded_.find(id);
    if (i != decoded_.end() && i->second.first == **raw)
      return std::optional<video_record>{i->second.second};
  }
  video_record v;
  if (auto err = decode(**raw, v))
    return err;
  std::lock_guard<std::mutex> guard{decoded_mtx_};
  if (decoded_.size() >= max_decoded)
    decoded_.clear();
  decoded_[id] = {std::move(**raw), v};
  return std::optional<video_record>{std::move(v)};
}

int64_t db::int_property(const std::string& name) {
  uint64_t total = 0;
  for (auto* h : handles_) {
    uint64_t n = 0;
    if (db_->GetIntProperty(h, name, &n))
      total += n;
  }
  return static_cast<int64_t>(total);
}

int64_t db::size_bytes() {
  uint64_t total = 0;
  for (auto* h : handles_) {
    uint64_t n = 0;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &n))
      total += n;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kCurSizeAllMemTables, &n))
      total += n;
  }
  return static_cast<int64_t>(total);
}

} // namespace reel
