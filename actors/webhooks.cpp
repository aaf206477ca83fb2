#include "actors/webhooks.hpp"

#include "actors/keyring.hpp"

#include "net/url_import.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"
#include "storage/db.hpp"
#include "storage/keys.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace reel {

namespace {

using json = nlohmann::ordered_json;
constexpr auto tick_every = std::chrono::seconds(1);
constexpr int delivery_timeout_s = 10;

/// api.video's dates: with an explicit offset.
std::string atom_time_ms(int64_t ms) {
  auto s = iso8601_ms(ms);
  s.pop_back(); // Z
  return s + "+00:00";
}

/// Ids sort by creation: milliseconds in hex, then random.
std::string new_delivery_id(int64_t now) {
  char t[17];
  std::snprintf(t, sizeof(t), "%012" PRIx64, static_cast<uint64_t>(now));
  return std::string{"dl_"} + t + random_token(10);
}

bool wants(const webhook_record& w, const std::string& event) {
  return std::any_of(w.events.begin(), w.events.end(), [&](auto& e) {
    return e == event || (e == "*" && w.format != "apivideo");
  });
}

/// The bodies `event` makes for a subscription (api.video's quality event
/// is one per rung and encoding).
std::vector<std::pair<std::string, std::string>>
bodies(const webhook_record& w, const video_record& v, const std::string& event,
       int64_t now) {
  std::vector<std::pair<std::string, std::string>> out;
  if (w.format == "apivideo") {
    const std::string quality_event = "video.encoding.quality.completed";
    if (event != "video.ready" || !wants(w, quality_event))
      return out;
    for (const char* encoding : {"hls", "mp4"}) {
      if (std::string{encoding} == "mp4" && !v.info.mp4_support)
        continue;
      for (auto& r : v.rungs)
        out.emplace_back(quality_event,
                         json{{"type", quality_event},
                              {"emittedAt", atom_time_ms(now)},
                              {"videoId", v.id},
                              {"encoding", encoding},
                              {"quality", r.name}}
                           .dump());
    }
    return out;
  }
  if (!wants(w, event))
    return out;
  json body = {{"type", event}, {"emitted_at", iso8601_ms(now)}};
  if (w.format == "gcore") {
    // The same status a GET of the video shows (model/video_state.hpp).
    auto status = gcore_status(v.state, v.playable_ms > 0);
    json video = {{"id", v.number}, {"name", v.title}, {"status", status}};
    if (!v.failure_reason.empty())
      video["error"] = v.failure_reason;
    body["video"] = video;
  } else {
    body.update({{"video_id", v.id}, {"title", v.title}, {"state", to_string(v.state)}});
    if (!v.failure_reason.empty())
      body["reason"] = v.failure_reason;
  }
  out.emplace_back(event, body.dump());
  return out;
}

/// Headers that sign a delivery with `secret` (opened), in the
/// subscription's format.
std::vector<std::pair<std::string, std::string>>
signed_headers(const delivery_record& d, const std::string& secret) {
  auto mac = hex(hmac_sha256(secret, d.body));
  if (d.format == "apivideo")
    return {{"X-Api-Video-WebhookID", d.webhook_id},
            {"X-Api-Video-Signature", mac}};
  return {{"X-Reel-Webhook-Id", d.webhook_id},
          {"X-Reel-Delivery-Id", d.id},
          {"X-Reel-Event", d.event},
          {"X-Reel-Signature", "sha256=" + mac}};
}

void count_outbox(node_context* ctx) {
  int64_t pending = 0;
  auto err = ctx->store->scan(cf::outbox, "", [&](auto&, auto& bytes) {
    delivery_record d;
    if (!decode(bytes, d) && d.status == "pending")
      ++pending;
    return true;
  });
  if (!err)
    metrics().webhook_outbox.Set(static_cast<double>(pending));
}

/// The secret that signs a delivery: opened here, for this attempt only
/// (a delivery of an older release may hold it in plain until rewritten).
caf::expected<std::string> signing_secret(node_context* ctx,
                                          const delivery_record& d) {
  if (!sealer::is_sealed(d.secret))
    return d.secret;
  return ctx->secrets.box.open(d.secret);
}

/// Tries one delivery and records the outcome.
void attempt(node_context* ctx, delivery_record& d, int64_t now) {
  auto secret = signing_secret(ctx, d);
  auto status = secret ? post_url(d.url, d.body, "application/json",
                                  signed_headers(d, *secret),
                                  ctx->config.import_allow, delivery_timeout_s)
                       : caf::expected<int>{make_error(
                             ec::invalid_argument,
                             "the signing secret does not open with this "
                             "node's keys")};
  ++d.attempts;
  if (d.attempts > 1)
    metrics().webhook_retries.Increment();
  if (status && *status >= 200 && *status < 300) {
    d.status = "delivered";
    d.done_ms = now;
    d.last_error.clear();
    metrics().webhook_deliveries.Add({{"result", "delivered"}}).Increment();
  } else {
    d.last_error = status ? "the receiver answered HTTP " + std::to_string(*status)
                          : message_of(status.error());
    // A refused address will not change: no point in trying again.
    bool hopeless = !status && code_of(status.error()) == ec::invalid_argument;
    if (hopeless || d.attempts >= max_webhook_attempts) {
      d.status = "failed";
      d.done_ms = now;
      metrics().webhook_deliveries.Add({{"result", "failed"}}).Increment();
    } else {
      int64_t wait_s = int64_t{ctx->config.webhook_retry_seconds}
                       << std::min(d.attempts - 1, 20);
      d.next_ms = now + std::min<int64_t>(wait_s, 3600) * 1000;
    }
  }
  log::info("webhook.attempt", {{"video", d.video_id},
                                {"delivery", d.id},
                                {"event", d.event},
                                {"status", d.status},
                                {"attempts", std::to_string(d.attempts)},
                                {"error", d.last_error}});
  if (auto err = ctx->store->put(cf::outbox, keys::delivery(d.id), encode(d)))
    log::error("webhook.store_failed", {{"delivery", d.id},
                                        {"error", message_of(err)}});
}

} // namespace

bool known_event(const std::string& format, const std::string& event) {
  if (format == "apivideo")
    return event == "video.encoding.quality.completed"
           || event == "video.source.recorded";
  return event == "*" || event == "video.uploaded" || event == "video.playable"
         || event == "video.ready" || event == "video.failed";
}

std::vector<db::row_write> event_rows(node_context* ctx, const video_record& v,
                                      const std::string& event) {
  std::vector<db::row_write> rows;
  // The tenant's subscriptions as the keyring last published them.
  std::vector<webhook_record> subs;
  auto table = ctx->keys->get();
  auto prefix = keys::webhook_prefix(v.tenant);
  for (auto i = table->webhooks.lower_bound(prefix);
       i != table->webhooks.end() && i->first.rfind(prefix, 0) == 0; ++i)
    subs.push_back(i->second);
  auto now = now_ms();
  for (auto& w : subs)
    for (auto& [name, body] : bodies(w, v, event, now)) {
      delivery_record d;
      d.id = new_delivery_id(now);
      d.webhook_id = w.id;
      d.tenant = w.tenant;
      d.url = w.url;
      d.format = w.format;
      // The subscription's secret as stored: sealed (a row of an older
      // release is sealed here).
      d.secret = sealer::is_sealed(w.secret) || !ctx->secrets.ready()
                     ? w.secret
                     : ctx->secrets.box.seal(w.secret);
      d.event = name;
      d.video_id = v.id;
      d.body = body;
      d.created_ms = d.next_ms = now;
      rows.push_back({cf::outbox, keys::delivery(d.id), encode(d)});
    }
  return rows;
}

void wake_webhooks(node_context* ctx) {
  if (ctx->webhooks)
    caf::anon_send(ctx->webhooks, caf::tick_atom::value);
}

webhook_actor::behavior_type webhook_dispatcher(webhook_actor::pointer self,
                                                node_context* ctx) {
  self->delayed_send(self, tick_every, caf::tick_atom::value);
  return {
    [self, ctx](caf::tick_atom) {
      // A wake-up from emit_event and the periodic tick both land here;
      // only the periodic one schedules the next.
      bool periodic = self->current_sender() == self->ctrl();
      auto now = now_ms();
      std::vector<delivery_record> due;
      auto err = ctx->store->scan(cf::outbox, "", [&](auto&, auto& bytes) {
        delivery_record d;
        if (!decode(bytes, d) && d.status == "pending" && d.next_ms <= now)
          due.push_back(std::move(d));
        return true;
      });
      if (err)
        log::error("webhook.scan_failed", {{"error", message_of(err)}});
      for (auto& d : due)
        attempt(ctx, d, now_ms());
      count_outbox(ctx);
      if (periodic)
        self->delayed_send(self, tick_every, caf::tick_atom::value);
    },
  };
}

} // namespace reel
