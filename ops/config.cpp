#include "ops/config.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <thread>

namespace reel {

namespace {

constexpr size_t min_cluster_secret = 16;

using setter = std::function<caf::error(node_config&, const std::string&)>;

caf::error bad(const std::string& name, const std::string& why) {
  return make_error(ec::invalid_argument, "--" + name + ": " + why);
}

template <class T>
caf::error to_number(const std::string& name, const std::string& v, T& out) {
  try {
    size_t pos = 0;
    if constexpr (std::is_floating_point_v<T>)
      out = static_cast<T>(std::stod(v, &pos));
    else
      out = static_cast<T>(std::stoll(v, &pos));
    if (pos != v.size())
      return bad(name, "not a number: " + v);
  } catch (...) {
    return bad(name, "not a number: " + v);
  }
  return {};
}

std::string trim(std::string s);

/// An --import-allow entry: a CIDR (the address part checked), an address or
/// a host name.
caf::error check_allow_entry(const std::string& e) {
  auto slash = e.find('/');
  if (slash == std::string::npos) {
    for (char c : e)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.'
          && c != '_' && c != ':')
        return bad("import-allow", "not a CIDR or host name: " + e);
    return {};
  }
  unsigned char buf[16];
  auto addr = e.substr(0, slash);
  int max_bits = inet_pton(AF_INET, addr.c_str(), buf) == 1    ? 32
                 : inet_pton(AF_INET6, addr.c_str(), buf) == 1 ? 128
                                                               : -1;
  auto len = e.substr(slash + 1);
  bool digits = !len.empty() && len.size() <= 3
                && len.find_first_not_of("0123456789") == std::string::npos;
  if (max_bits < 0 || !digits || std::stoi(len) > max_bits)
    return bad("import-allow", "not a CIDR: " + e);
  return {};
}

const std::map<std::string, setter>& setters() {
  static const std::map<std::string, setter> table = {
    {"listen",
     [](node_config& c, const std::string& v) {
       return parse_host_port(v, c.listen_host, c.listen_port);
     }},
    {"data", [](node_config& c, const std::string& v) { c.data_dir = v; return caf::error{}; }},
    {"node-id", [](node_config& c, const std::string& v) { c.node_id = v; return caf::error{}; }},
    {"public-url",
     [](node_config& c, const std::string& v) {
       c.public_url = v;
       while (!c.public_url.empty() && c.public_url.back() == '/')
         c.public_url.pop_back();
       return caf::error{};
     }},
    {"tls-cert", [](node_config& c, const std::string& v) { c.tls_cert = v; return caf::error{}; }},
    {"tls-key", [](node_config& c, const std::string& v) { c.tls_key = v; return caf::error{}; }},
    {"bootstrap-key", [](node_config& c, const std::string& v) { c.bootstrap_key = v; return caf::error{}; }},
    {"cluster-listen", [](node_config& c, const std::string& v) { c.cluster_listen = v; return caf::error{}; }},
    {"cluster-secret", [](node_config& c, const std::string& v) { c.cluster_secret = v; return caf::error{}; }},
    {"cluster-secret-file",
     [](node_config& c, const std::string& v) {
       std::ifstream in{v, std::ios::binary};
       if (!in)
         return bad("cluster-secret-file", "cannot read " + v);
       std::string text((std::istreambuf_iterator<char>(in)),
                        std::istreambuf_iterator<char>());
       if (text.size() > 4096)
         return bad("cluster-secret-file", v + " is larger than 4096 bytes");
       // A trailing newline (echo secret > file) is not part of it.
       while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
         text.pop_back();
       c.cluster_secret = std::move(text);
       return caf::error{};
     }},
    {"replicas",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("replicas", v, c.replicas))
         return err;
       return c.replicas >= 1 ? caf::error{} : bad("replicas", "must be >= 1");
     }},
    {"join", [](node_config& c, const std::string& v) { c.join.push_back(v); return caf::error{}; }},
    {"max-upload-bytes",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("max-upload-bytes", v, c.max_upload_bytes))
         return err;
       return c.max_upload_bytes > 0 ? caf::error{}
                                     : bad("max-upload-bytes", "must be > 0");
     }},
    {"import-allow",
     [](node_config& c, const std::string& v) {
       size_t start = 0;
       while (start <= v.size()) {
         auto end = std::min(v.find(',', start), v.size());
         auto entry = trim(v.substr(start, end - start));
         start = end + 1;
         if (entry.empty())
           continue;
         if (auto err = check_allow_entry(entry))
           return err;
         c.import_allow.push_back(entry);
       }
       return caf::error{};
     }},
    {"import-max-bytes",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("import-max-bytes", v, c.import_max_bytes))
         return err;
       return c.import_max_bytes > 0 ? caf::error{}
                                     : bad("import-max-bytes", "must be > 0");
     }},
    {"import-timeout",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("import-timeout", v, c.import_timeout))
         return err;
       return c.import_timeout > 0 ? caf::error{} : bad("import-timeout", "must be > 0");
     }},
    {"webhook-retry-seconds",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("webhook-retry-seconds", v, c.webhook_retry_seconds))
         return err;
       return c.webhook_retry_seconds > 0
                ? caf::error{}
                : bad("webhook-retry-seconds", "must be > 0");
     }},
    {"access-token-ttl",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("access-token-ttl", v, c.access_token_ttl))
         return err;
       return c.access_token_ttl > 0 ? caf::error{}
                                     : bad("access-token-ttl", "must be > 0");
     }},
    {"workers",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("workers", v, c.workers))
         return err;
       return c.workers > 0 ? caf::error{} : bad("workers", "must be > 0");
     }},
    {"chunk-seconds",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("chunk-seconds", v, c.chunk_seconds))
         return err;
       return c.chunk_seconds > 0 ? caf::error{} : bad("chunk-seconds", "must be > 0");
     }},
    {"segment-seconds",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("segment-seconds", v, c.segment_seconds))
         return err;
       return c.segment_seconds > 0 ? caf::error{} : bad("segment-seconds", "must be > 0");
     }},
    {"preset", [](node_config& c, const std::string& v) { c.preset = v; return caf::error{}; }},
    {"player-dir", [](node_config& c, const std::string& v) { c.player_dir = v; return caf::error{}; }},
    {"http-max-connections",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("http-max-connections", v,
                                c.http_max_connections))
         return err;
       return c.http_max_connections > 0
                ? caf::error{}
                : bad("http-max-connections", "must be > 0");
     }},
    {"metrics-listen",
     [](node_config& c, const std::string& v) {
       std::string host;
       uint16_t port = 0;
       if (auto err = parse_host_port(v, host, port))
         return bad("metrics-listen", message_of(err));
       c.metrics_listen = v;
       return caf::error{};
     }},
    {"rate-limit",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("rate-limit", v, c.rate_limit))
         return err;
       return c.rate_limit >= 0 ? caf::error{}
                                : bad("rate-limit", "must be >= 0");
     }},
    {"tenant-rate-limit",
     [](node_config& c, const std::string& v) {
       auto eq = v.find('=');
       int64_t n = -1;
       if (eq == std::string::npos || eq == 0
           || to_number("tenant-rate-limit", v.substr(eq + 1), n) || n < 0)
         return bad("tenant-rate-limit", "expected TENANT=N (N >= 0), got " + v);
       c.tenant_rate_limits[v.substr(0, eq)] = n;
       return caf::error{};
     }},
    {"http-threads",
     [](node_config& c, const std::string& v) {
       if (auto err = to_number("http-threads", v, c.http_threads))
         return err;
       return c.http_threads > 0 ? caf::error{} : bad("http-threads", "must be > 0");
     }},
    {"log-level",
     [](node_config& c, const std::string& v) {
       if (v != "debug" && v != "info" && v != "warn" && v != "error")
         return bad("log-level", "one of debug, info, warn, error");
       c.log_level = v;
       return caf::error{};
     }},
  };
  return table;
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r");
  auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string{} : s.substr(b, e - b + 1);
}

caf::error apply(node_config& cfg, const std::string& name,
                 const std::string& value) {
  auto i = setters().find(name);
  if (i == setters().end())
    return make_error(ec::invalid_argument, "unknown option --" + name);
  return i->second(cfg, value);
}

caf::error read_file(node_config& cfg, const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return make_error(ec::invalid_argument, "cannot read config file " + path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    line = trim(line.substr(0, line.find('#')));
    if (line.empty())
      continue;
    auto eq = line.find('=');
    if (eq == std::string::npos)
      return make_error(ec::invalid_argument, path + ":" + std::to_string(n)
                                                + ": expected name = value");
    if (auto err = apply(cfg, trim(line.substr(0, eq)), trim(line.substr(eq + 1))))
      return make_error(ec::invalid_argument,
                        path + ":" + std::to_string(n) + ": " + message_of(err));
  }
  return {};
}

/// OpenSSL's reason for the last error of this thread, and a clean queue.
std::string openssl_reason() {
  auto code = ERR_peek_last_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  ERR_clear_error();
  return reason != nullptr ? reason : "unknown OpenSSL error";
}

using file_ptr = std::unique_ptr<FILE, int (*)(FILE*)>;

/// Loads the first certificate of `cert` and the private key of `key` the
/// way the HTTPS server will, so that a bad file is a configuration error
/// at start and never a prompt for a passphrase or a failure later.
caf::error check_tls_files(const std::string& cert, const std::string& key) {
  file_ptr cf{std::fopen(cert.c_str(), "r"), std::fclose};
  if (!cf)
    return bad("tls-cert", "cannot read " + cert + ": " + std::strerror(errno));
  std::unique_ptr<X509, void (*)(X509*)> x509{
    PEM_read_X509(cf.get(), nullptr, nullptr, nullptr), X509_free};
  if (!x509)
    return bad("tls-cert", "no PEM certificate in " + cert + ": "
                             + openssl_reason());
  file_ptr kf{std::fopen(key.c_str(), "r"), std::fclose};
  if (!kf)
    return bad("tls-key", "cannot read " + key + ": " + std::strerror(errno));
  // An encrypted key would make OpenSSL ask for a passphrase on the
  // terminal: refuse it instead.
  bool encrypted = false;
  auto no_passphrase = [](char*, int, int, void* asked) {
    *static_cast<bool*>(asked) = true;
    return 0;
  };
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> pkey{
    PEM_read_PrivateKey(kf.get(), nullptr, no_passphrase, &encrypted),
    EVP_PKEY_free};
  if (!pkey) {
    // OpenSSL 3 says only "unsupported" for a file without a key.
    ERR_clear_error();
    return bad("tls-key", encrypted
                            ? key + " is encrypted: give an unencrypted key"
                            : "no PEM private key in " + key);
  }
  if (X509_check_private_key(x509.get(), pkey.get()) != 1) {
    ERR_clear_error();
    return bad("tls-key", key + " does not match the certificate in " + cert);
  }
  return {};
}

/// node_modules/hls.js/dist next to the build directory of this executable
/// (build/reeld -> ./node_modules), else under the working directory.
std::string default_player_dir() {
  std::error_code err;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", err);
  const char* rel = "node_modules/hls.js/dist";
  if (!err) {
    auto candidate = exe.parent_path().parent_path() / rel;
    if (std::filesystem::exists(candidate / "hls.min.js", err))
      return candidate.string();
  }
  return rel;
}

} // namespace

caf::error parse_host_port(const std::string& s, std::string& host,
                           uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return make_error(ec::invalid_argument, "expected HOST:PORT, got " + s);
  int p = 0;
  try {
    size_t pos = 0;
    p = std::stoi(s.substr(colon + 1), &pos);
    if (pos != s.size() - colon - 1)
      p = -1;
  } catch (...) {
    p = -1;
  }
  if (p < 0 || p > 65535)
    return make_error(ec::invalid_argument, "bad port in " + s);
  host = s.substr(0, colon);
  port = static_cast<uint16_t>(p);
  return {};
}

std::string node_usage() {
  return R"(usage: reeld [options]

  --listen HOST:PORT       HTTP address (default 127.0.0.1:8080)
  --data DIR               data directory (default ./data)
  --node-id NAME           this node's name (default node-<port>)
  --public-url URL         base of every URL handed out (default
                           http://HOST:PORT, https://HOST:PORT with TLS)
  --tls-cert FILE          serve HTTPS with this PEM certificate (chain);
                           needs --tls-key (default: plain HTTP)
  --tls-key FILE           the certificate's PEM private key, unencrypted;
                           needs --tls-cert
  --bootstrap-key KEY      on an empty data directory, register KEY as an
                           admin key of tenant "default" (default: generate
                           one and print it once)
  --max-upload-bytes N     largest accepted upload (default 21474836480)
  --import-allow LIST      comma-separated CIDRs (127.0.0.0/8) or host names
                           that URL imports may fetch from although private
                           or loopback (default: none)
  --import-max-bytes N     largest source imported from a URL (default: the
                           --max-upload-bytes value)
  --import-timeout S       seconds a whole URL import may take (default 600)
  --webhook-retry-seconds S
                           first retry of a failed webhook delivery after S
                           seconds, then doubling, 8 tries (default 5);
                           --import-allow also opens webhook targets
  --access-token-ttl S     lifetime of api.video access tokens from
                           /auth/api-key (default 3600)
  --workers N              transcode workers (default: number of cores)
  --chunk-seconds S        transcode chunk length, cut at keyframes (default 4)
  --segment-seconds S      HLS segment length (default 4)
  --preset NAME            x264 preset (default veryfast)
  --http-threads N         HTTP worker threads kept ready (default 16); more
                           start while all are busy, up to 256 (or N), one
                           per request being answered
  --http-max-connections N HTTP connections open at once, idle ones included
                           (default 1024); at the cap a new connection
                           closes the one waiting longest for a request, or
                           gets 503 if every one is being answered
  --rate-limit N           API requests a second each key may make, as many
                           at once; 429 past it (default 100; 0: no limit)
  --tenant-rate-limit T=N  the limit of tenant T's keys instead (repeatable)
  --metrics-listen HOST:PORT
                           serve /metrics (and /healthz) here, plain HTTP,
                           and not on --listen (default: /metrics on
                           --listen)
  --player-dir DIR         where hls.min.js is (default: node_modules/hls.js/dist
                           of the source tree reeld was built in)
  --log-level LEVEL        debug, info, warn, error (default info)
  --config FILE            read options from FILE (lines "name = value")
  --cluster-listen HOST:PORT
                           take part in a cluster: other nodes reach this
                           one's member actor here (CAF middleman)
  --join HOST:PORT         join the cluster through this member (repeatable;
                           any one member is enough)
  --cluster-secret S       the same on every node of a cluster; required with
                           --cluster-listen (at least 16 characters). Members
                           prove they hold it (certificates signed by a CA
                           derived from it, TLS both ways); it also keys
                           tokens and secrets at rest. See docs/security.md
  --cluster-secret-file F  read the cluster secret from file F instead
                           (a trailing newline is dropped)
  --replicas R             copies of each video's media (default 2)
  --help                   print this text
)";
}

caf::expected<node_config> parse_node_config(int argc, char** argv) {
  node_config cfg;
  std::vector<std::pair<std::string, std::string>> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      cfg.help = true;
      return cfg;
    }
    if (a.rfind("--", 0) != 0)
      return make_error(ec::invalid_argument, "unexpected argument " + a);
    a = a.substr(2);
    auto eq = a.find('=');
    if (eq != std::string::npos) {
      args.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    } else if (i + 1 < argc) {
      args.emplace_back(a, argv[++i]);
    } else {
      return make_error(ec::invalid_argument, "--" + a + " needs a value");
    }
  }
  // The file first, so that the command line wins.
  for (auto& [name, value] : args)
    if (name == "config")
      if (auto err = read_file(cfg, value))
        return err;
  for (auto& [name, value] : args)
    if (name != "config")
      if (auto err = apply(cfg, name, value))
        return err;
  if (cfg.cluster_listen.empty() && !cfg.join.empty())
    return make_error(ec::invalid_argument, "--join needs --cluster-listen");
  if (!cfg.cluster_listen.empty()) {
    std::string host;
    uint16_t port = 0;
    if (auto err = parse_host_port(cfg.cluster_listen, host, port))
      return make_error(ec::invalid_argument,
                        "--cluster-listen: " + message_of(err));
    for (auto& j : cfg.join)
      if (auto err = parse_host_port(j, host, port))
        return make_error(ec::invalid_argument, "--join: " + message_of(err));
    // No built-in secret: a default would admit anyone who read the docs.
    if (cfg.cluster_secret.empty())
      return make_error(ec::invalid_argument,
                        "--cluster-listen needs --cluster-secret or "
                        "--cluster-secret-file: every node of a cluster is "
                        "started with the same secret (there is no default)");
    if (cfg.cluster_secret.size() < min_cluster_secret)
      return make_error(ec::invalid_argument,
                        "--cluster-secret: at least "
                          + std::to_string(min_cluster_secret)
                          + " characters (e.g. openssl rand -hex 32)");
  }
  if (cfg.tls_cert.empty() != cfg.tls_key.empty())
    return make_error(ec::invalid_argument, cfg.tls_cert.empty()
                                              ? "--tls-key needs --tls-cert"
                                              : "--tls-cert needs --tls-key");
  if (!cfg.tls_cert.empty())
    if (auto err = check_tls_files(cfg.tls_cert, cfg.tls_key))
      return err;
  if (cfg.node_id.empty())
    cfg.node_id = "node-" + std::to_string(cfg.listen_port);
  if (cfg.public_url.empty())
    cfg.public_url = (cfg.tls_cert.empty() ? "http://" : "https://")
                     + cfg.listen_host + ":"
                     + std::to_string(cfg.listen_port);
  if (cfg.player_dir.empty())
    cfg.player_dir = default_player_dir();
  if (cfg.import_max_bytes == 0)
    cfg.import_max_bytes = cfg.max_upload_bytes;
  if (cfg.workers == 0)
    cfg.workers = std::max(1u, std::thread::hardware_concurrency());
  return cfg;
}

} // namespace reel
