# ipdpp._cuda_emulated: the CUDA extension's own sources (csrc/cuda/sources.cmake), compiled as
# host C++ against the CPU emulator, so that every kernel runs, and is tested, on a machine
# without a GPU. Included from CMakeLists.txt when IPDPP_CUDA_EMULATOR is ON (CI and the README's
# test command turn it on; `pip install .` does not need it).
#
# Each .cu/.cuh goes through preprocess.py (a mechanical rewrite of what C++ cannot express:
# <<<>>> launches, __shared__ declarations, kernel casts to void*) into the build folder; the shim
# headers in csrc/emulator/include take the place of the toolkit's (cuda_runtime_api.h,
# cooperative_groups.h, cublas_v2.h, cusolverDn.h). cuBLAS/cuSOLVER run on the CPU extension's
# BLAS/LAPACK (csrc/cpu/lapack.cpp, bound from SciPy at import).
include(${CMAKE_CURRENT_LIST_DIR}/../cuda/sources.cmake)

set(_ipdpp_emu_dir ${CMAKE_CURRENT_SOURCE_DIR}/csrc/emulator)
set(_ipdpp_emu_out ${CMAKE_CURRENT_BINARY_DIR}/emulated)
set(_ipdpp_emu_generated "")
file(GLOB _ipdpp_emu_headers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda/*.cuh)
# The emulator's own self test (kernels with deliberate bugs) goes through the same step.
set(_ipdpp_emu_self_test csrc/emulator/self_test.cu)
foreach(_src IN LISTS IPDPP_CUDA_KERNEL_SOURCES IPDPP_CUDA_LIBRARY_SOURCES _ipdpp_emu_self_test
                      _ipdpp_emu_headers)
  get_filename_component(_abs ${_src} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  file(RELATIVE_PATH _rel ${CMAKE_CURRENT_SOURCE_DIR} ${_abs})
  get_filename_component(_name ${_abs} NAME)
  string(REGEX REPLACE "\\.cu$" ".cpp" _name ${_name})
  get_filename_component(_folder ${_abs} DIRECTORY)
  get_filename_component(_folder ${_folder} NAME)
  set(_out ${_ipdpp_emu_out}/${_folder}/${_name})
  add_custom_command(
    OUTPUT ${_out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_ipdpp_emu_out}/${_folder}
    COMMAND ${Python_EXECUTABLE} ${_ipdpp_emu_dir}/preprocess.py ${_abs} ${_out} ${_rel}
    DEPENDS ${_abs} ${_ipdpp_emu_dir}/preprocess.py
    COMMENT "ipdpp emulator: preprocessing ${_rel}"
    VERBATIM)
  list(APPEND _ipdpp_emu_generated ${_out})
endforeach()

add_library(ipdpp_cuda_emulated_kernels STATIC
  ${_ipdpp_emu_generated}
  ${_ipdpp_emu_dir}/fiber.cpp
  ${_ipdpp_emu_dir}/scheduler.cpp
  ${_ipdpp_emu_dir}/synchronisation.cpp
  ${_ipdpp_emu_dir}/runtime.cpp
  ${_ipdpp_emu_dir}/device_memory.cpp
  ${_ipdpp_emu_dir}/linalg.cpp
)
# The shims first, then the generated kernel headers (they shadow csrc/cuda/*.cuh), then csrc.
target_include_directories(ipdpp_cuda_emulated_kernels BEFORE PUBLIC
  ${_ipdpp_emu_dir}/include ${_ipdpp_emu_out} ${CMAKE_CURRENT_SOURCE_DIR}/csrc)
target_compile_definitions(ipdpp_cuda_emulated_kernels PUBLIC IPDPP_CUDA_EMULATOR)
# Device code reads buffers through other types (float4 loads of float rows, typed views of raw
# shared memory), which CUDA allows and C++'s aliasing rules do not.
target_compile_options(ipdpp_cuda_emulated_kernels PUBLIC -fno-strict-aliasing
  PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wno-unknown-pragmas>)
target_link_libraries(ipdpp_cuda_emulated_kernels PUBLIC ipdpp_cpu)

pybind11_add_module(_cuda_emulated ${IPDPP_CUDA_BINDING_SOURCES} ${_ipdpp_emu_dir}/module.cpp)
target_link_libraries(_cuda_emulated PRIVATE ipdpp_cuda_emulated_kernels)
target_compile_options(_cuda_emulated PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra>)
install(TARGETS _cuda_emulated LIBRARY DESTINATION ipdpp)
message(STATUS "ipdpp: building _cuda_emulated (the CUDA kernels on the CPU emulator)")
