#define BOOST_TEST_MODULE storage
#include <boost/test/unit_test.hpp>

#include "tests/files.hpp"
#include "ops/util.hpp"
#include "storage/blob_store.hpp"
#include "storage/db.hpp"
#include "storage/keys.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace reel;

namespace {

struct temp_dir {
  std::string path = "/tmp/reel-storage-test-" + make_uuid();
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() { fs::remove_all(path); }
};

video_record sample(const std::string& tenant, int64_t created) {
  video_record v;
  v.id = make_uuid();
  v.tenant = tenant;
  v.folder = "root";
  v.filename = "clip.mp4";
  v.state = states::transcoding;
  v.created_ms = created;
  v.probed = true;
  v.source.width = 1280;
  v.source.height = 720;
  v.source.keyframes = {0, 512, 1024};
  v.rungs = {codec::rung{"720p", 1280, 720, 2800, 23}};
  v.chunks = {codec::chunk{0, 0, 1024, {0, 512}}};
  v.chunk_done = {1};
  v.history = {state_change{states::uploaded, created, {}}};
  return v;
}

} // namespace

BOOST_AUTO_TEST_CASE(video_records_survive_reopen) {
  temp_dir dir;
  auto v = sample("acme", 1000);
  {
    auto store = db::open(dir.path + "/db");
    BOOST_REQUIRE(store);
    BOOST_REQUIRE(!(*store)->put_video(v));
  }
  auto store = db::open(dir.path + "/db");
  BOOST_REQUIRE(store);
  auto got = (*store)->get_video(v.id);
  BOOST_REQUIRE(got);
  BOOST_REQUIRE(got->has_value());
  auto& r = **got;
  BOOST_TEST(r.tenant == "acme");
  BOOST_TEST(r.state == states::transcoding);
  BOOST_TEST(r.source.keyframes.size() == 3u);
  BOOST_TEST(r.chunks.at(0).segment_starts.size() == 2u);
  BOOST_TEST(r.rungs.at(0).name == "720p");
  BOOST_TEST(r.chunk_done.at(0) == 1);
  auto missing = (*store)->get_video(make_uuid());
  BOOST_REQUIRE(missing);
  BOOST_TEST(!missing->has_value());
}

BOOST_AUTO_TEST_CASE(index_lists_newest_first_per_tenant) {
  temp_dir dir;
  auto store = db::open(dir.path + "/db");
  BOOST_REQUIRE(store);
  auto& s = **store;
  auto a1 = sample("a", 100);
  auto a2 = sample("a", 300);
  auto a3 = sample("a", 200);
  auto b1 = sample("b", 400);
  for (auto* v : {&a1, &a2, &a3, &b1})
    BOOST_REQUIRE(!s.put_video(*v));
  std::vector<std::string> ids;
  BOOST_REQUIRE(!s.scan(cf::video_index, keys::video_index_prefix("a"),
                        [&](const std::string& k, const std::string&) {
                          ids.push_back(keys::id_of_index(k));
                          return true;
                        }));
  BOOST_TEST(ids == (std::vector<std::string>{a2.id, a3.id, a1.id}));
  BOOST_REQUIRE(!s.delete_video(a3));
  ids.clear();
  BOOST_REQUIRE(!s.scan(cf::video_index, keys::video_index_prefix("a"),
                        [&](const std::string& k, const std::string&) {
                          ids.push_back(keys::id_of_index(k));
                          return true;
                        }));
  BOOST_TEST(ids == (std::vector<std::string>{a2.id, a1.id}));
}

BOOST_AUTO_TEST_CASE(corrupt_records_are_errors_not_crashes) {
  temp_dir dir;
  auto store = db::open(dir.path + "/db");
  BOOST_REQUIRE(store);
  BOOST_REQUIRE(!(*store)->put(cf::videos, "x", "{not json"));
  auto got = (*store)->get_video("x");
  BOOST_REQUIRE(!got);
  BOOST_TEST(code_of(got.error()) == ec::storage_error);
}

BOOST_AUTO_TEST_CASE(folder_paths) {
  BOOST_TEST(valid_folder_path("root"));
  BOOST_TEST(valid_folder_path("root/marketing"));
  BOOST_TEST(valid_folder_path("root/a/b-c_d"));
  BOOST_TEST(!valid_folder_path(""));
  BOOST_TEST(!valid_folder_path("root/"));
  BOOST_TEST(!valid_folder_path("root//a"));
  BOOST_TEST(!valid_folder_path("root/../etc"));
  BOOST_TEST(!valid_folder_path("marketing"));
  BOOST_TEST(!valid_folder_path("root/a b"));
  BOOST_TEST(!valid_folder_path("root/" + std::string(65, 'a')));
}

BOOST_AUTO_TEST_CASE(media_paths_stay_inside_the_video) {
  temp_dir dir;
  blob_store blobs{dir.path};
  BOOST_REQUIRE(!blobs.init());
  auto id = make_uuid();
  fs::create_directories(blobs.media_dir(id) + "/720p");
  std::ofstream{blobs.media_dir(id) + "/720p/seg_00000.m4s"} << "x";
  std::ofstream{dir.path + "/secret"} << "s";
  BOOST_TEST(bool(blobs.media_file(id, "720p/seg_00000.m4s")));
  for (auto bad : {"../../secret", "720p/../../../secret", "", "/etc/passwd",
                   "720p//seg_00000.m4s", "720p/seg_00000.m4s%00", "..",
                   "720p/missing.m4s"})
    BOOST_TEST(!blobs.media_file(id, bad), bad);
  BOOST_TEST(!blobs.media_file("../media", "x"));
  auto files = blobs.index_media(id);
  BOOST_REQUIRE(files);
  BOOST_REQUIRE(files->size() == 1u);
  BOOST_TEST(files->at(0).name == "720p/seg_00000.m4s");
  BOOST_TEST(files->at(0).sha256 == sha256_hex("x"));
}

BOOST_AUTO_TEST_CASE(sources_are_adopted_and_removed) {
  temp_dir dir;
  blob_store blobs{dir.path};
  BOOST_REQUIRE(!blobs.init());
  auto tmp = blobs.new_tmp_path();
  std::ofstream{tmp} << "video bytes";
  auto id = make_uuid();
  BOOST_REQUIRE(!blobs.adopt_source(tmp, id));
  BOOST_TEST(!fs::exists(tmp));
  BOOST_TEST(fs::file_size(blobs.source_path(id)) == 11u);
  BOOST_TEST(blobs.used_bytes() == 11);
  blobs.remove_video(id);
  BOOST_TEST(!fs::exists(blobs.source_path(id)));
  std::ofstream{blobs.new_tmp_path()} << "partial";
  blobs.clean_tmp();
  BOOST_TEST(fs::is_empty(dir.path + "/tmp"));
}

namespace {

upload_part part(int64_t index, int64_t bytes, const std::string& sha = "a") {
  upload_part p;
  p.index = index;
  p.bytes = bytes;
  p.sha256 = sha;
  return p;
}

} // namespace

BOOST_AUTO_TEST_CASE(byte_chunks_in_any_order_complete_the_upload) {
  upload_state u;
  BOOST_TEST(!add_part(u, "bytes", 30, part(20, 10)));
  BOOST_TEST(!upload_complete(u));
  BOOST_TEST(!add_part(u, "bytes", 30, part(0, 10)));
  BOOST_TEST(!upload_complete(u));
  // The same chunk again (a retry) changes nothing.
  BOOST_TEST(!add_part(u, "bytes", 30, part(0, 10)));
  BOOST_TEST(u.parts.size() == 2u);
  BOOST_TEST(!add_part(u, "bytes", 30, part(10, 10)));
  BOOST_TEST(upload_complete(u));
  BOOST_TEST(upload_received(u) == 30);
  BOOST_TEST(u.parts.front().index == 0); // kept in order
}

BOOST_AUTO_TEST_CASE(chunks_that_do_not_fit_are_refused) {
  upload_state u;
  BOOST_REQUIRE(!add_part(u, "bytes", 30, part(0, 10)));
  auto overlap = add_part(u, "bytes", 30, part(5, 10));
  BOOST_TEST(code_of(overlap) == ec::invalid_argument);
  BOOST_TEST(message_of(overlap).find("overlaps") != std::string::npos);
  BOOST_TEST(code_of(add_part(u, "bytes", 40, part(10, 10)))
             == ec::invalid_argument); // another total
  BOOST_TEST(code_of(add_part(u, "bytes", 30, part(25, 10)))
             == ec::invalid_argument); // past the end
  BOOST_TEST(code_of(add_part(u, "parts", 3, part(2, 10)))
             == ec::invalid_argument); // another form
  BOOST_TEST(code_of(add_part(u, "bytes", 30, part(0, 10, "b")))
             == ec::invalid_argument); // different bytes, same place
  BOOST_TEST(u.parts.size() == 1u);
}

BOOST_AUTO_TEST_CASE(numbered_parts_with_a_total_learnt_at_the_end) {
  upload_state u;
  BOOST_TEST(!add_part(u, "parts", -1, part(1, 7)));
  BOOST_TEST(!add_part(u, "parts", -1, part(2, 7)));
  BOOST_TEST(!upload_complete(u));
  BOOST_TEST(u.total == -1);
  BOOST_TEST(code_of(add_part(u, "parts", -1, part(2, 5)))
             == ec::invalid_argument); // part 2 again, other bytes
  BOOST_TEST(code_of(add_part(u, "parts", 1, part(3, 3)))
             == ec::invalid_argument); // a total below parts received
  BOOST_TEST(!add_part(u, "parts", 3, part(3, 3)));
  BOOST_TEST(upload_complete(u));
  BOOST_TEST(upload_received(u) == 17);
  BOOST_TEST(part_file(u.parts[0]).rfind("part-1-", 0) == 0);
}

BOOST_AUTO_TEST_CASE(patches_change_only_client_fields_with_their_types) {
  video_record v;
  v.title = "old";
  v.state = states::ready;
  auto patch = nlohmann::json::parse(
    R"({"title":"new","public":false,"tags":["a"],
        "metadata":[{"key":"k","value":"v"}],"poster_at_s":1.5})");
  BOOST_REQUIRE(!apply_patch(v, patch));
  BOOST_TEST(v.title == "new");
  BOOST_TEST(!v.info.is_public);
  BOOST_TEST(v.info.tags.size() == 1u);
  BOOST_TEST(v.info.metadata.at(0).value == "v");
  BOOST_TEST(v.info.poster_at_s == 1.5);
  BOOST_TEST(v.info.description.empty()); // untouched
  auto bad = [&](const char* text) {
    auto before = encode(v);
    auto err = apply_patch(v, nlohmann::json::parse(text));
    BOOST_TEST(encode(v) == before); // nothing half-applied
    return code_of(err);
  };
  BOOST_TEST(bad(R"({"state":"failed"})") == ec::invalid_argument);
  BOOST_TEST(bad(R"({"tags":"a"})") == ec::invalid_argument);
  BOOST_TEST(bad(R"({"tags":[1]})") == ec::invalid_argument);
  BOOST_TEST(bad(R"({"public":"no"})") == ec::invalid_argument);
  BOOST_TEST(bad(R"([1])") == ec::invalid_argument);
  // null resets a field.
  BOOST_REQUIRE(!apply_patch(v, nlohmann::json::parse(R"({"tags":null})")));
  BOOST_TEST(v.info.tags.empty());
  // The new fields survive the store's encoding.
  video_record back;
  BOOST_REQUIRE(!decode(encode(v), back));
  BOOST_TEST(back.info.metadata.at(0).key == "k");
  BOOST_TEST(!back.info.is_public);
}

BOOST_AUTO_TEST_CASE(a_patch_moves_a_video_to_another_folder) {
  video_record v;
  v.title = "clip";
  v.folder = "root";
  BOOST_REQUIRE(!apply_patch(
    v, nlohmann::json::parse(R"({"folder":"root/ibc/2025","title":"moved"})")));
  BOOST_TEST(v.folder == "root/ibc/2025");
  BOOST_TEST(v.title == "moved");
  video_record back;
  BOOST_REQUIRE(!decode(encode(v), back));
  BOOST_TEST(back.folder == "root/ibc/2025");
  // Anything but a folder path is refused, and nothing changes.
  for (auto text : {R"({"folder":"ibc"})", R"({"folder":"root/a b"})",
                    R"({"folder":7})", R"({"folder":"root/"})",
                    R"({"folder":"root/x","tags":"a"})"}) {
    auto before = encode(v);
    BOOST_TEST(code_of(apply_patch(v, nlohmann::json::parse(text)))
               == ec::invalid_argument, text);
    BOOST_TEST(encode(v) == before, text);
  }
  // A patch without it leaves it; null moves the video to the top.
  BOOST_REQUIRE(!apply_patch(v, nlohmann::json::parse(R"({"title":"t"})")));
  BOOST_TEST(v.folder == "root/ibc/2025");
  BOOST_REQUIRE(!apply_patch(v, nlohmann::json::parse(R"({"folder":null})")));
  BOOST_TEST(v.folder == "root");
}

namespace {

at_rest_keys test_keys(const std::string& root) {
  return at_rest_keys{sealer{{hkdf_sha256(root, "reel at-rest v1")}},
                      {hkdf_sha256(root, "reel token digest v1")}};
}

using reel::testing::any_file_holds;

} // namespace

BOOST_AUTO_TEST_CASE(rows_of_older_releases_are_brought_into_the_sealed_form) {
  auto k = test_keys("root");
  // An upload token as releases before sealing stored it: under its value.
  upload_token_record t{"toPLAINtoken1234567890ab", "acme", 0, 5, 0};
  auto legacy =
      at_rest_form(k, cf::tokens, keys::upload_token(t.token), encode(t));
  BOOST_REQUIRE(legacy);
  BOOST_TEST(legacy->first == keys::upload_token(k.token_digest(t.token)));
  BOOST_TEST(legacy->first.find(t.token) == std::string::npos);
  BOOST_TEST(legacy->second.find(t.token) == std::string::npos);
  upload_token_record back;
  BOOST_REQUIRE(!decode(legacy->second, back));
  BOOST_TEST(*k.box.open(back.token) == t.token);
  BOOST_TEST(back.tenant == "acme");
  // Once in form, nothing more to do.
  BOOST_TEST(!at_rest_form(k, cf::tokens, legacy->first, legacy->second));
  // A deletion sent by such a node names the token: mapped to its row.
  auto del = at_rest_form(k, cf::tokens, keys::upload_token(t.token), "");
  BOOST_REQUIRE(del);
  BOOST_TEST(del->first == legacy->first);
  BOOST_TEST(!at_rest_form(k, cf::tokens, legacy->first, ""));
  // Webhook secrets and the copies in deliveries.
  webhook_record w;
  w.id = "webhook_1";
  w.tenant = "acme";
  w.secret = "whsec_PLAINsecret";
  auto hook =
      at_rest_form(k, cf::webhooks, keys::webhook("acme", w.id), encode(w));
  BOOST_REQUIRE(hook);
  BOOST_TEST(hook->first == keys::webhook("acme", w.id));
  BOOST_TEST(hook->second.find("PLAINsecret") == std::string::npos);
  webhook_record w2;
  BOOST_REQUIRE(!decode(hook->second, w2));
  BOOST_TEST(*k.box.open(w2.secret) == w.secret);
  BOOST_TEST(!at_rest_form(k, cf::webhooks, hook->first, hook->second));
  delivery_record d;
  d.id = "dl_1";
  d.secret = w.secret;
  auto out = at_rest_form(k, cf::outbox, d.id, encode(d));
  BOOST_REQUIRE(out);
  BOOST_TEST(out->second.find("PLAINsecret") == std::string::npos);
  // Other families are left alone; so is a value no key opens.
  BOOST_TEST(!at_rest_form(k, cf::folders, "acme\x1froot", "{}"));
  w.secret = test_keys("another cluster").box.seal("x");
  BOOST_TEST(!at_rest_form(k, cf::webhooks, "k", encode(w)));
}

BOOST_AUTO_TEST_CASE(rows_under_a_second_key_move_to_the_first) {
  // A lone node that joined a cluster: its rows are sealed and named under
  // its own keys; the cluster's come first now.
  auto lone = test_keys("lone");
  auto cluster = test_keys("cluster");
  at_rest_keys both{sealer{{hkdf_sha256("cluster", "reel at-rest v1"),
                            hkdf_sha256("lone", "reel at-rest v1")}},
                    {cluster.digest_keys[0], lone.digest_keys[0]}};
  upload_token_record t{"toMINE", "acme", 0, 5, 0};
  auto mine =
      at_rest_form(lone, cf::tokens, keys::upload_token(t.token), encode(t));
  BOOST_REQUIRE(mine);
  auto moved = at_rest_form(both, cf::tokens, mine->first, mine->second);
  BOOST_REQUIRE(moved);
  BOOST_TEST(moved->first ==
             keys::upload_token(cluster.token_digest("toMINE")));
  upload_token_record back;
  BOOST_REQUIRE(!decode(moved->second, back));
  BOOST_TEST(*cluster.box.open(back.token) == "toMINE");
  BOOST_TEST(!at_rest_form(both, cf::tokens, moved->first, moved->second));
}

BOOST_AUTO_TEST_CASE(a_scrubbed_family_keeps_no_overwritten_secret) {
  // What a start does after rewriting rows: the plain values written by
  // an older release are gone from every file of the store.
  temp_dir dir;
  auto k = test_keys("root");
  std::string plain = "toLEGACYtoken0123456789";
  {
    auto store = db::open(dir.path);
    BOOST_REQUIRE(store);
    upload_token_record t{plain, "acme", 0, 5, 0};
    BOOST_REQUIRE(
        !(*store)->put(cf::tokens, keys::upload_token(plain), encode(t)));
  }
  BOOST_TEST(any_file_holds(dir.path, plain));
  auto store = db::open(dir.path);
  BOOST_REQUIRE(store);
  upload_token_record t{plain, "acme", 0, 5, 0};
  auto row = at_rest_form(k, cf::tokens, keys::upload_token(plain), encode(t));
  BOOST_REQUIRE(row);
  BOOST_REQUIRE(!(*store)->put(cf::tokens, row->first, row->second));
  BOOST_REQUIRE(!(*store)->del(cf::tokens, keys::upload_token(plain)));
  BOOST_REQUIRE(!(*store)->scrub({cf::tokens}));
  BOOST_TEST(!any_file_holds(dir.path, plain));
  auto got = (*store)->get(cf::tokens, row->first);
  BOOST_REQUIRE(got);
  BOOST_REQUIRE(*got);
  BOOST_TEST(**got == row->second);
}

namespace {

/// An index entry as stored (the id it names), "" for none.
std::string entry(db& s, cf family, const std::string& key) {
  auto got = s.get(family, key);
  BOOST_REQUIRE(got);
  return *got ? **got : std::string{};
}

std::string by_number(db& s, uint64_t n) {
  auto id = s.video_by_number(n);
  BOOST_REQUIRE(id);
  return *id ? **id : std::string{};
}

std::string by_key(db& s, const std::string& tenant, const std::string& key) {
  auto id = s.video_by_client_key(tenant, key);
  BOOST_REQUIRE(id);
  return *id ? **id : std::string{};
}

} // namespace

BOOST_AUTO_TEST_CASE(numbers_and_client_keys_are_indexed_with_the_record) {
  temp_dir dir;
  auto store = db::open(dir.path + "/db");
  BOOST_REQUIRE(store);
  auto& s = **store;
  auto a = sample("acme", 100);
  a.number = 123456789;
  a.info.client_key = "vid_demo_123";
  auto b = sample("other", 200);
  b.number = 987654321;
  b.info.client_key = "vid_demo_123"; // the same key, another tenant
  auto c = sample("acme", 300);
  c.number = 42; // no key
  for (auto* v : {&a, &b, &c})
    BOOST_REQUIRE(!s.put_video(*v));
  BOOST_TEST(by_number(s, 123456789) == a.id);
  BOOST_TEST(by_number(s, 987654321) == b.id);
  BOOST_TEST(by_number(s, 42) == c.id);
  BOOST_TEST(by_number(s, 43) == "");
  BOOST_TEST(by_number(s, 0) == "");
  BOOST_TEST(by_key(s, "acme", "vid_demo_123") == a.id);
  BOOST_TEST(by_key(s, "other", "vid_demo_123") == b.id);
  BOOST_TEST(by_key(s, "third", "vid_demo_123") == "");
  BOOST_TEST(by_key(s, "acme", "vid_demo_12") == "");
  BOOST_TEST(by_key(s, "acme", "") == "");
  // Written again (a later state): the entries stay.
  a.state = states::ready;
  BOOST_REQUIRE(!s.put_video(a));
  BOOST_TEST(by_number(s, 123456789) == a.id);
  // The number survives the record's encoding.
  auto got = s.get_video(a.id);
  BOOST_REQUIRE(got);
  BOOST_REQUIRE(*got);
  BOOST_TEST((*got)->number == 123456789u);
  // Deleted with the record; the other tenant's key stays.
  BOOST_REQUIRE(!s.delete_video(a));
  BOOST_TEST(by_number(s, 123456789) == "");
  BOOST_TEST(entry(s, cf::video_numbers, keys::video_number(123456789)) == "");
  BOOST_TEST(entry(s, cf::client_keys,
                   keys::client_key("acme", "vid_demo_123")) == "");
  BOOST_TEST(by_key(s, "acme", "vid_demo_123") == "");
  BOOST_TEST(by_key(s, "other", "vid_demo_123") == b.id);
  BOOST_REQUIRE(!s.delete_video(c));
  BOOST_TEST(entry(s, cf::video_numbers, keys::video_number(42)) == "");
  // The key is free again.
  auto again = sample("acme", 400);
  again.number = 7;
  again.info.client_key = "vid_demo_123";
  BOOST_REQUIRE(!s.put_video(again));
  BOOST_TEST(by_key(s, "acme", "vid_demo_123") == again.id);
}

BOOST_AUTO_TEST_CASE(a_record_cannot_take_another_videos_number_or_key) {
  temp_dir dir;
  auto store = db::open(dir.path + "/db");
  BOOST_REQUIRE(store);
  auto& s = **store;
  auto first = sample("acme", 100);
  first.number = 5000;
  first.info.client_key = "k1";
  BOOST_REQUIRE(!s.put_video(first));
  // Another video (a peer's record, say) claiming both: stored, but the
  // entries stay with the first.
  auto thief = sample("acme", 200);
  thief.number = 5000;
  thief.info.client_key = "k1";
  BOOST_REQUIRE(!s.put_video(thief));
  BOOST_TEST(by_number(s, 5000) == first.id);
  BOOST_TEST(by_key(s, "acme", "k1") == first.id);
  // Deleting it leaves them too.
  BOOST_REQUIRE(!s.delete_video(thief));
  BOOST_TEST(by_number(s, 5000) == first.id);
  BOOST_TEST(by_key(s, "acme", "k1") == first.id);
  // An entry whose video is gone, or no longer has the number, names
  // nothing and may be taken.
  BOOST_REQUIRE(!s.put(cf::video_numbers, keys::video_number(6000), first.id));
  BOOST_TEST(by_number(s, 6000) == "");
  BOOST_REQUIRE(
      !s.put(cf::video_numbers, keys::video_number(7000), make_uuid()));
  BOOST_TEST(by_number(s, 7000) == "");
  auto late = sample("acme", 300);
  late.number = 7000;
  BOOST_REQUIRE(!s.put_video(late));
  BOOST_TEST(by_number(s, 7000) == late.id);
}

BOOST_AUTO_TEST_CASE(records_of_older_releases_get_their_number_and_indexes) {
  temp_dir dir;
  // Ids as releases before random ids made them: the number in the first
  // 48 bits (54046660962933 and, for s3Key "vid_legacy_1" of tenant
  // "default", 118678141073710).
  const std::string gcore_id = "3127b807-2a75-4758-913b-5f00467807ff";
  const std::string flare_id = "6befe870-f92e-44d7-a8fa-3b9194d281f2";
  auto old_bytes = [](video_record v) {
    auto j = nlohmann::json(v);
    j.erase("number"); // those releases had no such field
    return j.dump();
  };
  {
    auto store = db::open(dir.path + "/db");
    BOOST_REQUIRE(store);
    auto& s = **store;
    auto g = sample("default", 100);
    g.id = gcore_id;
    auto f = sample("default", 200);
    f.id = flare_id;
    f.info.client_key = "vid_legacy_1";
    for (auto* v : {&g, &f}) {
      BOOST_REQUIRE(!s.put(cf::videos, keys::video(v->id), old_bytes(*v)));
      BOOST_REQUIRE(!s.put(cf::video_index,
                           keys::video_index(v->tenant, v->created_ms, v->id),
                           ""));
    }
    // A record without the field reads with the number of its id.
    video_record read;
    BOOST_REQUIRE(!decode(old_bytes(g), read));
    BOOST_TEST(read.number == 54046660962933u);
    // As the older release left the store: not indexed.
    BOOST_REQUIRE(!s.del(cf::meta, "video_ids_indexed"));
  }
  auto store = db::open(dir.path + "/db"); // indexes them, once
  BOOST_REQUIRE(store);
  auto& s = **store;
  BOOST_TEST(by_number(s, 54046660962933) == gcore_id);
  BOOST_TEST(by_number(s, 118678141073710) == flare_id);
  BOOST_TEST(by_key(s, "default", "vid_legacy_1") == flare_id);
  auto marked = s.get(cf::meta, "video_ids_indexed");
  BOOST_REQUIRE(marked);
  BOOST_TEST(marked->has_value());
  // The records carry their number now.
  auto raw = s.get(cf::videos, keys::video(gcore_id));
  BOOST_REQUIRE(raw);
  BOOST_REQUIRE(*raw);
  BOOST_TEST(nlohmann::json::parse(**raw).value("number", uint64_t{0}) ==
             54046660962933u);
  // A record without a number written now (sent by a node of the older
  // release) is stored and indexed with its id's.
  auto sent = sample("default", 300);
  sent.id = "00000000-002a-4000-8000-000000000000";
  sent.number = 0;
  BOOST_REQUIRE(!s.put_video(sent));
  BOOST_TEST(by_number(s, 42) == sent.id);
}

BOOST_AUTO_TEST_CASE(a_video_state_is_typed_and_stored_by_name) {
  // Every state has a name that reads back as itself; nothing else reads.
  for (auto s : all_video_states) {
    BOOST_TEST((parse_video_state(to_string(s)) == s));
    video_record v;
    v.id = make_uuid();
    v.state = s;
    v.history = {state_change{s, 1, {}}};
    auto text = encode(v);
    BOOST_TEST(text.find(std::string{"\"state\":\""} + to_string(s) + "\"")
               != std::string::npos);
    video_record back;
    BOOST_REQUIRE(!decode(text, back));
    BOOST_TEST((back.state == s));
    BOOST_TEST((back.history.at(0).state == s));
  }
  BOOST_TEST(!parse_video_state("done"));
  BOOST_TEST(!parse_video_state(""));
  video_record v;
  v.id = make_uuid();
  auto text = encode(v);
  auto at = text.find("\"state\":\"created\"");
  BOOST_REQUIRE(at != std::string::npos);
  text.replace(at, 17, "\"state\":\"done\"");
  video_record back;
  BOOST_TEST(static_cast<bool>(decode(text, back))); // an unknown state is an error
  // Each dialect's view names every state (a switch the build checks):
  // Gcore's, and the Uploads API's.
  BOOST_TEST(gcore_status(video_state::created, false) == std::string{"empty"});
  BOOST_TEST(gcore_status(video_state::transcoding, false) == std::string{"pending"});
  BOOST_TEST(gcore_status(video_state::transcoding, true) == std::string{"viewable"});
  BOOST_TEST(gcore_status(video_state::ready, true) == std::string{"ready"});
  BOOST_TEST(gcore_status(video_state::failed, true) == std::string{"error"});
  BOOST_TEST(upload_status(video_state::packaging).first == 5);
  BOOST_TEST(upload_status(video_state::failed).first == 7);
}

BOOST_AUTO_TEST_CASE(versions_order_records_and_an_older_one_is_refused) {
  temp_dir dir;
  auto store = db::open(dir.path + "/db");
  BOOST_REQUIRE(store);
  auto v = sample("acme", 1000);
  v.epoch = 5;
  v.version = 3;
  BOOST_REQUIRE(!(*store)->put_video(v));
  // A stale owner (a lower epoch), whatever its clock says, is refused.
  auto stale = v;
  stale.epoch = 4;
  stale.version = 99;
  stale.updated_ms = v.updated_ms + 60000;
  stale.title = "stale";
  auto refused = (*store)->put_video(stale);
  BOOST_TEST(code_of(refused) == ec::conflict);
  BOOST_TEST((*(*store)->get_video(v.id))->title != "stale");
  // The same version again is a rewrite; a higher one replaces it.
  BOOST_TEST(!(*store)->put_video(v));
  auto next = v;
  next.version = 4;
  next.title = "next";
  BOOST_REQUIRE(!(*store)->put_video(next));
  BOOST_TEST((*(*store)->get_video(v.id))->title == "next");
  // The order every node applies to copies from others.
  BOOST_TEST(compare_versions(next, v) > 0);
  BOOST_TEST(compare_versions(stale, v) < 0);
  BOOST_TEST(supersedes(next, v));
  BOOST_TEST(!supersedes(stale, v));
  auto twin = v; // the same version written twice: one wins everywhere
  twin.title = "twin";
  BOOST_TEST(supersedes(twin, v) != supersedes(v, twin));
}

BOOST_AUTO_TEST_CASE(a_deleted_video_leaves_a_tombstone_that_keeps_it_deleted) {
  temp_dir dir;
  auto store = db::open(dir.path + "/db");
  BOOST_REQUIRE(store);
  auto v = sample("acme", 1000);
  BOOST_REQUIRE(!(*store)->put_video(v));
  BOOST_REQUIRE(!(*store)->delete_video(v));
  auto at = (*store)->deleted_at(v.id);
  BOOST_REQUIRE(at);
  BOOST_TEST(at->has_value());
  // A copy sent back by a node that missed the deletion, even a newer one.
  auto back = v;
  back.epoch = 100;
  back.version = 100;
  BOOST_TEST(code_of((*store)->put_video(back)) == ec::not_found);
  BOOST_TEST(!(*(*store)->get_video(v.id)).has_value());
  // Tombstones of a video never stored are kept too (sent on sync).
  video_record never;
  never.id = make_uuid();
  BOOST_REQUIRE(!(*store)->delete_video(never));
  BOOST_TEST((*(*store)->deleted_at(never.id)).has_value());
  // Kept until garbage collection drops the old ones.
  auto dropped = (*store)->drop_tombstones(now_ms() - 3600 * 1000);
  BOOST_REQUIRE(dropped);
  BOOST_TEST(*dropped == 0u);
  dropped = (*store)->drop_tombstones(now_ms() + 1000);
  BOOST_REQUIRE(dropped);
  BOOST_TEST(*dropped == 2u);
  BOOST_TEST(!(*(*store)->deleted_at(v.id)).has_value());
}
