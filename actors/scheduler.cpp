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
  auto w = self->spawn<caf::detached + caf::linked>(worker);
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
    auto rp = job.rp;
    auto t = job.t;
    self->request(w, caf::infinite, run_atom::value, std::move(job.t))
      .then(
        [self, w, rp](task_result& r) mutable {
          --self->state.running;
          self->state.idle.push_back(w);
          rp.deliver(std::move(r));
          dispatch(self);
        },
        [self, rp, t](caf::error& err) mutable {
          // The worker died under this task: replace it, report the task.
          --self->state.running;
          log::error("worker.lost", {{"video", t.video_id},
                                     {"kind", to_string(t.kind)},
                                     {"error", message_of(err)}});
          metrics().task_retries.Increment();
          self->state.idle.push_back(spawn_worker(self));
          task_result r;
          r.id = t.id;
          r.video_id = t.video_id;
          r.kind = t.kind;
          r.index = t.index;
          r.error = "worker failed: " + message_of(err);
          rp.deliver(std::move(r));
          dispatch(self);
        });
  }
  update_gauges(self);
}

} // namespace

scheduler_actor::behavior_type
scheduler(scheduler_actor::stateful_pointer<scheduler_state> self,
          scheduler_config cfg) {
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
  };
}

} // namespace reel
