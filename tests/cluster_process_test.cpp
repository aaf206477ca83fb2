// Several real reeld processes on 127.0.0.1 form one cluster: any node
// answers for every video, chunks are encoded on every node, and nodes that
// die, hang, drain or restart lose nothing.
#define BOOST_TEST_MODULE cluster_process
#include <boost/test/unit_test.hpp>

#include "tests/reeld_process.hpp"

#include <regex>

using namespace reel::test;

namespace {

/// Every node of a test cluster holds it.
const std::string secret = "cluster-process-test-secret";

const std::string& clips() {
  static std::string dir = temp_dir("cluster-clips");
  return dir;
}

/// A cluster of `n` nodes on loopback: node 0 first, the others join it.
struct cluster {
  std::vector<uint16_t> cluster_ports;
  std::vector<std::string> data;
  std::vector<std::unique_ptr<reeld_process>> nodes;
  std::vector<std::string> extra; // more options for every node

  explicit cluster(int n, std::vector<std::string> more = {})
      : extra(std::move(more)) {
    for (int i = 0; i < n; ++i) {
      cluster_ports.push_back(free_port());
      data.push_back(temp_dir("cluster-n" + std::to_string(i)));
    }
    for (int i = 0; i < n; ++i)
      start(i);
    wait_members(n);
  }

  ~cluster() {
    for (auto& n : nodes)
      if (n)
        n->stop();
    for (auto& d : data)
      std::filesystem::remove_all(d);
  }

  std::vector<std::string> args(int i) const {
    std::vector<std::string> a{"--node-id", "n" + std::to_string(i),
                               "--cluster-listen",
                               "127.0.0.1:" + std::to_string(cluster_ports[i]),
                               "--workers", "1", "--cluster-secret",
                               secret};
    a.insert(a.end(), extra.begin(), extra.end());
    for (size_t j = 0; j < cluster_ports.size(); ++j)
      if (static_cast<int>(j) != i) {
        a.push_back("--join");
        a.push_back("127.0.0.1:" + std::to_string(cluster_ports[j]));
      }
    return a;
  }

  void start(int i) {
    if (static_cast<int>(nodes.size()) <= i)
      nodes.resize(i + 1);
    nodes[i] = std::make_unique<reeld_process>(args(i), data[i]);
    nodes[i]->keep_data();
  }

  reeld_process& at(int i) { return *nodes[i]; }

  /// Each running node's view: node id -> state.
  std::map<std::string, std::string> view(int i) {
    std::map<std::string, std::string> out;
    auto a = at(i).request("GET", "/v1/admin/nodes");
    for (auto& m : a.j["data"])
      out[m["node"]] = m["state"];
    return out;
  }

  /// Waits until node `i` sees `want` for every listed node.
  bool wait_view(int i, std::map<std::string, std::string> want,
                 std::chrono::seconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto v = view(i);
      bool ok = true;
      for (auto& [id, state] : want)
        ok = ok && v[id] == state;
      if (ok)
        return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }

  void wait_members(int n) {
    std::map<std::string, std::string> all;
    for (int i = 0; i < n; ++i)
      all["n" + std::to_string(i)] = "up";
    for (int i = 0; i < n; ++i)
      BOOST_REQUIRE_MESSAGE(wait_view(i, all), "node " << i << " sees "
                                                        << view(i).size());
  }

  /// Nodes that hold the whole media of a video.
  int holders(const json& v) {
    int n = 0;
    for (auto& d : data) {
      bool all = !v["files"].empty();
      for (auto& f : v["files"])
        all = all && std::filesystem::exists(d + "/media/" + v["id"].get<std::string>()
                                             + "/" + f["name"].get<std::string>());
      n += all ? 1 : 0;
    }
    return n;
  }
};

double metric(reeld_process& n, const std::string& series) {
  auto m = n.request("GET", "/metrics", "");
  auto at = m.body.find(series + " ");
  if (at == std::string::npos)
    return 0;
  return std::stod(m.body.substr(at + series.size() + 1));
}

std::string upload(reeld_process& n, const std::string& file) {
  auto a = n.upload(file);
  BOOST_REQUIRE_MESSAGE(a.status == 202, a.body);
  return a.j["data"]["id"];
}

long frames_of(reeld_process& n, const std::string& id) {
  return ffprobe(n.base() + "/media/" + id + "/master-cmaf.m3u8").frames;
}

} // namespace

BOOST_AUTO_TEST_CASE(three_nodes_one_service) {
  cluster c{3};
  auto clip = make_clip(clips(), "spread.mp4", 640, 360, 24);
  auto id = upload(c.at(0), clip);
  auto v = c.at(2).wait_terminal(id, 180s);
  BOOST_REQUIRE_MESSAGE(v["state"] == "ready", v.dump());
  // Chunks were encoded on every node.
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(metric(c.at(i), "reel_scheduler_tasks_run_total{kind=\"chunk\"}") >= 1,
               "node " << i);
  // Every node answers for it and plays it, whoever holds the media.
  for (int i = 0; i < 3; ++i) {
    auto r = c.at(i).request("GET", "/v1/videos/" + id);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.j["state"] == "ready");
    BOOST_TEST(frames_of(c.at(i), id) == 600, "node " << i);
  }
  BOOST_TEST(c.holders(v) >= 2);
  // Keys made on one node work on all.
  auto k = c.at(1).request("POST", "/v1/keys", reeld_process::key,
                           R"({"tenant": "acme"})");
  BOOST_REQUIRE(k.status == 201);
  std::this_thread::sleep_for(500ms);
  auto acme = c.at(2).request("GET", "/api/client/v1/uploads", k.j["key"]);
  BOOST_TEST(acme.status == 200);
  BOOST_TEST(acme.j["data"].empty());
  // Revoked on one node, refused on every node.
  auto gone = c.at(0).request("DELETE", "/v1/keys/" + k.j["id"].get<std::string>());
  BOOST_REQUIRE_MESSAGE(gone.status == 204, gone.body);
  for (int i = 0; i < 3; ++i) {
    int status = 0;
    for (int tries = 0; tries < 50 && status != 401; ++tries) {
      status = c.at(i).request("GET", "/api/client/v1/uploads", k.j["key"]).status;
      if (status != 401)
        std::this_thread::sleep_for(100ms);
    }
    BOOST_TEST(status == 401, "node " << i);
  }
}

BOOST_AUTO_TEST_CASE(owner_killed_mid_transcode) {
  cluster c{3};
  auto clip = make_clip(clips(), "failover.mp4", 640, 360, 30);
  auto id = upload(c.at(0), clip);
  // Kill the owner once transcoding runs, some chunks done, not all.
  auto v = c.at(0).wait_video(id, [](const json& v) {
    return v["state"] == "transcoding" && v["progress"]["chunks_done"] >= 1;
  });
  BOOST_REQUIRE(v["state"] == "transcoding");
  BOOST_TEST(v["progress"]["chunks_done"] < v["progress"]["chunks_total"]);
  std::string owner_id = v["placement"]["owner"];
  int owner = std::stoi(owner_id.substr(1));
  c.at(owner).kill9();
  int other = (owner + 1) % 3;
  // The next node of the placement takes it over.
  auto taken = c.at(other).wait_video(id, [&](const json& v) {
    return v["placement"]["owner"] != owner_id;
  });
  BOOST_TEST(taken["placement"]["owner"] != owner_id);
  auto end = c.at(other).wait_terminal(id, 240s);
  BOOST_REQUIRE_MESSAGE(end["state"] == "ready", end.dump());
  for (int i = 0; i < 3; ++i)
    if (i != owner)
      BOOST_TEST(frames_of(c.at(i), id) == 750, "node " << i);
}

BOOST_AUTO_TEST_CASE(node_killed_after_ready_loses_nothing) {
  cluster c{3};
  std::vector<std::string> ids;
  for (int k = 0; k < 3; ++k)
    ids.push_back(upload(c.at(k), make_clip(clips(), "keep" + std::to_string(k) + ".mp4",
                                            320, 240, 4)));
  std::vector<json> videos;
  for (auto& id : ids) {
    auto v = c.at(0).wait_terminal(id, 120s);
    BOOST_REQUIRE(v["state"] == "ready");
    videos.push_back(v);
  }
  // Replicas are made once a video is ready (reel_replication_lag_blobs
  // counts what is still coming): wait for them before a node dies.
  for (auto& v : videos) {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (c.holders(v) < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(200ms);
    BOOST_TEST(c.holders(v) >= 2);
  }
  c.at(1).kill9();
  BOOST_REQUIRE(c.wait_view(0, {{"n1", "down"}}));
  for (auto& id : ids) {
    BOOST_TEST(frames_of(c.at(0), id) == 100);
    BOOST_TEST(frames_of(c.at(2), id) == 100);
  }
  // Replication returns to R = 2 among the survivors.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  bool back = false;
  while (!back && std::chrono::steady_clock::now() < deadline) {
    back = true;
    for (auto& v : videos) {
      int n = 0;
      for (int i : {0, 2}) {
        bool all = true;
        for (auto& f : v["files"])
          all = all && std::filesystem::exists(c.data[i] + "/media/" + v["id"].get<std::string>()
                                               + "/" + f["name"].get<std::string>());
        n += all ? 1 : 0;
      }
      back = back && n >= 2;
    }
    std::this_thread::sleep_for(500ms);
  }
  BOOST_TEST(back);
}

BOOST_AUTO_TEST_CASE(hung_node_is_routed_around_and_comes_back) {
  cluster c{3};
  c.at(2).pause();
  BOOST_TEST(c.wait_view(0, {{"n2", "down"}}, 20s));
  // Work goes on without it.
  auto id = upload(c.at(0), make_clip(clips(), "hung.mp4", 320, 240, 8));
  auto v = c.at(1).wait_terminal(id, 120s);
  BOOST_TEST(v["state"] == "ready");
  BOOST_TEST(frames_of(c.at(0), id) == 200);
  c.at(2).resume();
  BOOST_TEST(c.wait_view(0, {{"n2", "up"}}, 30s));
  BOOST_TEST(c.wait_view(2, {{"n0", "up"}, {"n1", "up"}}, 30s));
  // It answers again, for the video made while it was away too.
  auto seen = c.at(2).wait_video(id, [](const json& v) { return v["state"] == "ready"; }, 30s);
  BOOST_TEST(seen["state"] == "ready");
  BOOST_TEST(frames_of(c.at(2), id) == 200);
  // Exactly one record, no duplicate.
  auto list = c.at(2).request("GET", "/v1/videos?limit=100");
  int count = 0;
  for (auto& x : list.j["data"])
    count += x["id"] == id ? 1 : 0;
  BOOST_TEST(count == 1);
}

BOOST_AUTO_TEST_CASE(whole_cluster_restarts) {
  cluster c{3};
  auto id = upload(c.at(1), make_clip(clips(), "restart.mp4", 320, 240, 4));
  BOOST_REQUIRE(c.at(1).wait_terminal(id, 120s)["state"] == "ready");
  for (auto& n : c.nodes)
    n->stop();
  for (int i = 0; i < 3; ++i)
    c.start(i);
  c.wait_members(3);
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(frames_of(c.at(i), id) == 100);
}

BOOST_AUTO_TEST_CASE(drain_then_stop_loses_nothing) {
  cluster c{3};
  std::vector<std::string> ids;
  for (int k = 0; k < 3; ++k)
    ids.push_back(upload(c.at(k), make_clip(clips(), "drain" + std::to_string(k) + ".mp4",
                                            320, 240, 4)));
  for (auto& id : ids)
    BOOST_REQUIRE(c.at(0).wait_terminal(id, 120s)["state"] == "ready");
  auto d = c.at(0).request("POST", "/v1/admin/nodes/n2/drain", reeld_process::key, "{}");
  BOOST_REQUIRE_MESSAGE(d.status == 200, d.body);
  BOOST_TEST(d.j["state"] == "draining");
  BOOST_TEST(c.wait_view(1, {{"n2", "draining"}}));
  // While it drains, requests keep working everywhere.
  for (int i = 0; i < 3; ++i)
    for (auto& id : ids)
      BOOST_TEST(c.at(i).request("GET", "/v1/videos/" + id).status == 200);
  // Its replicas move to the others; then it can stop.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  bool moved = false;
  while (!moved && std::chrono::steady_clock::now() < deadline) {
    moved = true;
    for (auto& id : ids) {
      auto v = c.at(0).request("GET", "/v1/videos/" + id).j;
      int n = 0;
      for (int i : {0, 1}) {
        bool all = true;
        for (auto& f : v["files"])
          all = all && std::filesystem::exists(c.data[i] + "/media/" + id + "/"
                                               + f["name"].get<std::string>());
        n += all ? 1 : 0;
      }
      moved = moved && n >= 2;
    }
    std::this_thread::sleep_for(500ms);
  }
  BOOST_TEST(moved);
  c.at(2).stop();
  for (auto& id : ids) {
    BOOST_TEST(frames_of(c.at(0), id) == 100);
    BOOST_TEST(frames_of(c.at(1), id) == 100);
  }
}

BOOST_AUTO_TEST_CASE(api_video_tokens_and_chunks_work_on_any_node) {
  cluster c{3};
  auto clip = make_clip(clips(), "chunks.mp4", 640, 360, 6);
  auto dir = std::filesystem::path{clip}.parent_path().string();
  // Two halves of the file, each sent to a different node.
  BOOST_REQUIRE(sh("cd " + quote(dir) + " && split -n 2 -d chunks.mp4 "
                   "chunks.part. 2>&1").first == 0);
  auto curl = [&](reeld_process& n, const std::string& args) {
    auto r = sh("curl -s -w '\\n%{http_code}' " + args + " 2>&1");
    auto cut = r.second.rfind('\n');
    return std::pair{std::stoi(r.second.substr(cut + 1)),
                     json::parse(r.second.substr(0, cut), nullptr, false)};
  };
  auto basic = std::string{"-u "} + reeld_process::key + ": ";
  // An access token made by node 0 opens node 2.
  auto [st, tok] = curl(c.at(0), "-H 'Content-Type: application/json' -d "
                                   + quote(json{{"apiKey", reeld_process::key}}.dump())
                                   + " " + c.at(0).base() + "/auth/api-key");
  BOOST_REQUIRE(st == 200);
  auto bearer = "-H " + quote("Authorization: Bearer "
                              + tok["access_token"].get<std::string>()) + " ";
  auto [st2, list] = curl(c.at(2), bearer + c.at(2).base() + "/videos");
  BOOST_TEST(st2 == 200);
  // Created on node 1, its chunks sent to nodes 0 and 2, in reverse order.
  auto [st3, v] = curl(c.at(1), basic + "-H 'Content-Type: application/json' "
                                  "-d '{\"title\":\"spread chunks\"}' "
                                  + c.at(1).base() + "/videos");
  BOOST_REQUIRE(st3 == 201);
  std::string id = v["videoId"];
  auto [st4, a] = curl(c.at(2), basic + "-H 'Content-Range: part 2/2' -F file=@"
                                  + quote(dir + "/chunks.part.01") + " "
                                  + c.at(2).base() + "/videos/" + id + "/source");
  BOOST_TEST(st4 == 201, a.dump());
  auto [st5, b] = curl(c.at(0), bearer + "-H 'Content-Range: part 1/2' -F file=@"
                                  + quote(dir + "/chunks.part.00") + " "
                                  + c.at(0).base() + "/videos/" + id + "/source");
  BOOST_TEST(st5 == 201, b.dump());
  auto done = c.at(1).wait_terminal(id, 180s);
  BOOST_REQUIRE_MESSAGE(done["state"] == "ready", done.dump());
  auto sum = sh("sha256sum " + quote(clip)).second.substr(0, 64);
  BOOST_TEST(done["source"]["sha256"] == sum);
  BOOST_TEST(frames_of(c.at(2), id) == 150);
  // An upload token made on node 0 is taken by node 1.
  auto [st6, t] = curl(c.at(0), basic + "-H 'Content-Type: application/json' "
                                  "-d '{\"ttl\":600}' " + c.at(0).base()
                                  + "/upload-tokens");
  BOOST_REQUIRE(st6 == 200);
  std::this_thread::sleep_for(500ms);
  auto [st7, w] = curl(c.at(1), "-F file=@" + quote(clip) + " '" + c.at(1).base()
                                  + "/upload?token="
                                  + t["token"].get<std::string>() + "'");
  BOOST_TEST(st7 == 201, w.dump());
  BOOST_TEST(w["title"] == "chunks.mp4");
}

namespace {

/// The UUID in a Flare video's embed URL.
std::string uuid_of(const json& flare_video) {
  auto url = flare_video.value("embedUrl", std::string{});
  return url.substr(url.rfind('/') + 1);
}

} // namespace

BOOST_AUTO_TEST_CASE(one_video_per_s3key_whichever_nodes_are_asked) {
  // One copy per video: only its owner may write its record (others drop
  // records from nodes outside the placement), so the node that decides
  // a key's creates must have the video's owner register the video.
  cluster c{3, {"--replicas", "1"}};
  for (int k = 0; k < 4; ++k) {
    auto key = "vid_race_" + std::to_string(k);
    auto body = json{{"fileName", "race.mp4"}, {"s3Key", key}}.dump();
    std::vector<http_answer> answers(20);
    std::vector<std::thread> clients;
    for (int i = 0; i < 20; ++i)
      clients.emplace_back([&, i] {
        answers[i] = c.at(i % 3).request("POST", "/api/video/create",
                                         reeld_process::key, body);
      });
    for (auto& t : clients)
      t.join();
    int made = 0;
    int conflicts = 0;
    for (auto& a : answers) {
      made += a.status == 200;
      conflicts += a.status == 409;
      if (a.status == 200)
        BOOST_TEST(a.j["video"]["id"] == key);
      else if (a.status == 409)
        BOOST_TEST(a.j["success"] == false); // Flare's error form
      else
        BOOST_TEST(false, "unexpected answer " << a.status << ": " << a.body);
    }
    BOOST_TEST(made == 1, key);
    BOOST_TEST(conflicts == 19, key);
    // Every node finds the one video by its key and by its Gcore number
    // (once the record has reached it).
    auto get = [&](int i, const std::string& path) {
      auto deadline = std::chrono::steady_clock::now() + 20s;
      auto a = c.at(i).request("GET", path);
      while (a.status != 200 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(200ms);
        a = c.at(i).request("GET", path);
      }
      return a;
    };
    auto first = get(0, "/api/video/" + key);
    BOOST_REQUIRE_MESSAGE(first.status == 200, first.body);
    auto uuid = uuid_of(first.j["video"]);
    auto listed = c.at(0).request("GET", "/streaming/videos?search=" + uuid);
    BOOST_REQUIRE_MESSAGE(listed.status == 200 && listed.j.size() == 1,
                          listed.body);
    auto number = listed.j[0]["id"].get<uint64_t>();
    for (int i = 0; i < 3; ++i) {
      auto by_key = get(i, "/api/video/" + key);
      auto by_number = get(i, "/streaming/videos/" + std::to_string(number));
      BOOST_TEST(by_key.status == 200, "node " << i << ": " << by_key.body);
      BOOST_TEST(by_number.status == 200,
                 "node " << i << ": " << by_number.body);
      if (by_key.status == 200)
        BOOST_TEST(uuid_of(by_key.j["video"]) == uuid);
      if (by_number.status == 200) {
        BOOST_TEST(by_number.j["slug"] == uuid);
        BOOST_TEST(by_number.j["id"] == number);
      }
    }
  }
}
