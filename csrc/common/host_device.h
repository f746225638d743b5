// IPDPP_HD marks the header-only functions that both backends compile: host and device code under
// nvcc, plain inline functions for the host compiler.
#pragma once

#if defined(__CUDACC__)
#define IPDPP_HD __host__ __device__ __forceinline__
#else
#define IPDPP_HD inline
#endif
