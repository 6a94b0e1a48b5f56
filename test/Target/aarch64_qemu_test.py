#!/usr/bin/env python3
"""The AArch64 NEON kernels, run under qemu-user against the reference.

Cross-compiles the runtime and bitnet-run for aarch64-linux-gnu with clang and
Debian's cross libc (/usr/aarch64-linux-gnu), compiles the same models for an
AArch64 CPU with the dot product extension twice, with the NEON (sdot)
kernels and with the reference lowering, runs both under
`qemu-aarch64 -cpu max` (the NEON build on 1 and 3 threads), and compares
their outputs:

* bitlinear layers bit for bit, on awkward shapes (K and N no multiple of the
  vector width or of the 16 x 16 blocks, K < 64, N = 1, batches that do and
  do not fill the kernel's passes of 6 tokens) and awkward values (all-zero
  and all-+-1 weights, saturated, all-zero and full-scale activations, ties);
* dense float layers and attention (the vector kernels at 4 lanes) within a
  float tolerance, as the end-to-end tests do on x86.

A build for a generic AArch64 CPU (reference lowering) run on a CPU without
the extension, and the host's reference build, must agree the same way; the
NEON build must be refused on that CPU.

Exits 77 (a ctest skip) with the reason when qemu, clang or the cross libc is
missing.
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77
try:
    import numpy as np
except ImportError:
    print("SKIPPED: %s cannot import numpy (Debian package python3-numpy)"
          % sys.executable, flush=True)
    sys.exit(SKIP)

TRIPLE = "aarch64-linux-gnu"
SYSROOT = "/usr/aarch64-linux-gnu"
# An AArch64 CPU qemu emulates without the dot product extension (ARMv8.0).
NO_DOTPROD_CPU = "cortex-a53"

# (name, M, N, K, weights, activations)
#   weights: random | sparse | zero | plus | minus | alternating
#   activations: random | zero_row | saturating | full_scale | ties | tiny
BITLINEAR_CASES = [
    ("one", 1, 1, 1, "random", "random"),
    ("k3", 2, 5, 3, "random", "random"),
    ("n1", 4, 1, 100, "random", "random"),
    ("odd", 3, 7, 13, "random", "zero_row"),
    ("k17", 1, 17, 17, "minus", "random"),
    ("k63", 5, 19, 63, "random", "ties"),
    ("block", 1, 16, 64, "random", "random"),
    ("groups", 3, 100, 70, "sparse", "random"),
    ("batch6", 6, 33, 130, "random", "random"),
    ("batch7", 7, 31, 48, "alternating", "saturating"),
    ("batch13", 13, 18, 90, "random", "zero_row"),
    ("zero_w", 2, 20, 40, "zero", "random"),
    ("plus_fs", 3, 16, 64, "plus", "full_scale"),
    ("minus_fs", 2, 33, 130, "minus", "full_scale"),
    ("plus_sat", 7, 9, 77, "plus", "saturating"),
    ("tiny", 2, 12, 31, "random", "tiny"),
    ("long_k", 1, 3, 2560, "plus", "full_scale"),
    ("wide", 2, 300, 640, "random", "random"),
    ("prefill", 8, 64, 256, "sparse", "random"),
]

# (name, M, N, K, weight precision)
DENSE_CASES = [
    ("d1", 1, 1, 1, "f32"),
    ("d2", 3, 10, 37, "f32"),
    ("d3", 2, 97, 128, "f16"),
]


def log(*args):
    print(*args, flush=True)


def skip(reason):
    log("SKIPPED: " + reason)
    sys.exit(SKIP)


def run(cmd, **kwargs):
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError("command failed (exit %d): %s\n%s" %
                           (result.returncode, " ".join(cmd), result.stdout))
    return result.stdout


def hex_dense(array, mlir_type):
    """A dense attribute of `array`'s bytes (little-endian), compact to parse."""
    data = np.ascontiguousarray(array).tobytes()
    return 'dense<"0x%s"> : %s' % (data.hex().upper(), mlir_type)


def ternary_weights(kind, n, k, rng):
    if kind == "random":
        return rng.integers(-1, 2, size=(n, k), dtype=np.int8)
    if kind == "sparse":
        return (rng.integers(-1, 2, size=(n, k)) *
                (rng.random((n, k)) < 0.3)).astype(np.int8)
    if kind == "zero":
        return np.zeros((n, k), np.int8)
    if kind == "plus":
        return np.ones((n, k), np.int8)
    if kind == "minus":
        return -np.ones((n, k), np.int8)
    if kind == "alternating":
        return np.where((np.arange(n)[:, None] + np.arange(k)) % 2, 1,
                        -1).astype(np.int8)
    raise ValueError(kind)


def activations(kind, m, k, rng):
    x = rng.standard_normal((m, k)).astype(np.float32)
    if kind == "zero_row":
        x[0] = 0.0
    elif kind == "saturating":
        # One huge value per row: it quantises to +-127, the rest to 0.
        for r in range(m):
            x[r, r % k] = -3.0e30 if r % 2 else 3.0e30
    elif kind == "full_scale":
        # Every value at +-max: every activation quantises to +-127.
        x = np.where(rng.random((m, k)) < 0.5, -2.5, 2.5).astype(np.float32)
        x[-1] = 2.5  # one row of +127 only: the largest sums
    elif kind == "ties":
        # max|x| = 127 gives s_x = 1, and x * s_x lands on .5 ties.
        i = np.arange(k)
        for r in range(m):
            x[r] = ((i * 7 + r) % 19).astype(np.float32) - 9.5
            x[r, 0] = 127.0
    elif kind == "tiny":
        # max|x| below the 1e-5 floor of the scale.
        x = (x * 1e-7).astype(np.float32)
    elif kind != "random":
        raise ValueError(kind)
    return x


def bitlinear_model(rng, inputs):
    """One function with a bitlinear layer per case, each with its input."""
    args, body, results, names = [], [], [], []
    for name, m, n, k, wkind, xkind in BITLINEAR_CASES:
        w = ternary_weights(wkind, n, k, rng)
        scale = np.float32(rng.uniform(0.01, 2.0))
        xt, yt = "tensor<%dx%dxf32>" % (m, k), "tensor<%dx%dxf32>" % (m, n)
        tt = "!bitnet.ternary<%dx%d, int8>" % (n, k)
        args.append('%%x_%s: %s {bitnet.name = "x_%s"}' % (name, xt, name))
        body.append("  %%w_%s = bitnet.constant %s -> %s" %
                    (name, hex_dense(w, "tensor<%dx%dxi8>" % (n, k)), tt))
        body.append("  %%s_%s = arith.constant dense<%r> : tensor<f32>" %
                    (name, float(scale)))
        body.append("  %%y_%s = bitnet.bitlinear %%x_%s, %%w_%s scale %%s_%s : "
                    "%s, %s, tensor<f32> -> %s" %
                    (name, name, name, name, xt, tt, yt))
        results.append(("%y_" + name, yt))
        names.append("y_" + name)
        inputs["x_" + name] = activations(xkind, m, k, rng)
    return model_text("bitlinears", args, body, results, names)


def float_model(rng, inputs):
    """Dense layers and one decoder attention step (GQA, head dim 8)."""
    args, body, results, names = [], [], [], []
    for name, m, n, k, _ in DENSE_CASES:
        w = (rng.integers(-128, 129, size=(n, k)) / 64.0).astype(np.float32)
        xt, yt = "tensor<%dx%dxf32>" % (m, k), "tensor<%dx%dxf32>" % (m, n)
        wt = "tensor<%dx%dxf32>" % (n, k)
        args.append('%%x_%s: %s {bitnet.name = "x_%s"}' % (name, xt, name))
        body.append("  %%w_%s = arith.constant %s" % (name, hex_dense(w, wt)))
        body.append("  %%y_%s = bitnet.dense_matmul %%x_%s, %%w_%s : %s, %s -> %s"
                    % (name, name, name, xt, wt, yt))
        results.append(("%y_" + name, yt))
        names.append("y_" + name)
        inputs["x_" + name] = rng.standard_normal((m, k)).astype(np.float32)
    s, hq, hkv, d, cap = 3, 4, 2, 8, 6
    shapes = {"q": (s, hq, d), "k": (s, hkv, d), "v": (s, hkv, d),
              "kc": (cap, hkv, d), "vc": (cap, hkv, d)}
    types = {key: "tensor<%sxf32>" % "x".join(map(str, shape))
             for key, shape in shapes.items()}
    for key, shape in shapes.items():
        args.append('%%%s: %s {bitnet.name = "%s"}' % (key, types[key], key))
        inputs[key] = rng.standard_normal(shape).astype(np.float32)
    args.append('%pos: tensor<i32> {bitnet.name = "pos"}')
    inputs["pos"] = np.array(2, np.int32)
    order = ["q", "k", "v", "kc", "vc"]
    body.append("  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %pos"
                " : " + ", ".join(types[key] for key in order) +
                ", tensor<i32> -> %s, %s, %s" % (types["q"], types["kc"],
                                                  types["vc"]))
    results.append(("%o", types["q"]))
    names.append("o")
    return model_text("floats", args, body, results, names)


def model_text(func, args, body, results, names):
    return ("func.func @%s(%s)\n    -> (%s)\n    attributes {bitnet.output_names"
            " = [%s]} {\n%s\n  return %s : %s\n}\n" %
            (func, ",\n    ".join(args), ", ".join(t for _, t in results),
             ", ".join('"%s"' % n for n in names), "\n".join(body),
             ", ".join(v for v, _ in results), ", ".join(t for _, t in results)))


def find_clang():
    for name in ("clang-22", "/usr/lib/llvm-22/bin/clang", "clang"):
        path = shutil.which(name)
        if path:
            return path
    return None


def check_tools(work):
    """The cross toolchain and qemu, or the reason the test cannot run."""
    qemu = shutil.which("qemu-aarch64")
    if not qemu:
        skip("qemu-aarch64 is not installed (Debian package qemu-user)")
    if not os.path.exists(os.path.join(SYSROOT, "lib", "libc.so.6")):
        skip("no AArch64 libc in %s (Debian package libc6-dev-arm64-cross)"
             % SYSROOT)
    clang = find_clang()
    if not clang:
        skip("no clang to cross-compile with (Debian package clang-22)")
    probe = os.path.join(work, "probe.c")
    with open(probe, "w") as f:
        f.write("#include <stdio.h>\nint main(void) { puts(\"ok\"); return 0; }\n")
    exe = os.path.join(work, "probe")
    result = subprocess.run(
        [clang, "--target=" + TRIPLE, "-fuse-ld=lld", probe, "-o", exe],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        skip("cannot link an AArch64 program (Debian packages "
             "libc6-dev-arm64-cross libgcc-12-dev-arm64-cross lld-22):\n"
             + result.stdout)
    result = subprocess.run(qemu_command(qemu, [exe]), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0 or result.stdout.strip() != "ok":
        skip("qemu-aarch64 cannot run an AArch64 program:\n" + result.stdout)
    return qemu, clang


def qemu_command(qemu, argv, cpu="max"):
    return [qemu, "-cpu", cpu, "-L", SYSROOT] + argv


def build_runner(clang, runtime, work):
    """bitnet-run and libbitnet_rt's sources, for AArch64, as one program.
    The tokenizer and the chat templates are left out: they need PCRE2 and
    cJSON, which have no AArch64 libraries on this machine, and bitnet-run
    does not use them."""
    sources = sorted(os.path.join(runtime, "src", f)
                     for f in os.listdir(os.path.join(runtime, "src"))
                     if f.endswith(".c") and f not in ("tokenizer.c", "chat.c"))
    sources.append(os.path.join(runtime, "tools", "bitnet-run.c"))
    objects = []
    # The version the runtime's CMakeLists.txt gives its sources.
    with open(os.path.join(runtime, "CMakeLists.txt")) as f:
        version = re.search(r"project\(bitnet_rt VERSION ([0-9.]+)",
                            f.read()).group(1)

    def compile_one(source):
        obj = os.path.join(work, os.path.basename(source) + ".o")
        run([clang, "--target=" + TRIPLE, "-O1", "-std=c11", "-D_GNU_SOURCE",
             '-DBITNET_RT_VERSION="%s"' % version,
             "-I", os.path.join(runtime, "include"), "-c", source, "-o", obj])
        return obj

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count()) as ex:
        objects = list(ex.map(compile_one, sources))
    exe = os.path.join(work, "bitnet-run-aarch64")
    run([clang, "--target=" + TRIPLE, "-fuse-ld=lld", "-o", exe] + objects +
        ["-lm", "-lpthread", "-ldl"])
    return exe


def write_inputs(inputs, directory):
    os.makedirs(directory, exist_ok=True)
    flags = []
    for name, value in inputs.items():
        path = os.path.join(directory, name + ".npy")
        np.save(path, value)
        flags += ["--input", "%s=%s" % (name, path)]
    return flags


def outputs_of(directory, names):
    return {name: np.load(os.path.join(directory, name + ".npy")) for name in names}


def compare_bits(what, expected, actual):
    """Mismatch messages of two float arrays, bit pattern for bit pattern."""
    problems = []
    for name in expected:
        a, b = expected[name], actual[name]
        if a.shape != b.shape:
            problems.append("%s %s: shape %s, expected %s" %
                            (what, name, b.shape, a.shape))
            continue
        diff = np.flatnonzero(a.view(np.uint32) != b.view(np.uint32))
        if diff.size:
            i = diff[0]
            problems.append("%s %s: %d of %d values differ, first at flat index "
                            "%d: %r, expected %r" %
                            (what, name, diff.size, a.size, i,
                             b.reshape(-1)[i], a.reshape(-1)[i]))
    return problems


def compare_near(what, expected, actual, tolerance):
    problems = []
    for name in expected:
        a, b = expected[name].astype(np.float64), actual[name].astype(np.float64)
        bound = tolerance * np.maximum(1.0, np.abs(a))
        bad = np.flatnonzero(~(np.abs(a - b) <= bound))
        if bad.size:
            i = bad[0]
            problems.append("%s %s: %d values beyond %g relative, first at %d: "
                            "%r, expected %r" %
                            (what, name, bad.size, tolerance, i,
                             b.reshape(-1)[i], a.reshape(-1)[i]))
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compiler", required=True, help="bitnet-compile")
    parser.add_argument("--runtime", required=True, help="runtime/ sources")
    parser.add_argument("--host-run", help="the host's bitnet-run")
    parser.add_argument("--cpu", default="neoverse-n1",
                        help="AArch64 CPU with the dot product extension")
    parser.add_argument("--keep", help="keep the files in this directory")
    args = parser.parse_args()

    start = time.time()
    work = args.keep or tempfile.mkdtemp(prefix="bitnet-qemu-")
    os.makedirs(work, exist_ok=True)
    try:
        qemu, clang = check_tools(work)
        problems = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
            runner_job = ex.submit(build_runner, clang, args.runtime, work)
            rng = np.random.default_rng(2024)
            models = []
            for make in (bitlinear_model, float_model):
                inputs = {}
                text = make(rng, inputs)
                func = text.split("@", 1)[1].split("(", 1)[0]
                path = os.path.join(work, func + ".mlir")
                with open(path, "w") as f:
                    f.write(text)
                names = text.split("bitnet.output_names = [", 1)[1]
                names = [n.strip(' "') for n in names.split("]", 1)[0].split(",")]
                models.append((func, path, inputs, names))

            def compile_model(path, so, flags):
                run([args.compiler, path, "--emit=so", "-o", so] + flags)
                return so

            # Builds: (name, bitnet-compile flags); runs: (build, threads,
            # qemu CPU or None for the host).
            dotprod = ["--target=" + TRIPLE, "--cpu=" + args.cpu]
            kinds = [("neon", dotprod + ["--kernels=neon"]),
                     ("reference", dotprod + ["--kernels=reference"]),
                     # No dot product extension: auto keeps the reference.
                     ("generic", ["--target=" + TRIPLE])]
            runs = [("neon", 1, "max"), ("neon", 3, "max"),
                    ("reference", 1, "max"), ("generic", 2, NO_DOTPROD_CPU)]
            if args.host_run:
                kinds.append(("host", ["--kernels=reference"]))
                runs.append(("host", 1, None))
            builds = {}
            for func, path, _, _ in models:
                for kind, flags in kinds:
                    so = os.path.join(work, "%s-%s.so" % (func, kind))
                    builds[(func, kind)] = ex.submit(compile_model, path, so,
                                                     flags)
            runner = runner_job.result()
            for func, path, inputs, names in models:
                flags = write_inputs(inputs, os.path.join(work, func + "-in"))
                outputs = {}
                for kind, threads, cpu in runs:
                    so = builds[(func, kind)].result()
                    out = os.path.join(work, "%s-%s-t%d" % (func, kind, threads))
                    argv = [so, "--quiet", "--threads", str(threads),
                            "--output-dir", out] + flags
                    if cpu is None:
                        run([args.host_run] + argv)
                    else:
                        run(qemu_command(qemu, [runner] + argv, cpu))
                    outputs[(kind, threads, cpu)] = outputs_of(out, names)
                reference = outputs.pop(("reference", 1, "max"))
                for (kind, threads, cpu), got in outputs.items():
                    what = "%s %s (%d threads, %s)" % (func, kind, threads,
                                                       cpu or "host")
                    if func == "bitlinears":
                        problems += compare_bits(what, reference, got)
                    else:
                        problems += compare_near(what, reference, got, 1e-5)
                # A CPU without the extension refuses the NEON build.
                result = subprocess.run(
                    qemu_command(qemu, [runner, builds[(func, "neon")].result(),
                                        "--quiet"] + flags, NO_DOTPROD_CPU),
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                if result.returncode != 1 or "lacks (dotprod)" not in result.stdout:
                    problems.append("%s: the NEON build on %s: exit %d, expected "
                                    "1 and a missing dotprod:\n%s" %
                                    (func, NO_DOTPROD_CPU, result.returncode,
                                     result.stdout))
        for problem in problems:
            log("FAIL: " + problem)
        log("%s: %d bitlinear layers (bit for bit), %d dense layers and one "
            "attention step (within 1e-5); NEON (1 and 3 threads), generic "
            "AArch64 and host builds against the AArch64 reference, in %.1f s" %
            ("FAILED" if problems else "passed", len(BITLINEAR_CASES),
             len(DENSE_CASES), time.time() - start))
        return 1 if problems else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as error:
        log("FAIL: %s" % error)
        sys.exit(1)
