# fuzz.cmake — the libFuzzer harnesses of tests/fuzz/ (one per parser:
# safetensors, config, records, tokenizer, chat_template), built with clang
# and run briefly as ctests fuzz_<target>_smoke (labels "cpu;fuzz").
#
# Included from CMakeLists.txt after the bundled models are set up (it reads
# ARMO_MODELS_DIR and the JANSSON_* / PCRE2_* variables of pkg_check_modules).
#
# Why custom commands calling clang rather than targets: the main build is C
# compiled by whatever CMAKE_C_COMPILER is (gcc on Debian), and one CMake
# project has one C compiler, while libFuzzer needs clang's
# -fsanitize=fuzzer.  A nested project (ExternalProject) would configure a
# second time during the build, look up jansson / PCRE2 again and hide its
# steps from the outer build graph; here the few sources the harnesses need
# are compiled by clang straight into this build: one custom command per
# source (header dependencies through DEPFILE), one archive, one link per
# harness, all scheduled by the same Ninja / make run.  The sources are the
# rooms the text and weights parsers live in and may include
# (ARCHITECTURE.md: base/, weights/, host/text/) — globbed like the main
# build, so a file added to one of them needs no edit here — compiled once
# with -fsanitize=fuzzer-no-link,address,undefined into libarmo_fuzz.a; each
# tests/fuzz/fuzz_<target>.c links against it with -fsanitize=fuzzer.
#
# clang is looked for as the C compiler when that is clang, else on PATH
# (clang, then versioned names); a probe compiles and links a one-line
# harness, so a clang without libclang_rt.fuzzer (Debian: libclang-rt-dev)
# is found out at configure time.  Without one the fuzzers are skipped with
# a status line (ARMO_FUZZ=OFF skips them on purpose).
#
# Each smoke test (tests/fuzz/smoke.cmake) first runs every file of
# tests/fuzz/regressions/<target>/ once, then fuzzes from the committed
# corpus tests/fuzz/corpus/<target>/ for ARMO_FUZZ_SMOKE_SECONDS (default 20;
# 5 targets on 2 cores: under a minute of wall time), new inputs going to a
# scratch corpus in the build tree.  tests/fuzz/README.md has the long runs.

option(ARMO_FUZZ "build the libFuzzer harnesses (tests/fuzz) when clang can" ON)
set(ARMO_FUZZ_SMOKE_SECONDS 20 CACHE STRING "seconds each fuzz_*_smoke ctest fuzzes")

set(ARMO_HAVE_FUZZ OFF)
if(ARMO_FUZZ)
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    set(ARMO_FUZZ_CLANG_DEFAULT ${CMAKE_C_COMPILER})
  endif()
  find_program(ARMO_FUZZ_CLANG NAMES ${ARMO_FUZZ_CLANG_DEFAULT} clang clang-19 clang-18 clang-17
               clang-16 clang-15 clang-14 DOC "clang used for the libFuzzer harnesses")
  if(ARMO_FUZZ_CLANG)
    # the probe's result is cached per clang path
    if(NOT ARMO_FUZZ_PROBED STREQUAL ARMO_FUZZ_CLANG)
      set(probe_dir ${CMAKE_BINARY_DIR}/fuzz/probe)
      file(MAKE_DIRECTORY ${probe_dir})
      file(WRITE ${probe_dir}/probe.c
           "#include <stddef.h>\n#include <stdint.h>\n"
           "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
      execute_process(
        COMMAND ${ARMO_FUZZ_CLANG} -fsanitize=fuzzer,address,undefined ${probe_dir}/probe.c
                -o ${probe_dir}/probe
        RESULT_VARIABLE probe_rc OUTPUT_QUIET ERROR_VARIABLE probe_err)
      if(probe_rc EQUAL 0)
        set(ARMO_FUZZ_CLANG_WORKS ON CACHE INTERNAL "")
      else()
        set(ARMO_FUZZ_CLANG_WORKS OFF CACHE INTERNAL "")
        string(STRIP "${probe_err}" probe_err)
        message(STATUS "armo: ${ARMO_FUZZ_CLANG} cannot link -fsanitize=fuzzer: ${probe_err}")
      endif()
      set(ARMO_FUZZ_PROBED ${ARMO_FUZZ_CLANG} CACHE INTERNAL "")
    endif()
    set(ARMO_HAVE_FUZZ ${ARMO_FUZZ_CLANG_WORKS})
  endif()
endif()
if(NOT ARMO_HAVE_FUZZ)
  message(STATUS "armo: libFuzzer harnesses OFF (needs clang with -fsanitize=fuzzer: Debian "
                 "packages clang and libclang-rt-dev)")
  return()
endif()
message(STATUS "armo: libFuzzer harnesses ON (${ARMO_FUZZ_CLANG})")

set(ARMO_FUZZ_DIR ${CMAKE_BINARY_DIR}/fuzz)
set(ARMO_FUZZ_TOKENIZER ${ARMO_MODELS_DIR}/_data/llama3-tokenizer)
set(ARMO_FUZZ_CFLAGS -std=c11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
    -D_GNU_SOURCE -I${PROJECT_SOURCE_DIR} ${JANSSON_CFLAGS} ${PCRE2_CFLAGS})
set(ARMO_FUZZ_LIBS ${JANSSON_LDFLAGS} ${PCRE2_LDFLAGS} -lpthread -lm)

# ---- the parsers' rooms, compiled once by clang -------------------------------
file(GLOB ARMO_FUZZ_LIB_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/base/*.c
     ${PROJECT_SOURCE_DIR}/weights/*.c ${PROJECT_SOURCE_DIR}/host/text/*.c)
set(fuzz_objs)
foreach(src ${ARMO_FUZZ_LIB_SOURCES})
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${src})
  string(REPLACE "/" "_" stem ${rel})
  set(obj ${ARMO_FUZZ_DIR}/obj/${stem}.o)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${ARMO_FUZZ_CLANG} ${ARMO_FUZZ_CFLAGS} -MD -MF ${obj}.d -c ${src} -o ${obj}
    DEPENDS ${src}
    DEPFILE ${obj}.d
    COMMENT "clang (fuzz) ${rel}"
    COMMAND_EXPAND_LISTS VERBATIM)
  list(APPEND fuzz_objs ${obj})
endforeach()
set(ARMO_FUZZ_LIB ${ARMO_FUZZ_DIR}/libarmo_fuzz.a)
add_custom_command(
  OUTPUT ${ARMO_FUZZ_LIB}
  COMMAND ${CMAKE_COMMAND} -E rm -f ${ARMO_FUZZ_LIB}
  COMMAND ${CMAKE_AR} qc ${ARMO_FUZZ_LIB} ${fuzz_objs}
  COMMAND ${CMAKE_RANLIB} ${ARMO_FUZZ_LIB}
  DEPENDS ${fuzz_objs}
  COMMENT "archiving libarmo_fuzz.a"
  VERBATIM)

# ---- one harness per target ---------------------------------------------------
set(ARMO_FUZZ_TARGETS safetensors config records tokenizer chat_template)
set(fuzz_bins)
foreach(t ${ARMO_FUZZ_TARGETS})
  set(src ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_${t}.c)
  set(obj ${ARMO_FUZZ_DIR}/obj/fuzz_${t}.o)
  set(bin ${ARMO_FUZZ_DIR}/fuzz_${t})
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${ARMO_FUZZ_CLANG} ${ARMO_FUZZ_CFLAGS}
            "-DARMO_FUZZ_TOKENIZER_DIR=\"${ARMO_FUZZ_TOKENIZER}\"" -MD -MF ${obj}.d -c ${src}
            -o ${obj}
    DEPENDS ${src}
    DEPFILE ${obj}.d
    COMMENT "clang (fuzz) tests/fuzz/fuzz_${t}.c"
    COMMAND_EXPAND_LISTS VERBATIM)
  add_custom_command(
    OUTPUT ${bin}
    COMMAND ${ARMO_FUZZ_CLANG} -fsanitize=fuzzer,address,undefined ${obj} ${ARMO_FUZZ_LIB}
            ${ARMO_FUZZ_LIBS} -o ${bin}
    DEPENDS ${obj} ${ARMO_FUZZ_LIB}
    COMMENT "linking fuzz_${t}"
    COMMAND_EXPAND_LISTS VERBATIM)
  list(APPEND fuzz_bins ${bin})

  add_test(NAME fuzz_${t}_smoke
           COMMAND ${CMAKE_COMMAND} -DFUZZER=${bin}
                   -DCORPUS=${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${t}
                   -DREGRESSIONS=${PROJECT_SOURCE_DIR}/tests/fuzz/regressions/${t}
                   -DWORK=${ARMO_FUZZ_DIR}/smoke_${t} -DSECONDS=${ARMO_FUZZ_SMOKE_SECONDS}
                   -P ${PROJECT_SOURCE_DIR}/tests/fuzz/smoke.cmake)
  set_tests_properties(fuzz_${t}_smoke PROPERTIES LABELS "cpu;fuzz" TIMEOUT 300
                       ENVIRONMENT "ARMO_FUZZ_TOKENIZER_DIR=${ARMO_FUZZ_TOKENIZER}")
endforeach()
add_custom_target(fuzzers ALL DEPENDS ${fuzz_bins})
