#include "cluster/view.hpp"

#include "cluster/placement.hpp"

#include <algorithm>

namespace reel {

cluster_view::cluster_view(member_info self, size_t replicas)
  : self_(std::move(self)), replicas_(std::max<size_t>(1, replicas)) {
}

void cluster_view::set_members(std::vector<member_info> members) {
  std::lock_guard<std::mutex> guard{mtx_};
  members.erase(std::remove_if(members.begin(), members.end(),
                               [&](auto& m) { return m.node_id == self_.node_id; }),
                members.end());
  others_ = std::move(members);
}

void cluster_view::update_self(const member_info& self) {
  std::lock_guard<std::mutex> guard{mtx_};
  self_ = self;
}

member_info cluster_view::self() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return self_;
}

std::vector<member_info> cluster_view::members() const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto all = others_;
  all.push_back(self_);
  std::sort(all.begin(), all.end(),
            [](auto& a, auto& b) { return a.node_id < b.node_id; });
  return all;
}

std::optional<member_info> cluster_view::find(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (id == self_.node_id)
    return self_;
  for (auto& m : others_)
    if (m.node_id == id)
      return m;
  return std::nullopt;
}

std::vector<std::string> cluster_view::live() const {
  std::lock_guard<std::mutex> guard{mtx_};
  // A suspect node (silent for a moment) keeps its place: only CAF's
  // failure detection (down) or a drain moves its videos.
  auto counts = [](const member_info& m) {
    return m.state == "up" || m.state == "suspect";
  };
  std::vector<std::string> out;
  if (counts(self_))
    out.push_back(self_.node_id);
  for (auto& m : others_)
    if (counts(m))
      out.push_back(m.node_id);
  return out;
}

std::vector<std::string> cluster_view::placement(const std::string& id) const {
  return cluster::place(id, live(), replicas_);
}

std::string cluster_view::owner(const std::string& id) const {
  auto p = cluster::place(id, live(), 1);
  return p.empty() ? std::string{} : p.front();
}

bool cluster_view::owns(const std::string& id) const {
  return owner(id) == self().node_id;
}

bool cluster_view::has_quorum() const {
  std::lock_guard<std::mutex> guard{mtx_};
  size_t known = others_.size() + 1;
  size_t up = self_.state == "down" ? 0 : 1;
  for (auto& m : others_)
    if (m.state != "down")
      ++up;
  return up * 2 > known;
}

std::vector<blob_origin>
cluster_view::fetch_order(const std::vector<std::string>& preferred) const {
  auto all = members();
  auto self_id = self().node_id;
  std::vector<blob_origin> out;
  auto add = [&](const member_info& m) {
    if (m.node_id == self_id || m.data_port == 0
        || (m.state != "up" && m.state != "draining"))
      return;
    for (auto& o : out)
      if (o.node_id == m.node_id)
        return;
    out.push_back(blob_origin{m.node_id, m.cluster_host, m.data_port});
  };
  for (auto& id : preferred)
    for (auto& m : all)
      if (m.node_id == id)
        add(m);
  for (auto& m : all)
    add(m);
  return out;
}

member_info cluster_view::least_loaded() const {
  auto all = members();
  member_info best = self();
  double best_load = 1e18;
  for (auto& m : all) {
    if (m.state != "up" || m.workers <= 0)
      continue;
    auto load = static_cast<double>(m.queued + m.running) / m.workers;
    if (load < best_load) {
      best_load = load;
      best = m;
    }
  }
  return best;
}

} // namespace reel
