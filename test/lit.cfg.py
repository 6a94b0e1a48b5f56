# -*- Python -*-
# The lit suite of bitnet-mlir: every .mlir test of the compiler.

import os

import lit.formats
from lit.llvm import llvm_config

config.name = "BITNET"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "README.md", "lit.cfg.py", "lit.site.cfg.py", "Inputs", "unit", "backend", "torch"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.bitnet_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

# Tools: ours first, then LLVM's (FileCheck, not, count, split-file).
tool_dirs = [config.bitnet_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(["bitnet-opt", "bitnet-compile", "bitnet-run"], tool_dirs)
llvm_config.with_environment("PATH", config.bitnet_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
config.substitutions.append(("%bitnet_src_root", config.bitnet_src_root))
# Debian's Python, which has numpy (the checkpoint tests write their files).
config.substitutions.append(("%python", "/usr/bin/python3"))

# ptxas assembles the PTX of the GPU tests where a CUDA toolkit is installed.
import os as _os
_cuda = _os.environ.get("CUDA_HOME", "/usr/local/cuda")
if _os.access(_os.path.join(_cuda, "bin", "ptxas"), _os.X_OK):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", _os.path.join(_cuda, "bin", "ptxas")))
    config.substitutions.append(("%cuda_path", _cuda))

# The host offers two kernel families for bitlinear layers (MAD and LUT:
# AVX-512 VNNI and VBMI): what bitnet-compile --tune chooses between.
try:
    with open("/proc/cpuinfo") as _f:
        _flags = next((l for l in _f if l.startswith("flags")), "").split()
    if "avx512_vnni" in _flags and "avx512vbmi" in _flags:
        config.available_features.add("host-avx512-lut")
except OSError:
    pass
