"""Checks conan/conanfile.py and conan/test_package/conanfile.py without Conan installed.

Conan cannot be installed on the CI machines, so this stubs the few `conan` modules the recipes
import, loads each recipe class, drives its methods the way `conan create` would, and checks
what they did against the conan-center header-library template and syncvault's CMake package:

    python3 check_conan_recipe.py <repo root>

Exits non-zero with a message on the first mismatch.
"""

import importlib.util
import os
import re
import sys
import types

sys.dont_write_bytecode = True  # keep the source tree clean

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
calls = []  # (function name, args) of every stubbed tool called


def fail(message):
    print(f"FAILED: {message}")
    sys.exit(1)


def expect(condition, message):
    if not condition:
        fail(message)


# ---- stubs of the conan modules the recipes import -----------------------------------------

class ConanFile:
    """Just enough of conan.ConanFile: attributes the methods read, recording what they set."""


class Value:
    def __init__(self, value):
        self.value = value

    def __bool__(self):
        return bool(self.value)

    def __eq__(self, other):
        return str(self.value) == str(other)

    def __hash__(self):
        return hash(str(self.value))

    def __str__(self):
        return str(self.value)


class Settings:
    def __init__(self, **values):
        for k, v in values.items():
            setattr(self, k, Value(v))


class Options:
    def __init__(self, **values):
        for k, v in values.items():
            setattr(self, k, Value(v))


class CppInfo:
    def __init__(self):
        self.properties = {}
        self.components = Components()
        self.bindirs = ["bin"]
        self.libdirs = ["lib"]
        self.includedirs = ["include"]
        self.requires = []
        self.system_libs = []
        self.libs = []

    def set_property(self, name, value):
        self.properties[name] = value

    def get_property(self, name):
        return self.properties.get(name)


class Components(dict):
    def __getitem__(self, name):
        if name not in self:
            self[name] = CppInfo()
        return dict.__getitem__(self, name)


class Info:
    def __init__(self):
        self.cleared = False

    def clear(self):
        self.cleared = True


def record(name):
    def tool(*args, **kwargs):
        calls.append((name, args, kwargs))
    return tool


def load(conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


modules = {
    "conan": types.ModuleType("conan"),
    "conan.errors": types.ModuleType("conan.errors"),
    "conan.tools": types.ModuleType("conan.tools"),
    "conan.tools.build": types.ModuleType("conan.tools.build"),
    "conan.tools.files": types.ModuleType("conan.tools.files"),
    "conan.tools.layout": types.ModuleType("conan.tools.layout"),
    "conan.tools.cmake": types.ModuleType("conan.tools.cmake"),
    "conan.tools.scm": types.ModuleType("conan.tools.scm"),
}
modules["conan"].ConanFile = ConanFile
modules["conan.errors"].ConanInvalidConfiguration = type("ConanInvalidConfiguration", (Exception,), {})
modules["conan.errors"].ConanException = type("ConanException", (Exception,), {})
modules["conan.tools.build"].check_min_cppstd = record("check_min_cppstd")
modules["conan.tools.build"].can_run = lambda conanfile: True
modules["conan.tools.files"].copy = record("copy")
modules["conan.tools.files"].load = load
modules["conan.tools.files"].get = record("get")
modules["conan.tools.layout"].basic_layout = record("basic_layout")
modules["conan.tools.cmake"].cmake_layout = record("cmake_layout")
modules["conan.tools.cmake"].CMake = lambda conanfile: types.SimpleNamespace(
    configure=record("CMake.configure"), build=record("CMake.build"))
sys.modules.update(modules)


def import_recipe(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, ConanFile) and v is not ConanFile]
    expect(len(classes) == 1, f"{path}: one ConanFile class, found {len(classes)}")
    return module, classes[0]


def make(recipe_class, recipe_folder, **options):
    c = recipe_class()
    c.recipe_folder = recipe_folder
    c.version = None
    c.settings = Settings(os="Linux", arch="x86_64", compiler="gcc", build_type="Release")
    merged = dict(getattr(recipe_class, "default_options", {}))
    merged.update(options)
    c.options = Options(**merged)
    c.cpp_info = CppInfo()
    c.info = Info()
    c.export_sources_folder = "/export"
    c.source_folder = "/source"
    c.package_folder = "/package"
    c.requires_seen = []
    c.requires = lambda ref, **kw: c.requires_seen.append((ref, kw))
    c.tested_reference_str = "syncvault/0.1.0"
    c.cpp = types.SimpleNamespace(build=types.SimpleNamespace(bindir="build/bin"))
    c.run = record("run")
    return c


# ---- the recipe -------------------------------------------------------------------------------

module, Recipe = import_recipe(os.path.join(root, "conan", "conanfile.py"), "syncvault_recipe")
expect(getattr(module, "required_conan_version", "").startswith(">=2"), "required_conan_version >=2")
expect(Recipe.name == "syncvault", "name is syncvault")
expect(Recipe.package_type == "header-library", "package_type is header-library")
expect(set(Recipe.settings) == {"os", "arch", "compiler", "build_type"}, "the template's settings")
expect(getattr(Recipe, "no_copy_source", False), "no_copy_source, as for any header-only recipe")
expect(Recipe.options == {"with_curl": [True, False], "with_sqlite": [True, False]}, "options with_curl, with_sqlite")
expect(Recipe.default_options == {"with_curl": True, "with_sqlite": True}, "both options on by default")
expect("header-only" in Recipe.topics, "topics include header-only")

c = make(Recipe, os.path.join(root, "conan"))
c.set_version()
cmake_version = re.search(r"project\(\s*syncvault\s+VERSION\s+([0-9.]+)",
                          open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8").read()).group(1)
expect(c.version == cmake_version, f"version {c.version} is CMake's {cmake_version}")

calls.clear()
c.layout()
expect(calls and calls[0][0] == "basic_layout", "layout() uses basic_layout")

calls.clear()
c.validate()
expect(("check_min_cppstd", (c, 20), {}) in calls, "validate() calls check_min_cppstd(self, 20)")

c.package_id()
expect(c.info.cleared, "package_id() clears the info: one package for every configuration")

c.requirements()
refs = [ref for ref, _ in c.requires_seen]
expect(any(r.startswith("boost/") for r in refs), "requires boost")
expect(any(r.startswith("libcurl/") for r in refs), "requires libcurl when with_curl")
expect(any(r.startswith("sqlite3/") for r in refs), "requires sqlite3 when with_sqlite")
for ref, kw in c.requires_seen:
    expect(kw.get("transitive_headers"), f"{ref}: transitive_headers (our headers include it)")

calls.clear()
c.export_sources()
exported = [args[1] for name, args, _ in calls if name == "copy"]
expect("include/*" in exported, "export_sources() exports include/")
expect(all(os.path.abspath(args[2]) == root for name, args, _ in calls if name == "copy"),
       "export_sources() copies from the repository root")

calls.clear()
c.package()
packaged = [(args[1], args[3]) for name, args, _ in calls if name == "copy"]
expect(("*.hpp", "/package/include") in packaged, "package() copies the headers to include/")

c.package_info()
ci = c.cpp_info
expect(ci.get_property("cmake_file_name") == "syncvault", "find_package(syncvault) file name")
expect(ci.bindirs == [] and ci.libdirs == [], "no bin or lib dirs: header-only")
expect(set(ci.components) == {"syncvault", "curl", "sqlite"}, f"components: {sorted(ci.components)}")
targets = {name: comp.get_property("cmake_target_name") for name, comp in ci.components.items()}
expect(targets == {"syncvault": "syncvault::syncvault", "curl": "syncvault::curl", "sqlite": "syncvault::sqlite"},
       f"component targets match the CMake package's: {targets}")
expect(ci.get_property("cmake_target_name") not in targets.values(),
       "the aggregate target does not shadow a component target")
for name, comp in ci.components.items():
    expect(comp.bindirs == [] and comp.libdirs == [], f"component {name}: no bin or lib dirs")
core = ci.components["syncvault"]
expect({"boost::headers", "boost::json", "boost::url"} <= set(core.requires), "core needs Boost headers, JSON, URL")
expect("libcurl::curl" in ci.components["curl"].requires and "syncvault" in ci.components["curl"].requires,
       "curl component: libcurl and the core")
expect("sqlite3::sqlite" in ci.components["sqlite"].requires and "syncvault" in ci.components["sqlite"].requires,
       "sqlite component: SQLite and the core")

# The options take components and requirements away.
c = make(Recipe, os.path.join(root, "conan"), with_curl=False, with_sqlite=False)
c.requirements()
refs = [ref for ref, _ in c.requires_seen]
expect(not any(r.startswith(("libcurl/", "sqlite3/")) for r in refs), "no libcurl or sqlite3 when off")
c.package_info()
expect(set(c.cpp_info.components) == {"syncvault"}, "only the core component when both are off")

# ---- the test_package -------------------------------------------------------------------------

_, TestPackage = import_recipe(os.path.join(root, "conan", "test_package", "conanfile.py"), "syncvault_test_package")
t = make(TestPackage, os.path.join(root, "conan", "test_package"))
expect(getattr(TestPackage, "test_type", None) == "explicit", "test_package: test_type explicit")
expect({"CMakeDeps", "CMakeToolchain"} <= set(TestPackage.generators), "test_package: CMakeDeps and CMakeToolchain")
t.requirements()
expect([ref for ref, _ in t.requires_seen] == ["syncvault/0.1.0"], "test_package requires the tested reference")
calls.clear()
t.layout()
t.build()
t.test()
names = [name for name, _, _ in calls]
expect(names == ["cmake_layout", "CMake.configure", "CMake.build", "run"], f"test_package steps: {names}")
cmakelists = open(os.path.join(root, "conan", "test_package", "CMakeLists.txt"), encoding="utf-8").read()
expect(re.search(r"find_package\(syncvault CONFIG REQUIRED\)", cmakelists), "test_package: find_package(syncvault CONFIG)")

print("conan recipe and test_package: ok")
