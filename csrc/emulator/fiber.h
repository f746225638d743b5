// Fibers of the CPU emulator: user-space execution contexts on their own stacks, switched
// explicitly (fiber.cpp). The scheduler makes one per CUDA thread.
#pragma once

#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace ipdpp::emu {

// A suspended fiber (or the scheduler's own context).
struct Context {
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

// Prepares `ctx` to run entry(arg) on [stack, stack + bytes) at the first switch to it; `entry`
// must never return (it switches away for good instead).
void context_init(Context& ctx, unsigned char* stack, std::size_t bytes, void (*entry)(void*),
                  void* arg);

// Saves the running context into `from` and resumes `to`.
void context_switch(Context& from, Context& to);

// Fiber stacks of one host thread, reused from launch to launch (pages a fiber never touched
// cost no memory), each with a guard page below it so an overflow faults instead of corrupting
// its neighbour.
class StackPool {
 public:
  StackPool() = default;
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool();
  void reserve(std::size_t count);  // at least `count` stacks
  unsigned char* stack(std::size_t i) const { return base_ + i * stride_ + page_; }
  static constexpr std::size_t kStackBytes = 64 * 1024;

 private:
  unsigned char* base_ = nullptr;
  std::size_t count_ = 0, stride_ = 0, page_ = 4096;
};

}  // namespace ipdpp::emu
