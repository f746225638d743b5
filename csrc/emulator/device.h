// Device-side CUDA for the CPU emulator: the qualifiers, built-in variables, barriers, warp
// intrinsics, atomics and bit casts the kernel sources use. preprocess.py includes this header
// at the top of every generated kernel file.
//
// Every CUDA thread is a fiber (scheduler.cpp). A fiber runs until it reaches a synchronisation
// point: __syncthreads, grid.sync(), __syncwarp, a warp shuffle or a warp vote. Anything else,
// shared-memory and global-memory accesses and atomics included, runs without interruption, so
// the interleavings the scheduler explores are those between synchronisation points, in forward,
// reversed or shuffled thread order (ipdpp::emu::set_thread_order).
#pragma once

#include <math.h>  // the C++ <math.h>: float and double overloads in the global namespace

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "emulator/runtime.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __constant__ static

// The built-in variables of the fiber that runs (set by the scheduler at every switch).
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
constexpr int warpSize = 32;

namespace ipdpp::emu {

enum class Collective { kShuffle, kAny, kAll, kBallot, kSyncWarp };

// Synchronisation points (synchronisation.cpp). `file`/`line` name the call site: threads meeting
// at a barrier must come from the same one (warp shuffles and votes too; __syncwarp is exempt, as
// on a GPU), else the launch fails as divergent.
void block_barrier(const char* file, int line);
void grid_barrier(const char* file, int line);
// A warp collective of the lanes in `mask`. `value` is this lane's contribution, `source` the
// lane it reads (shuffles; -1: its own value). Returns the shuffled value or the vote.
std::uint64_t warp_collective(Collective kind, unsigned mask, std::uint64_t value, int source,
                              const char* file, int line);
unsigned lane_id();
unsigned active_mask();
[[noreturn]] void device_trap(const char* what, const char* file, int line);

// Shared memory of the running block (preprocess.py rewrites __shared__ declarations into these).
struct StaticShared {
  std::size_t bytes, alignment;
};
// Returns true in probe mode (the kernel must return at once), after recording the kernel's
// static shared arrays and its __launch_bounds__ (0: none).
bool kernel_prologue(int max_threads, std::initializer_list<StaticShared> arrays);
unsigned char* static_shared_address(int index);
unsigned char* dynamic_shared_address();

template <class A>
A& static_shared(int index) {
  return *reinterpret_cast<A*>(static_shared_address(index));
}
template <class T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(dynamic_shared_address());
}

template <class T>
std::uint64_t to_bits(T value) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8,
                "warp shuffles move values of at most 8 bytes");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}
template <class T>
T from_bits(std::uint64_t bits) {
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

int checked_width(int width, const char* file, int line);

template <class... P>
Launcher<P...> launch_kernel(void (*kernel)(P...), const char* name, dim3 grid, dim3 block,
                             std::size_t shared = 0, cudaStream_t stream = nullptr) {
  static_cast<void>(stream);  // work runs at once, in launch order
  return Launcher<P...>(kernel, LaunchRequest{kernel_pointer(kernel, name),
                                              {grid.x, grid.y, grid.z},
                                              {block.x, block.y, block.z},
                                              shared,
                                              false});
}

}  // namespace ipdpp::emu

// ---- barriers and warp intrinsics ----------------------------------------------------------

inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ipdpp::emu::block_barrier(file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(),
                       int line = __builtin_LINE()) {
  ipdpp::emu::warp_collective(ipdpp::emu::Collective::kSyncWarp, mask, 0, -1, file, line);
}
inline int __any_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
  return static_cast<int>(ipdpp::emu::warp_collective(ipdpp::emu::Collective::kAny, mask,
                                                      predicate != 0, -1, file, line));
}
inline int __all_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
  return static_cast<int>(ipdpp::emu::warp_collective(ipdpp::emu::Collective::kAll, mask,
                                                      predicate != 0, -1, file, line));
}
inline unsigned __ballot_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  return static_cast<unsigned>(ipdpp::emu::warp_collective(ipdpp::emu::Collective::kBallot, mask,
                                                           predicate != 0, -1, file, line));
}
inline unsigned __activemask() { return ipdpp::emu::active_mask(); }

// Source lanes follow the CUDA programming guide: within a segment of `width` lanes; xor may
// reach earlier segments, and a lane whose source lies past its segment keeps its own value.
template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32,
              const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const int w = ipdpp::emu::checked_width(width, file, line);
  const int lane = static_cast<int>(ipdpp::emu::lane_id());
  const int source = (lane & ~(w - 1)) + (src_lane & (w - 1));
  return ipdpp::emu::from_bits<T>(ipdpp::emu::warp_collective(
      ipdpp::emu::Collective::kShuffle, mask, ipdpp::emu::to_bits(var), source, file, line));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,
                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const int w = ipdpp::emu::checked_width(width, file, line);
  const int lane = static_cast<int>(ipdpp::emu::lane_id());
  const int source = lane ^ lane_mask;
  const int segment_end = (lane & ~(w - 1)) + w;
  return ipdpp::emu::from_bits<T>(
      ipdpp::emu::warp_collective(ipdpp::emu::Collective::kShuffle, mask, ipdpp::emu::to_bits(var),
                                  source < segment_end && source < 32 ? source : -1, file, line));
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,
                   const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const int w = ipdpp::emu::checked_width(width, file, line);
  const int lane = static_cast<int>(ipdpp::emu::lane_id());
  const int source = lane + static_cast<int>(delta);
  const int segment_end = (lane & ~(w - 1)) + w;
  return ipdpp::emu::from_bits<T>(
      ipdpp::emu::warp_collective(ipdpp::emu::Collective::kShuffle, mask, ipdpp::emu::to_bits(var),
                                  source < segment_end ? source : -1, file, line));
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32,
                 const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const int w = ipdpp::emu::checked_width(width, file, line);
  const int lane = static_cast<int>(ipdpp::emu::lane_id());
  const int source = lane - static_cast<int>(delta);
  const int segment_begin = lane & ~(w - 1);
  return ipdpp::emu::from_bits<T>(
      ipdpp::emu::warp_collective(ipdpp::emu::Collective::kShuffle, mask, ipdpp::emu::to_bits(var),
                                  source >= segment_begin ? source : -1, file, line));
}

inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __trap(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ipdpp::emu::device_trap("__trap()", file, line);
}

// ---- atomics (fibers never switch inside one, so plain read-modify-writes are atomic among
// them; the __atomic builtins keep them so across host threads as well) ------------------------

template <class T>
T atomicAdd(T* address, T value) {
  if constexpr (std::is_integral_v<T>) {
    return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
  } else {
    T old = *address, desired;
    do {
      desired = old + value;
    } while (!__atomic_compare_exchange(address, &old, &desired, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED));
    return old;
  }
}
template <class T>
T atomicSub(T* address, T value) {
  return __atomic_fetch_sub(address, value, __ATOMIC_RELAXED);
}
template <class T>
T atomicOr(T* address, T value) {
  return __atomic_fetch_or(address, value, __ATOMIC_RELAXED);
}
template <class T>
T atomicAnd(T* address, T value) {
  return __atomic_fetch_and(address, value, __ATOMIC_RELAXED);
}
template <class T>
T atomicXor(T* address, T value) {
  return __atomic_fetch_xor(address, value, __ATOMIC_RELAXED);
}
template <class T>
T atomicExch(T* address, T value) {
  return __atomic_exchange_n(address, value, __ATOMIC_RELAXED);
}
template <class T>
T atomicCAS(T* address, T compare, T value) {
  __atomic_compare_exchange_n(address, &compare, value, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;  // the old value either way
}
template <class T>
T atomicMin(T* address, T value) {
  T old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (value < old && !__atomic_compare_exchange_n(address, &old, value, false, __ATOMIC_RELAXED,
                                                     __ATOMIC_RELAXED)) {
  }
  return old;
}
template <class T>
T atomicMax(T* address, T value) {
  T old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (value > old && !__atomic_compare_exchange_n(address, &old, value, false, __ATOMIC_RELAXED,
                                                     __ATOMIC_RELAXED)) {
  }
  return old;
}

// ---- loads with cache hints, bit casts, integer intrinsics, math ---------------------------

template <class T>
T __ldg(const T* address) {
  return *address;
}
template <class T>
T __ldcg(const T* address) {
  return *address;
}
template <class T>
T __ldca(const T* address) {
  return *address;
}
template <class T>
T __ldcs(const T* address) {
  return *address;
}
template <class T>
void __stcg(T* address, T value) {
  *address = value;
}
template <class T>
void __stcs(T* address, T value) {
  *address = value;
}

inline unsigned int __float_as_uint(float x) {
  return ipdpp::emu::from_bits<unsigned int>(ipdpp::emu::to_bits(x));
}
inline int __float_as_int(float x) { return ipdpp::emu::from_bits<int>(ipdpp::emu::to_bits(x)); }
inline float __uint_as_float(unsigned int x) { return ipdpp::emu::from_bits<float>(x); }
inline float __int_as_float(int x) {
  return ipdpp::emu::from_bits<float>(static_cast<unsigned int>(x));
}
inline long long __double_as_longlong(double x) {
  return ipdpp::emu::from_bits<long long>(ipdpp::emu::to_bits(x));
}
inline double __longlong_as_double(long long x) {
  return ipdpp::emu::from_bits<double>(static_cast<std::uint64_t>(x));
}
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) {
  return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x));
}
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
  unsigned int r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
