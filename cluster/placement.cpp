#include "cluster/placement.hpp"

#include <algorithm>

namespace reel::cluster {

namespace {

// FNV-1a over both strings, then a 64-bit finalizer (splitmix64) so that
// similar names still score independently.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

} // namespace

uint64_t placement_score(const std::string& node, const std::string& video_id) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto feed = [&h](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  };
  feed(node);
  h ^= 0xff; // separator: ("ab","c") and ("a","bc") differ
  h *= 0x100000001b3ULL;
  feed(video_id);
  return mix(h);
}

std::vector<std::string> place(const std::string& video_id,
                               std::vector<std::string> nodes,
                               size_t replicas) {
  std::sort(nodes.begin(), nodes.end(),
            [&](const std::string& a, const std::string& b) {
              auto sa = placement_score(a, video_id);
              auto sb = placement_score(b, video_id);
              return sa != sb ? sa > sb : a < b;
            });
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  if (nodes.size() > replicas)
    nodes.resize(replicas);
  return nodes;
}

} // namespace reel::cluster
