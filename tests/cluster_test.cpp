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
