#include "cpu/select_eigenvectors.h"

#include "common/error.h"
#include "common/philox.h"
#include "common/select_eigenvectors.h"

namespace ipdpp {

void select_k_eigenvectors(const double* log_esp_table, const double* log_eigenvalues,
                           std::int64_t rank, std::int64_t k, std::uint64_t seed,
                           std::uint64_t sample, std::int64_t* cols) {
  RandomStream rng(seed, sample, RandomPurpose::kEigenSelection);
  const std::int64_t got =
      select_k_from_log_esp(log_esp_table, log_eigenvalues, rank, k, rng, cols);
  IPDPP_ASSERT(got == k);
}

std::vector<std::int64_t> select_dpp_eigenvectors(const std::vector<double>& eigenvalues,
                                                  std::uint64_t seed, std::uint64_t sample) {
  RandomStream rng(seed, sample, RandomPurpose::kEigenSelection);
  std::vector<std::int64_t> cols(eigenvalues.size());
  const std::int64_t count = select_bernoulli(
      eigenvalues.data(), static_cast<std::int64_t>(eigenvalues.size()), rng, cols.data());
  cols.resize(static_cast<std::size_t>(count));
  return cols;
}

}  // namespace ipdpp
