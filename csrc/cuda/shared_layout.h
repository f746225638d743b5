// Carving one dynamic shared-memory allocation into typed arrays. Host code sizes the
// allocation and device code finds the arrays with the same SharedLayout calls, so the two
// cannot disagree; every array starts on a 16-byte boundary (vector loads, 64-bit entries).
#pragma once

#include <cstddef>

#include "common/host_device.h"

namespace ipdpp::cuda {

class SharedLayout {
 public:
  // Reserves `count` elements of `bytes_each` bytes; returns their byte offset.
  IPDPP_HD std::size_t take(std::size_t count, std::size_t bytes_each) {
    const std::size_t offset = size_;
    size_ += (count * bytes_each + 15) / 16 * 16;
    return offset;
  }
  IPDPP_HD std::size_t size() const { return size_; }

 private:
  std::size_t size_ = 0;
};

}  // namespace ipdpp::cuda
