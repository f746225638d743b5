// Stream-ordered device memory owned by RAII. Allocations use cudaMallocAsync/cudaFreeAsync on the
// caller's stream, so a call never synchronises the device to allocate or free scratch space.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "common/error.h"
#include "cuda/cuda_check.h"

namespace ipdpp::cuda {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // `count` elements of T, allocated in stream order on `stream`; freed on the same stream.
  DeviceBuffer(std::size_t count, cudaStream_t stream) : count_(count), stream_(stream) {
    if (count_ > 0) {
      const std::size_t bytes =
          checked_size(static_cast<std::int64_t>(count_), static_cast<std::int64_t>(sizeof(T)));
      void* raw = nullptr;
      CUDA_CHECK(cudaMallocAsync(&raw, bytes, stream_));
      data_ = static_cast<T*>(raw);
    }
  }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      count_ = std::exchange(other.count_, 0);
      stream_ = other.stream_;
      device_wide_ = other.device_wide_;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() const { return data_; }
  std::size_t size() const { return count_; }
  cudaStream_t stream() const { return stream_; }

  // For buffers that outlive the call that made them (those a DeviceSpectrum owns, once their
  // contents are complete): free them only when the whole device is idle. Such a buffer may be
  // read on any stream (a zero-copy eigenvector view used on a torch side stream, another
  // thread's stream), and a stream-ordered free on one stream does not wait for work on the
  // others, so the memory could be handed out again while that work still reads it. The caller's
  // stream may also be gone by then. Spectra die rarely, so a device synchronisation is cheap.
  void free_when_device_idle() { device_wide_ = true; }

 private:
  void release() noexcept {
    // A destructor cannot throw; a failed free only leaks and the next checked call reports
    // the sticky error, if any.
    if (data_ != nullptr) {
      if (device_wide_ && cudaDeviceSynchronize() != cudaSuccess) clear_last_error();
      const cudaStream_t stream = device_wide_ ? cudaStreamLegacy : stream_;
      if (cudaFreeAsync(data_, stream) != cudaSuccess) clear_last_error();
    }
    data_ = nullptr;
    count_ = 0;
  }

  T* data_ = nullptr;
  std::size_t count_ = 0;
  cudaStream_t stream_ = nullptr;
  bool device_wide_ = false;
};

// Copies a host vector to a new device buffer (stream ordered; the host data must stay alive
// until the copy ran, which cudaMemcpyAsync from pageable memory guarantees by staging it).
template <class T>
DeviceBuffer<T> to_device(const T* host, std::size_t count, cudaStream_t stream) {
  DeviceBuffer<T> buffer(count, stream);
  if (count > 0)
    CUDA_CHECK(
        cudaMemcpyAsync(buffer.data(), host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
  return buffer;
}

// One value copied from device memory, after the stream has run up to the copy (so it also waits
// for the kernels that wrote it).
template <class T>
T read_value(const T* device, cudaStream_t stream) {
  T host{};
  CUDA_CHECK(cudaMemcpyAsync(&host, device, sizeof(T), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

}  // namespace ipdpp::cuda
