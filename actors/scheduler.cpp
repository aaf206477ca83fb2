#include "actors/scheduler.hpp"

#include "actors/worker.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;

namespace reel {

namespace {

using self_ptr = scheduler_ops_actor::stateful_pointer<scheduler_state>;

worker_actor spawn_worker(self_ptr self) {
  auto w =
      self->spawn<caf::detached + caf::linked>(worker, self->state.cfg.worker);
  self->state.workers.push_back(w.address());
  return w;
}

void update_gauges(self_ptr self) {
  auto& m = metrics();
  m.scheduler_tasks.Add({{"state", "queued"}})
      .Set(static_cast<double>(self->state.queue.size()));
  m.scheduler_tasks.Add({{"state", "running"}})
      .Set(static_cast<double>(self->state.running.size()));
}

using pending = scheduler_state::pending;
using moves_t = std::vector<std::pair<std::string, std::string>>;

/// The order of the queue: requeued tasks first, then by priority, then
/// first come first served.
bool served_before(const pending& a, const pending& b) {
  if (a.requeued != b.requeued)
    return a.requeued;
  if (a.t.priority != b.t.priority)
    return a.t.priority > b.t.priority;
  return a.seq < b.seq;
}

/// Whether queued `p` must wait: a task writing the same outputs runs (the
/// task of a video's earlier run, still running when the video was
/// retried; a chunk sent to this node again). Two workers writing one file
/// would corrupt it. A requeued task writes outputs of its own: it never
/// waits.
bool must_wait(self_ptr self, const pending& p) {
  if (p.requeued)
    return false;
  for (auto& [seq, a] : self->state.running)
    if (a.job.t.video_id == p.t.video_id && a.job.t.kind == p.t.kind &&
        a.job.t.index == p.t.index)
      return true;
  return false;
}

task_info info_of(const pending& p, const char* state, int64_t started_ms = 0) {
  return task_info{p.seq,        p.t.video_id, p.t.kind,    p.t.index,
                   p.t.priority, state,        p.queued_ms, started_ms};
}

/// Points the outputs of a requeued task's run at private names (the
/// given-up worker may still write the usual ones); answers where each
/// goes when the run succeeds. Probes write nothing; assemble tasks are
/// never requeued.
moves_t privatize(const blob_store* blobs, task& t, const std::string& tag) {
  moves_t moves;
  if (!blobs)
    return moves;
  auto usual = files_of(*blobs, t);
  t.output_tag = ".requeued-" + tag;
  auto own = files_of(*blobs, t);
  if (!usual || !own)
    return moves; // the worker refuses the task with the reason
  auto pair = [&](const std::string& a, const std::string& b) {
    moves.emplace_back(a, b);
  };
  switch (t.kind) {
  case task_kind::chunk:
    for (size_t i = 0; i < own->outputs.size(); ++i)
      pair(own->outputs[i], usual->outputs[i]);
    break;
  case task_kind::audio:
    pair(own->audio, usual->audio);
    break;
  case task_kind::images:
  case task_kind::storyboard:
    pair(own->images_dir, usual->images_dir);
    break;
  case task_kind::import:
    pair(own->source, usual->source);
    break;
  case task_kind::probe:
  case task_kind::assemble:
    break;
  }
  return moves;
}

/// Moves a requeued run's outputs into place (a directory file by file,
/// into the existing one).
caf::error commit(const moves_t& moves) {
  for (auto& [from, to] : moves) {
    std::error_code err;
    if (fs::is_directory(from, err)) {
      std::vector<fs::path> files;
      for (auto it = fs::recursive_directory_iterator(from, err);
           !err && it != fs::recursive_directory_iterator(); it.increment(err))
        if (it->is_regular_file())
          files.push_back(it->path());
      for (auto& f : files) {
        if (err)
          break;
        auto dst = fs::path{to} / fs::relative(f, from);
        fs::create_directories(dst.parent_path(), err);
        if (!err)
          fs::rename(f, dst, err);
      }
      if (!err)
        fs::remove_all(from, err);
    } else {
      fs::rename(from, to, err);
    }
    if (err)
      return make_error(ec::storage_error, "cannot move " + from +
                                               " into place: " + err.message());
  }
  return {};
}

void discard(const moves_t& moves) {
  for (auto& m : moves) {
    std::error_code ignored;
    fs::remove_all(m.first, ignored);
  }
}

void dispatch(self_ptr self);

/// Ends a worker whose task was requeued, now that it has finished: its
/// place was taken by a new worker already.
void retire(self_ptr self, const worker_actor& w) {
  auto& ws = self->state.workers;
  ws.erase(std::remove(ws.begin(), ws.end(), w.address()), ws.end());
  self->unlink_from(w);
  self->send_exit(w, caf::exit_reason::user_shutdown);
}

/// Runs `job` on idle worker `w`.
void run(self_ptr self, pending job, worker_actor w) {
  auto& st = self->state;
  auto seq = job.seq;
  auto t = job.t;
  moves_t moves;
  if (job.requeued)
    moves = privatize(st.cfg.worker.blobs, t,
                      std::to_string(seq) + "-" +
                          std::to_string(++st.private_runs));
  st.running[seq] =
      scheduler_state::active{std::move(job), w, now_ms(), std::move(moves)};
  self->request(w, caf::infinite, run_atom::value, std::move(t))
      .then(
          [self, w, seq](task_result& r) {
            auto& st = self->state;
            metrics().tasks_run.Add({{"kind", to_string(r.kind)}}).Increment();
            if (st.given_up.erase(w.address()) > 0) {
              retire(self, w); // an operator requeued its task: ignored
              dispatch(self);
              return;
            }
            st.idle.push_back(w);
            auto i = st.running.find(seq);
            if (i != st.running.end()) {
              auto a = std::move(i->second);
              st.running.erase(i);
              if (!r.error.empty())
                discard(a.moves);
              else if (auto err = commit(a.moves))
                r.error = message_of(err);
              a.job.rp.deliver(std::move(r));
            }
            dispatch(self);
          },
          [self, w, seq](caf::error& err) {
            auto& st = self->state;
            if (st.given_up.erase(w.address()) > 0) {
              dispatch(self); // replaced already; its task runs elsewhere
              return;
            }
            // The worker died under this task: replace it and run the task
            // once more before calling it failed.
            st.idle.push_back(spawn_worker(self));
            auto i = st.running.find(seq);
            if (i == st.running.end()) {
              dispatch(self);
              return;
            }
            auto a = std::move(i->second);
            st.running.erase(i);
            discard(a.moves);
            auto& job = a.job;
            log::error("worker.lost", {{"video", job.t.video_id},
                                       {"kind", to_string(job.t.kind)},
                                       {"error", message_of(err)}});
            if (++job.attempts < 2) {
              metrics().task_retries.Increment();
              job.queued_ms = now_ms();
              st.queue.push_back(std::move(job));
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

void dispatch(self_ptr self) {
  auto& st = self->state;
  while (!st.idle.empty()) {
    auto best = st.queue.end();
    for (auto i = st.queue.begin(); i != st.queue.end(); ++i)
      if (!must_wait(self, *i) &&
          (best == st.queue.end() || served_before(*i, *best)))
        best = i;
    if (best == st.queue.end())
      break;
    auto job = std::move(*best);
    st.queue.erase(best);
    auto w = st.idle.back();
    st.idle.pop_back();
    run(self, std::move(job), w);
  }
  update_gauges(self);
}

} // namespace

scheduler_ops_actor::behavior_type
scheduler(scheduler_ops_actor::stateful_pointer<scheduler_state> self,
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
        pending p{std::move(t), rp, ++self->state.next_seq};
        p.queued_ms = now_ms();
        self->state.queue.push_back(std::move(p));
        dispatch(self);
        return rp;
      },
      [self](stats_atom) -> caf::result<int64_t, int64_t> {
        return {static_cast<int64_t>(self->state.queue.size()),
                static_cast<int64_t>(self->state.running.size())};
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
      [self](list_atom) -> caf::result<std::vector<task_info>> {
        auto& st = self->state;
        std::vector<task_info> out;
        for (auto& [seq, a] : st.running)
          out.push_back(info_of(a.job, "running", a.started_ms));
        std::vector<const pending*> queued;
        for (auto& p : st.queue)
          queued.push_back(&p);
        std::sort(queued.begin(), queued.end(),
                  [](auto* a, auto* b) { return served_before(*a, *b); });
        for (auto* p : queued)
          out.push_back(info_of(*p, "queued"));
        return out;
      },
      [self](cancel_atom, uint64_t id) -> caf::result<task_info> {
        auto& st = self->state;
        auto n = std::to_string(id);
        if (st.running.count(id) > 0)
          return make_error(ec::conflict,
                            "task " + n + " is running: requeue it instead");
        auto i = std::find_if(st.queue.begin(), st.queue.end(),
                              [id](auto& p) { return p.seq == id; });
        if (i == st.queue.end())
          return make_error(ec::not_found, "no task " + n + " on this node");
        auto job = std::move(*i);
        st.queue.erase(i);
        log::info("task.cancelled", {{"task", n},
                                     {"video", job.t.video_id},
                                     {"kind", to_string(job.t.kind)}});
        task_result r;
        r.id = job.t.id;
        r.video_id = job.t.video_id;
        r.kind = job.t.kind;
        r.index = job.t.index;
        r.error = "cancelled by an operator";
        job.rp.deliver(std::move(r));
        update_gauges(self);
        return info_of(job, "cancelled");
      },
      [self](requeue_atom, uint64_t id) -> caf::result<task_info> {
        auto& st = self->state;
        auto n = std::to_string(id);
        auto i = st.running.find(id);
        if (i == st.running.end()) {
          bool queued = std::any_of(st.queue.begin(), st.queue.end(),
                                    [id](auto& p) { return p.seq == id; });
          if (queued)
            return make_error(ec::conflict,
                              "task " + n + " is queued, not running");
          return make_error(ec::not_found, "no task " + n + " on this node");
        }
        if (i->second.job.t.kind == task_kind::assemble)
          return make_error(ec::conflict, "task " + n +
                                              " joins an upload's parts and "
                                              "cannot run twice at once");
        auto a = std::move(i->second);
        st.running.erase(i);
        // Its worker cannot be interrupted: it is left to finish (its
        // result ignored) and a new one takes its place.
        st.given_up.insert(a.worker.address());
        st.idle.push_back(spawn_worker(self));
        auto& job = a.job;
        job.requeued = true;
        job.queued_ms = now_ms();
        log::warn(
            "task.requeued",
            {{"task", n},
             {"video", job.t.video_id},
             {"kind", to_string(job.t.kind)},
             {"ran_s", std::to_string((now_ms() - a.started_ms) / 1000)}});
        auto info = info_of(job, "queued");
        st.queue.push_back(std::move(job));
        dispatch(self);
        return info;
      },
  };
}

} // namespace reel
