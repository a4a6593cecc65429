# What the C and C++ example builds share: libcobra found through cobraConfig.cmake beside this file and
# linked as COBRA_LINK says; cobra_example(NAME SOURCE) adds one example, warnings as errors.
set(COBRA_LINK "shared" CACHE STRING "Link libcobra as 'shared' or 'static'")
find_package(cobra CONFIG REQUIRED HINTS "${CMAKE_CURRENT_LIST_DIR}")
if(COBRA_LINK STREQUAL "static")
  set(COBRA_TARGET cobra::cobra_static)
else()
  set(COBRA_TARGET cobra::cobra)
endif()

function(cobra_example name source)
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE ${COBRA_TARGET})
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang" OR CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${name} PRIVATE -Wall -Wextra -Werror)
  endif()
endfunction()
