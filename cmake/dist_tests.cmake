# dist_tests.cmake — the split-run tests (tests/dist/test_dist_*.sh): armo
# score on several ranks (by hand, under mpirun, under a Slurm cluster the
# test starts itself) and armo merge, each against one armo score process
# over the same input, byte for byte.  Labels cpu;dist; exit 77 = skipped
# (mpirun or the Slurm daemons not installed or not starting).
find_program(ARMO_BASH bash REQUIRED)
file(GLOB ARMO_DIST_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/dist/test_dist_*.sh)
foreach(script ${ARMO_DIST_TESTS})
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME ${name}
           COMMAND ${ARMO_BASH} ${script} $<TARGET_FILE:armo> ${ARMO_MODELS_DIR} ${PROJECT_SOURCE_DIR}
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(${name} PROPERTIES LABELS "cpu;dist" SKIP_RETURN_CODE 77 TIMEOUT 600)
endforeach()
