#include "cuda/balanced_subset.h"

#include <algorithm>
#include <vector>

#include "common/class_groups.h"
#include "common/error.h"
#include "common/ipdpp_alpha.h"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
#include "cuda/ipdpp_sampler.h"

namespace ipdpp::cuda {
namespace {

template <class T>
std::vector<T> copy_to_host(const T* device, std::int64_t count, cudaStream_t stream) {
  std::vector<T> host(checked_size(count, 1));
  if (count > 0)
    CUDA_CHECK(cudaMemcpyAsync(host.data(), device, host.size() * sizeof(T), cudaMemcpyDeviceToHost,
                               stream));
  return host;
}

}  // namespace

std::int64_t balanced_subset(const std::int64_t* labels, const double* p, std::int64_t n,
                             const std::int64_t* k_per_class, std::int64_t num_classes,
                             double alpha_power, double alpha_value, std::uint64_t seed,
                             std::int64_t* out, cudaStream_t stream) {
  ipdpp_alpha(alpha_power, alpha_value, 1);  // validates the rule's parameters
  const std::vector<std::int64_t> host_labels = copy_to_host(labels, n, stream);
  const std::vector<double> host_p = copy_to_host(p, n, stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  const ClassGroups groups =
      group_by_class(host_labels.data(), host_p.data(), n, k_per_class, num_classes);

  StructuredProblems problems;
  problems.offsets = groups.offsets;
  problems.k.assign(k_per_class, k_per_class + num_classes);
  problems.alpha.resize(static_cast<std::size_t>(num_classes));
  for (std::int64_t c = 0; c < num_classes; ++c) {
    const std::int64_t size = groups.offsets[c + 1] - groups.offsets[c];
    // An empty class keeps nothing; its alpha is never used but must be valid.
    problems.alpha[c] = ipdpp_alpha(alpha_power, alpha_value, std::max<std::int64_t>(size, 1));
  }
  const std::int64_t total = structured_output_size(problems, 1);
  if (total == 0) return 0;

  std::vector<double> grouped_p(groups.members.size());
  for (std::size_t r = 0; r < grouped_p.size(); ++r) grouped_p[r] = host_p[groups.members[r]];
  DeviceBuffer<double> grouped_p_d = to_device(grouped_p.data(), grouped_p.size(), stream);
  DeviceBuffer<std::int64_t> items_d =
      to_device(groups.members.data(), groups.members.size(), stream);
  DeviceBuffer<std::int64_t> kept(static_cast<std::size_t>(total), stream);
  structured_sample(grouped_p_d.data(), items_d.data(), problems, 1, seed, 0,
                    /*name_classes=*/true, kept.data(), stream);

  // Every class's items come out ascending and the classes are disjoint: sorting the whole run on
  // the host (total <= n values) gives the ascending result with plain CUDA.
  std::vector<std::int64_t> host_kept = copy_to_host(kept.data(), total, stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  std::sort(host_kept.begin(), host_kept.end());
  CUDA_CHECK(cudaMemcpyAsync(out, host_kept.data(), host_kept.size() * sizeof(std::int64_t),
                             cudaMemcpyHostToDevice, stream));
  // host_kept dies here: wait for the copy from it.
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return total;
}

}  // namespace ipdpp::cuda
