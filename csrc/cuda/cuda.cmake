# CUDA extension gate (being written). AUTO skips until the CUDA backend lands.
if(IPDPP_CUDA STREQUAL "ON")
  message(FATAL_ERROR "IPDPP_CUDA=ON: the CUDA backend is not available yet")
endif()
