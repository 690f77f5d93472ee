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

# armo_mpi: host/dist/mpi_*.c (MPI start-up, a checked byte broadcast for
# bootstrapping NCCL across processes, a TP group's agreement), only where
# MPI is found.  armo_core never links MPI; the armo CLI does, for `armo
# score --tp N --tp-across-ranks` (host/cli/score_tp_ranks.h), which alone
# calls MPI_Init (mpi_bcast.h says why).  Its test: mpirun -np 2.
option(ARMO_MPI "build armo_mpi (host/dist/mpi_bcast.h) when MPI is found" ON)
set(ARMO_HAVE_MPI OFF)
if(ARMO_MPI)
  find_package(MPI COMPONENTS C QUIET)
  if(MPI_C_FOUND)
    set(ARMO_HAVE_MPI ON)
    file(GLOB ARMO_MPI_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/host/dist/mpi_*.c)
    add_library(armo_mpi STATIC ${ARMO_MPI_SOURCES})
    target_compile_options(armo_mpi PRIVATE ${ARMO_C_WARNINGS})
    target_link_libraries(armo_mpi PUBLIC armo_core MPI::MPI_C)
    target_compile_definitions(armo_mpi PUBLIC ARMO_HAVE_MPI=1)
    target_link_libraries(armo PRIVATE armo_mpi)
    add_executable(mpi_bcast_check ${PROJECT_SOURCE_DIR}/tests/dist/mpi_bcast_check.c)
    target_compile_options(mpi_bcast_check PRIVATE ${ARMO_C_WARNINGS})
    target_link_libraries(mpi_bcast_check PRIVATE armo_mpi)
    add_test(NAME dist_mpi_bcast
             COMMAND ${ARMO_BASH} -c "command -v mpirun >/dev/null || { echo 'SKIP: no mpirun'; exit 77; }; \
mpirun -np 2 --allow-run-as-root --oversubscribe $<TARGET_FILE:mpi_bcast_check>")
    set_tests_properties(dist_mpi_bcast PROPERTIES LABELS "cpu;dist" SKIP_RETURN_CODE 77 TIMEOUT 120)
  endif()
endif()
message(STATUS "armo: MPI (armo_mpi, host/dist/mpi_bcast.h) ${ARMO_HAVE_MPI}")
