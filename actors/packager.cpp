#include "actors/packager.hpp"

#include "actors/context.hpp"

#include <caf/all.hpp>

namespace reel {

namespace {

using self_ptr = packager_actor::stateful_pointer<packager_state>;

/// The open packager; opening it empties the output directory.
caf::expected<codec::packager*> get(self_ptr self) {
  if (!self->state.impl) {
    auto p = codec::packager::open(self->state.job);
    if (!p)
      return p.error();
    self->state.impl = std::move(*p);
  }
  return self->state.impl.get();
}

} // namespace

packager_actor spawn_packager(caf::local_actor* parent,
                              codec::package_job job) {
  return parent->spawn<caf::detached + caf::linked>(packager, std::move(job));
}

packager_actor::behavior_type
packager(packager_actor::stateful_pointer<packager_state> self,
         codec::package_job job) {
  self->state.job = std::move(job);
  return {
    [self](caf::add_atom, audio_atom) -> caf::result<bool> {
      auto p = get(self);
      if (!p)
        return p.error();
      if (auto err = (*p)->add_audio())
        return err;
      return (*p)->playable();
    },
    [self](caf::add_atom, int32_t index) -> caf::result<bool> {
      auto p = get(self);
      if (!p)
        return p.error();
      if (auto err = (*p)->add_chunk(index))
        return err;
      return (*p)->playable();
    },
    [self](finish_atom) -> caf::result<codec::package_result> {
      auto p = get(self);
      if (!p)
        return p.error();
      auto r = (*p)->finish();
      self->state.impl.reset();
      if (!r)
        return r.error();
      return std::move(*r);
    },
  };
}

} // namespace reel
