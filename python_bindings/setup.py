"""Builds the bitnet_mlir package with the project's CMake build.

pyproject.toml names setuptools as the build backend; this file gives it a
build_ext that, instead of compiling sources itself:

1. configures a build tree of the whole project, or reuses the one named by
   $BITNET_BUILD_DIR (already configured, for the same Python version);
2. builds the native module and the runtime (`cmake --build --target
   bitnet_mlir bitnet_rt`);
3. installs them (`cmake --install --component python|runtime_library`) into a
   staging prefix, so the native module's RPATH is the installed one;
4. puts the native module and libbitnet_rt.so.0 (which it finds beside
   itself, through $ORIGIN) into the wheel's bitnet_mlir/.

libMLIR and libLLVM stay the distribution's (/usr/lib/llvm-22/lib, in the
module's RPATH). A fresh build is configured with
-DBITNET_ENABLE_TESTS=OFF -DBITNET_ENABLE_BENCHMARKS=OFF for the Python that
runs pip; $BITNET_CMAKE_ARGS adds arguments, and CMAKE_BUILD_PARALLEL_LEVEL
sets the number of jobs. With $BITNET_BUILD_DIR, setuptools' own scratch
files go under that build tree, not into the sources.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LLVM_PREFIX = Path("/usr/lib/llvm-22")


def project_version():
    text = (ROOT / "CMakeLists.txt").read_text()
    match = re.search(r"project\(\s*bitnet-mlir\s+VERSION\s+([0-9.]+)", text)
    if not match:
        sys.exit("setup.py: no project(bitnet-mlir VERSION ...) in " + str(ROOT / "CMakeLists.txt"))
    return match.group(1)


def reused_build_dir():
    value = os.environ.get("BITNET_BUILD_DIR")
    if not value:
        return None
    path = Path(value).resolve()
    if not (path / "CMakeCache.txt").is_file():
        sys.exit(f"setup.py: BITNET_BUILD_DIR={value} is not a configured CMake build tree "
                 "(no CMakeCache.txt)")
    return path


def run(command):
    print("setup.py: " + shlex.join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], check=True)


class CMakeBuild(build_ext):
    """Builds bitnet_mlir._native (and libbitnet_rt) with CMake."""

    def build_extension(self, ext):
        build_dir = reused_build_dir()
        if build_dir is None:
            build_dir = Path(self.build_temp).resolve() / "cmake"
            if not (build_dir / "CMakeCache.txt").is_file():
                configure = ["cmake", "-S", ROOT, "-B", build_dir,
                             "-DCMAKE_BUILD_TYPE=Release",
                             f"-DMLIR_DIR={LLVM_PREFIX}/lib/cmake/mlir",
                             f"-DPython3_EXECUTABLE={sys.executable}",
                             "-DBITNET_ENABLE_TESTS=OFF",
                             "-DBITNET_ENABLE_BENCHMARKS=OFF"]
                if shutil.which("ninja"):
                    configure += ["-G", "Ninja"]
                configure += shlex.split(os.environ.get("BITNET_CMAKE_ARGS", ""))
                run(configure)
        run(["cmake", "--build", build_dir, "--target", "bitnet_mlir", "bitnet_rt"])

        stage = Path(self.build_temp).resolve() / "stage"
        shutil.rmtree(stage, ignore_errors=True)
        for component in ("python", "runtime_library"):
            run(["cmake", "--install", build_dir, "--prefix", stage,
                 "--component", component])

        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        natives = sorted(stage.glob("**/bitnet_mlir/_native*.so"))
        if not natives:
            sys.exit(f"setup.py: the build tree {build_dir} installed no bitnet_mlir native "
                     "module (is BITNET_ENABLE_PYTHON on, with python3-dev and pybind11-dev?)")
        native = natives[0]
        if not native.name.endswith(suffix):
            sys.exit(f"setup.py: {native.name} was built for another Python than "
                     f"{sys.executable} (which loads *{suffix}); reconfigure the build tree with "
                     f"-DPython3_EXECUTABLE={sys.executable}")
        runtime = sorted(stage.glob("lib*/**/libbitnet_rt.so.0")) + sorted(stage.glob("lib*/libbitnet_rt.so.0"))
        if not runtime:
            sys.exit(f"setup.py: the build tree {build_dir} installed no libbitnet_rt.so.0")

        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(native, target)
        shutil.copyfile(runtime[0].resolve(), target.parent / "libbitnet_rt.so.0")


# Scratch files (build/, *.egg-info) under the reused build tree when there
# is one, so that the sources stay clean.
options = {}
if reused_build_dir() is not None:
    scratch = reused_build_dir() / "python_wheel"
    scratch.mkdir(exist_ok=True)
    options = {"build": {"build_base": str(scratch)},
               "egg_info": {"egg_base": str(scratch)}}

setup(
    version=project_version(),
    ext_modules=[Extension("bitnet_mlir._native", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    options=options,
)
