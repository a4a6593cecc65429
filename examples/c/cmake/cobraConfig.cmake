# find_package(cobra CONFIG) support for libcobra built from this repository with cargo.
#
#   find_package(cobra CONFIG REQUIRED HINTS <repo>/examples/c/cmake)   # or -Dcobra_DIR=<that dir>
#   target_link_libraries(app PRIVATE cobra::cobra)          # libcobra.so
#   target_link_libraries(app PRIVATE cobra::cobra_static)   # libcobra.a (+ the system libraries it needs)
#
# Where the library is looked for (first match wins):
#   COBRA_LIB_DIR       a directory holding libcobra.so / libcobra.a (e.g. <repo>/target/release)
#   <repo>/target/release, then <repo>/target/debug
# COBRA_INCLUDE_DIR overrides the header directory (default <repo>/include: cobra.h, cobra.hpp).
cmake_minimum_required(VERSION 3.16)

get_filename_component(_cobra_root "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(COBRA_LIB_DIR "" CACHE PATH "Directory holding libcobra.so / libcobra.a (default: <repo>/target/{release,debug})")
set(COBRA_INCLUDE_DIR "${_cobra_root}/include" CACHE PATH "Directory holding cobra.h and cobra.hpp")

if(COBRA_LIB_DIR)
  set(_cobra_lib_dirs "${COBRA_LIB_DIR}")
else()
  set(_cobra_lib_dirs "${_cobra_root}/target/release" "${_cobra_root}/target/debug")
endif()
find_library(COBRA_SHARED_LIBRARY NAMES cobra PATHS ${_cobra_lib_dirs} NO_DEFAULT_PATH)
find_file(COBRA_STATIC_LIBRARY NAMES libcobra.a PATHS ${_cobra_lib_dirs} NO_DEFAULT_PATH)

if(NOT EXISTS "${COBRA_INCLUDE_DIR}/cobra.h")
  set(cobra_FOUND FALSE)
  set(cobra_NOT_FOUND_MESSAGE "cobra.h not found in ${COBRA_INCLUDE_DIR}")
  return()
endif()
if(NOT COBRA_SHARED_LIBRARY AND NOT COBRA_STATIC_LIBRARY)
  set(cobra_FOUND FALSE)
  set(cobra_NOT_FOUND_MESSAGE "libcobra not found in ${_cobra_lib_dirs}: build it with `cargo build --release -p cobra` or set COBRA_LIB_DIR")
  return()
endif()

find_package(Threads REQUIRED)

if(COBRA_SHARED_LIBRARY AND NOT TARGET cobra::cobra)
  add_library(cobra::cobra SHARED IMPORTED)
  set_target_properties(cobra::cobra PROPERTIES
    IMPORTED_LOCATION "${COBRA_SHARED_LIBRARY}"
    # cargo's cdylib has no SONAME: link it as -lcobra so the executable records `libcobra.so`, found
    # through the rpath CMake adds for the build tree.
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "${COBRA_INCLUDE_DIR}")
endif()

if(COBRA_STATIC_LIBRARY AND NOT TARGET cobra::cobra_static)
  add_library(cobra::cobra_static STATIC IMPORTED)
  set_target_properties(cobra::cobra_static PROPERTIES
    IMPORTED_LOCATION "${COBRA_STATIC_LIBRARY}"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${COBRA_INCLUDE_DIR}"
    # What the Rust standard library needs on Linux (`--print native-static-libs`).
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m;rt")
endif()

set(cobra_FOUND TRUE)
