// Long calls release the GIL and stay interruptible: GilReleasedInterruptibly replaces
// py::gil_scoped_release there. While it lives, the C++ loops' interruption points
// (common/interrupt.h) take the GIL for a moment every few milliseconds and ask Python whether a
// signal is pending (PyErr_CheckSignals, which runs the handler: Ctrl-C sets KeyboardInterrupt).
// The computation then unwinds with ipdpp::Interrupted, and the translator registered by
// register_interrupt_translator() leaves the pending Python exception in place for Python to
// raise.
#pragma once

#include <pybind11/pybind11.h>

#include "common/interrupt.h"

namespace ipdpp::bindings {

namespace py = pybind11;

inline bool python_signal_pending() {
  py::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;  // the handler's exception is now set on this thread
}

class GilReleasedInterruptibly {
 private:
  // Declared first: the scope opens while the GIL is still held and closes after it is back.
  InterruptScope scope_{&python_signal_pending};
  py::gil_scoped_release release_;
};

// ipdpp::Interrupted -> the exception the signal handler raised (KeyboardInterrupt for Ctrl-C).
inline void register_interrupt_translator() {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Interrupted&) {
      if (PyErr_Occurred() == nullptr) PyErr_SetNone(PyExc_KeyboardInterrupt);
    }
  });
}

}  // namespace ipdpp::bindings
