// The state of one emulated launch, shared by the two halves of the fiber scheduler:
// scheduler.cpp (laying out blocks, starting fibers, the order in which they run, the launch
// itself) and synchronisation.cpp (barriers, warp collectives, thread exits and the checks and
// messages about them). Internal to the emulator; nothing outside those two files includes it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "emulator/device.h"
#include "emulator/fiber.h"
#include "emulator/scheduler.h"

namespace ipdpp::emu::launch_state {

enum class Wait { kNone, kBlock, kGrid, kWarp };

struct Block;
struct Warp;

struct Thread {
  Context context;
  Block* block = nullptr;
  Warp* warp = nullptr;
  uint3 index{};
  std::int64_t order = 0;  // position in the launch (block-major)
  int lane = 0;
  bool exited = false;
  Wait wait = Wait::kNone;
  Collective collective = Collective::kSyncWarp;
  const char* file = "";
  int line = 0;
  std::uint64_t result = 0;
};

struct Pending {  // a warp collective whose lanes are still arriving
  Collective kind;
  unsigned mask, arrived;
  const char* file;
  int line;
  std::uint64_t value[32];
  int source[32];
};

struct Warp {
  Thread* lanes[32] = {};
  unsigned existing = 0, exited = 0;
  std::vector<Pending> pending;
};

struct Barrier {
  int arrived = 0;
  const char* file = "";
  int line = 0;
  std::vector<Thread*> waiting;
};

struct Block {
  uint3 index{};
  std::int64_t linear = 0;
  int live = 0, exited = 0;
  Barrier barrier;
  std::vector<Warp> warps;
  std::vector<unsigned char> memory;  // [static][guard][dynamic][guard]
  unsigned char* static_base = nullptr;
  unsigned char* dynamic_base = nullptr;
};

const char* collective_name(Collective kind);
std::string site(const char* file, int line);  // "file.cu:123"
std::string describe(const uint3& v);          // "(x,y,z)"

class Run {
 public:
  explicit Run(const Execution& e);

  Outcome go();

  // Called from fibers.
  void block_barrier(Thread* t, const char* file, int line);
  void grid_barrier(Thread* t, const char* file, int line);
  std::uint64_t collective(Thread* t, Collective kind, unsigned mask, std::uint64_t value,
                           int source, const char* file, int line);
  void exit(Thread* t);
  [[noreturn]] void fail(Thread* t, cudaError_t status, const std::string& what);
  void run_thread(Thread* t) {
    e_.kernel->invoke(e_.address, e_.args);
    exit(t);
  }
  const Execution& execution() const { return e_; }

 private:
  void setup_block(Block& b, std::int64_t linear);
  void start_threads(std::vector<Block*>& blocks);
  void schedule();
  void release(std::vector<Thread*>& threads);
  void count_round(Thread* t);
  // Hands the host thread to the next runnable fiber directly (to the scheduler when there is
  // none, which then finds the launch finished or deadlocked); returns when `t` runs again.
  void yield(Thread* t) {
    if (ready_.empty() || outcome_.status != cudaSuccess) {
      context_switch(t->context, scheduler_);
      return;
    }
    Thread* next = ready_.front();
    ready_.pop_front();
    enter(next);
    if (next != t) context_switch(t->context, next->context);
  }
  static inline void enter(Thread* t);
  std::string who(const Thread* t) const {
    return "thread " + describe(t->index) + " of block " + describe(t->block->index);
  }
  void deadlock();
  void check_guards(const Block& b);
  std::vector<std::int64_t> block_order(std::int64_t count);

  const Execution& e_;
  std::mt19937_64 rng_;
  ThreadOrder order_;
  std::uint64_t watchdog_, rounds_ = 0;
  Context scheduler_;
  std::vector<Thread> threads_;
  std::vector<Block> blocks_;
  std::deque<Thread*> ready_;
  Barrier grid_barrier_;
  std::int64_t live_ = 0;
  std::vector<Thread*> scratch_;  // threads being released (reused: this runs at every shuffle)
  Outcome outcome_;
};

extern Run* t_run;        // the launch being executed
extern Thread* t_thread;  // the fiber running now

// Inline: these run at every barrier and shuffle.
inline Thread* current(const char* what) {
  if (t_thread == nullptr) {
    std::fprintf(stderr, "ipdpp emulator: %s called outside a kernel\n", what);
    std::abort();
  }
  return t_thread;
}

inline void Run::enter(Thread* t) {
  t_thread = t;
  threadIdx = t->index;
  blockIdx = t->block->index;
}

}  // namespace ipdpp::emu::launch_state
