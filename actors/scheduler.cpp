#include "actors/scheduler.hpp"

#include "actors/worker.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace reel {

namespace {

using self_ptr = scheduler_actor::stateful_pointer<scheduler_state>;

worker_actor spawn_worker(self_ptr self) {
  auto w = self->spawn<caf::detached + caf::linked>(
    worker, worker_config{self->state.cfg.cluster_secret});
  self->state.workers.push_back(w.address());
  return w;
}

void update_gauges(self_ptr self) {
  auto& m = metrics();
  m.scheduler_tasks.Add({{"state", "queued"}})
    .Set(static_cast<double>(self->state.queue.size()));
  m.scheduler_tasks.Add({{"state", "running"}})
    .Set(static_cast<double>(self->state.running));
}

void dispatch(self_ptr self) {
  auto& st = self->state;
  while (!st.idle.empty() && !st.queue.empty()) {
    auto best = std::min_element(
      st.queue.begin(), st.queue.end(), [](const auto& a, const auto& b) {
        if (a.t.priority != b.t.priority)
          return a.t.priority > b.t.priority;
        return a.seq < b.seq;
      });
    auto job = std::move(*best);
    st.queue.erase(best);
    auto w = st.idle.back();
    st.idle.pop_back();
    ++st.running;
    auto t = job.t;
    self->request(w, caf::infinite, run_atom::value, t)
      .then(
        [self, w, rp = job.rp](task_result& r) mutable {
          metrics().tasks_run.Add({{"kind", to_string(r.kind)}}).Increment();
          --self->state.running;
          self->state.idle.push_back(w);
          rp.deliver(std::move(r));
          dispatch(self);
        },
        [self, job](caf::error& err) mutable {
          // The worker died under this task: replace it and run the task
          // once more before calling it failed.
          --self->state.running;
          self->state.idle.push_back(spawn_worker(self));
          log::error("worker.lost", {{"video", job.t.video_id},
                                     {"kind", to_string(job.t.kind)},
                                     {"error", message_of(err)}});
          if (++job.attempts < 2) {
            metrics().task_retries.Increment();
            self->state.queue.push_back(std::move(job));
          } else {
            task_result r;
            r.id = job.t.id;
            r.video_id = job.t.video_id;
            r.kind = job.t.kind;
            r.index = job.t.index;
            r.error = "worker failed twice: " + message_of(err);
            job.rp.deliver(std::move(r));
          }
          dispatch(self);
        });
  }
  update_gauges(self);
}

} // namespace

scheduler_actor::behavior_type
scheduler(scheduler_actor::stateful_pointer<scheduler_state> self,
          scheduler_config cfg) {
  self->state.cfg = cfg;
  // Workers are linked so that they end with the scheduler. A worker's own
  // end is handled where its task fails (the request errors); any other
  // exit message ends the scheduler.
  self->set_exit_handler([self](const caf::exit_msg& msg) {
    auto& ws = self->state.workers;
    if (std::find(ws.begin(), ws.end(), msg.source) != ws.end())
      return;
    self->quit(msg.reason);
  });
  for (int i = 0; i < cfg.workers; ++i)
    self->state.idle.push_back(spawn_worker(self));
  return {
    [self](submit_atom, task& t) -> caf::result<task_result> {
      auto rp = self->make_response_promise<task_result>();
      self->state.queue.push_back(
        scheduler_state::pending{std::move(t), rp, self->state.next_seq++});
      dispatch(self);
      return rp;
    },
    [self](stats_atom) -> caf::result<int64_t, int64_t> {
      return {static_cast<int64_t>(self->state.queue.size()),
              self->state.running};
    },
    [self](caf::delete_atom, const std::string& video_id) {
      auto& q = self->state.queue;
      // Kept tasks first, in order; the video's after them, intact.
      auto gone = std::stable_partition(q.begin(), q.end(), [&](auto& p) {
        return p.t.video_id != video_id;
      });
      for (auto i = gone; i != q.end(); ++i) {
        task_result r;
        r.id = i->t.id;
        r.video_id = video_id;
        r.kind = i->t.kind;
        r.error = "cancelled: the video was deleted";
        i->rp.deliver(std::move(r));
      }
      q.erase(gone, q.end());
      update_gauges(self);
    },
  };
}

} // namespace reel
