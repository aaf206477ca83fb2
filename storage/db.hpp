#pragma once

// The node's metadata store: one RocksDB with a column family per kind of
// record. Keys are built only in storage/keys.hpp. Thread-safe (RocksDB is).

#include "ops/error.hpp"
#include "storage/records.hpp"

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <optional>
#include <string>
#include <vector>

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
} // namespace rocksdb

namespace reel {

enum class cf : int {
  videos,      // video id -> video_record
  video_index, // tenant, inverted created time, id -> ""
  keys,        // SHA-256 of an API key -> api_key_record
  folders,     // tenant, path -> folder_record
  meta,        // node-wide settings
  tokens,      // kind, token -> token records (upload tokens)
  webhooks,    // tenant, id -> webhook_record (on every node)
  outbox,      // delivery id -> delivery_record (on the node that made it)
  video_numbers, // a video's integer id (Gcore's) -> video id
  client_keys,   // tenant, the client's key (Flare's s3Key) -> video id
  tombstones,    // video id -> when it was deleted (a deleted video's mark)
  count_       // not a family
};

class db {
public:
  ~db();
  db(const db&) = delete;
  db& operator=(const db&) = delete;

  /// Opens (creating if needed) the store under `dir`.
  static caf::expected<std::unique_ptr<db>> open(const std::string& dir);

  caf::error put(cf family, const std::string& key, const std::string& value);
  caf::expected<std::optional<std::string>> get(cf family,
                                                const std::string& key);
  caf::error del(cf family, const std::string& key);

  /// Calls `fn(key, value)` for every key with `prefix`, in key order, until
  /// it returns false.
  caf::error scan(cf family, const std::string& prefix,
                  const std::function<bool(const std::string&,
                                           const std::string&)>& fn);

  /// A row written together with a video record.
  struct row_write {
    cf family;
    std::string key;
    std::string value;
  };

  /// Writes a video record, its index entries and `with` (e.g. the webhook
  /// deliveries of the transition it records) in one synced batch: all of
  /// them or none. The index entries: its place in the tenant's list, its
  /// number (video_record::number; a record without one gets
  /// legacy_number_of_id's) and its client's key. A number or key that
  /// names another stored video (which still has it) stays with that
  /// video: a record cannot take another's over.
  caf::error put_video(const video_record& v,
                       const std::vector<row_write>& with = {});
  /// Removes a video record and its index entries atomically (those that
  /// name it), and leaves the video's tombstone: from then on put_video
  /// refuses every record of that id (ec::gone), whoever sends it, so a
  /// node that missed the deletion cannot bring the video back.
  caf::error delete_video(const video_record& v);
  /// When video `id` was deleted (its tombstone), nothing if it was not.
  caf::expected<std::optional<int64_t>> deleted_at(const std::string& id);
  /// Tombstones older than `before_ms` removed (garbage collection: they
  /// must outlive any partition); answers how many.
  caf::expected<size_t> drop_tombstones(int64_t before_ms);
  /// The id of the video whose integer id is `number`, nothing when there
  /// is none.
  caf::expected<std::optional<std::string>> video_by_number(uint64_t number);
  /// The id of the video of `tenant` a client named `key` (Flare's s3Key),
  /// nothing when there is none.
  caf::expected<std::optional<std::string>>
  video_by_client_key(const std::string& tenant, const std::string& key);
  /// `version`, when given, is set to a digest of the stored bytes: equal
  /// versions mean the same record (for caches of what is made from it).
  caf::expected<std::optional<video_record>> get_video(const std::string& id,
                                                       uint64_t* version = nullptr);

  /// Compacts the families whole, down to their last level, then closes
  /// and reopens the store (its list of files keeps the first and last key
  /// of files long gone until it is written afresh at open): what was
  /// overwritten or deleted in them is gone from every file afterwards
  /// (rows rewritten so that no secret stays in plain). Only while nothing
  /// else uses the store (a node's start).
  caf::error scrub(const std::vector<cf>& families);

  /// Approximate on-disk size of the store, in bytes.
  int64_t size_bytes();

  /// A RocksDB integer property (e.g. "rocksdb.compaction-pending"),
  /// summed over the column families.
  int64_t int_property(const std::string& name);

private:
  db() = default;
  caf::error open_dir(const std::string& dir);
  /// Once per store (marked in meta): the number and client key indexes
  /// of the records written before they existed.
  caf::error index_video_ids();
  /// The id an index entry names, when that video is stored and still
  /// has the number or key (`has`); nothing otherwise (a stale entry).
  caf::expected<std::optional<std::string>>
  indexed(cf family, const std::string& key,
          const std::function<bool(const video_record&)>& has);
  void close();
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  // Decoded video records by id, with the stored bytes they came from.
  static constexpr size_t max_decoded = 4096;
  std::mutex decoded_mtx_;
  std::unordered_map<std::string, std::pair<std::string, video_record>> decoded_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  // A video's writes and its deletion, one at a time per id (striped).
  std::array<std::mutex, 64> video_write_mtx_;
  static size_t stripe(const std::string& id) {
    return std::hash<std::string>{}(id) % 64;
  }
};

} // namespace reel
