#include "ops/metrics.hpp"

#include <prometheus/text_serializer.h>

namespace reel {

namespace {
using namespace prometheus;
} // namespace

node_metrics::node_metrics()
  : registry(std::make_shared<Registry>()),
    http_requests(BuildCounter()
                    .Name("reel_http_requests_total")
                    .Help("HTTP requests answered, by route and status code")
                    .Register(*registry)),
    http_duration(BuildHistogram()
                    .Name("reel_http_request_duration_seconds")
                    .Help("Time to answer an HTTP request, by route")
                    .Register(*registry)),
    http_response_bytes(BuildCounter()
                          .Name("reel_http_response_bytes_total")
                          .Help("Bytes of response bodies, by route")
                          .Register(*registry)),
    http_connections(BuildGauge()
                       .Name("reel_http_connections")
                       .Help("HTTP connections open now, by listener")
                       .Register(*registry)),
    http_connections_refused(
      BuildCounter()
        .Name("reel_http_connections_refused_total")
        .Help("HTTP connections refused (503) because every one of the "
              "--http-max-connections open ones was being answered")
        .Register(*registry)),
    http_connections_evicted(
      BuildCounter()
        .Name("reel_http_connections_evicted_total")
        .Help("HTTP connections closed at the connection cap to make room "
              "for a new one (the one waiting longest for a request)")
        .Register(*registry)),
    http_heads_refused(BuildCounter()
                         .Name("reel_http_heads_refused_total")
                         .Help("Request heads refused by the HTTP front, by "
                               "reason (too_large, too_many_fields, timeout)")
                         .Register(*registry)),
    http_requests_waiting(BuildGauge()
                            .Name("reel_http_requests_waiting")
                            .Help("Requests whose head has arrived, waiting "
                                  "for an HTTP worker thread")
                            .Register(*registry)),
    http_worker_threads(BuildGauge()
                          .Name("reel_http_worker_threads")
                          .Help("HTTP worker threads by state (busy, idle)")
                          .Register(*registry)),
    ingest_bytes(BuildCounter()
                   .Name("reel_ingest_bytes_total")
                   .Help("Upload bytes received")
                   .Register(*registry)
                   .Add({})),
    ingest_active(BuildGauge()
                    .Name("reel_ingest_active_uploads")
                    .Help("Uploads being received now")
                    .Register(*registry)
                    .Add({})),
    videos(BuildGauge()
             .Name("reel_videos")
             .Help("Videos on this node by state")
             .Register(*registry)),
    transcode_frames(BuildCounter()
                       .Name("reel_transcode_frames_total")
                       .Help("Video frames encoded, by rung")
                       .Register(*registry)),
    transcode_seconds(BuildCounter()
                        .Name("reel_transcode_media_seconds_total")
                        .Help("Seconds of media encoded, by rung")
                        .Register(*registry)),
    video_failures(BuildCounter()
                     .Name("reel_video_failures_total")
                     .Help("Videos that failed, by the stage they failed in")
                     .Register(*registry)),
    scheduler_tasks(BuildGauge()
                      .Name("reel_scheduler_tasks")
                      .Help("Transcode tasks by state (queued, running)")
                      .Register(*registry)),
    task_retries(BuildCounter()
                   .Name("reel_scheduler_task_retries_total")
                   .Help("Tasks run again after a failure")
                   .Register(*registry)
                   .Add({})),
    tasks_run(BuildCounter()
                .Name("reel_scheduler_tasks_run_total")
                .Help("Tasks this node's workers finished, by kind")
                .Register(*registry)),
    cluster_nodes(BuildGauge()
                    .Name("reel_cluster_nodes")
                    .Help("Cluster members by state, as this node sees them")
                    .Register(*registry)),
    replication_lag(BuildGauge()
                      .Name("reel_replication_lag_blobs")
                      .Help("Blobs this node should hold but is still fetching")
                      .Register(*registry)
                      .Add({})),
    failovers(BuildCounter()
                .Name("reel_cluster_failovers_total")
                .Help("Videos this node took over from a node that left")
                .Register(*registry)
                .Add({})),
    anti_entropy_repairs(BuildCounter()
                           .Name("reel_cluster_anti_entropy_repairs_total")
                           .Help("Digests from a peer that differed from this "
                                 "node's, each followed by a two-way sync")
                           .Register(*registry)
                           .Add({})),
    cluster_dropped(BuildCounter()
                      .Name("reel_cluster_messages_dropped_total")
                      .Help("Messages from other nodes refused before they "
                            "were acted on, by message and reason")
                      .Register(*registry)),
    store_bytes(BuildGauge()
                  .Name("reel_store_bytes")
                  .Help("Approximate size of the metadata store (RocksDB SST "
                        "files and memtables)")
                  .Register(*registry)
                  .Add({})),
    blob_bytes(BuildGauge()
                 .Name("reel_blob_bytes")
                 .Help("Bytes of blob files (sources, work files, media) on "
                       "this node, measured at most every 30 s")
                 .Register(*registry)
                 .Add({})),
    store_compactions_running(BuildGauge()
                                .Name("reel_store_compactions_running")
                                .Help("RocksDB compactions running now")
                                .Register(*registry)
                                .Add({})),
    store_compaction_pending_bytes(
      BuildGauge()
        .Name("reel_store_compaction_pending_bytes")
        .Help("Bytes RocksDB estimates compaction still has to rewrite")
        .Register(*registry)
        .Add({})),
    webhook_deliveries(BuildCounter()
                         .Name("reel_webhook_deliveries_total")
                         .Help("Webhook deliveries finished, by result "
                               "(delivered, failed)")
                         .Register(*registry)),
    webhook_retries(BuildCounter()
                      .Name("reel_webhook_retries_total")
                      .Help("Webhook delivery attempts after a failed one")
                      .Register(*registry)
                      .Add({})),
    webhook_outbox(BuildGauge()
                     .Name("reel_webhook_outbox")
                     .Help("Webhook deliveries waiting to be sent")
                     .Register(*registry)
                     .Add({})) {
  // Bounded label sets are exported at 0 from the start, so that rate() and
  // increase() see their first event.
  for (auto* result : {"delivered", "failed"})
    webhook_deliveries.Add({{"result", result}});
  for (auto* stage :
       {"created", "uploaded", "probing", "transcoding", "packaging"})
    video_failures.Add({{"stage", stage}});
}

void node_metrics::refresh_blob_bytes(
  const std::function<int64_t()>& measure) {
  std::lock_guard<std::mutex> guard{blob_mtx_};
  auto now = std::chrono::steady_clock::now();
  if (blob_scanned_once_ && now - blob_scanned_ < blob_scan_interval)
    return;
  blob_bytes.Set(static_cast<double>(measure()));
  blob_scanned_ = now;
  blob_scanned_once_ = true;
}

std::string node_metrics::serialize() const {
  TextSerializer s;
  return s.Serialize(registry->Collect());
}

node_metrics& metrics() {
  static node_metrics instance;
  return instance;
}

} // namespace reel
