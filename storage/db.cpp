#include "storage/db.hpp"

#include "ops/util.hpp"
#include "storage/keys.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <filesystem>

namespace reel {

namespace {

const char* family_names[] = {
    "videos", "video_index", "keys",   "folders",       "meta",
    "tokens", "webhooks",    "outbox", "video_numbers", "client_keys",
    "tombstones"};
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
  if (auto e = result->index_video_ids())
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

namespace {

/// The number a record is indexed and stored with (legacy_number_of_id's
/// for one without).
uint64_t number_of(const video_record& v) {
  return v.number != 0 ? v.number : legacy_number_of_id(v.id);
}

bool has_number(const video_record& v, uint64_t n) {
  return number_of(v) == n;
}

bool has_key(const video_record& v, const std::string& key) {
  return !v.info.client_key.empty() &&
         keys::client_key(v.tenant, v.info.client_key) == key;
}

} // namespace

caf::expected<std::optional<std::string>>
db::indexed(cf family, const std::string& key,
            const std::function<bool(const video_record&)>& has) {
  using result = std::optional<std::string>;
  auto id = get(family, key);
  if (!id || !*id)
    return id;
  auto v = get_video(**id);
  if (!v)
    return v.error();
  if (!*v || !has(**v))
    return result{};
  return id;
}

caf::error db::put_video(const video_record& rec,
                          const std::vector<row_write>& with) {
  // The tombstone check and the write are one step for this id (a
  // deletion on another thread waits, or comes after).
  std::lock_guard<std::mutex> one_writer{video_write_mtx_[stripe(rec.id)]};
  auto gone = deleted_at(rec.id);
  if (!gone)
    return gone.error();
  if (*gone)
    return make_error(ec::not_found, "video " + rec.id + " was deleted");
  // A stale writer (an owner whose epoch was raised by another node) is
  // refused: versions only move forward.
  auto stored = get_video(rec.id);
  if (!stored)
    return stored.error();
  if (*stored && compare_versions(**stored, rec) > 0)
    return make_error(ec::conflict,
                      "video " + rec.id + " has a newer version (epoch "
                        + std::to_string((*stored)->epoch) + ", version "
                        + std::to_string((*stored)->version) + ")");
  std::optional<video_record> numbered;
  if (rec.number == 0) { // a record of an older release
    numbered = rec;
    numbered->number = number_of(rec);
  }
  auto& v = numbered ? *numbered : rec;
  // The entries this record should have, unless another video holds them.
  std::vector<std::pair<cf, std::string>> entries;
  auto claim = [&](cf family, const std::string& key,
                   const std::function<bool(const video_record&)>& has) {
    auto named = get(family, key);
    if (!named)
      return named.error();
    if (*named && **named != v.id) { // another video's, unless stale
      auto holder = indexed(family, key, has);
      if (!holder)
        return holder.error();
      if (*holder)
        return caf::error{};
    }
    entries.emplace_back(family, key);
    return caf::error{};
  };
  auto n = v.number;
  if (auto err = claim(cf::video_numbers, keys::video_number(n),
                       [n](auto& x) { return has_number(x, n); }))
    return err;
  if (!v.info.client_key.empty()) {
    auto key = keys::client_key(v.tenant, v.info.client_key);
    if (auto err = claim(cf::client_keys, key,
                         [&key](auto& x) { return has_key(x, key); }))
      return err;
  }
  rocksdb::WriteBatch batch;
  auto st = batch.Put(handles_[static_cast<int>(cf::videos)], keys::video(v.id),
                      encode(v));
  if (st.ok())
    st = batch.Put(handles_[static_cast<int>(cf::video_index)],
                   keys::video_index(v.tenant, v.created_ms, v.id), "");
  for (auto& [family, key] : entries)
    if (st.ok())
      st = batch.Put(handles_[static_cast<int>(family)], key, v.id);
  for (auto& row : with)
    if (st.ok())
      st = batch.Put(handles_[static_cast<int>(row.family)], row.key,
                     row.value);
  if (!st.ok())
    return to_error(st);
  return to_error(db_->Write(synced(), &batch));
}

caf::error db::delete_video(const video_record& v) {
  // Index entries go with the record when they name it (a stale record
  // may carry a number or key that names another video by now).
  std::vector<std::pair<cf, std::string>> entries{
      {cf::video_numbers, keys::video_number(number_of(v))}};
  if (!v.info.client_key.empty())
    entries.emplace_back(cf::client_keys,
                         keys::client_key(v.tenant, v.info.client_key));
  std::lock_guard<std::mutex> one_writer{video_write_mtx_[stripe(v.id)]};
  rocksdb::WriteBatch batch;
  auto st = batch.Put(handles_[static_cast<int>(cf::tombstones)],
                      keys::video(v.id), std::to_string(now_ms()));
  if (st.ok())
    st = batch.Delete(handles_[static_cast<int>(cf::videos)],
                      keys::video(v.id));
  if (st.ok())
    st = batch.Delete(handles_[static_cast<int>(cf::video_index)],
                      keys::video_index(v.tenant, v.created_ms, v.id));
  for (auto& [family, key] : entries) {
    auto id = get(family, key);
    if (!id)
      return id.error();
    if (st.ok() && *id && **id == v.id)
      st = batch.Delete(handles_[static_cast<int>(family)], key);
  }
  if (!st.ok())
    return to_error(st);
  return to_error(db_->Write(synced(), &batch));
}

caf::expected<std::optional<std::string>> db::video_by_number(uint64_t number) {
  if (number == 0)
    return std::optional<std::string>{};
  return indexed(cf::video_numbers, keys::video_number(number),
                 [number](auto& v) { return has_number(v, number); });
}

caf::expected<std::optional<std::string>>
db::video_by_client_key(const std::string& tenant, const std::string& key) {
  if (key.empty())
    return std::optional<std::string>{};
  auto k = keys::client_key(tenant, key);
  return indexed(cf::client_keys, k, [&k](auto& v) { return has_key(v, k); });
}

caf::error db::index_video_ids() {
  constexpr const char* done = "video_ids_indexed";
  auto marked = get(cf::meta, done);
  if (!marked)
    return marked.error();
  if (*marked)
    return {};
  // Records of releases before random ids: their number comes from their
  // id, their key from info.client_key; each is written again with its
  // number and its index entries.
  std::vector<video_record> records;
  auto err = scan(cf::videos, "", [&](auto&, auto& bytes) {
    video_record v;
    if (!decode(bytes, v)) // a corrupt record stays as it is
      records.push_back(std::move(v));
    return true;
  });
  if (err)
    return err;
  for (auto& v : records)
    if (auto e = put_video(v))
      return e;
  return put(cf::meta, done, std::to_string(records.size()));
}

caf::expected<std::optional<int64_t>> db::deleted_at(const std::string& id) {
  auto raw = get(cf::tombstones, keys::video(id));
  if (!raw)
    return raw.error();
  if (!*raw)
    return std::optional<int64_t>{};
  int64_t ms = 0;
  try {
    ms = std::stoll(**raw);
  } catch (const std::exception&) {
    ms = 0; // unreadable: still a tombstone
  }
  return std::optional<int64_t>{ms};
}

caf::expected<size_t> db::drop_tombstones(int64_t before_ms) {
  std::vector<std::string> old;
  auto err = scan(cf::tombstones, "", [&](auto& key, auto& value) {
    int64_t ms = 0;
    try {
      ms = std::stoll(value);
    } catch (const std::exception&) {
      ms = 0;
    }
    if (ms < before_ms)
      old.push_back(key);
    return true;
  });
  if (err)
    return err;
  for (auto& key : old)
    if (auto e = del(cf::tombstones, key))
      return e;
  return old.size();
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
