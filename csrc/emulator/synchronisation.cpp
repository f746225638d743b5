// Synchronisation in the CPU emulator's fiber scheduler (scheduler.cpp starts the fibers): the
// block barrier, grid.sync(), the warp collectives (shuffles, votes, __syncwarp) and a thread's
// exit, each of which parks the calling fiber until every thread it waits for has arrived, and
// the device.h entry points that lead here from kernel code. Kept with the checks below, since
// a wrong synchronisation is what the emulator exists to catch.
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
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "emulator/device.h"
#include "emulator/launch_state.h"

namespace ipdpp::emu {
namespace launch_state {

namespace {

std::string short_file(const char* file) {
  const char* slash = std::strrchr(file, '/');
  return slash != nullptr ? slash + 1 : file;
}

bool same_site(const char* f1, int l1, const char* f2, int l2) {
  return l1 == l2 && (f1 == f2 || std::strcmp(f1, f2) == 0);
}

std::string hex(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", mask);
  return text;
}

}  // namespace

const char* collective_name(Collective kind) {
  switch (kind) {
    case Collective::kShuffle: return "a warp shuffle";
    case Collective::kAny: return "__any_sync";
    case Collective::kAll: return "__all_sync";
    case Collective::kBallot: return "__ballot_sync";
    default: return "__syncwarp";
  }
}

std::string site(const char* file, int line) {
  return short_file(file) + ":" + std::to_string(line);
}

std::string describe(const uint3& v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
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

}  // namespace launch_state

using namespace launch_state;

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

}  // namespace ipdpp::emu
