// The fiber scheduler of the CPU emulator: one fiber per CUDA thread, switched only at
// synchronisation points (device.h). A launch runs on the host thread that made it: an ordinary
// launch block after block (blocks are independent), a cooperative one with every block alive
// at once, since grid.sync() joins all of them.
//
// What a run checks, each failure ending the launch with a message that names the threads and
// source lines involved:
// - a barrier or warp collective that its threads cannot all reach: a deadlock (no fiber can
//   run), a thread that exits while others wait for it, threads of one block at different
//   __syncthreads calls, lanes at different shuffles or votes, lanes that disagree on the mask,
//   a mask that names an exited or absent lane or not the caller, a shuffle reading a lane
//   outside the mask, grid.sync() outside a cooperative launch;
// - writes past the end of a block's static or dynamic shared memory (guard bytes);
// - a launch that synchronises without end (the watchdog).
// Shared memory starts as garbage in every block, as on a GPU, so a read before the first write
// changes results.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "emulator/device.h"
#include "emulator/fiber.h"
#include "emulator/scheduler.h"

// Plain globals: launches run one at a time (runtime.cpp), and these are read all the time.
uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;

namespace ipdpp::emu {
namespace {

std::atomic<int> g_order{static_cast<int>(ThreadOrder::kForward)};
std::atomic<std::uint64_t> g_seed{0x5eed5eedull};
std::atomic<std::uint64_t> g_watchdog{std::uint64_t{1} << 24};

constexpr std::size_t kGuardBytes = 64;
constexpr unsigned char kGuardByte = 0xcd;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

thread_local StackPool t_stacks;

// ---- launch state ------------------------------------------------------------------------

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

const char* collective_name(Collective kind) {
  switch (kind) {
    case Collective::kShuffle: return "a warp shuffle";
    case Collective::kAny: return "__any_sync";
    case Collective::kAll: return "__all_sync";
    case Collective::kBallot: return "__ballot_sync";
    default: return "__syncwarp";
  }
}

std::string short_file(const char* file) {
  const char* slash = std::strrchr(file, '/');
  return slash != nullptr ? slash + 1 : file;
}

std::string site(const char* file, int line) {
  return short_file(file) + ":" + std::to_string(line);
}

bool same_site(const char* f1, int l1, const char* f2, int l2) {
  return l1 == l2 && (f1 == f2 || std::strcmp(f1, f2) == 0);
}

std::string describe(const uint3& v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

std::string hex(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", mask);
  return text;
}

class Run {
 public:
  explicit Run(const Execution& e)
      : e_(e),
        rng_(splitmix64(g_seed.load() ^ splitmix64(e.launch_id))),
        order_(static_cast<ThreadOrder>(g_order.load())),
        watchdog_(g_watchdog.load()) {}

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
  static void enter(Thread* t);
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

Run* t_run = nullptr;        // the launch being executed
Thread* t_thread = nullptr;  // the fiber running now

// Where every fiber starts: the kernel, then the thread's exit (which never returns).
void fiber_main(void* arg) {
  auto* thread = static_cast<Thread*>(arg);
  try {
    t_run->run_thread(thread);
  } catch (const std::exception& error) {
    t_run->fail(thread, cudaErrorLaunchFailure,
                std::string("exception in a kernel: ") + error.what());
  }
}

struct Probe {
  KernelInfo* info = nullptr;
  bool seen = false;
};
thread_local Probe* t_probe = nullptr;

Thread* current(const char* what) {
  if (t_thread == nullptr) {
    std::fprintf(stderr, "ipdpp emulator: %s called outside a kernel\n", what);
    std::abort();
  }
  return t_thread;
}

std::uint64_t threads_per_block(const dim3& d) { return 1ull * d.x * d.y * d.z; }

void Run::setup_block(Block& b, std::int64_t linear) {
  const dim3& g = e_.grid;
  b.linear = linear;
  b.index = uint3{static_cast<unsigned>(linear % g.x), static_cast<unsigned>(linear / g.x % g.y),
                  static_cast<unsigned>(linear / (1ull * g.x * g.y))};
  b.live = static_cast<int>(threads_per_block(e_.block));
  b.exited = 0;
  b.barrier = Barrier{};
  b.warps.assign(static_cast<std::size_t>((b.live + 31) / 32), Warp{});
  const std::size_t static_bytes = (e_.kernel->static_bytes + 15) / 16 * 16;
  const std::size_t total = static_bytes + kGuardBytes + e_.dynamic_shared + kGuardBytes + 256;
  b.memory.resize(total);
  // Aligned to 256 bytes, more than any vector type needs.
  auto start = (reinterpret_cast<std::uintptr_t>(b.memory.data()) + 255) & ~std::uintptr_t{255};
  b.static_base = reinterpret_cast<unsigned char*>(start);
  b.dynamic_base = b.static_base + static_bytes + kGuardBytes;
  fill_garbage(b.static_base, static_bytes, e_.launch_id * 0x10001ull + linear);
  std::memset(b.static_base + static_bytes, kGuardByte, kGuardBytes);
  fill_garbage(b.dynamic_base, e_.dynamic_shared, ~(e_.launch_id * 0x10001ull + linear));
  std::memset(b.dynamic_base + e_.dynamic_shared, kGuardByte, kGuardBytes);
}

void Run::check_guards(const Block& b) {
  const std::size_t static_bytes = (e_.kernel->static_bytes + 15) / 16 * 16;
  const auto intact = [](const unsigned char* p) {
    for (std::size_t i = 0; i < kGuardBytes; ++i)
      if (p[i] != kGuardByte) return false;
    return true;
  };
  if (!intact(b.static_base + static_bytes)) {
    outcome_ = {cudaErrorIllegalAddress, "block " + describe(b.index) +
                                             " wrote past the end of its static shared memory (" +
                                             std::to_string(e_.kernel->static_bytes) + " bytes)"};
  } else if (!intact(b.dynamic_base + e_.dynamic_shared)) {
    outcome_ = {cudaErrorIllegalAddress, "block " + describe(b.index) +
                                             " wrote past the end of its dynamic shared memory (" +
                                             std::to_string(e_.dynamic_shared) +
                                             " bytes requested at launch)"};
  }
}

std::vector<std::int64_t> Run::block_order(std::int64_t count) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  if (order_ == ThreadOrder::kReversed) std::reverse(order.begin(), order.end());
  if (order_ == ThreadOrder::kShuffled) std::shuffle(order.begin(), order.end(), rng_);
  return order;
}

void Run::start_threads(std::vector<Block*>& blocks) {
  const auto per_block = static_cast<int>(threads_per_block(e_.block));
  threads_.assign(blocks.size() * per_block, Thread{});
  t_stacks.reserve(threads_.size());
  std::vector<Thread*> all;
  all.reserve(threads_.size());
  for (std::size_t bi = 0; bi < blocks.size(); ++bi) {
    Block& b = *blocks[bi];
    for (int i = 0; i < per_block; ++i) {
      Thread& t = threads_[bi * per_block + i];
      t.block = &b;
      t.index = uint3{static_cast<unsigned>(i % e_.block.x),
                      static_cast<unsigned>(i / e_.block.x % e_.block.y),
                      static_cast<unsigned>(i / (e_.block.x * e_.block.y))};
      t.order = b.linear * per_block + i;
      t.lane = i % 32;
      t.warp = &b.warps[static_cast<std::size_t>(i / 32)];
      t.warp->lanes[t.lane] = &t;
      t.warp->existing |= 1u << t.lane;
      context_init(t.context, t_stacks.stack(bi * per_block + i), StackPool::kStackBytes,
                   &fiber_main, &t);
      all.push_back(&t);
    }
  }
  live_ = static_cast<std::int64_t>(all.size());
  release(all);
}

void Run::release(std::vector<Thread*>& threads) {
  const auto before = [](const Thread* a, const Thread* b) { return a->order < b->order; };
  const auto after = [](const Thread* a, const Thread* b) { return a->order > b->order; };
  switch (order_) {  // threads mostly arrive in order already
    case ThreadOrder::kForward:
      if (!std::is_sorted(threads.begin(), threads.end(), before))
        std::sort(threads.begin(), threads.end(), before);
      break;
    case ThreadOrder::kReversed:
      if (!std::is_sorted(threads.begin(), threads.end(), after))
        std::sort(threads.begin(), threads.end(), after);
      break;
    case ThreadOrder::kShuffled: std::shuffle(threads.begin(), threads.end(), rng_); break;
  }
  // Released threads run next, before those that were already runnable: the warp that just
  // shuffled goes on while its data is in cache (a breadth-first order over thousands of fibers
  // would touch every fiber's stack between two shuffles of one warp). Any order is a legal
  // schedule; the thread order above decides the interleavings that matter, those of threads
  // released together.
  for (auto it = threads.rbegin(); it != threads.rend(); ++it) {
    (*it)->wait = Wait::kNone;
    ready_.push_front(*it);
  }
}

void Run::schedule() {
  while (outcome_.status == cudaSuccess) {
    if (ready_.empty()) {
      if (live_ > 0) deadlock();
      return;
    }
    Thread* t = ready_.front();
    ready_.pop_front();
    enter(t);
    context_switch(scheduler_, t->context);
    t_thread = nullptr;
  }
}

Outcome Run::go() {
  const std::int64_t count = 1ll * e_.grid.x * e_.grid.y * e_.grid.z;
  blockDim = e_.block;
  gridDim = e_.grid;
  Run* const outer = t_run;
  t_run = this;
  if (e_.cooperative) {
    blocks_.resize(static_cast<std::size_t>(count));
    std::vector<Block*> all;
    for (std::int64_t b : block_order(count)) {
      setup_block(blocks_[static_cast<std::size_t>(b)], b);
      all.push_back(&blocks_[static_cast<std::size_t>(b)]);
    }
    start_threads(all);
    schedule();
    for (const Block& b : blocks_)
      if (outcome_.status == cudaSuccess) check_guards(b);
  } else {
    blocks_.resize(1);
    for (std::int64_t b : block_order(count)) {
      setup_block(blocks_[0], b);
      std::vector<Block*> one{&blocks_[0]};
      start_threads(one);
      schedule();
      if (outcome_.status == cudaSuccess) check_guards(blocks_[0]);
      if (outcome_.status != cudaSuccess) break;
    }
  }
  t_run = outer;
  return outcome_;
}

void Run::enter(Thread* t) {
  t_thread = t;
  threadIdx = t->index;
  blockIdx = t->block->index;
}

void Run::fail(Thread* t, cudaError_t status, const std::string& what) {
  if (outcome_.status == cudaSuccess) outcome_ = {status, what};
  // The fiber is abandoned: the scheduler stops at the first failure.
  for (;;) context_switch(t->context, scheduler_);
}

void Run::count_round(Thread* t) {
  if (++rounds_ > watchdog_)
    fail(t, cudaErrorLaunchTimeout,
         "watchdog: the launch completed more than " + std::to_string(watchdog_) +
             " barriers and warp collectives (the last at " + site(t->file, t->line) +
             "); is a loop in the kernel unbounded?");
}

void Run::block_barrier(Thread* t, const char* file, int line) {
  Block& b = *t->block;
  Barrier& bar = b.barrier;
  if (bar.arrived > 0 && !same_site(bar.file, bar.line, file, line))
    fail(t, cudaErrorLaunchFailure,
         "divergent __syncthreads: " + who(t) + " reached the one at " + site(file, line) +
             " while " + std::to_string(bar.arrived) + " threads of its block wait at " +
             site(bar.file, bar.line));
  if (b.exited > 0)
    fail(t, cudaErrorLaunchFailure,
         "__syncthreads at " + site(file, line) + " in block " + describe(b.index) + ": " +
             std::to_string(b.exited) + " threads of the block have exited and never reach it");
  if (bar.arrived == 0) {
    bar.file = file;
    bar.line = line;
  }
  t->wait = Wait::kBlock;
  t->file = file;
  t->line = line;
  bar.waiting.push_back(t);
  if (++bar.arrived == b.live) {
    scratch_.swap(bar.waiting);
    bar.waiting.clear();
    bar.arrived = 0;
    count_round(t);
    release(scratch_);
  }
  yield(t);
}

void Run::grid_barrier(Thread* t, const char* file, int line) {
  if (!e_.cooperative)
    fail(t, cudaErrorLaunchFailure,
         "grid.sync() at " + site(file, line) +
             " in a launch that is not cooperative (use "
             "cudaLaunchCooperativeKernel)");
  Barrier& bar = grid_barrier_;
  if (bar.arrived > 0 && !same_site(bar.file, bar.line, file, line))
    fail(t, cudaErrorLaunchFailure,
         "divergent grid.sync(): " + who(t) + " reached the one at " + site(file, line) +
             " while " + std::to_string(bar.arrived) + " threads wait at " +
             site(bar.file, bar.line));
  if (static_cast<std::int64_t>(threads_.size()) != live_)
    fail(t, cudaErrorLaunchFailure,
         "grid.sync() at " + site(file, line) + ": " +
             std::to_string(threads_.size() - static_cast<std::size_t>(live_)) +
             " threads of the grid have exited and never reach it");
  if (bar.arrived == 0) {
    bar.file = file;
    bar.line = line;
  }
  t->wait = Wait::kGrid;
  t->file = file;
  t->line = line;
  bar.waiting.push_back(t);
  if (++bar.arrived == live_) {
    scratch_.swap(bar.waiting);
    bar.waiting.clear();
    bar.arrived = 0;
    count_round(t);
    release(scratch_);
  }
  yield(t);
}

std::uint64_t Run::collective(Thread* t, Collective kind, unsigned mask, std::uint64_t value,
                              int source, const char* file, int line) {
  Warp& w = *t->warp;
  const unsigned bit = 1u << t->lane;
  // Built only for a message: this runs at every shuffle.
  const auto where = [&] { return std::string(collective_name(kind)) + " at " + site(file, line); };
  if ((mask & bit) == 0)
    fail(t, cudaErrorLaunchFailure,
         who(t) + " (lane " + std::to_string(t->lane) + ") calls " + where() + " with mask " +
             hex(mask) + ", which does not include it");
  if ((mask & ~w.existing) != 0)
    fail(t, cudaErrorLaunchFailure,
         where() + ": mask " + hex(mask) + " names lanes that do not exist (the warp has lanes " +
             hex(w.existing) + ")");
  if ((mask & w.exited) != 0)
    fail(t, cudaErrorLaunchFailure,
         where() + ": mask " + hex(mask) + " names lanes " + hex(mask & w.exited) +
             " that have exited");
  std::size_t index = w.pending.size();
  for (std::size_t i = 0; i < w.pending.size(); ++i)
    if ((w.pending[i].mask & mask) != 0) index = i;
  if (index < w.pending.size()) {
    const Pending& p = w.pending[index];
    if (p.mask != mask)
      fail(t, cudaErrorLaunchFailure,
           who(t) + " calls " + where() + " with mask " + hex(mask) + " while lanes " +
               hex(p.arrived) + " wait at " + collective_name(p.kind) + " at " +
               site(p.file, p.line) + " with mask " + hex(p.mask));
    if (p.kind != kind || (kind != Collective::kSyncWarp && !same_site(p.file, p.line, file, line)))
      fail(t, cudaErrorLaunchFailure,
           "divergent warp: " + who(t) + " reached " + where() + " while lanes " + hex(p.arrived) +
               " wait at " + collective_name(p.kind) + " at " + site(p.file, p.line));
  } else {
    Pending p{};
    p.kind = kind;
    p.mask = mask;
    p.arrived = 0;
    p.file = file;
    p.line = line;
    w.pending.push_back(p);
  }
  Pending& p = w.pending[index];
  p.arrived |= bit;
  p.value[t->lane] = value;
  p.source[t->lane] = source;
  t->wait = Wait::kWarp;
  t->collective = kind;
  t->file = file;
  t->line = line;
  if (p.arrived == mask) {
    std::uint64_t vote = kind == Collective::kAll ? 1 : 0;
    for (int l = 0; l < 32; ++l) {
      if ((mask >> l & 1u) == 0) continue;
      if (kind == Collective::kAny) vote |= p.value[l];
      if (kind == Collective::kAll) vote &= p.value[l];
      if (kind == Collective::kBallot && p.value[l] != 0) vote |= 1ull << l;
    }
    std::vector<Thread*>& go = scratch_;
    go.clear();
    for (int l = 0; l < 32; ++l) {
      if ((mask >> l & 1u) == 0) continue;
      Thread* lane = w.lanes[l];
      if (kind == Collective::kShuffle) {
        const int s = p.source[l];
        if (s >= 0 && (mask >> s & 1u) == 0)
          fail(t, cudaErrorLaunchFailure,
               where() + ": lane " + std::to_string(l) + " reads lane " + std::to_string(s) +
                   ", which is not in the mask " + hex(mask) + " (its value is undefined)");
        lane->result = s >= 0 ? p.value[s] : p.value[l];
      } else {
        lane->result = vote;
      }
      go.push_back(lane);
    }
    w.pending.erase(w.pending.begin() + static_cast<std::ptrdiff_t>(index));
    count_round(t);
    release(go);
  }
  yield(t);
  return t->result;
}

void Run::exit(Thread* t) {
  Block& b = *t->block;
  t->exited = true;
  t->wait = Wait::kNone;
  t->warp->exited |= 1u << t->lane;
  --b.live;
  ++b.exited;
  --live_;
  if (b.barrier.arrived > 0)
    fail(t, cudaErrorLaunchFailure,
         who(t) + " exited while " + std::to_string(b.barrier.arrived) +
             " threads of its block wait at __syncthreads at " +
             site(b.barrier.file, b.barrier.line));
  if (grid_barrier_.arrived > 0)
    fail(t, cudaErrorLaunchFailure,
         who(t) + " exited while " + std::to_string(grid_barrier_.arrived) +
             " threads wait at grid.sync() at " + site(grid_barrier_.file, grid_barrier_.line));
  for (const Pending& p : t->warp->pending)
    if ((p.mask >> t->lane & 1u) != 0)
      fail(t, cudaErrorLaunchFailure,
           who(t) + " exited while lanes " + hex(p.arrived) + " wait for it at " +
               collective_name(p.kind) + " at " + site(p.file, p.line));
  for (;;) yield(t);  // never resumed
}

void Run::deadlock() {
  // Group the waiting threads by what they wait at.
  std::map<std::string, std::pair<std::int64_t, const Thread*>> groups;
  for (const Thread& t : threads_) {
    if (t.exited || t.wait == Wait::kNone) continue;
    std::string what;
    if (t.wait == Wait::kBlock) what = "__syncthreads at " + site(t.file, t.line);
    if (t.wait == Wait::kGrid) what = "grid.sync() at " + site(t.file, t.line);
    if (t.wait == Wait::kWarp)
      what = std::string(collective_name(t.collective)) + " at " + site(t.file, t.line);
    auto& g = groups[what];
    if (g.first++ == 0) g.second = &t;
  }
  std::ostringstream msg;
  msg << "deadlock: no thread can proceed;";
  const char* sep = " ";
  for (const auto& [what, g] : groups) {
    msg << sep << g.first << " threads wait at " << what << " (e.g. " << who(g.second) << ")";
    sep = ", ";
  }
  outcome_ = {cudaErrorLaunchFailure, msg.str()};
}

}  // namespace

void set_thread_order(ThreadOrder order) { g_order.store(static_cast<int>(order)); }
ThreadOrder thread_order() { return static_cast<ThreadOrder>(g_order.load()); }
void set_shuffle_seed(std::uint64_t seed) { g_seed.store(seed); }
std::uint64_t shuffle_seed() { return g_seed.load(); }
void set_watchdog_rounds(std::uint64_t rounds) { g_watchdog.store(rounds); }
std::uint64_t watchdog_rounds() { return g_watchdog.load(); }

void fill_garbage(unsigned char* data, std::size_t bytes, std::uint64_t salt) {
  std::uint64_t state = splitmix64(salt);
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    state = splitmix64(state);
    std::memcpy(data + i, &state, 8);
  }
  state = splitmix64(state);
  for (; i < bytes; ++i) data[i] = static_cast<unsigned char>(state >> (8 * (i % 8)));
}

Outcome execute(const Execution& execution) {
  Run run(execution);
  return run.go();
}

void probe_kernel(KernelInfo& info, const void* address) {
  Probe probe{&info, false};
  Probe* const outer = t_probe;
  t_probe = &probe;
  info.probe(address);
  t_probe = outer;
  if (!probe.seen) {
    std::fprintf(stderr, "ipdpp emulator: kernel %s has no prologue (not preprocessed?)\n",
                 info.name.c_str());
    std::abort();
  }
  info.probed = true;
}

// ---- entry points of device.h --------------------------------------------------------------

void block_barrier(const char* file, int line) {
  t_run->block_barrier(current("__syncthreads"), file, line);
}
void grid_barrier(const char* file, int line) {
  t_run->grid_barrier(current("grid.sync()"), file, line);
}
std::uint64_t warp_collective(Collective kind, unsigned mask, std::uint64_t value, int source,
                              const char* file, int line) {
  return t_run->collective(current(collective_name(kind)), kind, mask, value, source, file, line);
}
unsigned lane_id() { return static_cast<unsigned>(current("a warp intrinsic")->lane); }
unsigned active_mask() {
  const Thread* t = current("__activemask");
  return t->warp->existing & ~t->warp->exited;
}
void device_trap(const char* what, const char* file, int line) {
  Thread* t = current(what);
  t_run->fail(t, cudaErrorAssert, std::string(what) + " at " + site(file, line));
}
int checked_width(int width, const char* file, int line) {
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    Thread* t = current("a warp shuffle");
    t_run->fail(t, cudaErrorLaunchFailure,
                "warp shuffle at " + site(file, line) + " with width " + std::to_string(width) +
                    " (must be a power of two up to 32)");
  }
  return width;
}

bool kernel_prologue(int max_threads, std::initializer_list<StaticShared> arrays) {
  if (t_probe == nullptr) return false;
  KernelInfo& info = *t_probe->info;
  t_probe->seen = true;
  info.launch_bounds = max_threads;
  info.static_offsets.clear();
  std::size_t offset = 0;
  for (const StaticShared& a : arrays) {
    offset = (offset + a.alignment - 1) / a.alignment * a.alignment;
    info.static_offsets.push_back(offset);
    offset += a.bytes;
  }
  info.static_bytes = offset;
  return true;
}

unsigned char* static_shared_address(int index) {
  const Thread* t = current("a __shared__ array");
  const auto& offsets = t_run->execution().kernel->static_offsets;
  return t->block->static_base + offsets.at(static_cast<std::size_t>(index));
}
unsigned char* dynamic_shared_address() {
  return current("extern __shared__ memory")->block->dynamic_base;
}

}  // namespace ipdpp::emu
