// Cooperative interruption of long calls (Ctrl-C while a sampler runs with the GIL released).
//
// The caller of a long computation opens an InterruptScope with a poll function (the bindings'
// one takes the GIL for a moment and asks Python whether a signal is pending; nothing here knows
// about Python). The loops of the computation call interruption_point() once per step. On the
// thread that opened the scope that polls at most every kPollInterval; on the worker threads of
// a parallel_for it only reads the scope's stop flag. Once the poll reports an interrupt, every
// thread of the call throws Interrupted at its next interruption point, the stack unwinds (RAII
// frees everything) and the bindings re-raise the pending Python exception (KeyboardInterrupt).
// Outside a scope interruption_point() costs a thread-local load and a branch.
#pragma once

#include <atomic>
#include <chrono>
#include <stdexcept>

namespace ipdpp {

// Signals reach only the thread that opened the scope, so it polls this often; Ctrl-C then stops
// a call within a few milliseconds plus the longest stretch between two interruption points.
constexpr std::chrono::milliseconds kPollInterval{5};

struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

class InterruptScope;

namespace interrupt_detail {
struct ThreadState {
  InterruptScope* scope = nullptr;
  bool polls = false;  // the thread that opened the scope
  std::chrono::steady_clock::time_point next_poll{};
};
inline ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}
}  // namespace interrupt_detail

class InterruptScope {
 public:
  using Poll = bool (*)();  // true: stop the call
  explicit InterruptScope(Poll poll) : poll_(poll), saved_(interrupt_detail::thread_state()) {
    interrupt_detail::thread_state() = {this, true, std::chrono::steady_clock::now()};
  }
  ~InterruptScope() { interrupt_detail::thread_state() = saved_; }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  bool stopped() const { return stop_.load(std::memory_order_relaxed); }
  // Polls (from the opening thread) and records a stop; true when the call must stop.
  bool poll() {
    if (!stopped() && poll_()) stop_.store(true, std::memory_order_relaxed);
    return stopped();
  }

 private:
  Poll poll_;
  std::atomic<bool> stop_{false};
  interrupt_detail::ThreadState saved_;
};

// The scope of the calling thread's long call (null outside one).
inline InterruptScope* current_interrupt_scope() { return interrupt_detail::thread_state().scope; }

// A worker thread of a long call joins the scope of the thread that started it, for its lifetime.
class InterruptWorker {
 public:
  explicit InterruptWorker(InterruptScope* scope) : saved_(interrupt_detail::thread_state()) {
    interrupt_detail::thread_state() = {scope, false, {}};
  }
  ~InterruptWorker() { interrupt_detail::thread_state() = saved_; }
  InterruptWorker(const InterruptWorker&) = delete;
  InterruptWorker& operator=(const InterruptWorker&) = delete;

 private:
  interrupt_detail::ThreadState saved_;
};

// Throws Interrupted when the current long call has been interrupted.
inline void interruption_point() {
  interrupt_detail::ThreadState& state = interrupt_detail::thread_state();
  if (state.scope == nullptr) return;
  if (state.scope->stopped()) throw Interrupted();
  if (!state.polls) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < state.next_poll) return;
  state.next_poll = now + kPollInterval;
  if (state.scope->poll()) throw Interrupted();
}

}  // namespace ipdpp
