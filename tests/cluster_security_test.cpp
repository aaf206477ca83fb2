// The cluster port as an attacker sees it: real reeld processes on
// 127.0.0.1 and a test program that is not a member (no credentials, then
// another cluster's credentials), then one that holds the secret but sends
// what no member should (ids that are paths, tasks it may not ask for, a
// name that is another member's). Nothing it sends has any effect, and
// everything a member refuses is counted.
#define BOOST_TEST_MODULE cluster_security
#include <boost/test/unit_test.hpp>

#include "actors/actors.hpp"
#include "cluster/pki.hpp"
#include "ops/util.hpp"
#include "storage/db.hpp"
#include "storage/keys.hpp"
#include "tests/reeld_process.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <asio.hpp>

#include <fstream>
#include <regex>

using namespace reel::test;

namespace {

const std::string secret = "cluster-security-test-secret";

/// Two members, n0 and n1, and a directory next to their data that an id
/// such as "../../<name>" would reach.
struct cluster {
  std::vector<uint16_t> ports{free_port(), free_port()};
  std::vector<std::unique_ptr<reeld_process>> nodes;
  std::string outside = temp_dir("outside");

  cluster() {
    std::ofstream{outside + "/precious"} << "keep me";
    for (int i = 0; i < 2; ++i) {
      std::vector<std::string> a{
          "--node-id",        "n" + std::to_string(i),
          "--cluster-listen", "127.0.0.1:" + std::to_string(ports[i]),
          "--cluster-secret", secret,
          "--workers",        "1"};
      if (i > 0) {
        a.push_back("--join");
        a.push_back("127.0.0.1:" + std::to_string(ports[0]));
      }
      nodes.push_back(std::make_unique<reeld_process>(a));
    }
    BOOST_REQUIRE(wait_up({"n0", "n1"}));
  }

  ~cluster() { std::filesystem::remove_all(outside); }

  std::map<std::string, std::string> view(int i) {
    std::map<std::string, std::string> out;
    auto a = nodes[i]->request("GET", "/v1/admin/nodes");
    for (auto& m : a.j["data"])
      out[m["node"]] = m["state"];
    return out;
  }

  bool wait_up(std::vector<std::string> ids) {
    for (int round = 0; round < 150; ++round) {
      bool ok = true;
      for (int i = 0; i < 2; ++i) {
        auto v = view(i);
        for (auto& id : ids)
          ok = ok && v[id] == "up";
      }
      if (ok)
        return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }

  /// The "../../x" id that names the directory `outside`.
  std::string escaping_id() const {
    return "../../" + std::filesystem::path{outside}.filename().string();
  }

  double dropped(int i, const std::string& message, const std::string& reason) {
    auto m = nodes[i]->request("GET", "/metrics", "");
    std::regex re{"reel_cluster_messages_dropped_total\\{[^}]*message=\"" +
                  message + "\"[^}]*reason=\"" + reason +
                  "\"[^}]*\\} ([0-9.e+]+)"};
    std::smatch match;
    if (!std::regex_search(m.body, match, re))
      return 0;
    return std::stod(match[1]);
  }
};

/// A CAF node of the test's own: plain (no TLS) or with credentials issued
/// from `with_secret`.
struct outsider {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::string dir = temp_dir("outsider");

  explicit outsider(const std::string& with_secret) {
    cfg.add_message_types<caf::id_block::reel>();
    cfg.add_message_type<std::vector<reel::video_record>>(
        "std::vector<video_record>");
    cfg.load<caf::io::middleman>();
    if (!with_secret.empty()) {
      cfg.load<caf::openssl::manager>();
      auto c = reel::cluster::issue_credentials(with_secret, "intruder", dir);
      BOOST_REQUIRE(c);
      cfg.openssl_certificate = c->cert_file;
      cfg.openssl_key = c->key_file;
      cfg.openssl_cafile = c->ca_file;
    }
    sys = std::make_unique<caf::actor_system>(cfg);
  }
  ~outsider() {
    sys.reset();
    std::filesystem::remove_all(dir);
  }

  caf::expected<reel::member_actor> connect(uint16_t port) {
    if (sys->has_openssl_manager())
      return caf::openssl::remote_actor<reel::member_actor>(*sys, "127.0.0.1",
                                                            port);
    return sys->middleman().remote_actor<reel::member_actor>("127.0.0.1", port);
  }
};

/// What a plain TCP client is told by the cluster port within `ms`.
std::string raw_answer(uint16_t port, const std::string& send, int ms) {
  asio::io_context io;
  asio::ip::tcp::socket s{io};
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  if (!send.empty())
    asio::write(s, asio::buffer(send));
  std::string got;
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  s.non_blocking(true);
  while (std::chrono::steady_clock::now() < deadline) {
    char buf[4096];
    std::error_code err;
    auto n = s.read_some(asio::buffer(buf), err);
    if (n > 0)
      got.append(buf, n);
    else if (err && err != asio::error::would_block)
      break;
    std::this_thread::sleep_for(20ms);
  }
  return got;
}

reel::video_record record_with_id(const std::string& id) {
  reel::video_record v;
  v.id = id;
  v.tenant = "default";
  v.folder = "root";
  v.state = reel::states::ready;
  v.updated_ms = reel::now_ms() + 1000000;
  return v;
}

} // namespace

BOOST_AUTO_TEST_CASE(strangers_get_nothing_from_the_cluster_port) {
  cluster c;
  // A plain TCP client: no greeting that lists reel's actor interface
  // (CAF's plain handshake did), just silence until it speaks TLS...
  auto silent = raw_answer(c.ports[0], "", 800);
  BOOST_TEST(silent.empty(), "answered " << silent.size() << " bytes");
  // ...and a TLS alert or a closed connection for anything else.
  auto junk = raw_answer(c.ports[0], "GET / HTTP/1.0\r\n\r\n", 800);
  BOOST_TEST(junk.size() < 64u);
  BOOST_TEST(junk.find("member") == std::string::npos);
  BOOST_TEST(junk.find("replies_to") == std::string::npos);

  // CAF without TLS: no handshake, no actor.
  {
    outsider plain{""};
    auto m = plain.connect(c.ports[0]);
    BOOST_TEST(!m);
  }
  // CAF with TLS and another cluster's credentials: refused.
  {
    outsider other{"another-cluster-secret-entirely"};
    auto m = other.connect(c.ports[0]);
    BOOST_TEST(!m);
  }
  // A reeld started with another secret never becomes a member.
  reeld_process stranger{{"--node-id", "stranger", "--cluster-listen",
                          "127.0.0.1:" + std::to_string(free_port()),
                          "--cluster-secret", "another-cluster-secret-entirely",
                          "--join", "127.0.0.1:" + std::to_string(c.ports[0])}};
  std::this_thread::sleep_for(3s);
  for (int i = 0; i < 2; ++i)
    BOOST_TEST(c.view(i).count("stranger") == 0u);
  BOOST_TEST(stranger.request("GET", "/v1/admin/nodes").j["data"].size() == 1u);
  // Both members still serve.
  BOOST_TEST(c.nodes[0]->request("GET", "/healthz", "").status == 200);
}

BOOST_AUTO_TEST_CASE(what_no_member_may_send_is_refused_and_counted) {
  cluster c;
  outsider member{secret};
  auto n0 = member.connect(c.ports[0]);
  BOOST_REQUIRE_MESSAGE(n0,
                        (n0 ? std::string{} : member.sys->render(n0.error())));
  caf::scoped_actor self{*member.sys};

  // Before it joins, the holder of the secret is no member: a key row it
  // sends is dropped, and the key opens nothing.
  std::string key = "sk-smuggled-admin-key-0123456789";
  reel::api_key_record k{reel::sha256_hex(key),
                         key.substr(0, 7),
                         "default",
                         true,
                         reel::now_ms(),
                         {}};
  self->send(*n0, caf::put_atom::value,
             reel::replicated_row{static_cast<int32_t>(reel::cf::keys),
                                  reel::keys::api_key(k.key_hash),
                                  reel::encode(k), false});
  std::this_thread::sleep_for(500ms);
  BOOST_TEST(c.nodes[0]->request("GET", "/v1/videos", key).status == 401);
  BOOST_TEST(c.dropped(0, "row", "not_a_member") >= 1);

  // It may not join under another member's name.
  reel::member_info fake;
  fake.node_id = "n1";
  fake.public_url = "http://127.0.0.1:9";
  fake.cluster_host = "127.0.0.1";
  fake.cluster_port = 9;
  bool refused = false;
  self->request(*n0, 5s, caf::join_atom::value, fake)
      .receive([&](std::vector<reel::member_info>&) {},
               [&](caf::error&) { refused = true; });
  BOOST_TEST(refused);
  BOOST_TEST(c.view(0)["n1"] == "up");

  // Under a name of its own it joins (it holds the secret)...
  auto me = fake;
  me.node_id = "intruder";
  bool joined = false;
  self->request(*n0, 5s, caf::join_atom::value, me)
      .receive([&](std::vector<reel::member_info>&) { joined = true; },
               [&](caf::error&) {});
  BOOST_REQUIRE(joined);

  // ...but what it sends is still checked. Ids that are paths:
  auto escaping = record_with_id(c.escaping_id());
  self->send(*n0, caf::delete_atom::value, escaping);
  self->send(*n0, caf::put_atom::value, escaping);
  self->send(*n0, caf::put_atom::value, record_with_id("../db"));
  // An owner epoch days ahead of every clock: it would make the record
  // win over every real owner's for days.
  auto ahead = record_with_id(reel::make_uuid());
  ahead.epoch = static_cast<uint64_t>(reel::now_ms()) + 10ULL * 24 * 3600 * 1000;
  ahead.owner_node = "intruder";
  self->send(*n0, caf::put_atom::value, ahead);
  self->request(*n0, 5s, caf::delete_atom::value, std::string{"default"},
                c.escaping_id())
      .receive([](caf::ok_atom) {}, [](caf::error&) {});
  // A task it may not ask for (an import, a join of arbitrary parts) and a
  // chunk of a video whose id is a path.
  for (auto kind : {reel::task_kind::import, reel::task_kind::assemble,
                    reel::task_kind::probe}) {
    reel::task t;
    t.video_id = reel::make_uuid();
    t.kind = kind;
    std::string answer;
    self->request(*n0, 5s, reel::submit_atom::value, t)
        .receive([&](reel::task_result& r) { answer = "ran: " + r.error; },
                 [&](caf::error& e) { answer = "refused"; });
    BOOST_TEST(answer == "refused");
  }
  reel::task chunk;
  chunk.video_id = c.escaping_id();
  chunk.kind = reel::task_kind::chunk;
  std::string answer;
  self->request(*n0, 5s, reel::submit_atom::value, chunk)
      .receive([&](reel::task_result&) { answer = "ran"; },
               [&](caf::error&) { answer = "refused"; });
  BOOST_TEST(answer == "refused");
  // Rows of families that are not replicated, and rows that lie.
  self->send(*n0, caf::put_atom::value,
             reel::replicated_row{static_cast<int32_t>(reel::cf::meta),
                                  "token_secret", "known", false});
  self->send(*n0, caf::put_atom::value,
             reel::replicated_row{static_cast<int32_t>(reel::cf::keys),
                                  reel::keys::api_key(std::string(64, 'a')),
                                  reel::encode(k), false});
  // Gossip in another member's name.
  auto impostor = fake;
  impostor.version = 1'000'000;
  impostor.state = "draining";
  self->send(*n0, caf::update_atom::value, impostor);
  std::this_thread::sleep_for(1s);

  // Nothing outside the data directory was touched, the store still
  // works, n1 is not draining, the lying rows opened nothing.
  BOOST_TEST(std::filesystem::exists(c.outside + "/precious"));
  BOOST_TEST(c.nodes[0]->request("GET", "/v1/videos").status == 200);
  BOOST_TEST(c.view(0)["n1"] == "up");
  BOOST_TEST(c.nodes[0]->request("GET", "/v1/videos", key).status == 401);
  BOOST_TEST(c.dropped(0, "delete", "invalid") >= 1);
  BOOST_TEST(c.dropped(0, "record", "invalid") >= 2);
  BOOST_TEST(c.dropped(0, "record", "epoch_ahead") >= 1);
  BOOST_TEST(c.nodes[0]->request("GET", "/v1/videos/" + ahead.id).status == 404);
  BOOST_TEST(c.dropped(0, "task", "invalid") >= 4);
  BOOST_TEST(c.dropped(0, "row", "invalid") >= 2);
  BOOST_TEST(c.dropped(0, "gossip", "impersonation") >= 1);
  BOOST_TEST(c.dropped(0, "request", "invalid") >= 1);

  // An exit message from another node does not end a member (CAF's
  // unconditional "kill" would: docs/security.md says what a member can do).
  caf::anon_send_exit(*n0, caf::exit_reason::user_shutdown);
  std::this_thread::sleep_for(500ms);
  BOOST_TEST(c.view(1)["n0"] == "up");
  BOOST_TEST(c.dropped(0, "exit", "not_stopping") >= 1);
}

namespace {

/// The data plane's port of a node, from its log ("cluster.listening").
uint16_t data_port(reeld_process& n) {
  std::ifstream in{n.data() + ".log"};
  std::string line;
  std::regex re{"data_port=([0-9]+)"};
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_search(line, m, re))
      return static_cast<uint16_t>(std::stoi(m[1]));
  return 0;
}

long rss_kib(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

/// Opens `idle` connections that send nothing and keeps them; opens and
/// closes `churn` more; opens `junk` that send garbage. Returns the idle
/// ones (closed when the vector goes).
std::vector<std::unique_ptr<asio::ip::tcp::socket>>
flood(asio::io_context& io, uint16_t port, int idle, int churn, int junk) {
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> kept;
  asio::ip::tcp::endpoint ep{asio::ip::make_address("127.0.0.1"), port};
  for (int i = 0; i < idle + churn + junk; ++i) {
    auto s = std::make_unique<asio::ip::tcp::socket>(io);
    std::error_code err;
    s->connect(ep, err);
    if (err)
      continue;
    if (i >= idle + churn) {
      static const std::string garbage(512, '\x16');
      asio::write(*s, asio::buffer(garbage), err);
    }
    if (i < idle)
      kept.push_back(std::move(s));
  }
  return kept;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_flood_on_the_cluster_ports_changes_nothing) {
  cluster c;
  auto& n0 = *c.nodes[0];
  auto before = rss_kib(n0.pid());
  BOOST_REQUIRE(before > 0);
  auto dport = data_port(n0);
  BOOST_REQUIRE(dport != 0);
  asio::io_context io;
  // Thousands of connections to the member port and to the data plane:
  // idle ones, ones that open and close, ones that send garbage.
  auto a = flood(io, c.ports[0], 2000, 5000, 500);
  auto b = flood(io, dport, 2000, 5000, 500);
  // While they are open, the node answers and the cluster holds.
  BOOST_TEST(n0.request("GET", "/healthz", "").status == 200);
  BOOST_TEST(n0.request("GET", "/v1/videos").status == 200);
  auto during = rss_kib(n0.pid());
  a.clear();
  b.clear();
  std::this_thread::sleep_for(1s);
  auto after = rss_kib(n0.pid());
  BOOST_TEST_MESSAGE("RSS KiB before " << before << ", during " << during
                                       << ", after " << after);
  // Bounded: no per-connection thread or TLS context survives the flood.
  BOOST_TEST(during - before < 64 * 1024);
  BOOST_TEST(after - before < 64 * 1024);
  BOOST_TEST(c.wait_up({"n0", "n1"}));
  // And the cluster still does its work: an upload to n1 is ready on n0.
  auto clip = make_clip(c.outside, "flood.mp4", 320, 240, 3);
  auto up = c.nodes[1]->upload(clip);
  BOOST_REQUIRE_MESSAGE(up.status == 202, up.body);
  auto v = n0.wait_terminal(up.j["data"]["id"]);
  BOOST_TEST(v["state"] == "ready");
}
