// The per-class bookkeeping of balanced_subset that the CPU (cpu/balanced_subset.cpp) and the GPU
// (cuda/balanced_subset.cu) share on the host: input checks with one message per condition, the
// grouping of items by class, and the prefix that names a class in an error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace ipdpp {

struct ClassGroups {
  std::vector<std::int64_t> offsets;  // num_classes + 1: class c owns members[offsets[c]..)
  std::vector<std::int64_t> members;  // n item indices, grouped by class, ascending in a class
};

// Checks labels [n] in [0, num_classes), p [n] in [0, 1] and k_per_class [num_classes] >= 0
// (std::invalid_argument otherwise) and groups the items by class with a counting sort.
inline ClassGroups group_by_class(const std::int64_t* labels, const double* p, std::int64_t n,
                                  const std::int64_t* k_per_class, std::int64_t num_classes) {
  IPDPP_REQUIRE(n >= 0 && num_classes >= 0, "sizes must be nonnegative");
  ClassGroups g;
  g.offsets.assign(checked_size(num_classes + 1, 1), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    IPDPP_REQUIRE(labels[i] >= 0 && labels[i] < num_classes,
                  "labels must lie in [0, " + std::to_string(num_classes) + ")");
    IPDPP_REQUIRE(p[i] >= 0.0 && p[i] <= 1.0, "p must lie in [0, 1]");
    ++g.offsets[labels[i] + 1];
  }
  for (std::int64_t c = 0; c < num_classes; ++c) {
    IPDPP_REQUIRE(k_per_class[c] >= 0, "k_per_class must be >= 0");
    g.offsets[c + 1] += g.offsets[c];
  }
  g.members.resize(checked_size(n, 1));
  std::vector<std::int64_t> fill(g.offsets.begin(), g.offsets.end() - 1);
  for (std::int64_t i = 0; i < n; ++i) g.members[fill[labels[i]]++] = i;
  return g;
}

// "class c (N items, k = K): ", put in front of the reason a class's kernel cannot supply K items.
inline std::string class_error_prefix(std::int64_t label, std::int64_t size, std::int64_t k) {
  return "class " + std::to_string(label) + " (" + std::to_string(size) +
         " items, k = " + std::to_string(k) + "): ";
}

}  // namespace ipdpp
