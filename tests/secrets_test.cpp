// Secrets and tokens against real reeld processes (docs/security.md): no
// upload token, webhook secret or import header in plain in the store's
// files; a data directory of the release before still served, then
// sealed; tokens that die with the key (or password) that gave them;
// limited password tries; thumbnails rounded to frames in a bounded cache;
// restricted media kept out of shared caches.
#define BOOST_TEST_MODULE secrets
#include <boost/test/unit_test.hpp>

#include "tests/files.hpp"
#include "ops/crypto.hpp"
#include "ops/util.hpp"
#include "storage/db.hpp"
#include "storage/keys.hpp"
#include "tests/reeld_process.hpp"

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

using namespace reel::test;
using reel::sha256_hex;

namespace {

const std::string& key = reeld_process::key;

const std::string& clips() {
  static std::string dir = temp_dir("secrets-clips");
  return dir;
}

/// 4 s at 25 fps (100 frames), small.
const std::string& clip() {
  static std::string path = make_clip(clips(), "clip.mp4", 320, 240, 4);
  return path;
}

using reel::testing::any_file_holds;

/// An HTTP answer from httplib, any method, with an optional bearer key.
struct answer {
  int status = 0;
  std::string body;
  json j;
  httplib::Headers headers;
  std::string header(const std::string& name) const {
    auto i = headers.find(name);
    return i == headers.end() ? std::string{} : i->second;
  }
};

answer call(const reeld_process& n, const std::string& method,
            const std::string& path, const std::string& bearer = key,
            const std::string& body = {},
            const std::string& type = "application/json",
            httplib::Headers headers = {}, const std::string& from = {}) {
  httplib::Client cli{"127.0.0.1", n.port()};
  cli.set_read_timeout(60);
  if (!from.empty())
    cli.set_interface(from); // an address of the client's own
  if (!bearer.empty())
    headers.emplace("Authorization", "Bearer " + bearer);
  httplib::Result r{nullptr, httplib::Error::Unknown};
  if (method == "GET")
    r = cli.Get(path.c_str(), headers);
  else if (method == "DELETE")
    r = cli.Delete(path.c_str(), headers);
  else if (method == "PATCH")
    r = cli.Patch(path.c_str(), headers, body, type.c_str());
  else if (method == "PUT")
    r = cli.Put(path.c_str(), headers, body, type.c_str());
  else
    r = cli.Post(path.c_str(), headers, body, type.c_str());
  if (!r)
    throw std::runtime_error("request failed: " + method + " " + path);
  answer a;
  a.status = r->status;
  a.body = r->body;
  a.j = json::parse(r->body, nullptr, false);
  a.headers = r->headers;
  return a;
}

/// The path of a URL the node handed out.
std::string path_of(const std::string& url) {
  auto at = url.find('/', url.find("://") + 3);
  return url.substr(at);
}

std::string upload_ready(const reeld_process& n) {
  auto a = n.upload(clip());
  BOOST_REQUIRE_MESSAGE(a.status == 202, a.body);
  auto id = a.j["data"]["id"].get<std::string>();
  auto v = n.wait_terminal(id);
  BOOST_REQUIRE_MESSAGE(v["state"] == "ready", v.dump());
  return id;
}

/// A new key of tenant "default" (not admin).
std::string new_key(const reeld_process& n) {
  auto a = call(n, "POST", "/v1/keys", key, R"({"tenant":"default"})");
  BOOST_REQUIRE_MESSAGE(a.status == 201, a.body);
  return a.j["key"];
}

/// A small HTTP server on 127.0.0.1 in a thread of the test.
struct local_server {
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  void start() {
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread{[this] { svr.listen_after_bind(); }};
    while (!svr.is_running())
      std::this_thread::sleep_for(10ms);
  }
  ~local_server() {
    svr.stop();
    if (thread.joinable())
      thread.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
};

std::string b64(const std::string& s) {
  static const char* t =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    uint32_t v =
        (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8) | uint8_t(s[i + 2]);
    for (int k = 18; k >= 0; k -= 6)
      out += t[(v >> k) & 63];
  }
  if (i + 1 == s.size()) {
    uint32_t v = uint8_t(s[i]) << 16;
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == s.size()) {
    uint32_t v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8);
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

/// A tus creation request carrying `token` for video `id`.
answer tus_create(const reeld_process& n, const std::string& token,
                  const std::string& id) {
  return call(n, "POST", "/upload/", {}, {}, "application/octet-stream",
              {{"Tus-Resumable", "1.0.0"},
               {"Upload-Length", "1000"},
               {"Upload-Metadata", "token " + b64(token) + ",video_id " +
                                       b64(id) + ",filename " + b64("a.mp4")}});
}

/// The thumbnails a video's cache holds.
std::set<std::string> thumbnails(const reeld_process& n,
                                 const std::string& id) {
  std::set<std::string> out;
  std::error_code ignored;
  for (auto& e : std::filesystem::directory_iterator(
           n.data() + "/media/" + id + "/thumbnails", ignored))
    if (e.path().extension() == ".jpg")
      out.insert(e.path().filename().string());
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(
    upload_tokens_and_webhook_secrets_are_not_stored_in_plain) {
  reeld_process n{{"--import-allow", "127.0.0.0/8"}};
  auto token = call(n, "POST", "/upload-tokens", key, R"({"ttl":0})");
  BOOST_REQUIRE_MESSAGE(token.status == 200, token.body);
  std::string t = token.j["token"];
  // Nothing listens on port 9: deliveries wait in the outbox.
  auto hook = call(n, "POST", "/v1/webhooks", key,
                   R"({"url":"http://127.0.0.1:9/hook","events":["*"]})");
  BOOST_REQUIRE_MESSAGE(hook.status == 201, hook.body);
  std::string secret = hook.j["secret"];
  auto av = call(
      n, "POST", "/webhooks", key,
      R"({"url":"http://127.0.0.1:9/av","events":["video.encoding.quality.completed"]})");
  BOOST_REQUIRE_MESSAGE(av.status == 201, av.body);
  std::string av_secret = av.j["signatureSecret"];
  BOOST_TEST(av_secret.rfind("sig_sec_", 0) == 0);
  upload_ready(n); // deliveries of its events, with the secret, in the outbox
  answer outbox;
  for (int i = 0; i < 100; ++i) { // the ready events follow the ready state
    outbox = call(n, "GET", "/v1/webhooks/deliveries");
    if (outbox.j["data"].size() >= 4u)
      break;
    std::this_thread::sleep_for(100ms);
  }
  // uploaded and ready (native), hls and mp4 of the one rung (api.video).
  BOOST_TEST(outbox.j["data"].size() >= 4u, outbox.body);
  // The answers show them as before.
  auto got = call(n, "GET", "/upload-tokens/" + t);
  BOOST_TEST(got.status == 200, got.body);
  BOOST_TEST(got.j["token"] == t);
  auto listed = call(n, "GET", "/webhooks");
  BOOST_TEST(listed.j["data"][0]["signatureSecret"] == av_secret, listed.body);
  // Nothing of them in the store's files, running or stopped.
  for (auto running : {true, false}) {
    if (!running)
      n.stop();
    BOOST_TEST(!any_file_holds(n.data() + "/db", t));
    BOOST_TEST(!any_file_holds(n.data() + "/db", secret));
    BOOST_TEST(!any_file_holds(n.data() + "/db", av_secret));
  }
  // After a restart they are found and opened again.
  n.start();
  BOOST_TEST(call(n, "GET", "/upload-tokens/" + t).j["token"] == t);
  BOOST_TEST(call(n, "GET", "/webhooks").j["data"][0]["signatureSecret"] ==
             av_secret);
  BOOST_TEST(call(n, "DELETE", "/upload-tokens/" + t).status == 204);
  BOOST_TEST(call(n, "GET", "/upload-tokens/" + t).status == 404);
}

BOOST_AUTO_TEST_CASE(rows_of_the_release_before_are_served_then_sealed) {
  auto data = temp_dir("secrets-legacy");
  // A receiver for the delivery that waits in the outbox.
  local_server receiver;
  std::mutex mtx;
  std::string got_body, got_signature;
  receiver.svr.Post("/hook",
                    [&](const httplib::Request& req, httplib::Response& res) {
                      std::lock_guard<std::mutex> guard{mtx};
                      got_body = req.body;
                      got_signature = req.get_header_value("X-Reel-Signature");
                      res.status = 200;
                    });
  receiver.start();
  // Rows as the release before this one wrote them.
  const std::string plain_token = "toLegacyUploadToken0123";
  const std::string hook_secret = "sig_sec_LegacyHookSecret456";
  const std::string delivery_secret = "whsec_LegacyDeliverySecret789";
  const std::string origin_header = "Authorization: Bearer origin-Legacy012";
  const std::string video_id = "0b9a1c3e-2f4d-4e5f-8a6b-7c8d9e0f1a2b";
  auto now = reel::now_ms();
  {
    auto store = reel::db::open(data + "/db");
    BOOST_REQUIRE(store);
    auto& s = **store;
    // A lone node's own secret (its first start made it).
    BOOST_REQUIRE(
        !s.put(reel::cf::meta, "token_secret", reel::random_token(48)));
    reel::upload_token_record t{plain_token, "default", 0, now, 0};
    BOOST_REQUIRE(!s.put(reel::cf::tokens,
                         reel::keys::upload_token(plain_token), encode(t)));
    reel::webhook_record w{"webhook_legacy",
                           "default",
                           receiver.url("/av"),
                           {"video.encoding.quality.completed"},
                           hook_secret,
                           "apivideo",
                           now};
    BOOST_REQUIRE(!s.put(reel::cf::webhooks,
                         reel::keys::webhook("default", w.id), encode(w)));
    reel::delivery_record d;
    d.id = "dl_0000000000000legacy";
    d.webhook_id = "webhook_gone";
    d.tenant = "default";
    d.url = receiver.url("/hook");
    d.format = "native";
    d.secret = delivery_secret;
    d.event = "video.ready";
    d.video_id = video_id;
    d.body = R"({"type":"video.ready","video_id":")" + video_id + "\"}";
    d.created_ms = d.next_ms = now;
    BOOST_REQUIRE(!s.put(reel::cf::outbox, d.id, encode(d)));
    reel::video_record v;
    v.id = video_id;
    v.tenant = "default";
    v.folder = "root";
    v.state = reel::states::failed;
    v.failure_reason = "import failed: the server answered HTTP 404";
    v.created_ms = v.updated_ms = now;
    v.import_url = "http://127.0.0.1:9/x.mp4";
    v.import_headers = {origin_header};
    BOOST_REQUIRE(!s.put_video(v));
  }
  auto db_dir = data + "/db";
  for (auto* text : {&plain_token, &hook_secret, &delivery_secret})
    BOOST_REQUIRE(any_file_holds(db_dir, *text));
  reeld_process n{{"--import-allow", "127.0.0.0/8"}, data};
  // Served: the token, the subscription's secret, the delivery (signed).
  auto t = call(n, "GET", "/upload-tokens/" + plain_token);
  BOOST_TEST(t.status == 200, t.body);
  BOOST_TEST(t.j["token"] == plain_token);
  auto hooks = call(n, "GET", "/webhooks");
  BOOST_REQUIRE_MESSAGE(hooks.j["data"].size() == 1u, hooks.body);
  BOOST_TEST(hooks.j["data"][0]["signatureSecret"] == hook_secret);
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (!got_body.empty())
        break;
    }
    std::this_thread::sleep_for(100ms);
  }
  {
    std::lock_guard<std::mutex> guard{mtx};
    BOOST_REQUIRE_MESSAGE(!got_body.empty(), "the delivery was not sent");
    BOOST_TEST(got_signature == "sha256=" + reel::hex(reel::hmac_sha256(
                                                delivery_secret, got_body)));
  }
  auto v = call(n, "GET", "/v1/videos/" + video_id);
  BOOST_TEST(v.status == 200);
  BOOST_TEST(v.body.find("origin-Legacy012") == std::string::npos);
  n.stop();
  // Now sealed: nothing of them in any file of the store.
  BOOST_TEST(!any_file_holds(db_dir, plain_token));
  BOOST_TEST(!any_file_holds(db_dir, hook_secret));
  BOOST_TEST(!any_file_holds(db_dir, delivery_secret));
  BOOST_TEST(!any_file_holds(db_dir, "origin-Legacy012"));
  {
    auto store = reel::db::open(db_dir);
    BOOST_REQUIRE(store);
    std::vector<std::pair<std::string, std::string>> rows;
    BOOST_REQUIRE(!(*store)->scan(reel::cf::tokens, "", [&](auto& k, auto& x) {
      rows.emplace_back(k, x);
      return true;
    }));
    BOOST_REQUIRE(rows.size() == 1u);
    auto name = rows[0].first.substr(reel::keys::upload_token_prefix().size());
    BOOST_TEST(name.size() == 64u); // a digest, not the token
    reel::upload_token_record stored;
    BOOST_REQUIRE(!decode(rows[0].second, stored));
    BOOST_TEST(reel::sealer::is_sealed(stored.token));
    auto raw = (*store)->get(reel::cf::webhooks,
                             reel::keys::webhook("default", "webhook_legacy"));
    BOOST_REQUIRE(raw);
    BOOST_REQUIRE(*raw);
    reel::webhook_record w;
    BOOST_REQUIRE(!decode(**raw, w));
    BOOST_TEST(reel::sealer::is_sealed(w.secret));
    auto rec = (*store)->get_video(video_id);
    BOOST_REQUIRE(rec);
    BOOST_REQUIRE(*rec);
    BOOST_TEST((*rec)->import_headers.empty());
  }
  // And served from the sealed form after another start.
  n.start();
  BOOST_TEST(call(n, "GET", "/upload-tokens/" + plain_token).j["token"] ==
             plain_token);
  BOOST_TEST(call(n, "GET", "/webhooks").j["data"][0]["signatureSecret"] ==
             hook_secret);
}

BOOST_AUTO_TEST_CASE(import_headers_are_dropped_when_the_import_ends) {
  local_server origin;
  std::mutex mtx;
  std::string seen;
  origin.svr.Get(
      "/clip.mp4", [&](const httplib::Request& req, httplib::Response& res) {
        {
          std::lock_guard<std::mutex> guard{mtx};
          seen = req.get_header_value("Authorization");
        }
        std::ifstream in{clip(), std::ios::binary};
        res.set_content(std::string{std::istreambuf_iterator<char>{in}, {}},
                        "video/mp4");
      });
  origin.start();
  reeld_process n{{"--import-allow", "127.0.0.0/8"}};
  auto make = [&](const std::string& path, const std::string& header) {
    json body = {{"video",
                  {{"name", "imported"},
                   {"origin_url", origin.url(path)},
                   {"origin_http_headers", header}}}};
    httplib::Client cli{"127.0.0.1", n.port()};
    auto r = cli.Post("/streaming/videos", {{"Authorization", "APIKey " + key}},
                      body.dump(), "application/json");
    BOOST_REQUIRE(r);
    BOOST_REQUIRE_MESSAGE(r->status == 200, r->body);
    BOOST_TEST(r->body.find(header) == std::string::npos);
    return json::parse(r->body)[0]["slug"].get<std::string>();
  };
  auto ok = make("/clip.mp4", "Authorization: Bearer imp-Secret-42");
  auto bad = make("/missing.mp4", "Authorization: Bearer imp-Fail-43");
  BOOST_TEST(n.wait_terminal(ok)["state"] == "ready");
  BOOST_TEST(n.wait_terminal(bad)["state"] == "failed");
  {
    std::lock_guard<std::mutex> guard{mtx};
    BOOST_TEST(seen == "Bearer imp-Secret-42"); // it was sent
  }
  n.stop();
  auto store = reel::db::open(n.data() + "/db");
  BOOST_REQUIRE(store);
  for (auto& id : {ok, bad}) {
    auto v = (*store)->get_video(id);
    BOOST_REQUIRE(v);
    BOOST_REQUIRE(*v);
    BOOST_TEST((*v)->import_headers.empty(), id);
    BOOST_TEST(!(*v)->import_url.empty());
  }
}

BOOST_AUTO_TEST_CASE(thumbnails_are_frames_in_a_bounded_cache) {
  reeld_process n;
  auto id = upload_ready(n);
  auto media = "/media/" + id + "/";
  auto a = call(n, "GET", media + "thumbnail.jpg?time=1.001", {});
  auto b = call(n, "GET", media + "thumbnail.jpg?time=1.002", {});
  BOOST_REQUIRE_MESSAGE(a.status == 200, a.body);
  BOOST_TEST(a.body == b.body);
  BOOST_TEST(a.header("Content-Type") == "image/jpeg");
  BOOST_TEST(a.header("Cache-Control").find("public") != std::string::npos);
  // One frame at 25 fps: one file (frame 25 starts at 1.0 s).
  BOOST_TEST((thumbnails(n, id) == std::set<std::string>{"f25.jpg"}));
  auto c = call(n, "GET", media + "thumbnail.jpg?time=1.04", {});
  BOOST_TEST(c.status == 200);
  BOOST_TEST(c.body != a.body);
  BOOST_TEST(thumbnails(n, id).count("f26.jpg") == 1u);
  // Past the last frame and outside the video.
  BOOST_TEST(call(n, "GET", media + "thumbnail.jpg?time=4", {}).status == 200);
  BOOST_TEST(thumbnails(n, id).count("f99.jpg") == 1u);
  BOOST_TEST(call(n, "GET", media + "thumbnail.jpg?time=4.5", {}).status ==
             400);
  // 80 frames: the cache keeps the 64 used last.
  for (int f = 0; f < 80; ++f) {
    auto t = call(
        n, "GET",
        media + "thumbnail.jpg?time=" + std::to_string(f / 25.0 + 0.01), {});
    BOOST_REQUIRE_MESSAGE(t.status == 200, t.body);
  }
  auto kept = thumbnails(n, id);
  BOOST_TEST(kept.size() == 64u);
  BOOST_TEST(kept.count("f79.jpg") == 1u);
  BOOST_TEST(kept.count("f0.jpg") == 0u);
  // A private video's thumbnails need its token, like all of its media,
  // and none of them may be kept by a shared cache.
  auto priv = call(n, "PATCH", "/videos/" + id, key, R"({"public":false})");
  BOOST_REQUIRE_MESSAGE(priv.status == 200, priv.body);
  auto thumb = path_of(priv.j["assets"]["thumbnail"]);
  BOOST_TEST(thumb.find("/token/") != std::string::npos);
  BOOST_TEST(call(n, "GET", media + "thumbnail.jpg?time=1", {}).status == 403);
  BOOST_TEST(call(n, "GET", media + "thumbnail.jpg", {}).status == 403);
  auto with = call(n, "GET", thumb + "?time=1.001", {});
  BOOST_TEST(with.status == 200);
  BOOST_TEST(with.body == a.body);
  // The master playlist, a media playlist it names, a segment of that.
  auto hls = path_of(priv.j["assets"]["hls"]);
  auto first_uri = [](const std::string& playlist) {
    std::istringstream lines{playlist};
    for (std::string line; std::getline(lines, line);)
      if (!line.empty() && line[0] != '#')
        return line;
    return std::string{};
  };
  auto dir_of = [](const std::string& p) {
    return p.substr(0, p.rfind('/') + 1);
  };
  auto rung = dir_of(hls) + first_uri(call(n, "GET", hls, {}).body);
  auto segment = dir_of(rung) + first_uri(call(n, "GET", rung, {}).body);
  BOOST_TEST(segment.find(".ts") != std::string::npos, segment);
  for (auto& p : {thumb + "?time=1", thumb, hls, rung, segment,
                  path_of(priv.j["assets"]["mp4"])}) {
    auto m = call(n, "GET", p, {});
    BOOST_TEST(m.status == 200, p);
    auto cc = m.header("Cache-Control");
    BOOST_TEST(cc.find("public") == std::string::npos, p + ": " + cc);
    BOOST_TEST(cc.find("private") == 0u, p + ": " + cc);
  }
}

BOOST_AUTO_TEST_CASE(tokens_die_with_the_key_that_made_them) {
  reeld_process n{{"--import-allow", "127.0.0.0/8"}};
  auto k1 = new_key(n);
  auto k2 = new_key(n);
  auto id = upload_ready(n);
  BOOST_REQUIRE(
      call(n, "PATCH", "/videos/" + id, key, R"({"public":false})").status ==
      200);
  // Playback tokens (api.video's assets) of each key.
  auto hls1 = path_of(call(n, "GET", "/videos/" + id, k1).j["assets"]["hls"]);
  auto hls2 = path_of(call(n, "GET", "/videos/" + id, k2).j["assets"]["hls"]);
  BOOST_TEST(hls1 != hls2);
  BOOST_TEST(call(n, "GET", hls1, {}).status == 200);
  // Presigned PUTs (Flare) of each key.
  auto presign = [&](const std::string& k) {
    auto made =
        call(n, "POST", "/api/video/create", k, R"({"fileName":"a.mp4"})");
    BOOST_REQUIRE_MESSAGE(made.status == 200, made.body);
    json body = {{"videoId", made.j["video"]["id"]}, {"fileName", "a.mp4"}};
    auto p = call(n, "POST", "/api/video/upload/presign", k, body.dump());
    BOOST_REQUIRE_MESSAGE(p.status == 200, p.body);
    return path_of(p.j["uploadUrl"]);
  };
  auto put1 = presign(k1);
  auto put2 = presign(k2);
  // tus tokens (Gcore's upload parameters) of each key.
  auto tus = [&](const std::string& k) {
    auto made =
        call(n, "POST", "/streaming/videos", k, R"({"video":{"name":"tus"}})");
    BOOST_REQUIRE_MESSAGE(made.status == 200, made.body);
    auto number = std::to_string(made.j[0]["id"].get<int64_t>());
    auto p = call(n, "GET", "/streaming/videos/" + number + "/upload", k);
    BOOST_REQUIRE_MESSAGE(p.status == 200, p.body);
    return std::pair{p.j["token"].get<std::string>(), number};
  };
  auto tus1 = tus(k1);
  auto tus2 = tus(k2);
  // api.video's access and refresh tokens.
  auto pair = call(n, "POST", "/auth/api-key", {}, json{{"apiKey", k1}}.dump());
  BOOST_REQUIRE(pair.status == 200);
  std::string access = pair.j["access_token"];
  std::string refresh = pair.j["refresh_token"];
  BOOST_TEST(call(n, "GET", "/videos", access).status == 200);

  // k1 is revoked.
  auto revoked = call(n, "DELETE", "/v1/keys/" + sha256_hex(k1).substr(0, 12));
  BOOST_REQUIRE_MESSAGE(revoked.status == 204, revoked.body);
  auto denied = call(n, "GET", hls1, {});
  BOOST_TEST(denied.status == 403);
  BOOST_TEST(denied.body.find("revoked") != std::string::npos, denied.body);
  BOOST_TEST(call(n, "GET", hls2, {}).status == 200);
  std::ifstream in{clip(), std::ios::binary};
  std::string file{std::istreambuf_iterator<char>{in}, {}};
  auto refused = call(n, "PUT", put1, {}, file, "video/mp4");
  BOOST_TEST(refused.status == 403, refused.body);
  BOOST_TEST(refused.j["success"] == false);
  auto accepted = call(n, "PUT", put2, {}, file, "video/mp4");
  BOOST_TEST(accepted.status == 200, accepted.body);
  auto t1 = tus_create(n, tus1.first, tus1.second);
  BOOST_TEST(t1.status == 401, t1.body);
  BOOST_TEST(t1.body.find("revoked") != std::string::npos, t1.body);
  BOOST_TEST(tus_create(n, tus2.first, tus2.second).status == 201);
  BOOST_TEST(call(n, "GET", "/videos", access).status == 401);
  BOOST_TEST(call(n, "POST", "/auth/refresh", {},
                  json{{"refreshToken", refresh}}.dump())
                 .status == 400);

  // A password's playback token dies when the password changes or goes.
  auto set_password = [&](const json& password) {
    json body = {{"password", password}};
    auto r = call(n, "PATCH", "/api/video/update/" + id, key, body.dump());
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
  };
  auto unlock = [&](const std::string& password) {
    auto r = call(n, "POST", "/embed/" + id + "/unlock", {},
                  "password=" + password, "application/x-www-form-urlencoded");
    BOOST_REQUIRE(r.status == 303);
    auto location = r.header("Location");
    return location.substr(location.find("token=") + 6);
  };
  auto media = [&](const std::string& token) {
    return call(n, "GET", "/media/" + id + "/token/" + token + "/master.m3u8",
                {});
  };
  set_password("pw-one");
  auto one = unlock("pw-one");
  BOOST_TEST(one != "wrong");
  BOOST_TEST(media(one).status == 200);
  set_password("pw-two");
  BOOST_TEST(media(one).status == 403);
  auto two = unlock("pw-two");
  BOOST_TEST(media(two).status == 200);
  BOOST_TEST(call(n, "GET", "/embed/" + id + "?token=" + one, {})
                 .body.find("Enter the password again") != std::string::npos);
  set_password(nullptr); // still private: the password's token ends
  BOOST_TEST(media(two).status == 403);
  BOOST_TEST(call(n, "GET", hls2, {}).status == 200);
}

BOOST_AUTO_TEST_CASE(password_tries_are_limited_per_client) {
  reeld_process n;
  auto made =
      call(n, "POST", "/api/video/create", key, R"({"fileName":"p.mp4"})");
  BOOST_REQUIRE(made.status == 200);
  std::string id = made.j["video"]["id"];
  auto set = call(n, "PATCH", "/api/video/update/" + id, key,
                  R"({"password":"open sesame"})");
  BOOST_REQUIRE_MESSAGE(set.status == 200, set.body);
  auto unlock = [&](const std::string& password, const std::string& from = {}) {
    return call(n, "POST", "/embed/" + id + "/unlock", {},
                "password=" + password, "application/x-www-form-urlencoded", {},
                from);
  };
  auto opened = [](const answer& a) {
    return a.status == 303 &&
           a.header("Location").find("token=wrong") == std::string::npos;
  };
  // Four wrong, then the right one: it opens, and the count starts again.
  for (int i = 0; i < 4; ++i)
    BOOST_TEST(unlock("nope").status == 303);
  BOOST_TEST(opened(unlock("open+sesame")));
  for (int i = 0; i < 5; ++i) {
    auto a = unlock("nope");
    BOOST_TEST(a.status == 303);
    BOOST_TEST(!opened(a));
  }
  // The sixth wrong try in the window, and then even the right one.
  auto limited = unlock("nope");
  BOOST_TEST(limited.status == 429);
  auto after = std::atoi(limited.header("Retry-After").c_str());
  BOOST_TEST(after > 0);
  BOOST_TEST(after <= 600);
  BOOST_TEST(limited.body.find("Too many attempts, try again later") !=
             std::string::npos);
  BOOST_TEST(limited.body.find("type=\"password\"") != std::string::npos);
  BOOST_TEST(unlock("open+sesame").status == 429);
  // Another client is not held back.
  BOOST_TEST(opened(unlock("open+sesame", "127.0.0.2")));
}
