#pragma once

// The node's Prometheus metrics, declared in one place (the catalog is in
// docs/metrics.md). Names follow reel_<module>_<what>_<unit>; labels have few
// values (never a video id or a URL).

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace reel {

struct node_metrics {
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Counter>& http_requests;       // {route,code}
  prometheus::Family<prometheus::Histogram>& http_duration;     // {route}
  prometheus::Family<prometheus::Counter>& http_response_bytes; // {route}
  // The HTTP front (http/front.cpp), per listener (main, metrics).
  prometheus::Family<prometheus::Gauge>& http_connections;           // {listener}
  prometheus::Family<prometheus::Counter>& http_connections_refused; // {listener}
  prometheus::Family<prometheus::Counter>& http_connections_evicted; // {listener}
  prometheus::Family<prometheus::Counter>& http_heads_refused; // {listener,reason}
  prometheus::Family<prometheus::Gauge>& http_requests_waiting;      // {listener}
  prometheus::Family<prometheus::Gauge>& http_worker_threads; // {listener,state}
  prometheus::Counter& ingest_bytes;
  prometheus::Gauge& ingest_active;
  prometheus::Family<prometheus::Gauge>& videos;                 // {state}
  prometheus::Family<prometheus::Counter>& transcode_frames;     // {rung}
  prometheus::Family<prometheus::Counter>& transcode_seconds;    // {rung}
  prometheus::Family<prometheus::Counter>& video_failures;       // {stage}
  prometheus::Family<prometheus::Gauge>& scheduler_tasks;        // {state}
  prometheus::Counter& task_retries;
  prometheus::Family<prometheus::Counter>& tasks_run;            // {kind}
  prometheus::Family<prometheus::Gauge>& cluster_nodes;          // {state}
  prometheus::Gauge& replication_lag;  // blobs this node should hold, missing
  prometheus::Counter& failovers;      // videos taken over from a lost node
  prometheus::Counter& anti_entropy_repairs; // digests that differed
  // Messages from other nodes refused before they were acted on.
  prometheus::Family<prometheus::Counter>& cluster_dropped; // {message,reason}
  // Storage, set by the /metrics handler before each scrape.
  prometheus::Gauge& store_bytes; // RocksDB, approximate (SST + memtables)
  prometheus::Gauge& blob_bytes;  // files under sources/, work/, media/
  prometheus::Gauge& store_compactions_running;
  prometheus::Gauge& store_compaction_pending_bytes;
  // Webhooks (outgoing event notifications).
  prometheus::Family<prometheus::Counter>& webhook_deliveries; // {result}
  prometheus::Counter& webhook_retries; // attempts after a failed one
  prometheus::Gauge& webhook_outbox;    // deliveries waiting to be sent

  node_metrics();

  /// Sets `blob_bytes` to `measure()`, calling it at most once every
  /// `blob_scan_interval` (it walks the blob tree); in between the gauge keeps
  /// its last value. Thread-safe.
  void refresh_blob_bytes(const std::function<int64_t()>& measure);
  /// How old `blob_bytes` may get.
  static constexpr std::chrono::seconds blob_scan_interval{30};

  /// The text exposition format of everything above.
  std::string serialize() const;

private:
  std::mutex blob_mtx_;
  std::chrono::steady_clock::time_point blob_scanned_{};
  bool blob_scanned_once_ = false;
};

/// The process-wide metrics.
node_metrics& metrics();

} // namespace reel
