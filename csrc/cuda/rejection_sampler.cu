#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "common/alias_table.h"
#include "common/error.h"
#include "common/philox.h"
#include "common/rejection_bound.h"
#include "cuda/block_reduce.cuh"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
#include "cuda/launch_config.h"
#include "cuda/race.cuh"
#include "cuda/rejection_sampler.h"
#include "cuda/shared_layout.h"

namespace ipdpp::cuda {
namespace {

constexpr int kRejectionThreads = 32 * kRejectionWarps;
constexpr int kStatusTooManyProposals = 4;  // a step reached max_step_proposals
constexpr int kStatusBreakdown = 8;         // the accepted row's direction was rounding noise

// l_i = sum_c V[i, c]^2 in float64.
template <class T>
__global__ void leverage_scores(const T* __restrict__ V, std::int64_t n, std::int64_t rank,
                                double* __restrict__ leverage) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    double sum = 0.0;
    for (std::int64_t c = 0; c < rank; ++c) {
      const double x = static_cast<double>(V[i * rank + c]);
      sum += x * x;
    }
    leverage[i] = sum;
  }
}

// Shared memory of the rejection kernel for max_count = m.
struct RejectionShared {
  std::size_t W, v, coef, columns, chosen, accepted, control, bytes;
  template <class T>
  IPDPP_HD static RejectionShared make(std::int64_t m) {
    const std::int64_t ldw = m | 1;  // odd stride: lanes reading W[q, c] for 32 q hit 32 banks
    SharedLayout layout;
    RejectionShared s{};
    s.W = layout.take(static_cast<std::size_t>(m * ldw), sizeof(T));
    s.v = layout.take(static_cast<std::size_t>(kRejectionWarps * m), sizeof(T));     // per warp
    s.coef = layout.take(static_cast<std::size_t>(kRejectionWarps * m), sizeof(T));  // per warp
    s.columns = layout.take(static_cast<std::size_t>(m), sizeof(std::int64_t));      // eigenvectors
    s.chosen = layout.take(static_cast<std::size_t>(m), sizeof(std::int64_t));       // items
    s.accepted = layout.take(kRejectionWarps, sizeof(int));
    // [winning warp or -1, step's proposal bound reached, Gram-Schmidt broke down]
    s.control = layout.take(3, sizeof(int));
    s.bytes = layout.size();
    return s;
  }
};

template <class T>
std::size_t rejection_shared_bytes(std::int64_t m) {
  return RejectionShared::make<T>(m).bytes;
}

struct RejectionParams {
  const void* V;
  const double* leverage;
  const double* alias_probability;
  const std::int32_t* alias_index;
  const std::int64_t* selected;  // num_samples x width
  const std::int32_t* counts;
  std::int64_t* out;  // num_samples x width
  int* status;
  std::int64_t n, rank, width, max_count, num_samples;
  std::uint64_t seed, sample_offset;
};

template <class T>
__global__ void __launch_bounds__(kRejectionThreads) rejection_kernel(const RejectionParams p) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const std::int64_t m = p.max_count, ldw = m | 1;
  const RejectionShared layout = RejectionShared::make<T>(m);
  T* W = reinterpret_cast<T*>(shared_raw + layout.W);  // m x ldw basis rows
  T* vbuf = reinterpret_cast<T*>(shared_raw + layout.v);
  T* cbuf = reinterpret_cast<T*>(shared_raw + layout.coef);
  auto* columns = reinterpret_cast<std::int64_t*>(shared_raw + layout.columns);
  auto* chosen = reinterpret_cast<std::int64_t*>(shared_raw + layout.chosen);
  int* accepted = reinterpret_cast<int*>(shared_raw + layout.accepted);
  int* control = reinterpret_cast<int*>(shared_raw + layout.control);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const T* V = static_cast<const T*>(p.V);
  for (std::int64_t s = blockIdx.x; s < p.num_samples; s += gridDim.x) {
    const std::int64_t count = p.counts[s];
    const RandomStream rng(p.seed, p.sample_offset + static_cast<std::uint64_t>(s),
                           RandomPurpose::kRejection);
    for (std::int64_t c = threadIdx.x; c < count; c += blockDim.x)
      columns[c] = p.selected[s * p.width + c];
    if (threadIdx.x == 0) control[2] = 0;
    __syncthreads();

    T* v = vbuf + warp * m;
    T* coef = cbuf + warp * m;
    std::uint32_t base = 0;  // next proposal number
    int failure = 0;         // kStatus* bit of the failed step, 0 while all is well
    for (std::int64_t t = 0; t < count; ++t) {
      const std::uint32_t step_begin = base;
      const auto step_bound = static_cast<std::uint32_t>(max_step_proposals(p.rank, count, t));
      while (true) {
        // Proposal base + warp, evaluated by this warp.
        double u0 = 0.0, u1 = 0.0;
        rng.uniform_pair_at(base + static_cast<std::uint32_t>(warp), &u0, &u1);
        // One uniform gives the bucket (its integer part times n) and the coin (the fraction).
        const double x = u0 * static_cast<double>(p.n);
        const double coin = x - floor(x);
        const std::int64_t i = alias_draw(p.alias_probability, p.alias_index, p.n, u0, coin);
        // The proposed row restricted to the sample's eigenvectors, and its squared norm.
        T norm2 = T(0);
        for (std::int64_t c = lane; c < count; c += 32) {
          const T value = V[i * p.rank + columns[c]];
          v[c] = value;
          norm2 += value * value;
        }
        bool duplicate = false;
        for (std::int64_t q = lane; q < t; q += 32) duplicate |= chosen[q] == i;
        duplicate = __any_sync(0xffffffffu, duplicate);
        __syncwarp();
        for (int offset = 16; offset > 0; offset >>= 1)
          norm2 += __shfl_xor_sync(0xffffffffu, norm2, offset);
        // Early reject: the residual is norm2 - ||W^T v||^2 <= norm2 (also after rounding), so a
        // proposal whose threshold reaches norm2 fails whatever the projection gives; most do
        // (the test passes with probability about k / rank). Uniform over the warp.
        const double threshold = u1 * p.leverage[i];
        bool accept = !duplicate && threshold < static_cast<double>(norm2);
        if (accept) {
          // ||W^T v||^2 with lane q owning basis rows q, q + 32, ...
          T projected = T(0);
          for (std::int64_t q = lane; q < t; q += 32) {
            T dot = T(0);
            for (std::int64_t c = 0; c < count; ++c) dot += W[q * ldw + c] * v[c];
            coef[q] = dot;
            projected += dot * dot;
          }
          for (int offset = 16; offset > 0; offset >>= 1)
            projected += __shfl_xor_sync(0xffffffffu, projected, offset);
          accept = threshold < static_cast<double>(norm2 - projected);
        }
        if (lane == 0) accepted[warp] = accept;
        __syncthreads();
        if (threadIdx.x == 0) {
          int winner = -1;
          for (int w = 0; w < kRejectionWarps && winner < 0; ++w)
            if (accepted[w]) winner = w;
          control[0] = winner;
          const std::uint32_t consumed =
              winner >= 0 ? static_cast<std::uint32_t>(winner + 1) : kRejectionWarps;
          control[1] = base + consumed - step_begin >= step_bound;
        }
        __syncthreads();
        const int winner = control[0];
        if (winner >= 0) {
          if (warp == winner) {
            // w = v - W coef, then a second Gram-Schmidt pass, then normalise into W[t].
            __syncwarp();
            for (std::int64_t c = lane; c < count; c += 32) {
              T value = v[c];
              for (std::int64_t q = 0; q < t; ++q) value -= coef[q] * W[q * ldw + c];
              v[c] = value;
            }
            __syncwarp();
            for (std::int64_t q = lane; q < t; q += 32) {
              T dot = T(0);
              for (std::int64_t c = 0; c < count; ++c) dot += W[q * ldw + c] * v[c];
              coef[q] = dot;
            }
            __syncwarp();
            T norm = T(0);
            for (std::int64_t c = lane; c < count; c += 32) {
              T value = v[c];
              for (std::int64_t q = 0; q < t; ++q) value -= coef[q] * W[q * ldw + c];
              v[c] = value;
              norm += value * value;
            }
            for (int offset = 16; offset > 0; offset >>= 1)
              norm += __shfl_xor_sync(0xffffffffu, norm, offset);
            // norm2 (all lanes hold it) is ||v||^2 of the row before Gram-Schmidt.
            const bool broke = gram_schmidt_broke_down(norm, norm2, count);
            const T inv = broke ? T(0) : T(1) / sqrt(norm);
            for (std::int64_t c = lane; c < count; c += 32) W[t * ldw + c] = v[c] * inv;
            if (lane == 0) {
              chosen[t] = i;
              control[2] = broke;
            }
          }
          base += static_cast<std::uint32_t>(winner + 1);
          __syncthreads();
          if (control[2]) failure = kStatusBreakdown;  // uniform over the block
          break;
        }
        base += kRejectionWarps;
        if (control[1]) {
          failure = kStatusTooManyProposals;
          break;
        }
        __syncthreads();  // accepted[] and control[] are rewritten by the next round
      }
      if (failure != 0) break;
    }
    if (failure != 0 && threadIdx.x == 0) atomicOr(p.status, failure);
    __syncthreads();
    write_sorted_row(p.out + s * p.width, p.width, chosen, failure == 0 ? count : 0);
    __syncthreads();  // shared state is reused by the block's next sample
  }
}

template <class T>
void rejection_sample_typed(const DeviceSpectrum& spectrum, const EigenSelection& selection,
                            std::uint64_t seed, std::uint64_t sample_offset, std::int64_t* out,
                            cudaStream_t stream) {
  const std::int64_t S = selection.num_samples, m = selection.max_count;
  if (S == 0) return;
  if (m == 0) {  // every sample is empty: rows are all padding
    CUDA_CHECK(
        cudaMemsetAsync(out, 0xff, checked_size(S, selection.width, sizeof(std::int64_t)), stream));
    return;
  }
  IPDPP_ASSERT(spectrum.alias_index.data() != nullptr);
  const std::size_t shared = rejection_shared_bytes<T>(m);
  const void* kernel = reinterpret_cast<const void*>(rejection_kernel<T>);
  IPDPP_REQUIRE(shared <= dynamic_shared_memory_limit(kernel),
                "k = " + std::to_string(m) +
                    " is too large for the CUDA rejection sampler (at most " +
                    std::to_string(rejection_max_k(spectrum.dtype)) + " for this dtype)");
  opt_in_dynamic_shared_memory(kernel);
  int per_sm = 0;
  CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kRejectionThreads, shared));
  IPDPP_ASSERT(per_sm > 0);
  const std::int64_t blocks =
      std::min<std::int64_t>(S, static_cast<std::int64_t>(per_sm) * multiprocessor_count());
  DeviceBuffer<int> status(1, stream);
  CUDA_CHECK(cudaMemsetAsync(status.data(), 0, sizeof(int), stream));
  const RejectionParams params{spectrum.eigenvectors.data(),
                               spectrum.leverage.data(),
                               spectrum.alias_probability.data(),
                               spectrum.alias_index.data(),
                               selection.indices.data(),
                               selection.counts.data(),
                               out,
                               status.data(),
                               spectrum.n,
                               spectrum.rank,
                               selection.width,
                               m,
                               S,
                               seed,
                               sample_offset};
  rejection_kernel<T>
      <<<static_cast<unsigned int>(blocks), kRejectionThreads, shared, stream>>>(params);
  CUDA_CHECK_LAUNCH("rejection_kernel");
  const int host_status = read_value(status.data(), stream);
  if (host_status & kStatusTooManyProposals)
    throw InternalError(
        "rejection_kernel: a step needed more proposals than its bound of " +
        std::to_string(kRejectionBoundFactor) +
        " * ceil(rank / (k - t)), which an orthonormal V exceeds with probability below e^-64: "
        "the residuals are numerically zero (eigenvectors not orthonormal in this dtype?)");
  if (host_status != 0)
    throw InternalError(
        "rejection_kernel: Gram-Schmidt broke down (an accepted row was already in the span of "
        "the chosen ones up to rounding): the selected eigenvectors are not orthonormal enough "
        "in this dtype; use float64 or a larger rtol");
}

}  // namespace

void prepare_rejection_tables(DeviceSpectrum& spectrum, cudaStream_t stream) {
  const std::lock_guard<std::mutex> lock(spectrum.tables_mutex);
  if (spectrum.alias_index.data() != nullptr) return;
  const std::int64_t n = spectrum.n;
  IPDPP_REQUIRE(n <= (std::int64_t{1} << 31) - 1, "the rejection sampler needs n < 2^31");
  DeviceBuffer<double> leverage(static_cast<std::size_t>(n), stream);
  dispatch_dtype(spectrum.dtype, [&](auto tag) {
    using T = decltype(tag);
    leverage_scores<T><<<grid_size(n), kThreadsPerBlock, 0, stream>>>(
        spectrum.eigenvectors_as<T>(), n, spectrum.rank, leverage.data());
  });
  CUDA_CHECK_LAUNCH("leverage_scores");
  std::vector<double> host(static_cast<std::size_t>(n));
  CUDA_CHECK(cudaMemcpyAsync(host.data(), leverage.data(), host.size() * sizeof(double),
                             cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> prob(host.size());
  std::vector<std::int32_t> alias(host.size());
  build_alias_table(host.data(), n, prob.data(), alias.data());
  DeviceBuffer<double> prob_d = to_device(prob.data(), prob.size(), stream);
  DeviceBuffer<std::int32_t> alias_d = to_device(alias.data(), alias.size(), stream);
  // Other threads may use the tables on other streams as soon as alias_index is set: complete
  // the copies first; the buffers outlive this call and its stream (device_buffer.h).
  CUDA_CHECK(cudaStreamSynchronize(stream));
  leverage.free_when_device_idle();
  prob_d.free_when_device_idle();
  alias_d.free_when_device_idle();
  spectrum.leverage = std::move(leverage);
  spectrum.alias_probability = std::move(prob_d);
  spectrum.alias_index = std::move(alias_d);
}

std::int64_t rejection_max_k(DType dtype) {
  return dispatch_dtype(dtype, [](auto tag) {
    using T = decltype(tag);
    const void* kernel = reinterpret_cast<const void*>(rejection_kernel<T>);
    return largest_k_in_shared_memory(dynamic_shared_memory_limit(kernel),
                                      [](std::int64_t k) { return rejection_shared_bytes<T>(k); });
  });
}

void rejection_sample(const DeviceSpectrum& spectrum, const EigenSelection& selection,
                      std::uint64_t seed, std::uint64_t sample_offset, std::int64_t* out,
                      cudaStream_t stream) {
  dispatch_dtype(spectrum.dtype, [&](auto tag) {
    rejection_sample_typed<decltype(tag)>(spectrum, selection, seed, sample_offset, out, stream);
  });
}

}  // namespace ipdpp::cuda
