# cmake -DTESTS_DIR=<tests> -P check_test_names.cmake
# catch_discover_tests registers one CTest test per Catch2 test case, and CMake splits a name at
# each ';': "a; b" becomes two CTest tests, "a" and " b", that match no test case, and Catch2
# reports "No test cases matched" with exit code 0. Such a test case never runs under CTest and
# always passes. This check fails on any test case name holding a ';'.
get_filename_component(TESTS_DIR "${TESTS_DIR}" ABSOLUTE)
file(GLOB_RECURSE sources ${TESTS_DIR}/*.cpp ${TESTS_DIR}/*.hpp)
set(report "")
set(count 0)
foreach(source IN LISTS sources)
  file(READ ${source} text)
  string(REPLACE ";" "<SEMICOLON>" text "${text}")
  string(REGEX MATCHALL "(TEST_CASE|SCENARIO|TEMPLATE_TEST_CASE|TEMPLATE_PRODUCT_TEST_CASE|TEST_CASE_METHOD)[A-Z_]*\\([ \t\r\n]*(\\([^)]*\\),[ \t\r\n]*)?\"[^\"\n]*<SEMICOLON>[^\"\n]*\""
         found "${text}")
  file(RELATIVE_PATH where ${TESTS_DIR} ${source})
  foreach(match IN LISTS found)
    string(APPEND report "\n  ${where}: ${match}")
    math(EXPR count "${count} + 1")
  endforeach()
endforeach()
if(count GREATER 0)
  string(REPLACE "<SEMICOLON>" ";" report "${report}")
  message(FATAL_ERROR "${count} Catch2 test names hold a ';' (use ',' or ':'), so CTest never runs them:${report}")
endif()
list(LENGTH sources files)
message(STATUS "Catch2 test names in ${files} files: none holds a ';'")
