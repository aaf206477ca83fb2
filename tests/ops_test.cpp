#define BOOST_TEST_MODULE ops
#include <boost/test/unit_test.hpp>

#include "ops/config.hpp"
#include "ops/crypto.hpp"
#include "ops/error.hpp"
#include "ops/metrics.hpp"
#include "ops/token.hpp"
#include "ops/util.hpp"

#include <cstdio>
#include <fstream>
#include <set>
#include <vector>

using namespace reel;

namespace {

caf::expected<node_config> parse(std::vector<std::string> args) {
  std::vector<char*> argv;
  static std::string prog = "reeld";
  argv.push_back(prog.data());
  for (auto& a : args)
    argv.push_back(a.data());
  return parse_node_config(static_cast<int>(argv.size()), argv.data());
}

} // namespace

BOOST_AUTO_TEST_CASE(config_defaults) {
  auto cfg = parse({});
  BOOST_REQUIRE(cfg);
  BOOST_TEST(cfg->listen_host == "127.0.0.1");
  BOOST_TEST(cfg->listen_port == 8080);
  BOOST_TEST(cfg->data_dir == "./data");
  BOOST_TEST(cfg->node_id == "node-8080");
  BOOST_TEST(cfg->public_url == "http://127.0.0.1:8080");
  BOOST_TEST(cfg->max_upload_bytes == int64_t{20} << 30);
  BOOST_TEST(cfg->workers >= 1);
}

BOOST_AUTO_TEST_CASE(config_flags_both_forms) {
  auto cfg = parse({"--listen", "0.0.0.0:9000", "--data=/tmp/x", "--node-id",
                    "n1", "--public-url", "https://v.example.com/",
                    "--bootstrap-key", "sk-test"});
  BOOST_REQUIRE(cfg);
  BOOST_TEST(cfg->listen_host == "0.0.0.0");
  BOOST_TEST(cfg->listen_port == 9000);
  BOOST_TEST(cfg->data_dir == "/tmp/x");
  BOOST_TEST(cfg->node_id == "n1");
  BOOST_TEST(cfg->public_url == "https://v.example.com");
  BOOST_TEST(cfg->bootstrap_key == "sk-test");
}

BOOST_AUTO_TEST_CASE(config_file_and_command_line_wins) {
  auto path = "/tmp/reel-ops-test-" + make_uuid() + ".conf";
  {
    std::ofstream out{path};
    out << "# a comment\nlisten = 127.0.0.1:7000\nworkers = 3\n"
        << "node-id = from-file\n";
  }
  auto cfg = parse({"--config", path, "--node-id", "from-cli"});
  std::remove(path.c_str());
  BOOST_REQUIRE(cfg);
  BOOST_TEST(cfg->listen_port == 7000);
  BOOST_TEST(cfg->workers == 3);
  BOOST_TEST(cfg->node_id == "from-cli");
}

BOOST_AUTO_TEST_CASE(config_errors_are_readable) {
  auto bad_port = parse({"--listen", "127.0.0.1:99999"});
  BOOST_REQUIRE(!bad_port);
  BOOST_TEST(code_of(bad_port.error()) == ec::invalid_argument);
  BOOST_TEST(message_of(bad_port.error()).find("bad port") != std::string::npos);
  auto unknown = parse({"--frobnicate", "1"});
  BOOST_REQUIRE(!unknown);
  BOOST_TEST(message_of(unknown.error()) == "unknown option --frobnicate");
  auto workers = parse({"--workers", "zero"});
  BOOST_REQUIRE(!workers);
  auto missing = parse({"--data"});
  BOOST_REQUIRE(!missing);
  auto help = parse({"--help"});
  BOOST_REQUIRE(help);
  BOOST_TEST(help->help);
  BOOST_TEST(node_usage().find("--listen") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(uuids_are_v4_and_unique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto u = make_uuid();
    BOOST_TEST(is_uuid(u));
    BOOST_TEST(u[14] == '4');
    BOOST_TEST(seen.insert(u).second);
  }
  BOOST_TEST(!is_uuid("../../etc/passwd"));
  BOOST_TEST(!is_uuid("9c1fa5c4-a8f1-4b2e-9d6e-1c8a0b9e2d7"));
  BOOST_TEST(is_uuid("9c1fa5c4-a8f1-4b2e-9d6e-1c8a0b9e2d7f"));
}

BOOST_AUTO_TEST_CASE(tokens_and_digests) {
  auto t = random_token(40);
  BOOST_TEST(t.size() == 40u);
  BOOST_TEST(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                 "qrstuvwxyz0123456789")
             == std::string::npos);
  BOOST_TEST(random_token(40) != t);
  BOOST_TEST(sha256_hex("abc")
             == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  sha256 h;
  h.update("a", 1);
  h.update("bc", 2);
  BOOST_TEST(h.hex_digest() == sha256_hex("abc"));
  BOOST_TEST(equal_secrets("same", "same"));
  BOOST_TEST(!equal_secrets("same", "sama"));
  BOOST_TEST(!equal_secrets("same", "samey"));
}

BOOST_AUTO_TEST_CASE(time_format) {
  BOOST_TEST(iso8601(0) == "1970-01-01T00:00:00Z");
  BOOST_TEST(iso8601(1723370400000) == "2024-08-11T10:00:00Z");
  BOOST_TEST(iso8601_ms(1723370400250) == "2024-08-11T10:00:00.250Z");
}

BOOST_AUTO_TEST_CASE(errors_carry_code_and_message) {
  auto err = make_error(ec::not_found, "video x not found");
  BOOST_TEST(code_of(err) == ec::not_found);
  BOOST_TEST(message_of(err) == "video x not found");
  BOOST_TEST(code_of(caf::error{}) == ec::none);
  BOOST_TEST(std::string{to_string(ec::too_large)} == "too_large");
}

BOOST_AUTO_TEST_CASE(metrics_render_in_text_format) {
  metrics().ingest_bytes.Increment(5);
  metrics().http_requests.Add({{"route", "x"}, {"code", "200"}}).Increment();
  auto text = metrics().serialize();
  BOOST_TEST(text.find("reel_ingest_bytes_total 5") != std::string::npos);
  BOOST_TEST(text.find("reel_http_requests_total{code=\"200\",route=\"x\"} 1")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(signed_tokens_verify_until_they_expire) {
  auto t = sign_token("secret", "at", {"abc", "n1"}, 2000);
  auto ok = verify_token("secret", "at", t, 1000);
  BOOST_REQUIRE(ok);
  BOOST_TEST(ok->size() == 2u);
  BOOST_TEST(ok->at(0) == "abc");
  BOOST_TEST(message_of(verify_token("secret", "at", t, 2000).error())
             == "the token has expired");
  BOOST_TEST(!verify_token("other", "at", t, 1000));    // another secret
  BOOST_TEST(!verify_token("secret", "rt", t, 1000));   // another kind
  auto forged = t;
  forged.replace(forged.find("2000"), 4, "9999");       // a later expiry
  BOOST_TEST(!verify_token("secret", "at", forged, 1000));
  BOOST_TEST(!verify_token("secret", "at", "", 1000));
  BOOST_TEST(!verify_token("secret", "at", "at.x", 1000));
}

BOOST_AUTO_TEST_CASE(base64_decodes_what_basic_auth_sends) {
  BOOST_TEST(*base64_decode("S0VZMTIzOg==") == "KEY123:");
  BOOST_TEST(*base64_decode("S0VZMTIzOg") == "KEY123:");
  BOOST_TEST(base64_decode("").value() == "");
  BOOST_TEST(!base64_decode("S0V*"));
}

BOOST_AUTO_TEST_CASE(import_and_token_options) {
  auto cfg = parse({"--import-allow", "127.0.0.0/8, localhost",
                    "--import-timeout", "5", "--access-token-ttl", "60",
                    "--max-upload-bytes", "1000"});
  BOOST_REQUIRE(cfg);
  BOOST_TEST(cfg->import_allow.size() == 2u);
  BOOST_TEST(cfg->import_allow.at(1) == "localhost");
  BOOST_TEST(cfg->import_timeout == 5);
  BOOST_TEST(cfg->import_max_bytes == 1000); // follows max-upload-bytes
  BOOST_TEST(cfg->access_token_ttl == 60);
  BOOST_TEST(!parse({"--import-allow", "10.0.0.0/99"}));
  BOOST_TEST(!parse({"--access-token-ttl", "0"}));
}

BOOST_AUTO_TEST_CASE(video_ids_are_random_v4_uuids) {
  // Every bit but the version's and the variant's varies: 122 random bits,
  // none following from another (a constant bit over 2000 ids would have
  // a chance of 2^-1999).
  std::set<std::string> seen;
  std::vector<int> set_count(128, 0);
  for (int i = 0; i < 2000; ++i) {
    auto id = make_uuid();
    BOOST_REQUIRE(is_uuid(id));
    BOOST_TEST(id[14] == '4'); // version 4
    BOOST_TEST(std::string{"89ab"}.find(id[19]) !=
               std::string::npos); // RFC 4122
    seen.insert(id);
    std::string hex;
    for (char c : id)
      if (c != '-')
        hex.push_back(c);
    for (int bit = 0; bit < 128; ++bit) {
      int nibble = std::stoi(hex.substr(bit / 4, 1), nullptr, 16);
      set_count[bit] += (nibble >> (3 - bit % 4)) & 1;
    }
  }
  BOOST_TEST(seen.size() == 2000u);
  int varying = 0;
  for (int bit = 0; bit < 128; ++bit)
    varying += set_count[bit] > 0 && set_count[bit] < 2000;
  BOOST_TEST(varying == 122);
}

BOOST_AUTO_TEST_CASE(video_numbers_are_random_and_exact_in_javascript) {
  std::set<uint64_t> seen;
  bool high = false;
  for (int i = 0; i < 2000; ++i) {
    auto n = random_video_number();
    BOOST_TEST(n >= 1u);
    BOOST_TEST(n <= max_new_video_number);
    // Gcore's converted_videos ids (n * 16 + rung) stay exact too.
    BOOST_TEST(n * 16 + 15 <= max_video_number);
    high = high || n > (max_new_video_number >> 1);
    seen.insert(n);
  }
  BOOST_TEST(seen.size() == 2000u);
  BOOST_TEST(high);                                  // the top bit is used
  BOOST_TEST(max_video_number == 9007199254740991u); // 2^53 - 1
}

BOOST_AUTO_TEST_CASE(legacy_ids_give_their_number) {
  // An id as releases before random ids made it for number 54046660962933
  // (its first 48 bits are the number, the rest followed from it).
  BOOST_TEST(legacy_number_of_id("3127b807-2a75-4758-913b-5f00467807ff") ==
             54046660962933u);
  BOOST_TEST(legacy_number_of_id("6befe870-f92e-44d7-a8fa-3b9194d281f2") ==
             118678141073710u);
  BOOST_TEST(legacy_number_of_id("not-a-uuid") == 0u);
  BOOST_TEST(legacy_number_of_id("") == 0u);
}

BOOST_AUTO_TEST_CASE(sealed_values_open_with_any_key_and_say_which) {
  auto lone = hkdf_sha256("a lone node's secret", "reel at-rest v1");
  auto cluster = hkdf_sha256("the cluster secret", "reel at-rest v1");
  BOOST_TEST(lone.size() == 32u);
  BOOST_TEST(lone != cluster);
  BOOST_TEST(hkdf_sha256("the cluster secret", "reel token digest v1") !=
             cluster); // one key per purpose
  sealer alone{{lone}};
  auto sealed = alone.seal("whsec_plain-secret");
  BOOST_TEST(sealer::is_sealed(sealed));
  BOOST_TEST(!sealer::is_sealed("whsec_plain-secret"));
  BOOST_TEST(sealed.find("plain-secret") == std::string::npos);
  BOOST_TEST(alone.seal("whsec_plain-secret") != sealed); // a fresh nonce
  // Joined a cluster: new values under the cluster's key, old ones open.
  sealer joined{{cluster, lone}};
  size_t which = 9;
  auto old = joined.open(sealed, &which);
  BOOST_REQUIRE(old);
  BOOST_TEST(*old == "whsec_plain-secret");
  BOOST_TEST(which == 1u);
  auto fresh = joined.open(joined.seal("x"), &which);
  BOOST_TEST(*fresh == "x");
  BOOST_TEST(which == 0u);
  // Another cluster's value, a tampered one, and no sealed value at all.
  auto other = sealer{{cluster}}.open(sealed);
  BOOST_TEST(code_of(other.error()) == ec::unauthorized);
  auto tampered = sealed;
  tampered[10] = tampered[10] == 'A' ? 'B' : 'A';
  BOOST_TEST(!alone.open(tampered));
  BOOST_TEST(code_of(alone.open("whsec_plain").error()) ==
             ec::invalid_argument);
}

BOOST_AUTO_TEST_CASE(passwords_hash_slowly_and_legacy_hashes_still_check) {
  auto stored = hash_password("secret123");
  BOOST_TEST(stored.rfind("scrypt$32768$8$1$", 0) == 0);
  BOOST_TEST(stored.find("secret123") == std::string::npos);
  BOOST_TEST(check_password(stored, "secret123"));
  BOOST_TEST(!check_password(stored, "secret124"));
  BOOST_TEST(!password_needs_rehash(stored));
  BOOST_TEST(hash_password("secret123") != stored); // salted
  // What Flare's PATCH stored before: "<salt>$<sha256(salt + password)>".
  auto legacy = "NaCl$" + sha256_hex("NaClsecret123");
  BOOST_TEST(check_password(legacy, "secret123"));
  BOOST_TEST(!check_password(legacy, "secret12"));
  BOOST_TEST(password_needs_rehash(legacy));
  // A stored value that would make a check cost too much is refused.
  BOOST_TEST(!check_password("scrypt$1073741824$8$1$AAAA$AAAA", "x"));
  BOOST_TEST(!check_password("", "x"));
}
