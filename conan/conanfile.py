"""Conan 2 recipe for syncvault, shaped after conan-center-index's header-only template.

    conan create conan/ --build=missing                    # package and run test_package
    conan create conan/ -o "syncvault/*:with_curl=False"   # without syncvault::curl

Consumers then write `find_package(syncvault CONFIG REQUIRED)` and link `syncvault::syncvault`
(plus `syncvault::curl` / `syncvault::sqlite` when those options are on), exactly as with an
installed tree.
"""

import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class SyncvaultConan(ConanFile):
    name = "syncvault"
    description = ("Header-only C++20 policy library that makes HTTP requests survive bad "
                   "networks and crashes: send now or queue durably, replay in order with "
                   "jittered backoff")
    topics = ("http", "offline-first", "retry", "queue", "policy-based-design", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "with_curl": [True, False],
        "with_sqlite": [True, False],
    }
    default_options = {
        "with_curl": True,
        "with_sqlite": True,
    }
    # Header-only: nothing is built, so sources need not be copied to a build folder.
    no_copy_source = True

    @property
    def _repo_root(self):
        # The recipe lives in <repo>/conan/; the library's files are one level up.
        return os.path.join(self.recipe_folder, os.pardir)

    def set_version(self):
        # One version for CMake and Conan: read it from the project() call.
        cmakelists = load(self, os.path.join(self._repo_root, "CMakeLists.txt"))
        match = re.search(r"project\(\s*syncvault\s+VERSION\s+([0-9][0-9.]*)", cmakelists)
        self.version = self.version or match.group(1)

    def export_sources(self):
        copy(self, "include/*", self._repo_root, self.export_sources_folder)
        copy(self, "LICENSE*", self._repo_root, self.export_sources_folder)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # Headers include Boost (JSON, URL, Hana, System, UUID, CRC...), libcurl and SQLite, so
        # every requirement is transitive to consumers' headers.
        self.requires("boost/[>=1.81.0 <2]", transitive_headers=True, transitive_libs=True)
        if self.options.with_curl:
            self.requires("libcurl/[>=7.85.0 <9]", transitive_headers=True, transitive_libs=True)
        if self.options.with_sqlite:
            self.requires("sqlite3/[>=3.35.0 <4]", transitive_headers=True, transitive_libs=True)

    def package_id(self):
        # Same package for every configuration: the options only choose components.
        self.info.clear()

    def validate(self):
        check_min_cppstd(self, 20)

    def build(self):
        pass

    def package(self):
        copy(self, "LICENSE*", self.source_folder, os.path.join(self.package_folder, "licenses"))
        for pattern in ("*.hpp", "*.ipp"):
            copy(self, pattern, os.path.join(self.source_folder, "include"),
                 os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "syncvault")
        # The aggregate of all components; the component targets below are the public names.
        self.cpp_info.set_property("cmake_target_name", "syncvault::all")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []

        core = self.cpp_info.components["syncvault"]
        core.set_property("cmake_target_name", "syncvault::syncvault")
        core.requires = ["boost::headers", "boost::json", "boost::url"]
        core.bindirs = []
        core.libdirs = []
        if self.settings.os in ["Linux", "FreeBSD"]:
            core.system_libs = ["pthread"]

        if self.options.with_curl:
            curl = self.cpp_info.components["curl"]
            curl.set_property("cmake_target_name", "syncvault::curl")
            curl.requires = ["syncvault", "libcurl::curl"]
            curl.bindirs = []
            curl.libdirs = []

        if self.options.with_sqlite:
            sqlite = self.cpp_info.components["sqlite"]
            sqlite.set_property("cmake_target_name", "syncvault::sqlite")
            sqlite.requires = ["syncvault", "sqlite3::sqlite"]
            sqlite.bindirs = []
            sqlite.libdirs = []
