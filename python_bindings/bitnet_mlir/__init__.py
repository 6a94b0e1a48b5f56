"""bitnet_mlir: compile BitNet b1.58 models and run them from Python.

    import numpy as np
    import bitnet_mlir

    so = bitnet_mlir.compile("examples/bitlinear.mlir", "bitlinear.so")
    model = bitnet_mlir.load(so)
    y = model.run(np.ones((2, 8), np.float32))

compile() runs the same library pipeline as the bitnet-compile tool; load()
and Model.run() go through libbitnet_rt, the C runtime, and so does
Model.generate() (text from a compiled decoder, as bitnet-generate makes it,
with the runtime's tokenizer and sampler; stream=True yields it in pieces). Errors are
exceptions: CompileError (with the compiler's located diagnostics),
RuntimeError (a runtime status, with its code), and TypeError / ValueError
for arguments that do not fit a model.
"""

from . import _native
from ._native import CompileError, Error, RuntimeError  # noqa: A004
from ._compile import CompileWarning, compile  # noqa: A004
from ._model import Model, PoolStats, TensorSpec, load
from ._profile import KernelStats, Profiler

__version__ = _native.runtime_version
#: The producer string compiled models carry, e.g. "bitnet-compile 0.1.0".
producer = _native.producer


def default_num_threads():
    """Threads load() uses when `threads` is None: one per online core."""
    return _native.default_num_threads()


__all__ = [
    "CompileError",
    "CompileWarning",
    "Error",
    "KernelStats",
    "Model",
    "PoolStats",
    "Profiler",
    "RuntimeError",
    "TensorSpec",
    "compile",
    "default_num_threads",
    "load",
    "producer",
]
