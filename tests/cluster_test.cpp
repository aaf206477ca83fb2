#define BOOST_TEST_MODULE cluster
#include <boost/test/unit_test.hpp>

#include "cluster/placement.hpp"

#include <map>

using namespace reel::cluster;

BOOST_AUTO_TEST_CASE(placement_is_stable_and_distinct) {
  std::vector<std::string> nodes{"n1", "n2", "n3"};
  auto a = place("video-1", nodes, 2);
  BOOST_REQUIRE(a.size() == 2u);
  BOOST_TEST(a[0] != a[1]);
  std::vector<std::string> shuffled{"n3", "n1", "n2"};
  BOOST_TEST(place("video-1", shuffled, 2) == a);
  BOOST_TEST(place("video-1", nodes, 10).size() == 3u);
}

BOOST_AUTO_TEST_CASE(placement_spreads_and_moves_little) {
  std::vector<std::string> nodes{"n1", "n2", "n3", "n4"};
  std::map<std::string, int> owners;
  int moved = 0;
  const int videos = 4000;
  auto more = nodes;
  more.push_back("n5");
  for (int i = 0; i < videos; ++i) {
    auto id = "v" + std::to_string(i);
    auto before = place(id, nodes, 1)[0];
    ++owners[before];
    auto after = place(id, more, 1)[0];
    if (after != before) {
      BOOST_TEST(after == "n5"); // only the new node takes videos
      ++moved;
    }
  }
  for (auto& [node, n] : owners)
    BOOST_TEST(n > videos / 4 * 0.85, node << " owns " << n);
  // About a fifth of the videos move to the new node, no more.
  BOOST_TEST(moved > videos / 5 * 0.8);
  BOOST_TEST(moved < videos / 5 * 1.2);
}

// --- the data plane ---------------------------------------------------------

#include "cluster/data_plane.hpp"
#include "ops/util.hpp"

#include <filesystem>
#include <fstream>
#include <random>

namespace {

struct plane {
  std::string dir = "/tmp/reel-plane-" + reel::make_uuid();
  std::string id = reel::make_uuid();
  std::string content;
  reel::cluster::blob_server server{dir + "/a", "s3cret"};
  plane() {
    std::filesystem::create_directories(dir + "/a/media/" + id);
    std::mt19937 rng{42};
    content.resize(1'500'000);
    for (auto& c : content)
      c = static_cast<char>(rng());
    std::ofstream{dir + "/a/media/" + id + "/seg_00000.m4s", std::ios::binary}
      << content;
    BOOST_REQUIRE(!server.start("127.0.0.1", 0));
  }
  ~plane() {
    server.stop();
    std::filesystem::remove_all(dir);
  }
  std::string rel() const { return "media/" + id + "/seg_00000.m4s"; }
  std::string dest() const { return dir + "/b/media/" + id + "/seg_00000.m4s"; }
  std::string read(const std::string& p) const {
    std::ifstream in{p, std::ios::binary};
    return {std::istreambuf_iterator<char>(in), {}};
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(blobs_move_verified) {
  plane p;
  auto sum = reel::sha256_hex(p.content);
  auto r = reel::cluster::fetch_blob("127.0.0.1", p.server.port(), "s3cret",
                                     p.rel(), p.dest(), sum);
  BOOST_REQUIRE_MESSAGE(r, (r ? std::string{} : reel::message_of(r.error())));
  BOOST_TEST(r->bytes == 1'500'000);
  BOOST_TEST(p.read(p.dest()) == p.content);
}

BOOST_AUTO_TEST_CASE(blobs_resume_where_they_stopped) {
  plane p;
  std::filesystem::create_directories(std::filesystem::path{p.dest()}.parent_path());
  std::ofstream{p.dest() + ".part", std::ios::binary} << p.content.substr(0, 600'000);
  auto r = reel::cluster::fetch_blob("127.0.0.1", p.server.port(), "s3cret",
                                     p.rel(), p.dest(), reel::sha256_hex(p.content));
  BOOST_REQUIRE_MESSAGE(r, (r ? std::string{} : reel::message_of(r.error())));
  BOOST_TEST(r->resumed_from == 600'000);
  BOOST_TEST(r->bytes == 900'000);
  BOOST_TEST(p.read(p.dest()) == p.content);
}

BOOST_AUTO_TEST_CASE(blobs_that_do_not_verify_are_dropped) {
  plane p;
  std::filesystem::create_directories(std::filesystem::path{p.dest()}.parent_path());
  // A part that does not match what the sender has.
  std::ofstream{p.dest() + ".part", std::ios::binary} << std::string(1000, 'x');
  auto r = reel::cluster::fetch_blob("127.0.0.1", p.server.port(), "s3cret",
                                     p.rel(), p.dest(), "");
  BOOST_REQUIRE(!r);
  BOOST_TEST(!std::filesystem::exists(p.dest()));
  BOOST_TEST(!std::filesystem::exists(p.dest() + ".part"));
  // Then a clean retry works.
  BOOST_TEST(bool(reel::cluster::fetch_blob("127.0.0.1", p.server.port(),
                                            "s3cret", p.rel(), p.dest(), "")));
  // The wrong expected digest is refused.
  std::filesystem::remove(p.dest());
  BOOST_TEST(!reel::cluster::fetch_blob("127.0.0.1", p.server.port(), "s3cret",
                                        p.rel(), p.dest(), std::string(64, '0')));
}

BOOST_AUTO_TEST_CASE(blob_requests_are_checked) {
  plane p;
  auto wrong = reel::cluster::fetch_blob("127.0.0.1", p.server.port(), "guess",
                                         p.rel(), p.dest(), "");
  BOOST_REQUIRE(!wrong);
  BOOST_TEST(reel::code_of(wrong.error()) == reel::ec::forbidden);
  auto missing = reel::cluster::fetch_blob(
    "127.0.0.1", p.server.port(), "s3cret", "media/" + p.id + "/nope.m4s",
    p.dest(), "");
  BOOST_REQUIRE(!missing);
  BOOST_TEST(reel::code_of(missing.error()) == reel::ec::not_found);
  for (auto bad : {"../../etc/passwd", "db/CURRENT", "media/x/../../y",
                   "sources/not-a-uuid/source"})
    BOOST_TEST(!reel::cluster::servable_path(bad), bad);
  BOOST_TEST(reel::cluster::servable_path("sources/" + p.id + "/source"));
  BOOST_TEST(reel::cluster::servable_path("sources/" + p.id + "/part-2-0630da5381d0497f"));
  BOOST_TEST(reel::cluster::servable_path("media/" + p.id + "/720p/seg_00001.m4s"));
}
