#pragma once

// Webhooks: events about videos, written to an outbox in the store of the
// node where they happen and delivered from there, signed, with retries
// that survive restarts.

#include "actors/actors.hpp"
#include "actors/context.hpp"

#include <string>

namespace reel {

/// The events a subscription may name. reel's own (formats "native" and
/// "gcore"): video.uploaded, video.playable, video.ready, video.failed, or
/// "*". api.video's (format "apivideo"): video.encoding.quality.completed
/// (sent when the video is ready, one per rung and encoding) and
/// video.source.recorded (live streams only: accepted, never sent).
bool known_event(const std::string& format, const std::string& event);

/// The outbox rows of `event` (reel's name) about `v`: one delivery per
/// subscription of its tenant that wants it. The video actor writes them in
/// the same batch as the transition they report (db::put_video), so an
/// event is never lost nor sent for a transition that was not stored.
std::vector<db::row_write> event_rows(node_context* ctx, const video_record& v,
                                      const std::string& event);

/// Tells the dispatcher that deliveries are waiting.
void wake_webhooks(node_context* ctx);

/// Sends what the outbox holds when it is due: a 2xx answer delivers, any
/// other (or none) is tried again after 1, 2, 4 ... times
/// --webhook-retry-seconds, at most `max_webhook_attempts` times.
/// Spawned detached (it blocks on the network); ticks once a second.
webhook_actor::behavior_type webhook_dispatcher(webhook_actor::pointer self,
                                                node_context* ctx);

constexpr int32_t max_webhook_attempts = 8;

} // namespace reel
