// What TLS costs on the data plane: one node's blob server and another's
// fetch in one process over 127.0.0.1, the same file fetched with mutual
// TLS (as reel runs) and without (link_security::plaintext, which reeld
// never uses), interleaved, RUNS times each. Prints MB/s per run and the
// medians. Run by bench/dataplane.sh.
//
// Usage: blob_bench DIR SIZE_MIB RUNS

#include "cluster/data_plane.hpp"
#include "cluster/pki.hpp"
#include "ops/util.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using namespace reel;
using namespace reel::cluster;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: blob_bench DIR SIZE_MIB RUNS\n");
    return 2;
  }
  std::string dir = argv[1];
  auto mib = std::stoll(argv[2]);
  int runs = std::stoi(argv[3]);
  auto id = make_uuid();
  std::filesystem::create_directories(dir + "/a/media/" + id);
  auto file = dir + "/a/media/" + id + "/blob.bin";
  {
    std::ofstream out{file, std::ios::binary};
    std::mt19937_64 rng{7};
    std::vector<uint64_t> buf(1 << 17); // 1 MiB
    for (long long i = 0; i < mib; ++i) {
      for (auto& x : buf)
        x = rng();
      out.write(reinterpret_cast<const char*>(buf.data()),
                static_cast<std::streamsize>(buf.size() * 8));
    }
  }
  auto sum = file_sha256(file); // also brings the file into the page cache
  if (!sum)
    return 1;
  auto creds_a = issue_credentials("blob-bench-secret-0123", "a", dir + "/pki-a");
  auto creds_b = issue_credentials("blob-bench-secret-0123", "b", dir + "/pki-b");
  auto tls_a = link_security::load(*creds_a);
  auto tls_b = link_security::load(*creds_b);
  if (!creds_a || !creds_b || !tls_a || !tls_b)
    return 1;
  auto plain = link_security::plaintext();
  blob_server tls_server{dir + "/a", *tls_a};
  blob_server plain_server{dir + "/a", plain};
  if (tls_server.start("127.0.0.1", 0) || plain_server.start("127.0.0.1", 0))
    return 1;
  std::vector<double> with_tls, without;
  auto fetch = [&](blob_server& server, const link_security& sec) {
    auto dest = dir + "/b/blob.bin";
    std::filesystem::remove(dest);
    auto start = std::chrono::steady_clock::now();
    auto r = fetch_blob({"a", "127.0.0.1", server.port()}, sec,
                        {blob_area::media, id, "blob.bin"}, dest, *sum, 120000);
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    if (!r) {
      std::fprintf(stderr, "fetch failed: %s\n", message_of(r.error()).c_str());
      std::exit(1);
    }
    return static_cast<double>(r->bytes) / 1e6 / took.count();
  };
  for (int i = 0; i < runs; ++i) {
    without.push_back(fetch(plain_server, *plain));
    with_tls.push_back(fetch(tls_server, **tls_b));
    std::printf("run %d: plaintext %.0f MB/s, TLS %.0f MB/s\n", i + 1,
                without.back(), with_tls.back());
  }
  auto p = median(without), t = median(with_tls);
  std::printf("\n%lld MiB fetched (SHA-256 checked, fsync'd), medians of %d:\n",
              mib, runs);
  std::printf("plaintext  %7.0f MB/s\n", p);
  std::printf("TLS 1.3    %7.0f MB/s  (%.2fx of plaintext)\n", t, t / p);
  tls_server.stop();
  plain_server.stop();
  return 0;
}
