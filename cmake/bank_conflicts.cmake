# bank_conflicts.cmake — shared-memory bank conflicts of every kernel, counted
# by the CPU emulator (tests/emu/cuda/bank_conflicts.cpp; included by the
# top-level CMakeLists.txt after cmake/emulator.cmake, whose translated kernel
# sources and harness it reuses).
#
# armo_cuda_emu_banks: the emulator once more, but with the kernel
# translation units compiled by g++ -fsanitize=thread WITHOUT the
# ThreadSanitizer runtime: the instrumentation calls __tsan_read/write<N>
# before every load and store, bank_conflicts.cpp defines those calls and
# keeps the accesses to shared memory.  A separate library because
# ThreadSanitizer instrumentation and AddressSanitizer do not mix: the
# kernels here have no ASan/UBSan (armo_cuda_emu keeps those), and the
# harness (scheduler, runtime, fake cuBLASLt, the counter) is not
# instrumented at all.  The kernels are compiled without vectorisation or
# store merging so that each access keeps the width the source gives it
# (the counter costs 8- and 16-byte accesses by phases).
#
# Tests (labels cpu;emu):
#   emu_bank_counter    the counter against patterns of known cost
#                       (tests/emu/cuda/test_bank_counter.cpp);
#   emu_bank_conflicts  every kernel of kernels/armo_kernels.h once at a
#                       representative shape (tests/emu/cuda/bank_report.c):
#                       fails when a hot kernel is not conflict-free.
# `bank_report --markdown` prints the table of profiling/bank_conflicts.md.
if(NOT TARGET armo_cuda_emu OR NOT ARMO_EMU_KERNEL_SOURCES)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # the hooks follow GCC's instrumentation ABI (__tsan_readN(void *))
  message(STATUS "armo: the bank-conflict counter needs g++; emu_bank_conflicts is not built")
  return()
endif()

set(ARMO_BANKS_INSTRUMENT -fsanitize=thread -fno-tree-sra -fno-tree-vectorize
    -fno-tree-slp-vectorize -fno-store-merging -fno-omit-frame-pointer)

# the kernels, instrumented (object library: per-target flags, so the same
# translated sources stay uninstrumented in armo_cuda_emu)
add_library(armo_cuda_emu_banks_kernels OBJECT ${ARMO_EMU_KERNEL_SOURCES})
target_include_directories(armo_cuda_emu_banks_kernels BEFORE PRIVATE ${ARMO_EMU_DIR}/shim)
target_include_directories(armo_cuda_emu_banks_kernels PRIVATE ${PROJECT_SOURCE_DIR}
                           ${ARMO_CUDA_HEADERS})
target_compile_features(armo_cuda_emu_banks_kernels PRIVATE cxx_std_17)
target_compile_options(armo_cuda_emu_banks_kernels PRIVATE -O2 -g -Wall -Wextra
                       -Wno-unknown-pragmas -fno-strict-aliasing ${ARMO_BANKS_INSTRUMENT})

# the harness (emulator.cmake's list: scheduler, runtime, fake cuBLASLt, and
# this counter, which compiles to nothing without ARMO_EMU_BANKS), plain
if(ARMO_EMU_HARNESS)
  set(ARMO_BANKS_HARNESS ${ARMO_EMU_HARNESS} ${ARMO_EMU_DIR}/bank_conflicts.cpp)
  list(REMOVE_DUPLICATES ARMO_BANKS_HARNESS)
else()
  set(ARMO_BANKS_HARNESS ${ARMO_EMU_DIR}/scheduler.cpp ${ARMO_EMU_DIR}/runtime.cpp
      ${ARMO_EMU_DIR}/cublaslt_fake.cpp ${ARMO_EMU_DIR}/bank_conflicts.cpp)
endif()
add_library(armo_cuda_emu_banks STATIC ${ARMO_BANKS_HARNESS}
            $<TARGET_OBJECTS:armo_cuda_emu_banks_kernels>)
target_include_directories(armo_cuda_emu_banks BEFORE PRIVATE ${ARMO_EMU_DIR}/shim)
target_include_directories(armo_cuda_emu_banks PUBLIC ${PROJECT_SOURCE_DIR} ${ARMO_CUDA_HEADERS})
target_compile_features(armo_cuda_emu_banks PRIVATE cxx_std_17)
target_compile_definitions(armo_cuda_emu_banks PRIVATE ARMO_EMU_BANKS=1)
target_compile_options(armo_cuda_emu_banks PRIVATE -O2 -g -Wall -Wextra -Wno-unknown-pragmas
                       -fno-strict-aliasing)
target_link_libraries(armo_cuda_emu_banks PUBLIC armo_core Threads::Threads)

# the counter's self-test: its kernels are instrumented like the library's
add_executable(emu_bank_counter ${ARMO_EMU_DIR}/test_bank_counter.cpp)
target_include_directories(emu_bank_counter BEFORE PRIVATE ${ARMO_EMU_DIR}/shim)
target_compile_features(emu_bank_counter PRIVATE cxx_std_17)
target_compile_options(emu_bank_counter PRIVATE -O2 -g -Wall -Wextra -Wno-unknown-pragmas
                       -fno-strict-aliasing ${ARMO_BANKS_INSTRUMENT})
target_link_libraries(emu_bank_counter PRIVATE armo_cuda_emu_banks)
add_test(NAME emu_bank_counter COMMAND emu_bank_counter)
set_tests_properties(emu_bank_counter PROPERTIES LABELS "cpu;emu" TIMEOUT 120)

# the report over every kernel, and the CI gate on the hot ones
add_executable(bank_report ${ARMO_EMU_DIR}/bank_report.c)
target_compile_options(bank_report PRIVATE ${ARMO_C_WARNINGS})
target_link_libraries(bank_report PRIVATE armo_cuda_emu_banks armo_core m)
set_target_properties(bank_report PROPERTIES LINKER_LANGUAGE CXX)
add_test(NAME emu_bank_conflicts COMMAND bank_report --check --sites)
set_tests_properties(emu_bank_conflicts PROPERTIES LABELS "cpu;emu" TIMEOUT 900)
