# Source lists of the CUDA extension, shared by csrc/cuda/cuda.cmake (ipdpp._cuda, nvcc) and
# csrc/emulator/emulator.cmake (ipdpp._cuda_emulated, the same sources built for the CPU emulator).

# Kernels that only need the CUDA runtime (compile-checkable without cuBLAS/cuSOLVER).
set(IPDPP_CUDA_KERNEL_SOURCES
  csrc/cuda/select_eigenvectors.cu
  csrc/cuda/projection_sampler.cu
  csrc/cuda/rejection_sampler.cu
  csrc/cuda/spectral_sampler.cu
  csrc/cuda/ipdpp_sampler.cu
  csrc/cuda/balanced_subset.cu
)
# Kernels that call cuBLAS / cuSOLVER.
set(IPDPP_CUDA_LIBRARY_SOURCES
  csrc/cuda/spectrum.cu
)
set(IPDPP_CUDA_BINDING_SOURCES
  csrc/bindings/cuda_module.cpp
  csrc/bindings/cuda_spectrum.cpp
  csrc/bindings/cuda_sampling.cpp
)
