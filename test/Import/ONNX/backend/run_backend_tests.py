#!/usr/bin/env python3
"""Runs ONNX's own backend node tests through bitnet-compile.

For every case in ONNX's test data (libonnx-testdata: <case>/model.onnx and
test_data_set_0/{input,output}_N.pb) the model is compiled to a shared object,
loaded with ctypes through the model ABI (runtime/include/bitnet_rt/
model_abi.h), run on the stored inputs and compared with the stored outputs.

Every case is compiled. A case counts as
  passed       when its outputs match,
  failed       when the compiler crashes or errs for another reason, or the
               outputs differ,
  unsupported  when the compiler rejects an operator, an operator version,
               an attribute or an element type with its "... is not
               supported" diagnostic,
  excluded     by rule only: training operators, non-tensor values
               (sequences, maps, optionals) and strings.

Compiled models need static shapes, so graph inputs that feed a shape-like
operand (Reshape's shape, Slice's starts/ends/axes/steps, ...) are frozen
into initialisers with the case's own values before compiling; the summary
says which.

Prints passed/failed/unsupported/excluded per operator and exits non-zero when a case
fails (or, with --expect-min-passed N, when fewer than N pass).
"""

import argparse
import collections
import concurrent.futures
import ctypes
import os
import re
import subprocess
import sys
import tempfile
import threading

import numpy as np
import onnx
from onnx import defs, numpy_helper

# Cases outside what an inference compiler takes, excluded by rule (never
# compiled): training operators, and graphs whose inputs or outputs are not
# tensors (sequences, maps, optionals) or are strings.
EXCLUDED_DOMAINS = {"ai.onnx.preview.training"}

# Diagnostics by which the compiler rejects an operator, an operator version,
# an attribute or an element type it does not implement: such a case counts
# as unsupported, any other compile error as a failure.
UNSUPPORTED = re.compile(r"not supported|do not support|unsupported")

# (op, input index) that must be compile-time constants.
SHAPE_OPERANDS = {
    ("Reshape", 1), ("Expand", 1), ("ConstantOfShape", 0), ("Slice", 1),
    ("Slice", 2), ("Slice", 3), ("Slice", 4), ("Unsqueeze", 1),
    ("Squeeze", 1), ("Range", 0), ("Range", 1), ("Range", 2), ("Split", 1),
    ("ReduceSum", 1),
    # Tile repeats, Pad pads, OneHot depth, TopK K, Compress condition and
    # NonZero input (result sizes), CumSum axis.
    ("Tile", 1), ("Pad", 1), ("OneHot", 1), ("TopK", 1), ("Compress", 1),
    ("NonZero", 0), ("CumSum", 1),
    ("Resize", 1), ("Resize", 2), ("Resize", 3), ("Upsample", 1),
    ("MaxUnpool", 2),
    # Not shapes, but what decides whether Dropout is the identity.
    ("Dropout", 1), ("Dropout", 2),
}


class TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32),
                ("rank", ctypes.c_int32),
                ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("flags", ctypes.c_int32), ("min_value", ctypes.c_int64),
                ("max_value", ctypes.c_int64)]


class ModelInfo(ctypes.Structure):
    _fields_ = [("magic", ctypes.c_uint32), ("abi_version", ctypes.c_uint32),
                ("name", ctypes.c_char_p), ("producer", ctypes.c_char_p),
                ("target", ctypes.c_char_p), ("num_inputs", ctypes.c_int32),
                ("num_outputs", ctypes.c_int32),
                ("inputs", ctypes.POINTER(TensorInfo)),
                ("outputs", ctypes.POINTER(TensorInfo)),
                ("workspace_bytes", ctypes.c_int64),
                ("workspace_alignment", ctypes.c_int64),
                ("cpu_features", ctypes.c_char_p)]


MAGIC = 0x4D4E5442

# bitnet_dtype (model_abi.h) -> the numpy dtype of its buffers. bf16 values
# travel as their 16-bit patterns, as ONNX's test data stores them.
NUMPY_DTYPES = {
    1: np.float32, 2: np.float16, 3: np.uint16, 4: np.float64, 5: np.int8,
    6: np.int16, 7: np.int32, 8: np.int64, 9: np.uint8, 10: np.bool_,
    11: np.uint16, 12: np.uint32, 13: np.uint64,
}


def numpy_dtype(info):
    if info.dtype not in NUMPY_DTYPES:
        raise RuntimeError("tensor %s has unknown dtype %d" %
                           (info.name.decode(), info.dtype))
    return np.dtype(NUMPY_DTYPES[info.dtype])


def abi_version():
    """BITNET_MODEL_ABI_VERSION of the tree this script belongs to."""
    header = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                          "..", "..", "..", "runtime", "include", "bitnet_rt",
                          "model_abi.h")
    with open(header) as f:
        for line in f:
            if line.startswith("#define BITNET_MODEL_ABI_VERSION"):
                return int(line.split()[2].rstrip("uU"))
    raise RuntimeError("no BITNET_MODEL_ABI_VERSION in " + header)


ABI_VERSION = abi_version()


def run_compiled(so_path, inputs, expected_dtypes):
    """Loads a compiled model, runs it once and returns its outputs."""
    lib = ctypes.CDLL(so_path, mode=os.RTLD_LOCAL | os.RTLD_NOW)
    info = ModelInfo.in_dll(lib, "bitnet_model_info")
    if info.magic != MAGIC or info.abi_version != ABI_VERSION:
        raise RuntimeError("bad magic or ABI version")
    run = lib.bitnet_model_run
    run.restype = ctypes.c_int32
    run.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p,
                    ctypes.c_void_p]
    if info.num_inputs != len(inputs):
        raise RuntimeError("model has %d inputs, test has %d" %
                           (info.num_inputs, len(inputs)))
    arrays = []
    for i in range(info.num_inputs):
        t = info.inputs[i]
        name = t.name.decode()
        if name not in inputs:
            raise RuntimeError("no test input named " + name)
        shape = tuple(t.shape[k] for k in range(t.rank))
        a = np.require(inputs[name], requirements="C")
        if a.dtype != numpy_dtype(t):
            raise RuntimeError("input %s: model dtype %s, test dtype %s" %
                               (name, numpy_dtype(t), a.dtype))
        if a.shape != shape and a.size == int(np.prod(shape)):
            a = a.reshape(shape)
        if a.shape != shape:
            raise RuntimeError("input %s: model shape %s, test shape %s" %
                               (name, shape, a.shape))
        arrays.append(a)
    outputs = []
    for i in range(info.num_outputs):
        t = info.outputs[i]
        shape = tuple(t.shape[k] for k in range(t.rank))
        if numpy_dtype(t) != expected_dtypes[i]:
            raise RuntimeError("output %d: model dtype %s, test dtype %s" %
                               (i, numpy_dtype(t), expected_dtypes[i]))
        outputs.append(np.zeros(shape, dtype=expected_dtypes[i]))
    buffers = (ctypes.c_void_p * (len(arrays) + len(outputs)))(
        *[a.ctypes.data for a in arrays + outputs])
    ws = np.zeros(max(info.workspace_bytes, 1) + info.workspace_alignment,
                  dtype=np.uint8)
    addr = ws.ctypes.data
    align = max(info.workspace_alignment, 1)
    addr = (addr + align - 1) // align * align
    rc = run(buffers, ctypes.c_void_p(addr), None)
    if rc != 0:
        raise RuntimeError("bitnet_model_run returned %d" % rc)
    return outputs


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t


def classify(model):
    """Returns (ops, None) for a case to compile, else (ops, the rule that
    excludes it)."""
    ops = [node.op_type for node in model.graph.node]
    for node in model.graph.node:
        if node.domain in EXCLUDED_DOMAINS:
            return ops, "training operator %s" % node.op_type
    for v in list(model.graph.input) + list(model.graph.output):
        if not v.type.HasField("tensor_type"):
            return ops, "non-tensor value %s" % v.name
        if v.type.tensor_type.elem_type == onnx.TensorProto.STRING:
            return ops, "string value %s" % v.name
    return ops, None


def run_case(case_dir, compiler, work, flags=()):
    """Returns (status, ops, message)."""
    name = os.path.basename(case_dir)
    model = onnx.load(os.path.join(case_dir, "model.onnx"))
    ops, reason = classify(model)
    if reason:
        return "excluded", ops, reason
    data_dir = os.path.join(case_dir, "test_data_set_0")
    if not os.path.isdir(data_dir):
        return "failed", ops, "no test_data_set_0"
    init_names = {t.name for t in model.graph.initializer}
    graph_inputs = [v for v in model.graph.input if v.name not in init_names]
    inputs = {}
    for k, v in enumerate(graph_inputs):
        p = os.path.join(data_dir, "input_%d.pb" % k)
        if not os.path.exists(p):
            return "failed", ops, "missing input_%d.pb" % k
        inputs[v.name] = numpy_helper.to_array(load_pb(p))
    expected = []
    for k in range(len(model.graph.output)):
        p = os.path.join(data_dir, "output_%d.pb" % k)
        expected.append(numpy_helper.to_array(load_pb(p)))
    # Freeze graph inputs that (through any chain of nodes) feed a shape
    # operand: compiled models need those values at compile time.
    producer = {o: node for node in model.graph.node for o in node.output}
    frozen = []
    stack = [inp for node in model.graph.node
             for k, inp in enumerate(node.input)
             if (node.op_type, k) in SHAPE_OPERANDS]
    seen = set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in inputs:
            frozen.append(v)
        elif v in producer:
            stack.extend(producer[v].input)
    if frozen:
        for inp in frozen:
            model.graph.initializer.append(
                numpy_helper.from_array(inputs.pop(inp), inp))
            keep = [v for v in model.graph.input if v.name != inp]
            del model.graph.input[:]
            model.graph.input.extend(keep)
    # Inputs with symbolic or unknown dimensions get the test data's shape.
    shape_flags = []
    for v in model.graph.input:
        dims = v.type.tensor_type.shape.dim
        if v.name in inputs and any(not d.HasField("dim_value") for d in dims):
            shape_flags.append("--input-shape=%s:%s" % (
                v.name, "x".join(str(n) for n in inputs[v.name].shape)))
    flags = list(flags) + shape_flags
    # A few cases declare an input shape their own data does not have
    # (castlike's bf16 "like" operand); the data's shape is the one compiled.
    reshaped = []
    for v in model.graph.input:
        if v.name not in inputs or not v.type.HasField("tensor_type"):
            continue
        data_shape = inputs[v.name].shape
        dims = v.type.tensor_type.shape.dim
        declared = [d.dim_value if d.HasField("dim_value") else None
                    for d in dims]
        if (v.type.tensor_type.HasField("shape") and None not in declared
                and tuple(declared) != data_shape):
            del dims[:]
            for d in data_shape:
                dims.add().dim_value = d
            reshaped.append(v.name)
    model_path = os.path.join(work, name + ".onnx")
    onnx.save(model, model_path)
    so_path = os.path.join(work, name + ".so")
    try:
        proc = subprocess.run([compiler, model_path, "-o", so_path, *flags],
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "failed", ops, "compile timed out"
    if proc.returncode != 0:
        errors = [l for l in proc.stderr.splitlines() if "error:" in l]
        first = errors[0] if errors else proc.stderr.strip()[-300:]
        if proc.returncode > 0 and UNSUPPORTED.search(first):
            return "unsupported", ops, first.split("error:", 1)[-1].strip()
        return "failed", ops, "compile failed (exit %d):\n%s" % (
            proc.returncode, proc.stderr[-3000:])
    note = " (frozen: %s)" % ", ".join(frozen) if frozen else ""
    if reshaped:
        note += " (input shape from the data: %s)" % ", ".join(reshaped)
    try:
        outputs = run_compiled(so_path, inputs, [e.dtype for e in expected])
    except Exception as e:  # report, never stop the run
        return "failed", ops, "run failed: %s" % e
    rtol, atol = 1e-3, 1e-5
    tol_file = os.path.join(case_dir, "tolerance")
    if os.path.exists(tol_file):
        with open(tol_file) as f:
            words = f.read().split()
        rtol, atol = (0.0, 0.0) if words[0] == "exact" else map(float, words[:2])
    for k, (got, want) in enumerate(zip(outputs, expected)):
        if got.shape != want.shape:
            return "failed", ops, "output %d: shape %s, expected %s" % (
                k, got.shape, want.shape)
        if want.dtype.kind == "f":
            ok = np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        else:
            ok = np.array_equal(got, want)
        if not ok:
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            return "failed", ops, "output %d differs (max abs diff %g)\n got %s\nwant %s" % (
                k, np.nanmax(diff) if diff.size else 0, got.ravel()[:8],
                want.ravel()[:8])
    return "passed", ops, note


class GPURuntime:
    """libbitnet_rt through ctypes, for models compiled with --target=nvptx:
    the runtime, not the model, talks to the CUDA driver (or to the driver
    emulator that $BITNET_CUDA_DRIVER names)."""

    def __init__(self, path):
        lib = ctypes.CDLL(path, mode=os.RTLD_LOCAL | os.RTLD_NOW)
        vp, pvp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
        for name, res, args in (
                ("bitnet_model_load", vp, [ctypes.c_char_p, pvp]),
                ("bitnet_model_release", None, [vp]),
                ("bitnet_model_get_info", ctypes.POINTER(ModelInfo), [vp]),
                ("bitnet_context_create", vp, [vp, vp, pvp]),
                ("bitnet_context_free", None, [vp]),
                ("bitnet_context_run", vp, [vp, pvp, ctypes.c_int32, pvp,
                                            ctypes.c_int32]),
                ("bitnet_status_message", ctypes.c_char_p, [vp]),
                ("bitnet_status_free", None, [vp])):
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        self.lib = lib
        # The emulator runs a launch's blocks on this thread: one run at a
        # time keeps the runner's threads from sharing it.
        self.lock = threading.Lock()

    def check(self, status, what):
        if status:
            msg = self.lib.bitnet_status_message(status).decode()
            self.lib.bitnet_status_free(status)
            raise RuntimeError("%s: %s" % (what, msg))

    def run(self, so_path, inputs, expected_dtypes):
        lib = self.lib
        with self.lock:
            model = ctypes.c_void_p()
            self.check(lib.bitnet_model_load(so_path.encode(),
                                             ctypes.byref(model)),
                       "loading the GPU model")
            ctx = ctypes.c_void_p()
            try:
                info = lib.bitnet_model_get_info(model).contents
                arrays = []
                for i in range(info.num_inputs):
                    t = info.inputs[i]
                    shape = tuple(t.shape[k] for k in range(t.rank))
                    a = np.require(inputs[t.name.decode()],
                                   requirements="C")
                    arrays.append(a.reshape(shape))
                outputs = []
                for i in range(info.num_outputs):
                    t = info.outputs[i]
                    shape = tuple(t.shape[k] for k in range(t.rank))
                    outputs.append(np.zeros(shape, dtype=expected_dtypes[i]))
                ins = (ctypes.c_void_p * max(len(arrays), 1))(
                    *[a.ctypes.data for a in arrays])
                outs = (ctypes.c_void_p * max(len(outputs), 1))(
                    *[o.ctypes.data for o in outputs])
                self.check(lib.bitnet_context_create(model, None,
                                                     ctypes.byref(ctx)),
                           "creating a context")
                self.check(lib.bitnet_context_run(ctx, ins, len(arrays), outs,
                                                  len(outputs)),
                           "running on the GPU")
                return outputs
            finally:
                if ctx:
                    lib.bitnet_context_free(ctx)
                lib.bitnet_model_release(model)


def outputs_match(outputs, expected, case_dir):
    """None when `outputs` match `expected` within the case's tolerance (as
    run_case compares), else what differs."""
    rtol, atol = 1e-3, 1e-5
    tol_file = os.path.join(case_dir, "tolerance")
    if os.path.exists(tol_file):
        with open(tol_file) as f:
            words = f.read().split()
        rtol, atol = (0.0, 0.0) if words[0] == "exact" else map(float, words[:2])
    for k, (got, want) in enumerate(zip(outputs, expected)):
        if got.shape != want.shape:
            return "output %d: shape %s, expected %s" % (k, got.shape,
                                                          want.shape)
        if want.dtype.kind == "f":
            ok = np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        else:
            ok = np.array_equal(got, want)
        if not ok:
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            return "output %d differs (max abs diff %g)\n got %s\nwant %s" % (
                k, np.nanmax(diff) if diff.size else 0, got.ravel()[:8],
                want.ravel()[:8])
    return None


def run_case_gpu(case_dir, compiler, work, flags, runtime):
    """The GPU column: a case that passed on the CPU (its frozen model is in
    `work`) compiled with --target=nvptx --gpu-emulation and run through
    libbitnet_rt. Returns (status, message)."""
    name = os.path.basename(case_dir)
    model_path = os.path.join(work, name + ".onnx")
    model = onnx.load(os.path.join(case_dir, "model.onnx"))
    frozen = onnx.load(model_path)
    init_names = {t.name for t in model.graph.initializer}
    still_inputs = {v.name for v in frozen.graph.input}
    data_dir = os.path.join(case_dir, "test_data_set_0")
    inputs = {}
    graph_inputs = [v for v in model.graph.input if v.name not in init_names]
    for k, v in enumerate(graph_inputs):
        if v.name in still_inputs:
            inputs[v.name] = numpy_helper.to_array(
                load_pb(os.path.join(data_dir, "input_%d.pb" % k)))
    expected = [numpy_helper.to_array(
        load_pb(os.path.join(data_dir, "output_%d.pb" % k)))
        for k in range(len(model.graph.output))]
    so_path = os.path.join(work, name + ".gpu.so")
    try:
        proc = subprocess.run([compiler, model_path, "-o", so_path,
                               "--target=nvptx", "--gpu-emulation", *flags],
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "failed", "GPU compile timed out"
    if proc.returncode != 0:
        errors = [l for l in proc.stderr.splitlines() if "error:" in l]
        first = errors[0] if errors else proc.stderr.strip()[-300:]
        if proc.returncode > 0 and UNSUPPORTED.search(first):
            return "unsupported", first.split("error:", 1)[-1].strip()
        return "failed", "GPU compile failed (exit %d):\n%s" % (
            proc.returncode, proc.stderr[-3000:])
    try:
        outputs = runtime.run(so_path, inputs, [e.dtype for e in expected])
    except Exception as e:  # report, never stop the run
        return "failed", "GPU run failed: %s" % e
    diff = outputs_match(outputs, expected, case_dir)
    return ("failed", "GPU " + diff) if diff else ("passed", "")


def gpu_column(args, cases, results, work):
    """Runs the GPU column (--gpu) over the cases that passed on the CPU;
    returns a function that prints it and returns its failure count."""
    build = os.path.dirname(os.path.dirname(os.path.abspath(args.compiler)))
    runtime_lib = args.runtime or os.path.join(build, "runtime",
                                               "libbitnet_rt.so")
    driver = args.cuda_driver or os.environ.get("BITNET_CUDA_DRIVER") or \
        os.path.join(build, "runtime", "libbitnet_cuda_emulator.so")
    os.environ["BITNET_CUDA_DRIVER"] = driver
    runtime = GPURuntime(runtime_lib)
    passed = [c for c in cases if results[c][0] == "passed"]
    passed = passed[::max(args.gpu_every, 1)]
    gpu = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run_case_gpu, os.path.join(args.data, c),
                               args.compiler, work, args.flag, runtime): c
                   for c in passed}
        for f in concurrent.futures.as_completed(futures):
            try:
                gpu[futures[f]] = f.result()
            except Exception as e:
                gpu[futures[f]] = ("failed", "runner error: %s" % e)
    return lambda: print_gpu_column(args, passed, results, gpu, driver)


def print_gpu_column(args, passed, results, gpu, driver):
    counts = collections.Counter()
    per_op = collections.defaultdict(collections.Counter)
    reasons = collections.Counter()
    for c in passed:
        status, msg = gpu[c]
        counts[status] += 1
        for op in sorted(set(results[c][1])):
            per_op[op][status] += 1
        if status == "failed":
            print("GPU FAIL %s [%s]: %s" % (c, " ".join(sorted(set(
                results[c][1]))), msg))
        elif status == "unsupported":
            reasons[msg] += 1
            if args.verbose:
                print("GPU UNSU %s: %s" % (c, msg))
    if reasons:
        print("\nGPU unsupported cases, by diagnostic:")
        for msg, k in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            print("  %3d  %s" % (k, msg))
    columns = ("passed", "failed", "unsupported")
    print("\n%-26s" % "GPU operator" + "".join("%12s" % c for c in columns))
    for op in sorted(per_op):
        print("%-26s" % op + "".join("%12d" % per_op[op][c] for c in columns))
    print("\nGPU (driver %s): %d passed, %d failed, %d unsupported (of the "
          "%d passed on the CPU)" % (os.path.basename(driver),
                                     counts["passed"], counts["failed"],
                                     counts["unsupported"], len(passed)))
    return counts["failed"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--compiler", required=True, help="bitnet-compile")
    ap.add_argument("--data", default="/usr/share/libonnx-testdata/data/node")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--filter", default="", help="substring of case names")
    ap.add_argument("--expect-min-passed", type=int, default=0)
    ap.add_argument("--flag", action="append", default=[],
                    help="extra bitnet-compile flag (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--gpu", action="store_true",
                    help="also compile each case that passes on the CPU with "
                    "--target=nvptx --gpu-emulation and run it through "
                    "libbitnet_rt (the GPU column)")
    ap.add_argument("--gpu-every", type=int, default=1,
                    help="with --gpu, run every Nth case that passed on the "
                         "CPU (default: all)")
    ap.add_argument("--runtime", default="",
                    help="libbitnet_rt.so for --gpu (default: "
                    "<build>/runtime/libbitnet_rt.so next to the compiler)")
    ap.add_argument("--cuda-driver", default="",
                    help="CUDA driver for --gpu (default: $BITNET_CUDA_DRIVER, "
                    "else <build>/runtime/libbitnet_cuda_emulator.so)")
    args = ap.parse_args()
    if not os.path.isdir(args.data):
        print("no ONNX test data at %s (install libonnx-testdata)" % args.data)
        return 1
    cases = sorted(d for d in os.listdir(args.data)
                   if os.path.exists(os.path.join(args.data, d, "model.onnx"))
                   and args.filter in d)
    per_op = collections.defaultdict(lambda: collections.Counter())
    results = {}
    with tempfile.TemporaryDirectory(prefix="bitnet-onnx-backend-") as work:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(run_case, os.path.join(args.data, c),
                                   args.compiler, work, args.flag): c
                       for c in cases}
            for f in concurrent.futures.as_completed(futures):
                c = futures[f]
                try:
                    results[c] = f.result()
                except Exception as e:
                    results[c] = ("failed", [], "runner error: %s" % e)
        gpu_report = gpu_column(args, cases, results, work) if args.gpu \
            else (lambda: 0)
    counts = collections.Counter()
    for c in cases:
        status, ops, msg = results[c]
        counts[status] += 1
        for op in sorted(set(ops)):
            per_op[op][status] += 1
        if status == "failed":
            print("FAIL %s [%s]: %s" % (c, " ".join(sorted(set(ops))), msg))
        elif args.verbose or (status == "passed" and msg):
            print("%s %s%s" % (status.upper()[:4], c,
                               (": " + msg) if msg else ""))
    for status in ("unsupported", "excluded"):
        reasons = collections.Counter(
            results[c][2] for c in cases if results[c][0] == status)
        if reasons:
            print("\n%s cases, by %s:" % (status.capitalize(),
                  "diagnostic" if status == "unsupported" else "rule"))
            for msg, k in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
                print("  %3d  %s" % (k, msg))
    columns = ("passed", "failed", "unsupported", "excluded")
    print("\n%-26s" % "operator" + "".join("%12s" % c for c in columns))
    for op in sorted(per_op):
        print("%-26s" % op + "".join("%12d" % per_op[op][c] for c in columns))
    print("\ncases: %d passed, %d failed, %d unsupported, %d excluded (of %d)" % (
        counts["passed"], counts["failed"], counts["unsupported"],
        counts["excluded"], len(cases)))
    gpu_failed = gpu_report()
    if counts["failed"] or gpu_failed:
        return 1
    if counts["passed"] < args.expect_min_passed:
        print("expected at least %d passing cases" % args.expect_min_passed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
