// How the emulator knows a kernel: its address, a name for messages, and two thunks made from
// its typed pointer, one that calls it with the launch's argument array (void* args[], as
// cudaLaunchKernel passes them) and one that runs only its prologue (inserted by
// preprocess.py), which reports the kernel's static shared memory and __launch_bounds__.
// Also the replacement of the <<<grid, block, shared, stream>>> syntax: preprocess.py rewrites
// `kernel<<<config>>>(args)` into `ipdpp::emu::launch_kernel(kernel, "kernel", config)(args)`.
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace ipdpp::emu {

using InvokeFn = void (*)(const void* kernel, void* const* args);
using ProbeFn = void (*)(const void* kernel);

// Registers the kernel at `kernel` once (later calls only fill in a missing name).
void register_kernel(const void* kernel, const char* name, InvokeFn invoke, ProbeFn probe);

template <class... P, std::size_t... I>
void invoke_with(const void* kernel, void* const* args, std::index_sequence<I...>) {
  using Fn = void (*)(P...);
  reinterpret_cast<Fn>(const_cast<void*>(kernel))(*static_cast<std::remove_cv_t<P>*>(args[I])...);
}
template <class... P>
void invoke(const void* kernel, void* const* args) {
  invoke_with<P...>(kernel, args, std::index_sequence_for<P...>{});
}
// In probe mode the prologue returns before the body reads any parameter, so value-initialised
// ones are never used.
template <class... P>
void probe(const void* kernel) {
  using Fn = void (*)(P...);
  reinterpret_cast<Fn>(const_cast<void*>(kernel))(std::remove_cv_t<P>{}...);
}

// A kernel address that converts to both void* and const void*, like the casts it replaces.
struct KernelRef {
  const void* address;
  operator const void*() const { return address; }               // NOLINT: implicit
  operator void*() const { return const_cast<void*>(address); }  // NOLINT: implicit
};

template <class... P>
KernelRef kernel_pointer(void (*kernel)(P...), const char* name) {
  const void* address = reinterpret_cast<const void*>(kernel);
  register_kernel(address, name, &invoke<P...>, &probe<P...>);
  return KernelRef{address};
}

}  // namespace ipdpp::emu

// The launch entry point shared by cudaLaunchKernel, cudaLaunchCooperativeKernel and <<<>>>.
struct dim3;
namespace ipdpp::emu {

struct LaunchRequest {
  const void* kernel;
  unsigned grid[3], block[3];
  std::size_t dynamic_shared;
  bool cooperative;
};
int launch(const LaunchRequest& request, void* const* args);  // a cudaError_t
void set_last_error(int error);

template <class... P>
class Launcher {
 public:
  Launcher(void (*kernel)(P...), const LaunchRequest& request)
      : kernel_(kernel), request_(request) {}

  template <class... A>
  void operator()(A&&... arguments) const {
    static_assert(sizeof...(A) == sizeof...(P), "wrong number of kernel arguments");
    std::tuple<std::remove_cv_t<P>...> params(std::forward<A>(arguments)...);
    std::apply(
        [this](auto&... value) {
          void* args[] = {static_cast<void*>(&value)..., nullptr};
          set_last_error(launch(request_, args));
        },
        params);
  }

 private:
  void (*kernel_)(P...);
  LaunchRequest request_;
};

}  // namespace ipdpp::emu
