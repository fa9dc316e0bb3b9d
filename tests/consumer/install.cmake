# cmake -DBUILD_DIR=<build tree> -DPREFIX=<empty dir to install into> -P install.cmake
# A fresh `cmake --install` of the build tree, for the find_package consumers.
file(REMOVE_RECURSE ${PREFIX})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed:\n${out}")
endif()
foreach(file include/syncvault.hpp include/syncvault/basic_vault.hpp include/syncvault/concepts/transport.hpp
             share/cmake/syncvault/syncvaultConfig.cmake share/cmake/syncvault/syncvaultConfigVersion.cmake
             share/cmake/syncvault/syncvault-targets.cmake)
  if(NOT EXISTS ${PREFIX}/${file})
    message(FATAL_ERROR "cmake --install did not install ${file}:\n${out}")
  endif()
endforeach()
message(STATUS "installed into ${PREFIX}")
