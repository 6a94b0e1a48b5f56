"""bitnet_mlir.compile(): the compiler library, as bitnet-compile uses it."""

import os
import warnings

from . import _native

_EMITS = ("so", "obj", "mlir", "llvm")
_TEXT_EMITS = ("mlir", "llvm")
_EXTENSIONS = {"so": ".so", "obj": ".o", "mlir": ".mlir", "llvm": ".ll"}
_WEIGHT_FORMATS = ("int8", "i2", "base3")
_MLIR_STAGES = ("input", "linalg", "bufferized", "llvm")


class CompileWarning(UserWarning):
    """Diagnostics (warnings, remarks) of a compilation that succeeded."""


def _path(value, what):
    try:
        return os.fsdecode(os.fspath(value))
    except TypeError:
        raise TypeError(
            f"{what} must be a str or os.PathLike, got {type(value).__name__}"
        ) from None


def _optional_str(value, what):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str or None, got {type(value).__name__}")
    return value


def _choice(value, what, choices):
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {what}={value!r} (expected {expected})")
    return value


def compile(path, output=None, target=None, cpu=None, emit="so",
            weight_format=None, entry=None, opt_level=2, *, features=None,
            mlir_stage=None, linker=None, kernels=None, float_weights=None,
            kv_cache=None, last_token_logits=False):
    """Compiles the model at `path` (a .mlir file) like bitnet-compile.

    emit:          "so" (a loadable model, the default), "obj", "mlir" or
                   "llvm" (LLVM IR after optimisation).
    output:        where to write. None writes "so"/"obj" next to the input
                   (model.mlir -> model.so / model.o) and, for "mlir"/"llvm",
                   returns the text instead of writing a file.
    target, cpu:   target triple and CPU (default: this machine); features
                   adds target features, e.g. "-avx512f".
    weight_format: re-encode ternary weights as "int8", "i2" or "base3".
    entry:         the entry function (default: the only public function).
    opt_level:     LLVM optimisation level, 0 to 3.
    mlir_stage:    with emit="mlir": "input" (default), "linalg",
                   "bufferized" or "llvm".
    linker:        compiler driver that links shared objects (default: cc
                   for this machine, clang with lld for other targets).
    kernels:       kernels for linear layers with constant weights: "auto"
                   (the best the target has, the default), "reference" (the
                   reference lowering only) or an instruction set
                   ("avx512vnni").
    float_weights: precision of embedding and head weights: "f32" (the
                   default), "f16", "bf16", "int8" (one scale per row) or
                   "w8a8" (int8, and dense layers quantise their input to
                   int8).
    kv_cache:      element type of a decoder's KV caches: "f16" (the
                   default) or "f32".
    last_token_logits: compute a decoder step's logits for its last token
                   only (a prefill build).

    The defaults, and the checks of every option, are bitnet-compile's (one
    function of the compiler library).

    Returns the output path, or the text for emit="mlir"/"llvm" without an
    output. Raises CompileError, whose message holds the compiler's located
    diagnostics (also in `.diagnostics`). Warnings of a successful
    compilation are issued as CompileWarning. The GIL is released while the
    compiler runs.
    """
    path = _path(path, "path")
    _choice(emit, "emit", _EMITS)
    if weight_format is not None:
        _choice(weight_format, "weight_format", _WEIGHT_FORMATS)
    if mlir_stage is not None:
        _choice(mlir_stage, "mlir_stage", _MLIR_STAGES)
        if emit != "mlir":
            raise ValueError(f"mlir_stage needs emit='mlir', not emit={emit!r}")
    if isinstance(opt_level, bool) or not isinstance(opt_level, int):
        raise TypeError(f"opt_level must be an int, got {type(opt_level).__name__}")
    if not 0 <= opt_level <= 3:
        raise ValueError(f"opt_level must be 0 to 3, got {opt_level}")

    if output is not None:
        output = _path(output, "output")
    elif emit not in _TEXT_EMITS:
        if path == "-":
            raise ValueError(f"emit={emit!r} from standard input needs an output path")
        output = os.path.splitext(path)[0] + _EXTENSIONS[emit]

    text, diagnostics = _native.compile(
        path, output, emit, mlir_stage or "input",
        _optional_str(entry, "entry"), weight_format or "",
        _optional_str(target, "target"), _optional_str(cpu, "cpu"),
        _optional_str(features, "features"), opt_level,
        _optional_str(linker, "linker"), _optional_str(kernels, "kernels"),
        _optional_str(float_weights, "float_weights"),
        _optional_str(kv_cache, "kv_cache"), bool(last_token_logits))
    if diagnostics:
        warnings.warn(diagnostics.rstrip("\n"), CompileWarning, stacklevel=2)
    return text if output is None else output
