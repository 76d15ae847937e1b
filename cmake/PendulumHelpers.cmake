# pendulum_add_test(NAME name SOURCES a.cc b.cc DEPS lib... LABELS unit|integration|fault|gpu|reference...)
# Builds one gtest binary and registers every TEST in it with ctest via
# gtest_discover_tests, carrying the given labels. Tests run in the build root
# with the source root in PENDULUM_SOURCE_DIR, so they find examples/,
# migrations/ and the built binaries (tests/support/test_paths.h).
function(pendulum_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock pendulum::test_main pendulum::warnings)
  # -rdynamic: the crash stack trace of test_main (tests/support/gtest_main.cc) names functions.
  set_target_properties(${T_NAME} PROPERTIES ENABLE_EXPORTS ON)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  # Tests run in the build root, so BinaryDir() (PENDULUM_BINARY_DIR, else the
  # working directory) finds the built binaries. Only one ENVIRONMENT entry is
  # passed: gtest_discover_tests splits a "A=..;B=.." value at the semicolon.
  # The same splitting applies to LABELS: "unit;reference" became LABELS=unit
  # plus stray words that swallowed TIMEOUT and ENVIRONMENT. So only the first
  # label goes through gtest_discover_tests; a multi-label test gets all its
  # labels from a ctest include file that runs after the discovered tests exist.
  list(GET T_LABELS 0 _first_label)
  gtest_discover_tests(${T_NAME}
    DISCOVERY_TIMEOUT 60
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    PROPERTIES
      LABELS "${_first_label}"
      TIMEOUT ${T_TIMEOUT}
      ENVIRONMENT "PENDULUM_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  list(LENGTH T_LABELS _label_count)
  if(_label_count GREATER 1)
    set(_labels_file "${CMAKE_CURRENT_BINARY_DIR}/${T_NAME}_labels.cmake")
    file(WRITE "${_labels_file}"
      "foreach(_t IN LISTS ${T_NAME}_TESTS)\n"
      "  set_tests_properties(\"\${_t}\" PROPERTIES LABELS \"${T_LABELS}\")\n"
      "endforeach()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${_labels_file}")
  endif()
endfunction()

# pendulum_add_library(name SOURCES ... PUBLIC_DEPS ... PRIVATE_DEPS ...)
# A static library with a pendulum:: alias, rooted includes (#include "server/store/x.h").
function(pendulum_add_library NAME)
  cmake_parse_arguments(L "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${NAME} STATIC ${L_SOURCES})
  add_library(pendulum::${NAME} ALIAS ${NAME})
  target_include_directories(${NAME} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}> $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}>)
  target_compile_features(${NAME} PUBLIC cxx_std_17)
  target_link_libraries(${NAME} PUBLIC ${L_PUBLIC_DEPS} PRIVATE ${L_PRIVATE_DEPS} pendulum::warnings)
endfunction()

# pendulum_add_existing_subdirs(): add_subdirectory() every immediate child
# folder that has a CMakeLists.txt, in name order. Lets separately owned parts
# (server/store, server/api, tests/integration/worker, ...) land independently.
macro(pendulum_add_existing_subdirs)
  file(GLOB _pendulum_children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
       ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT _pendulum_children)
  foreach(_child ${_pendulum_children})
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${_child} AND
       EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${_child}/CMakeLists.txt)
      add_subdirectory(${_child})
    endif()
  endforeach()
endmacro()
