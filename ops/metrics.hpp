#pragma once

// The node's Prometheus metrics, declared in one place (the catalog is in
// docs/metrics.md). Names follow reel_<module>_<what>_<unit>; labels have few
// values (never a video id or a URL).

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace reel {

struct node_metrics {
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Counter>& http_requests;       // {route,code}
  prometheus::Family<prometheus::Histogram>& http_duration;     // {route}
  prometheus::Family<prometheus::Counter>& http_response_bytes; // {route}
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

  node_metrics();

  /// The text exposition format of everything above.
  std::string serialize() const;
};

/// The process-wide metrics.
node_metrics& metrics();

} // namespace reel
