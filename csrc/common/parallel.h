// A minimal parallel-for over independent tasks (samples, classes). Work is handed out in
// contiguous chunks; since every task owns its random stream, results do not depend on the
// number of threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "common/interrupt.h"

namespace ipdpp {

// Threads to use: `requested` if > 0, else the hardware concurrency.
inline int resolve_threads(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Calls fn(i) for i in [0, count) on up to `threads` threads. If some fn(i) throw, rethrows the
// exception of the smallest such i, as the serial loop would, so that which error a caller sees
// (e.g. which class is named) does not depend on the thread count or on timing. An interrupt of
// the caller's long call (common/interrupt.h) stops every thread at its next interruption point
// and is rethrown in preference to other errors.
template <class Fn>
void parallel_for(std::int64_t count, int threads, Fn&& fn) {
  threads = static_cast<int>(std::min<std::int64_t>(resolve_threads(threads), count));
  if (threads <= 1) {
    for (std::int64_t i = 0; i < count; ++i) {
      interruption_point();
      fn(i);
    }
    return;
  }
  std::atomic<std::int64_t> next{0};
  std::exception_ptr error, interrupted;
  std::int64_t error_index = count;
  std::mutex error_mutex;
  auto worker = [&]() {
    for (;;) {
      const std::int64_t i = next.fetch_add(1);
      if (i >= count) return;
      try {
        interruption_point();
        fn(i);
      } catch (const Interrupted&) {
        std::lock_guard<std::mutex> lock(error_mutex);
        interrupted = std::current_exception();
        next.store(count);
      } catch (...) {
        // Indices are handed out in increasing order, so every i below the first failure has
        // started and finishes; stopping new work keeps the smallest failing index's exception.
        std::lock_guard<std::mutex> lock(error_mutex);
        if (i < error_index) {
          error = std::current_exception();
          error_index = i;
        }
        next.store(count);
      }
    }
  };
  InterruptScope* scope = current_interrupt_scope();
  int finished = 0;  // pool threads done, guarded by done_mutex
  std::mutex done_mutex;
  std::condition_variable done;
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) {
    pool.emplace_back([&]() {
      {
        InterruptWorker join(scope);
        worker();
      }
      std::lock_guard<std::mutex> lock(done_mutex);
      ++finished;
      done.notify_one();
    });
  }
  worker();
  // Signals reach this thread only: keep polling while the others finish their last tasks.
  {
    std::unique_lock<std::mutex> lock(done_mutex);
    while (finished < threads - 1) {
      done.wait_for(lock, kPollInterval);
      if (scope == nullptr) continue;
      lock.unlock();
      try {
        interruption_point();
      } catch (const Interrupted&) {
        std::lock_guard<std::mutex> error_lock(error_mutex);
        interrupted = std::current_exception();
        next.store(count);
      }
      lock.lock();
    }
  }
  for (auto& th : pool) th.join();
  if (interrupted) std::rethrow_exception(interrupted);
  if (error) std::rethrow_exception(error);
}

}  // namespace ipdpp
