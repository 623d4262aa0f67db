# SPDX-License-Identifier: Apache-2.0
# Warnings, sanitizer switches and ferry_add_test(), shared by every folder.

function(ferry_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-missing-field-initializers
                         $<$<BOOL:${FERRY_WERROR}>:-Werror>)
endfunction()

# ferry_add_test(NAME name SOURCES a_test.cpp ... LIBS lib... [LABELS unit])
# Builds one GoogleTest executable and registers it with ctest (label "unit" by default).
function(ferry_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  ferry_warnings(${T_NAME})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT 300)
endfunction()
