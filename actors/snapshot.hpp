#pragma once

// A value one actor owns and publishes, read by any thread without a lock
// of its own, a round trip or I/O: an immutable snapshot behind a
// shared_ptr, swapped atomically. The owner builds the next value aside and
// publishes it whole; a reader holds the snapshot it loaded for as long as
// it needs it (a later publish does not change it under the reader).

#include <memory>
#include <utility>

namespace reel {

template <class T>
class published {
public:
  published() = default;
  explicit published(std::shared_ptr<const T> first)
    : value_(std::move(first)) {
  }
  published(const published&) = delete;
  published& operator=(const published&) = delete;

  /// The latest snapshot; null until the first publish (unless given one).
  std::shared_ptr<const T> get() const {
    return std::atomic_load_explicit(&value_, std::memory_order_acquire);
  }

  /// Publishes `next`: every get() from now on answers it.
  void set(std::shared_ptr<const T> next) {
    std::atomic_store_explicit(&value_, std::move(next),
                               std::memory_order_release);
  }

private:
  std::shared_ptr<const T> value_;
};

} // namespace reel
