// The fiber scheduler of the CPU emulator: one fiber per CUDA thread, switched only at
// synchronisation points (device.h). A launch runs on the host thread that made it: an ordinary
// launch block after block (blocks are independent), a cooperative one with every block alive
// at once, since grid.sync() joins all of them. This file lays out each block's shared memory
// (guard bytes after it: writes past its end fail the launch), starts the fibers and decides
// the order in which they run; synchronisation.cpp holds the barriers and warp collectives and
// what they check. Shared memory starts as garbage in every block, as on a GPU, so a read
// before the first write changes results.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "emulator/device.h"
#include "emulator/fiber.h"
#include "emulator/launch_state.h"
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

}  // namespace

namespace launch_state {

Run* t_run = nullptr;
Thread* t_thread = nullptr;

Run::Run(const Execution& e)
    : e_(e),
      rng_(splitmix64(g_seed.load() ^ splitmix64(e.launch_id))),
      order_(static_cast<ThreadOrder>(g_order.load())),
      watchdog_(g_watchdog.load()) {}

namespace {

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

std::uint64_t threads_per_block(const dim3& d) { return 1ull * d.x * d.y * d.z; }

}  // namespace

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

}  // namespace launch_state

using namespace launch_state;

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
