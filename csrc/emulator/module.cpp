// The emulated build's additions to the _cuda API (the module is compiled from the same binding
// sources as ipdpp._cuda, under the name _cuda_emulated): it binds SciPy's BLAS/LAPACK, which
// stand in for cuBLAS/cuSOLVER, and adds the `emulator` submodule that configures the fake
// device and exposes what it saw.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <string>

#include "bindings/scipy_lapack.h"
#include "emulator/control.h"
#include "emulator/scheduler.h"
#include "emulator/self_test.h"

namespace py = pybind11;
using namespace pybind11::literals;

namespace ipdpp::emu {
namespace {

ThreadOrder parse_order(const std::string& name) {
  if (name == "forward") return ThreadOrder::kForward;
  if (name == "reversed") return ThreadOrder::kReversed;
  if (name == "shuffled") return ThreadOrder::kShuffled;
  throw py::value_error("thread order must be 'forward', 'reversed' or 'shuffled'; got '" + name +
                        "'");
}

const char* order_name(ThreadOrder order) {
  switch (order) {
    case ThreadOrder::kReversed: return "reversed";
    case ThreadOrder::kShuffled: return "shuffled";
    default: return "forward";
  }
}

py::dict limits_dict(const DeviceLimits& d) {
  return py::dict("multiprocessors"_a = d.multiprocessors,
                  "shared_per_block"_a = d.shared_per_block,
                  "shared_per_block_optin"_a = d.shared_per_block_optin,
                  "shared_per_multiprocessor"_a = d.shared_per_multiprocessor,
                  "reserved_shared_per_block"_a = d.reserved_shared_per_block,
                  "threads_per_multiprocessor"_a = d.threads_per_multiprocessor,
                  "blocks_per_multiprocessor"_a = d.blocks_per_multiprocessor,
                  "threads_per_block"_a = d.threads_per_block, "global_memory"_a = d.global_memory);
}

}  // namespace

void register_emulator(py::module_& m) {
  bindings::load_lapack_from_scipy();
  py::module_ e = m.def_submodule(
      "emulator",
      "The CPU emulator behind this module: every CUDA thread is a fiber, switched only at "
      "barriers, warp shuffles and votes; device memory is host memory (a device address is the "
      "address of a numpy array's data).");
  if (const char* order = std::getenv("IPDPP_EMULATOR_THREAD_ORDER"); order != nullptr && *order)
    set_thread_order(parse_order(order));

  e.def(
      "set_thread_order", [](const std::string& name) { set_thread_order(parse_order(name)); },
      "order"_a,
      "Order in which threads resume after every synchronisation point and blocks run: "
      "'forward', 'reversed' or 'shuffled' (default from IPDPP_EMULATOR_THREAD_ORDER, else "
      "'forward'). A race-free kernel gives the same results under all three.");
  e.def("thread_order", [] { return std::string(order_name(thread_order())); });
  e.def("set_shuffle_seed", &set_shuffle_seed, "seed"_a,
        "Seed of the 'shuffled' order (with a per-launch counter).");
  e.def("set_watchdog", &set_watchdog_rounds, "rounds"_a,
        "Completed barriers and warp collectives after which a launch fails as a runaway.");
  e.def("watchdog", &watchdog_rounds);
  e.def(
      "device_limits", [] { return limits_dict(device_limits()); },
      "The fake device's limits (a dict; see set_device_limits).");
  e.def(
      "set_device_limits",
      [](const py::dict& changes) {
        DeviceLimits d = device_limits();
        for (const auto& [key, value] : changes) {
          const std::string name = py::cast<std::string>(key);
          if (name == "global_memory") {
            d.global_memory = py::cast<std::size_t>(value);
            continue;
          }
          const int v = py::cast<int>(value);
          if (v <= 0) throw py::value_error(name + " must be positive");
          if (name == "multiprocessors")
            d.multiprocessors = v;
          else if (name == "shared_per_block")
            d.shared_per_block = v;
          else if (name == "shared_per_block_optin")
            d.shared_per_block_optin = v;
          else if (name == "shared_per_multiprocessor")
            d.shared_per_multiprocessor = v;
          else if (name == "reserved_shared_per_block")
            d.reserved_shared_per_block = v;
          else if (name == "threads_per_multiprocessor")
            d.threads_per_multiprocessor = v;
          else if (name == "blocks_per_multiprocessor")
            d.blocks_per_multiprocessor = v;
          else if (name == "threads_per_block")
            d.threads_per_block = v;
          else
            throw py::value_error("unknown device limit '" + name + "'");
        }
        set_device_limits(d);
      },
      "changes"_a, "Changes some of the fake device's limits (keys of device_limits()).");
  e.def(
      "launch_log",
      [] {
        py::list out;
        for (const LaunchRecord& r : launch_log())
          out.append(py::dict(
              "kernel"_a = r.kernel, "grid"_a = py::make_tuple(r.grid[0], r.grid[1], r.grid[2]),
              "block"_a = py::make_tuple(r.block[0], r.block[1], r.block[2]),
              "dynamic_shared"_a = r.dynamic_shared, "cooperative"_a = r.cooperative));
        return out;
      },
      "Launches since the last clear_launch_log(): kernel name, grid, block, dynamic shared "
      "memory, cooperative.");
  e.def("clear_launch_log", &clear_launch_log);
  e.def(
      "self_test",
      [](const std::string& name) {
        py::gil_scoped_release release;
        return self_test(name);
      },
      "name"_a,
      "Runs one of the emulator's self-test kernels, each with a deliberate bug (deadlock, "
      "divergent barrier, race, overrun, bad launch, ...) or none ('reduce'): returns its 256 "
      "output ints, or raises CudaError with what the emulator found.");
  e.def("live_allocations", &live_allocations,
        "Device allocations not yet freed (cudaMalloc and cudaMallocAsync).");
}

}  // namespace ipdpp::emu
