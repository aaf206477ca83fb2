#include "actors/replicator.hpp"

#include "cluster/data_plane.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;

namespace reel {

namespace {

caf::error fetch_one(node_context* ctx, const fetch_item& item) {
  auto ref = cluster::ref_of(item.rel);
  if (!ref)
    return make_error(ec::invalid_argument, "not a blob: " + item.rel);
  auto dest = ctx->blobs->root() + "/" + cluster::relative_path(*ref);
  caf::error last = make_error(ec::not_found, item.rel + ": no node to fetch from");
  for (auto& o : item.origins) {
    auto r = cluster::fetch_blob({o.node_id, o.host, o.port}, *ctx->link,
                                 *ref, dest, item.sha256);
    if (r) {
      log::debug("blob.fetched", {{"path", item.rel}, {"from", o.node_id}});
      return {};
    }
    last = r.error();
  }
  return last;
}

} // namespace

std::vector<fetch_item> missing_blobs(const node_context& ctx,
                                      const video_record& v) {
  std::vector<fetch_item> out;
  auto placement = ctx.view->placement(v.id);
  auto self = ctx.view->self().node_id;
  if (std::find(placement.begin(), placement.end(), self) == placement.end())
    return out;
  auto origins = ctx.view->fetch_order(placement);
  if (v.state == states::failed || origins.empty())
    return out;
  std::error_code err;
  if (!v.source_sha256.empty()
      && !fs::exists(ctx.blobs->source_path(v.id), err))
    out.push_back(fetch_item{"sources/" + v.id + "/source", v.source_sha256,
                             origins});
  if (v.state == states::ready)
    for (auto& f : v.files)
      if (!fs::exists(ctx.blobs->media_dir(v.id) + "/" + f.name, err))
        out.push_back(fetch_item{"media/" + v.id + "/" + f.name, f.sha256,
                                 origins});
  return out;
}

replicator_actor::behavior_type
replicator(replicator_actor::stateful_pointer<replicator_state> self,
           node_context* ctx) {
  self->state.ctx = ctx;
  return {
    [self](fetch_atom, const std::vector<fetch_item>& items)
      -> caf::result<caf::ok_atom> {
      for (auto& item : items)
        if (auto err = fetch_one(self->state.ctx, item))
          return err;
      return caf::ok_atom::value;
    },
    [self](caf::put_atom, const video_record& v) {
      auto items = missing_blobs(*self->state.ctx, v);
      auto& lag = metrics().replication_lag;
      lag.Increment(static_cast<double>(items.size()));
      for (auto& item : items) {
        if (auto err = fetch_one(self->state.ctx, item))
          log::warn("replica.fetch_failed", {{"video", v.id},
                                             {"path", item.rel},
                                             {"error", message_of(err)}});
        lag.Decrement();
      }
    },
  };
}

} // namespace reel
