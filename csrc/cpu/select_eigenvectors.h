// Eigenvector selection on the CPU, one sample at a time (the rules are common/
// select_eigenvectors.h; the GPU twin is cuda/select_eigenvectors.cu).
#pragma once

#include <cstdint>
#include <vector>

namespace ipdpp {

// The k columns of a k-DPP's elementary DPP for sample `sample`, ascending, into cols[0..k):
// log_esp_table is the (rank + 1) x (k + 1) table of the log eigenvalues (common/esp.h).
void select_k_eigenvectors(const double* log_esp_table, const double* log_eigenvalues,
                           std::int64_t rank, std::int64_t k, std::uint64_t seed,
                           std::uint64_t sample, std::int64_t* cols);

// The columns of a DPP's elementary DPP for sample `sample`, ascending.
std::vector<std::int64_t> select_dpp_eigenvectors(const std::vector<double>& eigenvalues,
                                                  std::uint64_t seed, std::uint64_t sample);

}  // namespace ipdpp
