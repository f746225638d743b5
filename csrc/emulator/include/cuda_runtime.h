// Emulated build: the runtime API plus device code (csrc/emulator/device.h).
#pragma once
#include "emulator/device.h"
