# kernel_static.cmake — the ctest "kernel_static": compiler-only evidence per
# CUDA kernel (tools/kernel_static.py --check): no register spill, static
# shared memory within 48 KB, every block launchable, and HMMA tensor-core
# instructions in each flash_attn_kernel instantiation on sm_80 and sm_90a.
# It needs nvcc but no GPU, so it is labelled "cpu;static" and runs wherever
# the CUDA backend is configured; exit 77 (no nvcc) reads as skipped.
# Included from the main CMakeLists.txt after the CUDA section, which sets
# ARMO_HAVE_CUDA and CMAKE_CUDA_COMPILER.
if(ARMO_HAVE_CUDA)
  add_test(NAME kernel_static
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tools/kernel_static.py --check
                   --nvcc ${CMAKE_CUDA_COMPILER})
  set_tests_properties(kernel_static PROPERTIES LABELS "cpu;static" SKIP_RETURN_CODE 77
                                                TIMEOUT 300)
endif()
