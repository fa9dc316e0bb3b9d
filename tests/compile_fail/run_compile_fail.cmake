# cmake -DBUILD_DIR=<dir> -DTARGET=<target> (-DEXPECT_SUCCESS=ON | -DWORDING=<regex> -DHEADER=<regex>)
#       -P run_compile_fail.cmake
#
# Builds one EXCLUDE_FROM_ALL target of the build tree. Without EXPECT_SUCCESS the build must
# fail, one static_assert diagnostic line must hold WORDING and then HEADER, and the first error
# must be that static_assert (one readable message, not a cascade that starts elsewhere).
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(EXPECT_SUCCESS)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TARGET} must compile, but:\n${out}")
  endif()
  message(STATUS "${TARGET} compiles")
  return()
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled, but it must not:\n${out}")
endif()
set(regex "static.assert[^\n]*${WORDING}[^\n]*${HEADER}")
if(NOT out MATCHES "${regex}")
  message(FATAL_ERROR "${TARGET} failed, but no static_assert line matches '${regex}':\n${out}")
endif()
string(REGEX MATCH "error: [^\n]*" first_error "${out}")
if(NOT first_error MATCHES "static.assert")
  message(FATAL_ERROR "${TARGET}: the first error is not the concept's static_assert: ${first_error}\n${out}")
endif()
string(REGEX MATCHALL "error: " errors "${out}")
list(LENGTH errors error_count)
message(STATUS "${TARGET} fails as it must (${error_count} error lines); first: ${first_error}")
