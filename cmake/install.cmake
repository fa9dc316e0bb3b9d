# Install rules and package files for syncvault (included from the top-level CMakeLists.txt when
# SYNCVAULT_INSTALL is on, which it is by default only for the top-level project).
#
#   <prefix>/include/syncvault...                  the headers (the FILE_SET of syncvault)
#   <prefix>/share/cmake/syncvault/
#     syncvaultConfig.cmake, syncvaultConfigVersion.cmake
#     syncvault-targets.cmake          syncvault::syncvault (Boost, Threads)
#     syncvault-curl-targets.cmake     syncvault::curl      (libcurl), when built with it
#     syncvault-sqlite-targets.cmake   syncvault::sqlite    (SQLite3), when built with it
#
# The targets are header-only and independent of the architecture, so the package lives under
# share/. libcurl and SQLite3 are optional for a consumer: find_package(syncvault) succeeds
# without them (syncvault::curl / ::sqlite are then absent) unless they are asked for as
# components: find_package(syncvault CONFIG REQUIRED COMPONENTS curl sqlite).
#
# The build tree is exported too: -Dsyncvault_DIR=<build dir> uses it without installing.

include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

set(SYNCVAULT_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/syncvault"
    CACHE STRING "Where syncvault's CMake package files are installed, relative to the prefix")
mark_as_advanced(SYNCVAULT_INSTALL_CMAKEDIR)

# One export set per target, so that each dependency is needed only by the target using it.
set(_syncvault_exports syncvault)
install(TARGETS syncvault EXPORT syncvault-targets
        FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set(SYNCVAULT_PACKAGE_HAS_CURL OFF)
if(TARGET syncvault_curl)
  install(TARGETS syncvault_curl EXPORT syncvault-curl-targets)
  list(APPEND _syncvault_exports curl)
  set(SYNCVAULT_PACKAGE_HAS_CURL ON)
endif()
set(SYNCVAULT_PACKAGE_HAS_SQLITE OFF)
if(TARGET syncvault_sqlite)
  install(TARGETS syncvault_sqlite EXPORT syncvault-sqlite-targets)
  list(APPEND _syncvault_exports sqlite)
  set(SYNCVAULT_PACKAGE_HAS_SQLITE ON)
endif()

foreach(_export IN LISTS _syncvault_exports)
  if(_export STREQUAL "syncvault")
    set(_file syncvault-targets.cmake)
    set(_set syncvault-targets)
  else()
    set(_file syncvault-${_export}-targets.cmake)
    set(_set syncvault-${_export}-targets)
  endif()
  install(EXPORT ${_set} NAMESPACE syncvault:: FILE ${_file}
          DESTINATION ${SYNCVAULT_INSTALL_CMAKEDIR})
  export(EXPORT ${_set} NAMESPACE syncvault:: FILE ${PROJECT_BINARY_DIR}/${_file})
endforeach()

# Boost's minimum version, as the top-level find_package asked for it.
set(SYNCVAULT_BOOST_MIN_VERSION 1.81)

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/syncvaultConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/install/syncvaultConfig.cmake
  INSTALL_DESTINATION ${SYNCVAULT_INSTALL_CMAKEDIR})
# The build tree's config sits beside the exported target files in the build directory.
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/syncvaultConfig.cmake.in
  ${PROJECT_BINARY_DIR}/syncvaultConfig.cmake
  INSTALL_DESTINATION ${PROJECT_BINARY_DIR}
  INSTALL_PREFIX ${PROJECT_BINARY_DIR})
# SameMajorVersion, as SemVer reads it. (While the major version is 0 this treats every 0.x as
# compatible; tighten to SameMinorVersion if a 0.x release breaks the API.)
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/syncvaultConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)

install(FILES ${PROJECT_BINARY_DIR}/cmake/install/syncvaultConfig.cmake
              ${PROJECT_BINARY_DIR}/syncvaultConfigVersion.cmake
        DESTINATION ${SYNCVAULT_INSTALL_CMAKEDIR})

unset(_syncvault_exports)
unset(_export)
unset(_file)
unset(_set)
