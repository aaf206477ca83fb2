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
#include "cluster/pki.hpp"
#include "ops/util.hpp"

#include <asio.hpp>

#include <chrono>
#include <thread>

#include <filesystem>
#include <fstream>
#include <random>

namespace {

using reel::cluster::blob_area;
using reel::cluster::blob_endpoint;
using reel::cluster::blob_ref;
using reel::cluster::fetch_blob;
using reel::cluster::link_security;

std::shared_ptr<link_security> member_tls(const std::string& dir,
                                          const std::string& secret,
                                          const std::string& node) {
  auto creds = reel::cluster::issue_credentials(secret, node, dir);
  BOOST_REQUIRE(creds);
  auto sec = link_security::load(*creds);
  BOOST_REQUIRE(sec);
  return *sec;
}

struct plane {
  std::string dir = "/tmp/reel-plane-" + reel::make_uuid();
  std::string id = reel::make_uuid();
  std::string content;
  std::shared_ptr<link_security> server_tls =
      member_tls(dir + "/a-pki", "s3cret-s3cret-s3cret", "a");
  std::shared_ptr<link_security> client_tls =
      member_tls(dir + "/b-pki", "s3cret-s3cret-s3cret", "b");
  reel::cluster::blob_server server{
      dir + "/a", server_tls,
      reel::cluster::blob_server_options{8, 1000, 5000}};
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
  blob_endpoint at(const std::string& name = "a") const {
    return {name, "127.0.0.1", server.port()};
  }
  blob_ref ref(const std::string& name = "seg_00000.m4s") const {
    return {blob_area::media, id, name};
  }
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
  auto r = fetch_blob(p.at(), *p.client_tls, p.ref(), p.dest(), sum);
  BOOST_REQUIRE_MESSAGE(r, (r ? std::string{} : reel::message_of(r.error())));
  BOOST_TEST(r->bytes == 1'500'000);
  BOOST_TEST(p.read(p.dest()) == p.content);
}

BOOST_AUTO_TEST_CASE(fetches_reuse_their_connection) {
  plane p;
  std::ofstream{p.dir + "/a/media/" + p.id + "/other.m4s", std::ios::binary}
    << "other";
  auto sum = reel::sha256_hex(p.content);
  BOOST_REQUIRE(fetch_blob(p.at(), *p.client_tls, p.ref(), p.dest(), sum));
  BOOST_REQUIRE(fetch_blob(p.at(), *p.client_tls, p.ref("other.m4s"),
                           p.dir + "/b/media/" + p.id + "/other.m4s", ""));
  // A missing file does not end the connection either.
  BOOST_TEST(!fetch_blob(p.at(), *p.client_tls, p.ref("gone.m4s"),
                         p.dir + "/b/gone", ""));
  // One handshake for all three: the server holds a single connection.
  BOOST_TEST(p.server.open_connections() == 1);
}

BOOST_AUTO_TEST_CASE(blobs_resume_where_they_stopped) {
  plane p;
  std::filesystem::create_directories(
      std::filesystem::path{p.dest()}.parent_path());
  std::ofstream{p.dest() + ".part", std::ios::binary}
      << p.content.substr(0, 600'000);
  auto r = fetch_blob(p.at(), *p.client_tls, p.ref(), p.dest(),
                      reel::sha256_hex(p.content));
  BOOST_REQUIRE_MESSAGE(r, (r ? std::string{} : reel::message_of(r.error())));
  BOOST_TEST(r->resumed_from == 600'000);
  BOOST_TEST(r->bytes == 900'000);
  BOOST_TEST(p.read(p.dest()) == p.content);
}

BOOST_AUTO_TEST_CASE(blobs_that_do_not_verify_are_dropped) {
  plane p;
  std::filesystem::create_directories(
      std::filesystem::path{p.dest()}.parent_path());
  // A part that does not match what the sender has.
  std::ofstream{p.dest() + ".part", std::ios::binary} << std::string(1000, 'x');
  auto r = fetch_blob(p.at(), *p.client_tls, p.ref(), p.dest(), "");
  BOOST_REQUIRE(!r);
  BOOST_TEST(!std::filesystem::exists(p.dest()));
  BOOST_TEST(!std::filesystem::exists(p.dest() + ".part"));
  // Then a clean retry works.
  BOOST_TEST(bool(fetch_blob(p.at(), *p.client_tls, p.ref(), p.dest(), "")));
  // The wrong expected digest is refused.
  std::filesystem::remove(p.dest());
  BOOST_TEST(!fetch_blob(p.at(), *p.client_tls, p.ref(), p.dest(),
                         std::string(64, '0')));
}

BOOST_AUTO_TEST_CASE(blob_requests_are_checked) {
  plane p;
  auto missing =
      fetch_blob(p.at(), *p.client_tls, p.ref("nope.m4s"), p.dest(), "");
  BOOST_REQUIRE(!missing);
  BOOST_TEST(reel::code_of(missing.error()) == reel::ec::not_found);
  // Names that are not blobs never leave the client.
  for (auto bad : {"../../etc/passwd", "..", "a/../../b", "a/b/c/d", ""}) {
    auto r = fetch_blob(p.at(), *p.client_tls, p.ref(bad), p.dest(), "");
    BOOST_REQUIRE(!r);
    BOOST_TEST(reel::code_of(r.error()) == reel::ec::invalid_argument, bad);
  }
  BOOST_TEST(!valid(blob_ref{blob_area::source, "not-a-uuid", "source"}));
  BOOST_TEST(!valid(blob_ref{blob_area::source, p.id, "db"}));
  BOOST_TEST(!valid(blob_ref{static_cast<blob_area>(9), p.id, "x"}));
  BOOST_TEST(valid(blob_ref{blob_area::source, p.id, "source"}));
  BOOST_TEST(
      valid(blob_ref{blob_area::source, p.id, "part-2-0630da5381d0497f"}));
  BOOST_TEST(valid(blob_ref{blob_area::media, p.id, "720p/seg_00001.m4s"}));
  auto back = reel::cluster::ref_of("media/" + p.id + "/720p/seg_00001.m4s");
  BOOST_REQUIRE(back);
  BOOST_TEST(back->name == "720p/seg_00001.m4s");
  BOOST_TEST(!reel::cluster::ref_of("sources/../db/source"));
  BOOST_TEST(!reel::cluster::ref_of("db/CURRENT"));
}

BOOST_AUTO_TEST_CASE(only_members_of_the_same_cluster_get_blobs) {
  plane p;
  // Another cluster's credentials: the handshake fails both ways.
  auto other = member_tls(p.dir + "/c-pki", "another-cluster-secret", "c");
  auto r = fetch_blob(p.at(), *other, p.ref(), p.dest(), "");
  BOOST_REQUIRE(!r);
  BOOST_TEST(reel::code_of(r.error()) == reel::ec::forbidden);
  // No credentials at all (plain TCP, the old protocol): nothing.
  auto plain =
      fetch_blob(p.at(), *link_security::plaintext(), p.ref(), p.dest(), "");
  BOOST_TEST(!plain);
  BOOST_TEST(!std::filesystem::exists(p.dest()));
  // A member that is not the node it claims to fetch from is refused.
  auto wrong_name =
      fetch_blob(p.at("n9"), *p.client_tls, p.ref(), p.dest(), "");
  BOOST_REQUIRE(!wrong_name);
  BOOST_TEST(reel::code_of(wrong_name.error()) == reel::ec::forbidden);
}

BOOST_AUTO_TEST_CASE(a_flood_of_connections_is_bounded) {
  plane p;
  // Idle connections that never send: at most max_connections stay open,
  // each until its request deadline; the server keeps serving members.
  asio::io_context io;
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> idle;
  for (int i = 0; i < 300; ++i) {
    auto s = std::make_unique<asio::ip::tcp::socket>(io);
    std::error_code err;
    s->connect({asio::ip::make_address("127.0.0.1"), p.server.port()}, err);
    if (!err)
      idle.push_back(std::move(s));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  BOOST_TEST(p.server.open_connections() <= 8);
  // Past the request deadline (1 s here) the idle ones are gone and a
  // member is served again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  BOOST_TEST(p.server.open_connections() == 0);
  auto r = fetch_blob(p.at(), *p.client_tls, p.ref(), p.dest(),
                      reel::sha256_hex(p.content));
  BOOST_TEST(bool(r));
}
