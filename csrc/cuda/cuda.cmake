# The CUDA extension ipdpp._cuda. Included from CMakeLists.txt when IPDPP_CUDA is AUTO or ON.
#
#   AUTO  builds _cuda when a CUDA compiler is found and the toolkit provides cuBLAS and cuSOLVER;
#         otherwise prints why it skips and builds the CPU extension alone.
#   ON    the same, but a missing piece is a configuration error that names it.
#
# IPDPP_CUDA_COMPILE_CHECK (OFF by default, it costs CI minutes): on a machine with nvcc but without
# cuBLAS/cuSOLVER, compile the kernels that need neither into an object library, so that they are
# at least type-checked for sm_90. Nothing is linked or installed then.
include(CheckLanguage)

option(IPDPP_CUDA_COMPILE_CHECK
       "Without cuBLAS/cuSOLVER, still compile the pure-CUDA kernels (no linking)" OFF)

include(${CMAKE_CURRENT_LIST_DIR}/sources.cmake)

# Default architecture: Hopper (H100/H200). Set before enable_language so CMake does not pick the
# compiler's default (an old architecture with no Hopper instructions).
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()

function(_ipdpp_cuda_unavailable what)
  if(IPDPP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "IPDPP_CUDA=ON but ${what}. Install the CUDA toolkit with cuBLAS and "
                        "cuSOLVER (headers and libraries), or build with IPDPP_CUDA=AUTO or OFF.")
  endif()
  message(STATUS "ipdpp: skipping _cuda: ${what}")
endfunction()

# A macro, not a function: enable_language must run at file scope.
macro(_ipdpp_add_compile_check)
  enable_language(CUDA)
  add_library(ipdpp_cuda_compile_check OBJECT ${IPDPP_CUDA_KERNEL_SOURCES})
  target_include_directories(ipdpp_cuda_compile_check PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/csrc)
  target_compile_options(ipdpp_cuda_compile_check PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
  set_target_properties(ipdpp_cuda_compile_check PROPERTIES CUDA_STANDARD 17)
  message(STATUS "ipdpp: IPDPP_CUDA_COMPILE_CHECK: compiling the pure-CUDA kernels (not linked)")
endmacro()

check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  _ipdpp_cuda_unavailable("no CUDA compiler (nvcc) was found")
  return()
endif()

find_package(CUDAToolkit QUIET)
set(_ipdpp_cuda_missing "")
if(NOT CUDAToolkit_FOUND)
  list(APPEND _ipdpp_cuda_missing "the CUDA toolkit (find_package(CUDAToolkit) failed)")
else()
  if(NOT TARGET CUDA::cudart_static)
    list(APPEND _ipdpp_cuda_missing "the static CUDA runtime (libcudart_static)")
  endif()
  if(NOT TARGET CUDA::cublas)
    list(APPEND _ipdpp_cuda_missing "the cuBLAS library (libcublas)")
  endif()
  if(NOT TARGET CUDA::cusolver)
    list(APPEND _ipdpp_cuda_missing "the cuSOLVER library (libcusolver)")
  endif()
  find_path(_ipdpp_cublas_header cublas_v2.h HINTS ${CUDAToolkit_INCLUDE_DIRS} NO_CACHE)
  find_path(_ipdpp_cusolver_header cusolverDn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} NO_CACHE)
  if(NOT _ipdpp_cublas_header)
    list(APPEND _ipdpp_cuda_missing "the cuBLAS header cublas_v2.h")
  endif()
  if(NOT _ipdpp_cusolver_header)
    list(APPEND _ipdpp_cuda_missing "the cuSOLVER header cusolverDn.h")
  endif()
endif()
if(_ipdpp_cuda_missing)
  list(JOIN _ipdpp_cuda_missing ", " _ipdpp_cuda_missing_text)
  _ipdpp_cuda_unavailable("missing ${_ipdpp_cuda_missing_text}")
  if(IPDPP_CUDA_COMPILE_CHECK)
    _ipdpp_add_compile_check()
  endif()
  return()
endif()

enable_language(CUDA)
message(STATUS "ipdpp: building _cuda for CUDA architectures ${CMAKE_CUDA_ARCHITECTURES} "
               "(CUDA ${CUDAToolkit_VERSION})")

# The kernels, as a static library with the plain C++ launch API (no pybind11 in .cu files).
# No fast-math: the samplers compare residuals and race keys that must stay exact to rounding.
add_library(ipdpp_cuda_kernels STATIC ${IPDPP_CUDA_KERNEL_SOURCES} ${IPDPP_CUDA_LIBRARY_SOURCES})
target_include_directories(ipdpp_cuda_kernels PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/csrc)
# cuBLAS/cuSOLVER headers may live outside the toolkit (e.g. the nvidia-cublas / nvidia-cusolver
# wheels, found through CMAKE_INCLUDE_PATH): use the directories the checks above found.
target_include_directories(ipdpp_cuda_kernels PRIVATE ${_ipdpp_cublas_header}
                                                      ${_ipdpp_cusolver_header})
set_target_properties(ipdpp_cuda_kernels PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
target_compile_options(ipdpp_cuda_kernels PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
# Static cudart: the module imports on machines with no driver (import ipdpp never needs one).
target_link_libraries(ipdpp_cuda_kernels PUBLIC CUDA::cudart_static CUDA::cublas CUDA::cusolver)

pybind11_add_module(_cuda ${IPDPP_CUDA_BINDING_SOURCES})
target_link_libraries(_cuda PRIVATE ipdpp_cuda_kernels)
target_compile_options(_cuda PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra>)

# cuBLAS/cuSOLVER are shared libraries: record where they were found so the installed module
# finds them without LD_LIBRARY_PATH (a process that already loaded them, e.g. through torch,
# reuses the loaded copies by soname).
set(_ipdpp_cuda_rpath "")
foreach(_lib IN ITEMS CUDA::cublas CUDA::cusolver)
  get_target_property(_loc ${_lib} IMPORTED_LOCATION)
  if(_loc)
    get_filename_component(_dir "${_loc}" DIRECTORY)
    list(APPEND _ipdpp_cuda_rpath "${_dir}")
  endif()
endforeach()
list(REMOVE_DUPLICATES _ipdpp_cuda_rpath)
set_target_properties(_cuda PROPERTIES INSTALL_RPATH "${_ipdpp_cuda_rpath}")

install(TARGETS _cuda LIBRARY DESTINATION ipdpp)
