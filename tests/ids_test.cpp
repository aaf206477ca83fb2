// Video ids after the release that derived them: a data directory that
// release wrote (ids made from Gcore numbers and Flare s3Keys, records
// without a number, a store without the new index families) is opened by
// reeld, and every video is found by its Gcore number and its s3Key
// through the APIs; new videos get random ids beside them.
#define BOOST_TEST_MODULE ids
#include <boost/test/unit_test.hpp>

#include "ops/util.hpp"
#include "storage/keys.hpp"
#include "storage/records.hpp"
#include "tests/reeld_process.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>

using namespace reel::test;

namespace {

// How the release before made ids (restated here: reel no longer makes
// them). A video's id was the UUID of a number: the number in the first 48
// bits, the other bits from a SHA-256 of it; a Flare video's number came
// from a SHA-256 of its tenant and s3Key.
std::string legacy_id_of_number(uint64_t n) {
  n &= (uint64_t{1} << 48) - 1;
  unsigned char b[16];
  for (int i = 0; i < 6; ++i)
    b[i] = static_cast<unsigned char>(n >> (8 * (5 - i)));
  auto rest = reel::sha256_hex("reel-video-id:" + std::to_string(n));
  for (int i = 6; i < 16; ++i)
    b[i] = static_cast<unsigned char>(
        std::stoi(rest.substr(2 * i, 2), nullptr, 16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  auto h = reel::hex(std::string(reinterpret_cast<char*>(b), 16));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" +
         h.substr(16, 4) + "-" + h.substr(20, 12);
}

uint64_t legacy_number_of_key(const std::string& tenant,
                              const std::string& key) {
  auto h = reel::sha256_hex("reel-video-key:" + tenant + '\x1f' + key);
  auto n = std::stoull(h.substr(0, 12), nullptr, 16);
  return n == 0 ? 1 : n;
}

std::string b64(const std::string& in) {
  static const char* alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v =
        (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0})
      out += alphabet[(v >> s) & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size())
      v |= uint8_t(in[i + 1]) << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

struct legacy_video {
  std::string id;
  uint64_t number = 0;
  std::string key; // s3Key, "" for none
  std::string title;
};

/// Writes `videos` into a store as the release before laid it out: its
/// column families only, records without a number, one index entry each.
void write_legacy_store(const std::string& dir,
                        const std::vector<legacy_video>& videos) {
  rocksdb::DBOptions opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families{
      {rocksdb::kDefaultColumnFamilyName, {}}};
  for (auto* name : {"videos", "video_index", "keys", "folders", "meta",
                     "tokens", "webhooks", "outbox"})
    families.emplace_back(name, rocksdb::ColumnFamilyOptions{});
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(opts, dir, families, &h, &raw);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  int64_t created = reel::now_ms() - 60000;
  for (auto& lv : videos) {
    reel::video_record v;
    v.id = lv.id;
    v.tenant = "default";
    v.folder = "root";
    v.title = lv.title;
    v.filename = "old.mp4";
    v.created_ms = v.updated_ms = ++created;
    v.history = {reel::state_change{v.state, v.created_ms, {}}};
    v.info.client_key = lv.key;
    auto j = json(v);
    j.erase("number");
    BOOST_REQUIRE(raw->Put({}, h[1], reel::keys::video(v.id), j.dump()).ok());
    BOOST_REQUIRE(
        raw->Put({}, h[2],
                 reel::keys::video_index(v.tenant, v.created_ms, v.id), "")
            .ok());
  }
  for (auto* x : h)
    raw->DestroyColumnFamilyHandle(x).PermitUncheckedError();
  raw->Close().PermitUncheckedError();
  delete raw;
}

std::string hex_digits(const std::string& uuid) {
  std::string out;
  for (char c : uuid)
    if (c != '-')
      out.push_back(c);
  return out;
}

std::string hex_of(uint64_t n) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(n));
  return buf;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_store_of_the_release_before_keeps_every_id) {
  auto data = temp_dir("ids-upgrade");
  uint64_t gcore_number = 54046660962933;
  auto flare_number = legacy_number_of_key("default", "vid_legacy_1");
  std::vector<legacy_video> videos{
      {legacy_id_of_number(gcore_number), gcore_number, "", "made by gcore"},
      {legacy_id_of_number(flare_number), flare_number, "vid_legacy_1",
       "made by flare"},
      // A random id of a release older still: its number is its first bits.
      {"0b9a1c3e-2f4d-4e5f-8a6b-7c8d9e0f1a2b", 0x0b9a1c3e2f4d, "",
       "random id"}};
  BOOST_REQUIRE(videos[0].id == "3127b807-2a75-4758-913b-5f00467807ff");
  write_legacy_store(data + "/db", videos);
  reeld_process node{{}, data};
  auto check = [&] {
    for (auto& v : videos) {
      auto num = std::to_string(v.number);
      auto g = node.request("GET", "/streaming/videos/" + num);
      BOOST_TEST(g.status == 200, num << ": " << g.body);
      BOOST_TEST(g.j["slug"] == v.id);
      BOOST_TEST(g.j["id"] == v.number);
      BOOST_TEST(g.j["name"] == v.title);
      auto names = node.request("GET", "/streaming/videos/names?ids=" + num);
      BOOST_TEST(names.j.size() == 1u, names.body);
      auto listed = node.request("GET", "/streaming/videos?id=" + num);
      BOOST_TEST(listed.j.size() == 1u, listed.body);
      if (listed.j.size() == 1)
        BOOST_TEST(listed.j[0]["slug"] == v.id);
      // Flare: by s3Key when it had one, by UUID always.
      auto f =
          node.request("GET", "/api/video/" + (v.key.empty() ? v.id : v.key));
      BOOST_TEST(f.status == 200, v.title << ": " << f.body);
      BOOST_TEST(f.j["video"]["id"] == (v.key.empty() ? v.id : v.key));
      BOOST_TEST(f.j["video"]["embedUrl"].get<std::string>().find(v.id) !=
                 std::string::npos);
    }
  };
  check();
  // A tus upload names the legacy video by its number.
  auto params = node.request(
      "GET", "/streaming/videos/" + std::to_string(gcore_number) + "/upload");
  BOOST_REQUIRE_MESSAGE(params.status == 200, params.body);
  auto tus =
      node.request("POST", "/upload/", "", "",
                   {{"Tus-Resumable", "1.0.0"},
                    {"Upload-Length", "1000"},
                    {"Upload-Metadata",
                     "token " + b64(params.j["token"].get<std::string>()) +
                         ",video_id " + b64(std::to_string(gcore_number))}});
  BOOST_TEST(tus.status == 201, tus.body);
  // The s3Key is still taken; in another tenant it is free.
  auto clash = node.request(
      "POST", "/api/video/create", reeld_process::key,
      json{{"fileName", "a.mp4"}, {"s3Key", "vid_legacy_1"}}.dump());
  BOOST_TEST(clash.status == 409, clash.body);
  BOOST_TEST(clash.j["success"] == false);
  // New videos beside them: random ids that do not carry their number.
  auto made = node.request("POST", "/streaming/videos", reeld_process::key,
                           R"({"video": {"name": "made after"}})");
  BOOST_REQUIRE_MESSAGE(made.status == 200, made.body);
  auto fresh = made.j.at(0);
  auto fresh_number = fresh["id"].get<uint64_t>();
  std::string fresh_id = fresh["slug"];
  BOOST_TEST(fresh_id[14] == '4');
  BOOST_TEST(hex_digits(fresh_id).rfind(hex_of(fresh_number), 0) != 0u);
  BOOST_TEST(reel::legacy_number_of_id(fresh_id) != fresh_number);
  auto again =
      node.request("GET", "/streaming/videos/" + std::to_string(fresh_number));
  BOOST_TEST(again.status == 200);
  BOOST_TEST(again.j["slug"] == fresh_id);
  auto flare = node.request(
      "POST", "/api/video/create", reeld_process::key,
      json{{"fileName", "b.mp4"}, {"s3Key", "vid_after_1"}}.dump());
  BOOST_REQUIRE_MESSAGE(flare.status == 200, flare.body);
  auto by_key = node.request("GET", "/api/video/vid_after_1");
  BOOST_TEST(by_key.status == 200);
  std::string embed = by_key.j["video"]["embedUrl"];
  auto flare_id = embed.substr(embed.rfind('/') + 1);
  BOOST_TEST(reel::is_uuid(flare_id));
  BOOST_TEST(flare_id != legacy_id_of_number(
                             legacy_number_of_key("default", "vid_after_1")));
  // After a restart (the store is indexed once; the marker says so) every
  // id still works.
  node.stop();
  node.start();
  check();
  BOOST_TEST(
      node.request("GET", "/streaming/videos/" + std::to_string(fresh_number))
          .status == 200);
}
