# smoke.cmake — one fuzz_<target>_smoke ctest (see cmake/fuzz.cmake), run as
#   cmake -DFUZZER=bin -DCORPUS=dir -DREGRESSIONS=dir -DWORK=dir -DSECONDS=n -P smoke.cmake
#
# 1. Every file in REGRESSIONS (inputs that once crashed, leaked or hung) is
#    run once: libFuzzer given plain files executes each and exits non-zero
#    on the first failure.
# 2. A short fuzzing run from the committed seeds: WORK/corpus (emptied each
#    time, so runs do not drift and the source tree is never written) first,
#    then CORPUS read-only; crash / leak / timeout inputs land in
#    WORK/artifacts/.  The seed is fixed (1) so a CI run is repeatable as far
#    as timing allows; ARMO_FUZZ_SEED=0 picks a random one.
# A script rather than a bare add_test command because a ctest is one command
# and this is two runs plus the listing of the regression files.
foreach(v FUZZER CORPUS REGRESSIONS WORK SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "smoke.cmake: -D${v}=... is required")
  endif()
endforeach()
set(seed 1)
if(DEFINED ENV{ARMO_FUZZ_SEED})
  set(seed $ENV{ARMO_FUZZ_SEED})
endif()
set(limits -timeout=10 -rss_limit_mb=2048)

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)

file(GLOB regressions LIST_DIRECTORIES false ${REGRESSIONS}/*)
list(FILTER regressions EXCLUDE REGEX "/(README[^/]*|\\.[^/]*)$")
list(LENGTH regressions n_reg)
if(n_reg GREATER 0)
  execute_process(COMMAND ${FUZZER} ${limits} -artifact_prefix=${WORK}/artifacts/ ${regressions}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message("${out}")
    message(FATAL_ERROR "${FUZZER}: a regression input fails again (exit ${rc})")
  endif()
endif()

execute_process(COMMAND ${FUZZER} ${limits} -max_total_time=${SECONDS} -seed=${seed}
                        -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/
                        ${WORK}/corpus ${CORPUS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message("${out}")
  file(GLOB artifacts ${WORK}/artifacts/*)
  message(FATAL_ERROR "${FUZZER}: failed after fuzzing (exit ${rc}); input saved as: ${artifacts}\n"
                      "Minimise it (-minimize_crash=1), add it under ${REGRESSIONS}/ and fix the "
                      "code (tests/fuzz/README.md)")
endif()
string(REGEX MATCH "stat::number_of_executed_units: *[0-9]+" execs "${out}")
string(REGEX MATCHALL "cov: [0-9]+ ft: [0-9]+" covs "${out}")
list(POP_BACK covs last_cov)
message("${n_reg} regression inputs pass; ${SECONDS} s of fuzzing, seed ${seed}: ${execs}, "
        "${last_cov}")
