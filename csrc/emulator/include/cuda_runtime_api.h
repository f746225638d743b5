// Emulated build: the CUDA runtime API of the CPU emulator (csrc/emulator/runtime.h).
#pragma once
#include "emulator/runtime.h"
