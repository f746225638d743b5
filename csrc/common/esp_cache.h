// The log-ESP tables of one spectrum, one per k, built on first use and shared read-only by every
// later call (host memory; the GPU backend uploads its copy once per table). Thread-safe: Python
// threads may sample from one spectrum at once with the GIL released.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "common/error.h"
#include "common/esp.h"

namespace ipdpp {

template <class Table = std::vector<double>>
class EspTableCache {
 public:
  // A table costs (rank + 1)(k + 1) doubles; callers use a handful of k, so a small cache that
  // is flushed when full keeps memory bounded without any bookkeeping.
  static constexpr std::size_t kMaxTables = 16;

  // The table for k of the values whose logarithms are log_x[0..m), from `make(host_table)`
  // (which may e.g. upload it) the first time.
  template <class Make>
  std::shared_ptr<const Table> get(const double* log_x, std::int64_t m, std::int64_t k,
                                   Make&& make) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = tables_.find(k);
    if (it != tables_.end()) return it->second;
    if (tables_.size() >= kMaxTables) tables_.clear();
    std::vector<double> host(checked_size(log_esp_table_size(m, k), 1));
    log_esp_table(log_x, m, k, host.data());
    auto table = std::make_shared<const Table>(make(std::move(host)));
    tables_.emplace(k, table);
    return table;
  }

  std::shared_ptr<const Table> get(const double* log_x, std::int64_t m, std::int64_t k) const {
    return get(log_x, m, k, [](std::vector<double>&& host) { return std::move(host); });
  }

 private:
  mutable std::mutex mutex_;
  mutable std::map<std::int64_t, std::shared_ptr<const Table>> tables_;
};

}  // namespace ipdpp
