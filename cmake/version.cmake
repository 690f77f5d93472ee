# version.cmake — what `armo --version` prints: `git describe --always
# --dirty` of the source tree (the project version when it is not a git
# checkout or git is missing) and the build's flags (build type, compiler,
# CUDA on/off and its architectures, sanitizers).
#
# Included from CMakeLists.txt after the CUDA and sanitizer options are
# settled.  The text goes into a generated C file (build/generated/
# armo_version.c, defining host/cli/version.h's functions) compiled into the
# library armo_version, which armo and armo_emu link.  The file is written
# by cmake/version_gen.cmake at every build (a target that is always out of
# date) but only when its content changed, so a new commit or a dirtied tree
# reaches `armo --version` at the next build without recompiling anything
# otherwise.
set(ARMO_VERSION_C ${CMAKE_BINARY_DIR}/generated/armo_version.c)
set(ARMO_BUILD_FLAGS "build ${CMAKE_BUILD_TYPE}, ${CMAKE_C_COMPILER_ID} ${CMAKE_C_COMPILER_VERSION}")
if(ARMO_HAVE_CUDA)
  string(REGEX MATCHALL "code=sm_[0-9]+a?" _armo_archs "${ARMO_CUDA_GENCODE}")
  string(REPLACE "code=" "" _armo_archs "${_armo_archs}")
  string(REPLACE ";" " " _armo_archs "${_armo_archs}")
  string(APPEND ARMO_BUILD_FLAGS ", CUDA on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, ${_armo_archs})")
else()
  string(APPEND ARMO_BUILD_FLAGS ", CUDA off")
endif()
if(ARMO_SANITIZE)
  string(APPEND ARMO_BUILD_FLAGS ", sanitizers address+undefined")
else()
  string(APPEND ARMO_BUILD_FLAGS ", no sanitizers")
endif()
find_package(Git QUIET)
add_custom_target(armo_version_gen
  COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR} -DOUT=${ARMO_VERSION_C}
          -DGIT=${GIT_EXECUTABLE} -DFALLBACK=${PROJECT_VERSION} "-DFLAGS=${ARMO_BUILD_FLAGS}"
          -P ${PROJECT_SOURCE_DIR}/cmake/version_gen.cmake
  BYPRODUCTS ${ARMO_VERSION_C}
  COMMENT "armo --version: git describe"
  VERBATIM)
# at configure time too, so that the file exists before the first build
execute_process(COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR} -DOUT=${ARMO_VERSION_C}
                        -DGIT=${GIT_EXECUTABLE} -DFALLBACK=${PROJECT_VERSION}
                        "-DFLAGS=${ARMO_BUILD_FLAGS}"
                        -P ${PROJECT_SOURCE_DIR}/cmake/version_gen.cmake)
add_library(armo_version STATIC ${ARMO_VERSION_C})
target_include_directories(armo_version PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(armo_version armo_version_gen)
