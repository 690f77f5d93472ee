# emulator.cmake — the CUDA path on the CPU (tests/emu/cuda; included by the
# top-level CMakeLists.txt).
#
# Every kernels/*.cu — launchers and device code — is compiled by g++, with
# nothing changed but the launch syntax (tests/emu/cuda/translate_launches.py
# rewrites <<<...>>> into a call of the emulator), against the shim headers
# (tests/emu/cuda/shim: threads, barriers, shuffles, votes, atomics, mma.sync
# fragment layouts, cp.async groups, ldmatrix), and runs on the fiber scheduler (scheduler.cpp) over a
# faked CUDA runtime (runtime.cpp) and a faked cuBLASLt (cublaslt_fake.cpp):
# the library armo_cuda_emu.  It is built with AddressSanitizer (device
# buffers are heap blocks: a load or store past one is reported) and UBSan
# (array bounds: shared memory is held to its declared shape; alignment: a
# misaligned vector access is reported as a GPU would fault).
#
# The GPU tests themselves (tests/kernels/test_*.c, tests/cuda/test_*.c) are
# built against it as the ctests emu_<name> (labels cpu;emu), with
# ARMO_EMULATED=1 so that each picks its emulator-sized cases; the kernel
# tests run with ARMO_EMU_RACECHECK=1 (every launch twice, schedules forward
# and reversed, results compared to the bit).  Needs the CUDA headers and a
# C++ compiler, not nvcc or a GPU.
option(ARMO_EMULATOR "build the CPU emulator of the CUDA path and its tests" ON)
if(NOT ARMO_EMULATOR)
  message(STATUS "armo: CUDA emulator off (ARMO_EMULATOR=OFF)")
  return()
endif()
find_path(ARMO_CUDA_HEADERS cuda_runtime_api.h
          HINTS ${CUDAToolkit_INCLUDE_DIRS} $ENV{CUDA_HOME}/include /usr/local/cuda/include)
include(CheckLanguage)
check_language(CXX)
if(NOT ARMO_CUDA_HEADERS OR NOT CMAKE_CXX_COMPILER)
  message(STATUS "armo: no CUDA headers or no C++ compiler; the CUDA emulator tests are not built")
  return()
endif()
enable_language(CXX)

set(ARMO_EMU_DIR ${PROJECT_SOURCE_DIR}/tests/emu/cuda)
# -fno-sanitize=null: UBSan's null check of a thread_local's address (threadIdx
# and friends) tests flags that the linker's TLS relaxation (add -> lea) no
# longer sets, and fires at random; a null dereference still faults (ASan
# reports the SEGV with its stack)
set(ARMO_EMU_SANITIZE -fsanitize=address,undefined -fno-sanitize=null -fno-sanitize-recover=all
    -fno-omit-frame-pointer)

# kernels/X.cu -> <build>/emu/kernels/X.cpp (launch syntax only)
file(GLOB ARMO_KERNEL_CU CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/*.cu)
set(ARMO_EMU_KERNEL_SOURCES)
foreach(cu ${ARMO_KERNEL_CU})
  get_filename_component(name ${cu} NAME_WE)
  set(out ${CMAKE_BINARY_DIR}/emu/kernels/${name}.cpp)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/emu/kernels
    COMMAND ${Python3_EXECUTABLE} ${ARMO_EMU_DIR}/translate_launches.py ${cu} ${out}
            --name kernels/${name}.cu
    DEPENDS ${cu} ${ARMO_EMU_DIR}/translate_launches.py
    COMMENT "emulator: translating the launches of kernels/${name}.cu")
  list(APPEND ARMO_EMU_KERNEL_SOURCES ${out})
endforeach()

file(GLOB ARMO_EMU_HARNESS CONFIGURE_DEPENDS ${ARMO_EMU_DIR}/*.cpp)
list(FILTER ARMO_EMU_HARNESS EXCLUDE REGEX "/test_[^/]*\\.cpp$")
add_library(armo_cuda_emu STATIC ${ARMO_EMU_KERNEL_SOURCES} ${ARMO_EMU_HARNESS})
# the shim first: its cuda_runtime.h, cuda_bf16.h and kernels/mma.cuh,
# cp_async.cuh, ldmatrix.cuh stand in for the toolkit's and the kernel's own
target_include_directories(armo_cuda_emu BEFORE PRIVATE ${ARMO_EMU_DIR}/shim)
target_include_directories(armo_cuda_emu PUBLIC ${PROJECT_SOURCE_DIR} ${ARMO_CUDA_HEADERS})
target_compile_features(armo_cuda_emu PRIVATE cxx_std_17)
# -fno-strict-aliasing: CUDA C reads shared and global memory through
# reinterpret_cast'ed vector types, which nvcc allows; unknown pragmas: unroll
target_compile_options(armo_cuda_emu PRIVATE -O2 -g -Wall -Wextra -Wno-unknown-pragmas
                                             -fno-strict-aliasing ${ARMO_EMU_SANITIZE})
target_link_options(armo_cuda_emu INTERFACE -fsanitize=address,undefined)
target_link_libraries(armo_cuda_emu PUBLIC armo_core Threads::Threads)

# the fake cuBLASLt's own test against an independent reference
if(EXISTS ${ARMO_EMU_DIR}/test_cublaslt_fake.cpp)
  add_executable(emu_cublaslt_fake ${ARMO_EMU_DIR}/test_cublaslt_fake.cpp)
  target_compile_features(emu_cublaslt_fake PRIVATE cxx_std_17)
  target_compile_options(emu_cublaslt_fake PRIVATE -Wall -Wextra ${ARMO_EMU_SANITIZE})
  target_link_libraries(emu_cublaslt_fake PRIVATE armo_cuda_emu)
  add_test(NAME emu_cublaslt_fake COMMAND emu_cublaslt_fake)
  set_tests_properties(emu_cublaslt_fake PROPERTIES LABELS "cpu;emu" TIMEOUT 600)
endif()

# the emulator's execution model on small kernels of its own (indices,
# barriers, shuffles, votes, atomics; deadlock, bad-mask and race detection)
add_executable(emu_scheduler ${ARMO_EMU_DIR}/test_scheduler.cpp)
target_include_directories(emu_scheduler BEFORE PRIVATE ${ARMO_EMU_DIR}/shim)
target_compile_features(emu_scheduler PRIVATE cxx_std_17)
target_compile_options(emu_scheduler PRIVATE -Wall -Wextra -Wno-unknown-pragmas
                                             -fno-strict-aliasing ${ARMO_EMU_SANITIZE})
target_link_libraries(emu_scheduler PRIVATE armo_cuda_emu)
add_test(NAME emu_scheduler COMMAND emu_scheduler)
set_tests_properties(emu_scheduler PROPERTIES LABELS "cpu;emu" TIMEOUT 300
                     ENVIRONMENT "ASAN_OPTIONS=handle_abort=0")

# the GPU tests against the emulator
set(ARMO_EMU_RUN_DIR ${CMAKE_BINARY_DIR}/emu.d) # what the engine test writes
file(MAKE_DIRECTORY ${ARMO_EMU_RUN_DIR})
file(GLOB ARMO_EMU_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/kernels/test_*.c
     ${PROJECT_SOURCE_DIR}/tests/cuda/test_*.c)
file(GLOB ARMO_CUDA_HOST_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/host/cuda/*.c)
# the host code's NCCL calls meet the fake NCCL (nccl_fake.cpp) where nccl.h
# is there to compile them
set(ARMO_EMU_NCCL_DEFS)
if(ARMO_NCCL_INCLUDE_DIR)
  set(ARMO_EMU_NCCL_DEFS ARMO_HAVE_NCCL=1)
endif()
foreach(src ${ARMO_EMU_TESTS})
  get_filename_component(name ${src} NAME_WE)
  get_filename_component(dir ${src} DIRECTORY)
  get_filename_component(room ${dir} NAME)
  string(REPLACE "test_" "emu_" target ${name})
  set(extra)
  if(room STREQUAL "cuda")
    set(extra ${ARMO_CUDA_HOST_SOURCES}) # the engine's host code, as armo_cuda has it
  endif()
  add_executable(${target} ${src} ${PROJECT_SOURCE_DIR}/tests/util/gpu_test_util.c ${extra})
  target_compile_options(${target} PRIVATE ${ARMO_C_WARNINGS} ${ARMO_EMU_SANITIZE})
  target_compile_definitions(${target} PRIVATE ARMO_EMULATED=1 ARMO_HAVE_CUDA=1 ${ARMO_EMU_NCCL_DEFS}
                             ARMO_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                             ARMO_BINARY_DIR="${ARMO_EMU_RUN_DIR}"
                             ARMO_MODELS_DIR="${ARMO_MODELS_DIR}" ARMO_EXE="/nonexistent")
  target_link_libraries(${target} PRIVATE armo_cuda_emu armo_core)
  set_target_properties(${target} PROPERTIES LINKER_LANGUAGE CXX)
  add_dependencies(${target} fixtures)
  add_test(NAME ${target} COMMAND ${target} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set(env "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
  if(room STREQUAL "kernels")
    list(APPEND env "ARMO_EMU_RACECHECK=1")
  endif()
  set_tests_properties(${target} PROPERTIES LABELS "cpu;emu" TIMEOUT 1200 ENVIRONMENT "${env}")
endforeach()
# the dispatcher's switch to the simple and the pipelined attention kernels
# (read once per process)
if(TARGET emu_attention)
  add_test(NAME emu_attention_simple COMMAND emu_attention WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(emu_attention_simple PROPERTIES LABELS "cpu;emu" TIMEOUT 1200
                       ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1;ARMO_ATTN=simple")
  add_test(NAME emu_attention_pipelined COMMAND emu_attention WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(emu_attention_pipelined PROPERTIES LABELS "cpu;emu" TIMEOUT 1200
                       ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1;ARMO_ATTN=pipelined")
endif()
if(TARGET emu_launch_contract)
  add_test(NAME emu_launch_contract_pipelined COMMAND emu_launch_contract
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(emu_launch_contract_pipelined PROPERTIES LABELS "cpu;emu" TIMEOUT 600
                       ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1;ARMO_ATTN=pipelined")
endif()

# the CUDA backend's failure paths through the emulator's fault injection
# (a kernel failing while it runs, with and without ARMO_CUDA_SYNC=1; each
# cudaMalloc of the backend's creation failing in turn)
add_executable(emu_engine_faults ${ARMO_EMU_DIR}/test_engine_faults.c ${ARMO_CUDA_HOST_SOURCES})
target_compile_options(emu_engine_faults PRIVATE ${ARMO_C_WARNINGS} ${ARMO_EMU_SANITIZE})
target_compile_definitions(emu_engine_faults PRIVATE ARMO_HAVE_CUDA=1 ${ARMO_EMU_NCCL_DEFS}
                           ARMO_MODELS_DIR="${ARMO_MODELS_DIR}")
target_link_libraries(emu_engine_faults PRIVATE armo_cuda_emu armo_core)
set_target_properties(emu_engine_faults PROPERTIES LINKER_LANGUAGE CXX)
add_dependencies(emu_engine_faults fixtures)
add_test(NAME emu_engine_faults COMMAND emu_engine_faults)
set_tests_properties(emu_engine_faults PROPERTIES LABELS "cpu;emu" TIMEOUT 900
                     ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")

# the GEMM layer's algorithm cache, counted by the fake cuBLASLt
add_executable(emu_gemm_cache ${ARMO_EMU_DIR}/test_gemm_cache.c
               ${PROJECT_SOURCE_DIR}/tests/util/gpu_test_util.c)
target_compile_options(emu_gemm_cache PRIVATE ${ARMO_C_WARNINGS} ${ARMO_EMU_SANITIZE})
target_compile_definitions(emu_gemm_cache PRIVATE ARMO_EMULATED=1)
target_link_libraries(emu_gemm_cache PRIVATE armo_cuda_emu armo_core)
set_target_properties(emu_gemm_cache PROPERTIES LINKER_LANGUAGE CXX)
add_test(NAME emu_gemm_cache COMMAND emu_gemm_cache)
set_tests_properties(emu_gemm_cache PROPERTIES LABELS "cpu;emu" TIMEOUT 600)

# The armo CLI itself on the emulated CUDA path (armo_emu, never installed):
# `armo_emu score --device cuda` runs the CUDA backend's real host code,
# launchers and kernels on the CPU, so the CLI's records, prefix sharing,
# timing events and the GEMM ceiling of `armo bench` meet the emulator too
# (ctest emu_cli, tests/emu/cuda/test_cli.py, against `armo --device cpu`).
file(GLOB ARMO_CLI_SOURCES_FOR_EMU CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/host/cli/*.c)
# armo serve is not part of the emulated CLI (its main.c entry needs
# ARMO_HAVE_SERVE and the armo_serve library; the server is tested on the CPU)
list(FILTER ARMO_CLI_SOURCES_FOR_EMU EXCLUDE REGEX "/cmd_serve\\.c$")
add_executable(armo_emu ${ARMO_CLI_SOURCES_FOR_EMU} ${ARMO_CUDA_HOST_SOURCES})
target_compile_options(armo_emu PRIVATE ${ARMO_C_WARNINGS} ${ARMO_EMU_SANITIZE})
target_compile_definitions(armo_emu PRIVATE ARMO_HAVE_CUDA=1 ${ARMO_EMU_NCCL_DEFS})
target_link_libraries(armo_emu PRIVATE armo_cuda_emu armo_core armo_version)
if(TARGET armo_mpi) # --tp-across-ranks (host/cli/score_tp_ranks.h)
  target_link_libraries(armo_emu PRIVATE armo_mpi)
endif()
set_target_properties(armo_emu PROPERTIES LINKER_LANGUAGE CXX)
if(EXISTS ${ARMO_EMU_DIR}/test_cli.py)
  add_test(NAME emu_cli COMMAND ${Python3_EXECUTABLE} ${ARMO_EMU_DIR}/test_cli.py
                                --armo $<TARGET_FILE:armo> --armo-emu $<TARGET_FILE:armo_emu>
                                --models ${ARMO_MODELS_DIR} --examples ${PROJECT_SOURCE_DIR}/examples
                                --work ${ARMO_EMU_RUN_DIR}/cli)
  set_tests_properties(emu_cli PROPERTIES LABELS "cpu;emu" TIMEOUT 1200
                       ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
endif()

# the GPU memory check asks each GPU of a data-parallel run (ctest
# emu_fit_devices, test_fit_devices.sh: one emulated device made small)
add_test(NAME emu_fit_devices COMMAND bash ${ARMO_EMU_DIR}/test_fit_devices.sh
                                      $<TARGET_FILE:armo_emu> ${ARMO_MODELS_DIR}/tiny-armorm
                                      ${ARMO_EMU_RUN_DIR}/fit_devices)
set_tests_properties(emu_fit_devices PROPERTIES LABELS "cpu;emu" TIMEOUT 600
                     ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")

# armo bench measures CUDA graphs: --no-phase-times lets them run, and the
# JSON counts the replays (ctest emu_bench_graphs, test_bench_graphs.py)
add_test(NAME emu_bench_graphs COMMAND ${Python3_EXECUTABLE} ${ARMO_EMU_DIR}/test_bench_graphs.py
                                       --armo-emu $<TARGET_FILE:armo_emu>
                                       --work ${ARMO_EMU_RUN_DIR}/bench_graphs)
set_tests_properties(emu_bench_graphs PROPERTIES LABELS "cpu;emu" TIMEOUT 600
                     ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")

# `armo score --tp 2 --tp-across-ranks` under mpirun on armo_emu: TP groups
# whose ranks are processes (NCCL bootstrapped over MPI, the fake NCCL across
# processes) against single-process TP groups, byte for byte; a world that
# does not divide; a rank failing alone, then --resume (tests/dist/emu_tp_ranks.sh)
if(TARGET armo_mpi AND ARMO_EMU_NCCL_DEFS)
  add_test(NAME emu_tp_across_ranks
           COMMAND ${ARMO_BASH} ${PROJECT_SOURCE_DIR}/tests/dist/emu_tp_ranks.sh $<TARGET_FILE:armo>
                   ${ARMO_MODELS_DIR} ${PROJECT_SOURCE_DIR} $<TARGET_FILE:armo_emu>
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(emu_tp_across_ranks PROPERTIES LABELS "cpu;emu;dist" SKIP_RETURN_CODE 77
                       TIMEOUT 600 ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
  # and under srun --mpi=pmix, in the Slurm cluster test_dist_slurm starts
  if(TEST test_dist_slurm)
    set_tests_properties(test_dist_slurm PROPERTIES ENVIRONMENT "ARMO_EMU=$<TARGET_FILE:armo_emu>")
  endif()
endif()

# a TP group's watchdog: one rank failing a batch alone while its peer waits
# in a collective -> communicators aborted, the batch moved to the other
# worker or per-record errors, no hang (tests/emu/cuda/tp_watchdog.sh)
if(ARMO_EMU_NCCL_DEFS)
  add_test(NAME emu_tp_watchdog
           COMMAND ${ARMO_BASH} ${ARMO_EMU_DIR}/tp_watchdog.sh $<TARGET_FILE:armo_emu>
                   ${ARMO_MODELS_DIR} ${PROJECT_SOURCE_DIR}
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(emu_tp_watchdog PROPERTIES LABELS "cpu;emu" TIMEOUT 900
                       ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
endif()

# profiling/device_check.sh --dry-run over this build: the GPU session's steps
# (gpu tests skip cleanly, memcheck's loop, compare's scripts, armo's bench on
# the emulated CUDA path, bench_kernels' exit 77, the files handed back), so
# that a script error shows here and not in the GPU minute.  The emulated
# tests themselves (its step emu) and the build are left to the other ctests.
if(ARMO_HAVE_CUDA)
  set(ARMO_DRY_RUN_OUT ${CMAKE_BINARY_DIR}/device_check.d/out)
  file(MAKE_DIRECTORY ${ARMO_DRY_RUN_OUT})
  add_test(NAME device_check_dry_run
           COMMAND bash ${PROJECT_SOURCE_DIR}/profiling/device_check.sh --dry-run
                   --steps ctest,memcheck,compare,bench,graphs,kernels)
  set_tests_properties(device_check_dry_run PROPERTIES LABELS "cpu;emu" TIMEOUT 900
                       ENVIRONMENT "BUILD=${CMAKE_BINARY_DIR};LOGS=${CMAKE_BINARY_DIR}/device_check.d/logs;OUT=${ARMO_DRY_RUN_OUT};JOBS=2")
  # the deadline: with 45 s, the 60-s bench step must be skipped with a line
  # saying so and the steps that fit must still run
  set(ARMO_DEADLINE_LOGS ${CMAKE_BINARY_DIR}/device_check.d/deadline_logs)
  add_test(NAME device_check_deadline
           COMMAND bash -c "bash '${PROJECT_SOURCE_DIR}/profiling/device_check.sh' --dry-run --steps ctest,memcheck,compare,bench,kernels && grep -E '^bench +skipped .*deadline' '${ARMO_DEADLINE_LOGS}/summary.txt' && grep -E '^kernels +ok' '${ARMO_DEADLINE_LOGS}/summary.txt'")
  set_tests_properties(device_check_deadline PROPERTIES LABELS "cpu;emu" TIMEOUT 300
                       DEPENDS device_check_dry_run
                       ENVIRONMENT "BUILD=${CMAKE_BINARY_DIR};LOGS=${ARMO_DEADLINE_LOGS};OUT=${ARMO_DRY_RUN_OUT};JOBS=2;DEADLINE_S=45")
endif()
