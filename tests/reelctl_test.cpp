// reelctl against a real reeld with one worker (so that tasks queue behind
// each other): help and exit codes, videos (state filter, history, retry),
// transcode tasks (list, cancel, requeue), keys and tenants, gc.
#define BOOST_TEST_MODULE reelctl
#include <boost/test/unit_test.hpp>

#include "tests/reeld_process.hpp"

#include <fstream>
#include <regex>
#include <sstream>

using namespace reel::test;

namespace {

reeld_process& node() {
  static reeld_process instance{{"--workers", "1"}};
  return instance;
}

const std::string& clips() {
  static std::string dir = temp_dir("ctl-clips");
  return dir;
}

struct ctl_result {
  int rc = -1;
  std::string out; // stdout
  std::string err; // stderr
};

/// Runs reelctl with `args` against the node (or `server`) with `key`.
ctl_result ctl(const std::string& args,
               const std::string& key = reeld_process::key,
               const std::string& server = {}) {
  auto errors = clips() + "/reelctl.stderr";
  auto [rc, out] =
    sh(std::string{REEL_BUILD_DIR} + "/reelctl --server "
       + quote(server.empty() ? node().base() : server) + " --key "
       + quote(key) + " " + args + " 2>" + quote(errors));
  std::ifstream in{errors};
  std::stringstream err;
  err << in.rdbuf();
  return {rc, out, err.str()};
}

/// reelctl ... --json, which must succeed.
json ctl_json(const std::string& args) {
  auto r = ctl(args + " --json");
  BOOST_REQUIRE_MESSAGE(r.rc == 0, "reelctl " << args << ": rc " << r.rc
                                              << ": " << r.err);
  return json::parse(r.out);
}

/// The "data" of reelctl ... --json (a value: safe in a range-for).
json ctl_data(const std::string& args) {
  return ctl_json(args)["data"];
}

std::string upload_ok(const std::string& file) {
  auto a = node().upload(file);
  BOOST_REQUIRE_MESSAGE(a.status == 202, a.body);
  return a.j["data"]["id"].get<std::string>();
}

int count_state(const json& v, const std::string& state) {
  int n = 0;
  for (auto& h : v["history"])
    n += h["state"] == state;
  return n;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(help_usage_and_exit_codes) {
  // --help on every command: that command's usage, exit 0.
  for (std::string cmd :
       {"status", "nodes", "drain", "undrain", "videos", "videos list",
        "videos show", "videos retry", "videos delete", "tasks", "tasks list",
        "tasks cancel", "tasks requeue", "keys", "keys create", "keys list",
        "keys revoke", "tenants", "tenants create", "tenants list", "folders",
        "folders list", "folders create", "gc"}) {
    auto r = ctl(cmd + " --help");
    BOOST_TEST(r.rc == 0, cmd);
    BOOST_TEST(r.out.rfind("usage: reelctl " + cmd, 0) == 0,
               cmd << ": " << r.out);
  }
  auto top = ctl("--help");
  BOOST_TEST(top.rc == 0);
  BOOST_TEST(top.out.find("tasks requeue") != std::string::npos);
  BOOST_TEST(top.out.find("exit codes") != std::string::npos);

  // Usage errors: 2, with the command's usage on stderr.
  for (std::string bad :
       {"", "frobnicate", "videos", "videos frob", "videos show",
        "tasks cancel", "tasks cancel abc", "keys create", "keys revoke",
        "tenants create", "gc --older-than soon", "gc extra",
        "status --state ready", "--bogus status", "videos list --limit"}) {
    auto r = ctl(bad);
    BOOST_TEST(r.rc == 2, "'" << bad << "': rc " << r.rc << " " << r.err);
    BOOST_TEST(r.err.find("usage: reelctl") != std::string::npos, bad);
  }
  auto tasks_usage = ctl("tasks cancel abc");
  BOOST_TEST(tasks_usage.err.find("usage: reelctl tasks cancel")
               != std::string::npos,
             tasks_usage.err);

  // Unreachable: 3.
  for (std::string cmd : {"status", "tasks list", "gc"}) {
    auto r = ctl(cmd, reeld_process::key, "http://127.0.0.1:1");
    BOOST_TEST(r.rc == 3, cmd << ": " << r.err);
    BOOST_TEST(r.err.find("cannot reach") != std::string::npos);
  }

  // Refused: 1, with the server's reason.
  auto bad_key = ctl("status", "sk-nope");
  BOOST_TEST(bad_key.rc == 1);
  BOOST_TEST(bad_key.err.find("401") != std::string::npos, bad_key.err);
  auto k = node().request("POST", "/v1/keys", reeld_process::key,
                          R"({"tenant": "plain"})");
  BOOST_REQUIRE(k.status == 201);
  auto plain = ctl("tasks list", k.j["key"].get<std::string>());
  BOOST_TEST(plain.rc == 1);
  BOOST_TEST(plain.err.find("403") != std::string::npos, plain.err);
  auto missing = ctl("tasks cancel 987654");
  BOOST_TEST(missing.rc == 1);
  BOOST_TEST(missing.err.find("404") != std::string::npos, missing.err);
  BOOST_TEST(ctl("videos retry 9c1fa5c4-a8f1-4b2e-9d6e-1c8a0b9e2d7f").rc == 1);
  BOOST_TEST(ctl("videos list --state sleeping").rc == 1);
}

BOOST_AUTO_TEST_CASE(keys_and_tenants) {
  auto made = ctl("tenants create acme-ctl");
  BOOST_REQUIRE_MESSAGE(made.rc == 0, made.err);
  auto key = trim(made.out);
  BOOST_TEST(key.rfind("sk-", 0) == 0, key);
  BOOST_TEST(node().request("GET", "/v1/videos", key).status == 200);
  auto again = ctl("tenants create acme-ctl");
  BOOST_TEST(again.rc == 1);
  BOOST_TEST(again.err.find("409") != std::string::npos, again.err);

  auto pat = ctl_json("keys create --tenant acme-ctl --scopes videos:read");
  BOOST_TEST(pat["key"].get<std::string>().rfind("flr_pat_", 0) == 0);
  BOOST_TEST(pat["scopes"] == json::array({"videos:read"}));

  auto keys = ctl_json("keys list --tenant acme-ctl")["data"];
  BOOST_REQUIRE(keys.size() == 2u);
  std::string id;
  for (auto& k : keys) {
    BOOST_TEST(!k.contains("key"));
    BOOST_TEST(std::regex_match(k["id"].get<std::string>(),
                                std::regex{"[0-9a-f]{12}"}));
    BOOST_TEST(k["tenant"] == "acme-ctl");
    BOOST_TEST(k["admin"] == false);
    if (k["prefix"] == key.substr(0, 7))
      id = k["id"];
  }
  BOOST_REQUIRE(!id.empty());
  auto table = ctl("keys list");
  BOOST_TEST(table.rc == 0);
  BOOST_TEST(table.out.find("acme-ctl") != std::string::npos);
  BOOST_TEST(table.out.find("videos:read") != std::string::npos);

  bool listed = false;
  for (auto& t : ctl_data("tenants list"))
    if (t["tenant"] == "acme-ctl") {
      listed = true;
      BOOST_TEST(t["keys"] == 2);
      BOOST_TEST(t["videos"] == 0);
    }
  BOOST_TEST(listed);
  BOOST_TEST(ctl("tenants list").out.find("acme-ctl") != std::string::npos);

  // Revoked: 401 from then on.
  auto revoked = ctl("keys revoke " + id);
  BOOST_TEST(revoked.rc == 0, revoked.err);
  BOOST_TEST(node().request("GET", "/v1/videos", key).status == 401);
  BOOST_TEST(ctl_json("keys list --tenant acme-ctl")["data"].size() == 1u);
  BOOST_TEST(ctl("keys revoke " + id).rc == 1); // gone already
  BOOST_TEST(ctl("keys revoke 000000000000").rc == 1);

  // The key making the request cannot revoke itself.
  std::string own;
  for (auto& k : ctl_data("keys list --tenant default"))
    if (k["prefix"] == reeld_process::key.substr(0, 7))
      own = k["id"];
  BOOST_REQUIRE(!own.empty());
  auto self = ctl("keys revoke " + own);
  BOOST_TEST(self.rc == 1);
  BOOST_TEST(self.err.find("409") != std::string::npos, self.err);
  BOOST_TEST(ctl("status").rc == 0);
}

BOOST_AUTO_TEST_CASE(a_broken_upload_retried_fails_again_the_same_way) {
  auto text = clips() + "/notes.mp4";
  std::ofstream{text} << "this is not a video, just some text\n";
  auto id = upload_ok(text);
  auto v = node().wait_terminal(id, std::chrono::seconds(30));
  BOOST_REQUIRE(v["state"] == "failed");
  auto reason = v["failure_reason"].get<std::string>();

  auto failed = ctl_json("videos list --state failed --limit 100");
  bool found = false;
  for (auto& x : failed["data"]) {
    BOOST_TEST(x["state"] == "failed");
    found = found || x["id"] == id;
  }
  BOOST_TEST(found);
  for (auto& x : ctl_data("videos list --state ready --limit 100"))
    BOOST_TEST(x["id"] != id);

  auto show = ctl("videos show " + id);
  BOOST_TEST(show.rc == 0);
  BOOST_TEST(show.out.find("failure   " + reason) != std::string::npos,
             show.out);
  // The history, with times and the reason.
  std::regex failed_line{
    R"(\n  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  failed +)"};
  BOOST_TEST(std::regex_search(show.out, failed_line), show.out);
  BOOST_TEST(show.out.find("failed      " + reason) != std::string::npos);

  auto retry = ctl("videos retry " + id);
  BOOST_TEST(retry.rc == 0, retry.err);
  BOOST_TEST(retry.out.find("uploaded") != std::string::npos, retry.out);
  v = node().wait_video(
    id, [](const json& x) { return count_state(x, "failed") == 2; },
    std::chrono::seconds(30));
  BOOST_TEST(v["state"] == "failed");
  BOOST_TEST(v["failure_reason"] == reason);
  BOOST_TEST(count_state(v, "failed") == 2);
  bool retried = false;
  for (auto& h : v["history"])
    retried = retried || (h["state"] == "uploaded"
                          && h.value("reason", "") == "retried");
  BOOST_TEST(retried, v["history"].dump());
  auto history = ctl("videos show " + id).out;
  BOOST_TEST(std::count(history.begin(), history.end(), '\n') >= 8);
}

BOOST_AUTO_TEST_CASE(tasks_listed_cancelled_and_requeued) {
  // One worker: the long clip's chunks run one by one, the short clip's
  // tasks wait behind them.
  auto long_clip = make_clip(clips(), "long.mp4", 1280, 720, 10);
  auto short_clip = make_clip(clips(), "short.mp4", 320, 240, 2);
  auto id1 = upload_ok(long_clip);
  auto id2 = upload_ok(short_clip);

  bool saw_running = false, requeued = false, cancelled = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline
         && !(requeued && cancelled)) {
    auto tasks = ctl_json("tasks list")["data"];
    for (auto& t : tasks) {
      BOOST_TEST(t["node"] == "node-" + std::to_string(node().port()));
      if (t["state"] == "running") {
        saw_running = true;
        BOOST_TEST(t["running_s"].is_number());
        BOOST_TEST(t["started_at"].is_string());
        if (!requeued && t["video"] == id1 && t["kind"] == "chunk") {
          // Queued again first, under the same id (refused if it ended
          // meanwhile).
          auto r = ctl("tasks requeue " + t["id"].dump() + " --json");
          if (r.rc == 0) {
            requeued = true;
            auto q = json::parse(r.out);
            BOOST_TEST(q["id"] == t["id"]);
            BOOST_TEST(q["state"] == "queued");
            BOOST_TEST(q["video"] == id1);
          }
        }
      } else if (t["state"] == "queued" && t["video"] == id2
                 && t["kind"] == "chunk" && !cancelled) {
        BOOST_TEST(t["running_s"].is_null());
        auto c = ctl("tasks cancel " + t["id"].dump());
        cancelled = c.rc == 0;
        if (!cancelled) // it started meanwhile: refused, and says why
          BOOST_TEST(c.err.find("409") != std::string::npos, c.err);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  BOOST_TEST(saw_running);
  BOOST_REQUIRE(requeued);
  BOOST_REQUIRE(cancelled);
  auto table = ctl("tasks list");
  BOOST_TEST(table.rc == 0);
  BOOST_TEST(table.out.find("NODE") != std::string::npos);

  // The cancelled chunk's video failed, saying so; retried, it is made.
  auto v2 = node().wait_terminal(id2, std::chrono::seconds(60));
  BOOST_TEST(v2["state"] == "failed");
  auto why = v2["failure_reason"].get<std::string>();
  BOOST_TEST(why.find("cancelled by an operator") != std::string::npos, why);

  // The requeued task's video is whole: every frame, once.
  auto v1 = node().wait_terminal(id1, std::chrono::seconds(90));
  BOOST_REQUIRE(v1["state"] == "ready");
  for (auto& r : v1["renditions"])
    if (r.contains("frames"))
      BOOST_TEST(r["frames"] == 250, r["name"]);
  auto mp4 = ffprobe(node().base() + "/media/" + id1 + "/720p.mp4");
  BOOST_TEST(mp4.frames == 250);
  BOOST_TEST(mp4.width == 1280);
  auto hls = ffprobe(node().base() + "/media/" + id1 + "/720p/ts.m3u8");
  BOOST_TEST(hls.frames == 250);

  // Probed already: it goes on transcoding from the parts it has.
  auto retry = ctl("videos retry " + id2);
  BOOST_TEST(retry.rc == 0, retry.err);
  BOOST_TEST(retry.out.find("transcoding") != std::string::npos, retry.out);
  v2 = node().wait_terminal(id2, std::chrono::seconds(60));
  BOOST_TEST(v2["state"] == "ready", v2["failure_reason"]);
  BOOST_TEST(v2["failure_reason"].is_null());
  BOOST_TEST(count_state(v2, "probing") == 1); // not probed again
  bool retried = false;
  for (auto& h : v2["history"])
    retried = retried || (h["state"] == "transcoding"
                          && h.value("reason", "") == "retried");
  BOOST_TEST(retried, v2["history"].dump());
  for (auto& r : v2["renditions"])
    if (r.contains("frames"))
      BOOST_TEST(r["frames"] == 50, r["name"]);
  auto low = ffprobe(node().base() + "/media/" + id2 + "/240p/ts.m3u8");
  BOOST_TEST(low.frames == 50);

  // Only a failed video is retried.
  auto again = ctl("videos retry " + id1);
  BOOST_TEST(again.rc == 1);
  BOOST_TEST(again.err.find("409") != std::string::npos, again.err);
  bool listed = false;
  for (auto& x : ctl_data("videos list --state ready --limit 100")) {
    BOOST_TEST(x["state"] == "ready");
    listed = listed || x["id"] == id1;
  }
  BOOST_TEST(listed);
  // Nothing left behind in the queue.
  BOOST_TEST(ctl_json("tasks list")["data"].empty());
}

BOOST_AUTO_TEST_CASE(gc_removes_old_leftovers_and_keeps_fresh_ones) {
  namespace fs = std::filesystem;
  auto data = fs::path{node().data()};
  auto old = fs::file_time_type::clock::now() - std::chrono::hours(48);
  auto write = [](const fs::path& p, size_t bytes) {
    fs::create_directories(p.parent_path());
    std::ofstream{p} << std::string(bytes, 'x');
  };
  // An orphaned media directory (no such video), two days old, and a
  // fresh one; an old and a fresh upload cut off in tmp/; an old tus upload.
  auto orphan = data / "media" / "0badc0de-0000-4000-8000-00000000aaaa";
  auto fresh_orphan = data / "work" / "0badc0de-0000-4000-8000-00000000bbbb";
  write(orphan / "720p" / "seg_00000.m4s", 1000);
  write(fresh_orphan / "c00000-720p.pkt", 300);
  for (auto& p : {orphan / "720p" / "seg_00000.m4s", orphan / "720p", orphan})
    fs::last_write_time(p, old);
  write(data / "tmp" / "upload-old", 500);
  fs::last_write_time(data / "tmp" / "upload-old", old);
  write(data / "tmp" / "upload-fresh", 200);
  auto idle_since = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count()
                    - 48 * 3600 * 1000LL;
  std::ofstream{data / "tus" / "oldupload.json"}
    << json{{"video", "0badc0de-0000-4000-8000-00000000cccc"},
            {"tenant", "default"},
            {"length", 100},
            {"offset", 10},
            {"expires_ms", idle_since + 24 * 3600 * 1000LL}}
         .dump();
  write(data / "tus" / "oldupload.bin", 10);

  auto r = ctl_json("gc --older-than 3600");
  BOOST_TEST_MESSAGE(r.dump());
  BOOST_TEST(r["older_than_s"] == 3600);
  BOOST_TEST(r["removed"]["orphans"]["count"] == 1);
  BOOST_TEST(r["removed"]["orphans"]["bytes"] == 1000);
  BOOST_TEST(r["removed"]["tmp"]["count"] == 1);
  BOOST_TEST(r["removed"]["tmp"]["bytes"] == 500);
  BOOST_TEST(r["removed"]["tus"]["count"] == 1);
  for (auto kind : {"parts", "replicas", "deliveries"})
    BOOST_TEST(r["removed"][kind]["count"] == 0, kind);
  BOOST_TEST(r["total"]["count"] == 3);
  BOOST_TEST(!fs::exists(orphan));
  BOOST_TEST(!fs::exists(data / "tmp" / "upload-old"));
  BOOST_TEST(!fs::exists(data / "tus" / "oldupload.json"));
  BOOST_TEST(!fs::exists(data / "tus" / "oldupload.bin"));
  BOOST_TEST(fs::exists(fresh_orphan / "c00000-720p.pkt"));
  BOOST_TEST(fs::exists(data / "tmp" / "upload-fresh"));
  // The videos made by the tests before are untouched.
  auto ready = ctl_json("videos list --state ready");
  for (auto& v : ready["data"])
    BOOST_TEST(fs::exists(data / "media" / v["id"].get<std::string>()));

  // A table, and every node of the cluster (here one).
  auto table = ctl("gc --older-than 3600");
  BOOST_TEST(table.rc == 0);
  BOOST_TEST(table.out.find("orphans") != std::string::npos, table.out);
  BOOST_TEST(table.out.find("total") != std::string::npos);
  auto all = ctl_json("gc --all");
  BOOST_TEST(all["data"].size() == 1u);
  BOOST_TEST(all["data"][0]["older_than_s"] == 86400);
  BOOST_TEST(fs::exists(fresh_orphan));
}
