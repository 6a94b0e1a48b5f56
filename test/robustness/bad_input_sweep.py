#!/usr/bin/env python3
"""Runs every user-facing tool on malformed models, inputs and options, and
counts how each run ends.

Each case must end in a clean error (an exit status of 1 or 2 and a message
on stderr) or, where the input is merely unusual, a success. A crash (a
signal, an abort, LLVM's "Stack dump" or "LLVM ERROR" report) or a hang (no
end within the time limit) fails the sweep, and so does a malformed input
that is accepted as if it were fine.

    bad_input_sweep.py --bin build/bin --build build
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRASH_MARKERS = ("Stack dump", "LLVM ERROR", "PLEASE submit a bug report",
                 "AddressSanitizer", "Segmentation fault", "core dumped",
                 "terminate called")


class Sweep:
    def __init__(self, bin_dir, work, timeout, env):
        self.bin = bin_dir
        self.work = work
        self.timeout = timeout
        self.env = env
        self.counts = {"error": 0, "accepted": 0, "crash": 0, "hang": 0,
                       "wrongly accepted": 0}
        self.problems = []

    def path(self, name):
        return os.path.join(self.work, name)

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def run(self, name, argv, must_fail=True, stdin=None, tool=True):
        """Runs one case; `must_fail`: the input is bad, so success is a
        defect too."""
        cmd = ([os.path.join(self.bin, argv[0])] if tool else [argv[0]]) + argv[1:]
        start = time.monotonic()
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL if stdin is None else stdin,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=self.timeout, env=self.env, cwd=self.work)
        except subprocess.TimeoutExpired:
            self.counts["hang"] += 1
            self.problems.append("HANG  %s: %s (over %d s)" % (name, " ".join(argv), self.timeout))
            return
        err = r.stderr.decode("utf-8", "replace")
        crashed = (r.returncode < 0 or r.returncode >= 128 or
                   any(m in err for m in CRASH_MARKERS))
        if crashed:
            what = ("signal %s" % signal.Signals(-r.returncode).name
                    if r.returncode < 0 else "exit %d" % r.returncode)
            self.counts["crash"] += 1
            self.problems.append("CRASH %s (%s): %s\n      %s" % (
                name, what, " ".join(argv), err.strip()[-400:]))
        elif r.returncode == 0:
            if must_fail:
                self.counts["wrongly accepted"] += 1
                self.problems.append("ACCEPTED %s: %s" % (name, " ".join(argv)))
            else:
                self.counts["accepted"] += 1
        elif not err.strip():
            self.counts["crash"] += 1
            self.problems.append("SILENT %s: exit %d with no message: %s" % (
                name, r.returncode, " ".join(argv)))
        else:
            self.counts["error"] += 1
        if os.environ.get("SWEEP_VERBOSE"):
            print("%-40s rc=%-3d %.1fs %s" % (name, r.returncode,
                  time.monotonic() - start, err.strip().splitlines()[-1:] ))


def truncations(data, count=6):
    """Prefix lengths spread over the file, and a few near its end."""
    n = len(data)
    cuts = {0, 1, 16, 64, n // 3, n // 2, n - 1}
    cuts |= {n * k // (count + 1) for k in range(1, count + 1)}
    return sorted(c for c in cuts if 0 <= c < n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="directory of the tools")
    parser.add_argument("--build", required=True, help="the build directory")
    parser.add_argument("--timeout", type=int, default=90)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bitnet-sweep-")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(os.path.abspath(args.build), "python_bindings")
    s = Sweep(os.path.abspath(args.bin), work, args.timeout, env)
    start = time.monotonic()
    try:
        sweep(s, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = sum(s.counts.values())
    print("bad-input sweep: %d cases in %.0f s: %s" % (
        total, time.monotonic() - start,
        ", ".join("%d %s" % (v, k) for k, v in s.counts.items())))
    for p in s.problems:
        print(p)
    bad = s.counts["crash"] + s.counts["hang"] + s.counts["wrongly accepted"]
    return 1 if bad else 0


def sweep(s, args):
    onnx = os.path.join(ROOT, "models", "fortunes", "fortunes.onnx")
    example = os.path.join(ROOT, "examples", "bitlinear.mlir")
    good_so = s.path("fortunes.so")
    r = subprocess.run([os.path.join(s.bin, "bitnet-compile"), onnx,
                        "--input-shape=tokens:1", "-q", "-o", good_so],
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit("cannot compile the bundled model: " + r.stderr.decode())
    example_so = s.path("bitlinear.so")
    subprocess.run([os.path.join(s.bin, "bitnet-compile"), example, "-q", "-o",
                    example_so], check=True)

    # --- bitnet-compile: malformed models -------------------------------
    onnx_bytes = open(onnx, "rb").read()
    for cut in truncations(onnx_bytes):
        p = s.write("trunc_%d.onnx" % cut, onnx_bytes[:cut])
        s.run("compile truncated onnx %d" % cut,
              ["bitnet-compile", p, "--input-shape=tokens:1", "-q", "-o", s.path("t.so")])
    for i, offset in enumerate((100, len(onnx_bytes) // 2, len(onnx_bytes) - 200)):
        b = bytearray(onnx_bytes)
        for k in range(8):
            b[(offset + 97 * k) % len(b)] ^= 0xA5
        p = s.write("flipped_%d.onnx" % i, bytes(b))
        # A flipped byte may land in weights: a model that compiles is fine.
        s.run("compile onnx with flipped bytes %d" % i,
              ["bitnet-compile", p, "--input-shape=tokens:1", "-q", "-o", s.path("t.so")],
              must_fail=False)
    inputs = os.path.join(ROOT, "test", "Import", "ONNX", "Inputs")
    for name in sorted(os.listdir(inputs)):
        if name.endswith(".onnx"):
            s.run("compile Inputs/" + name,
                  ["bitnet-compile", os.path.join(inputs, name), "-q", "-o", s.path("t.so")],
                  must_fail=False)
    s.run("compile random bytes as onnx",
          ["bitnet-compile", s.write("random.onnx", os.urandom(4096)), "-q", "-o", s.path("t.so")])
    s.run("compile random bytes as gguf",
          ["bitnet-compile", s.write("random.gguf", b"GGUF" + os.urandom(4096)), "-o", s.path("t.so")])
    s.run("compile empty file", ["bitnet-compile", s.write("empty.mlir", b""), "-o", s.path("t.so")])
    s.run("compile text as mlir",
          ["bitnet-compile", s.write("text.mlir", b"this is not a model\n"), "-o", s.path("t.so")])
    s.run("compile binary as mlir",
          ["bitnet-compile", s.write("binary.mlir", os.urandom(2048)), "-o", s.path("t.so")])
    s.run("compile terabyte splat",
          ["bitnet-compile", s.write("huge.mlir", (
              "func.func @f(%x: tensor<1x1048576xf32>) -> tensor<1x1048576xf32> {\n"
              "  %w = arith.constant dense<1> : tensor<1048576x1048576xi8>\n"
              "  %p = bitnet.pack %w : tensor<1048576x1048576xi8> -> !bitnet.ternary<1048576x1048576, i2>\n"
              "  %s = arith.constant dense<1.0> : tensor<f32>\n"
              "  %y = bitnet.bitlinear %x, %p scale %s : tensor<1x1048576xf32>, "
              "!bitnet.ternary<1048576x1048576, i2>, tensor<f32> -> tensor<1x1048576xf32>\n"
              "  return %y : tensor<1x1048576xf32>\n}\n").encode()), "-o", s.path("t.so")])
    s.run("compile non-ternary pack",
          ["bitnet-compile", s.write("nonternary.mlir", (
              "func.func @f() -> !bitnet.ternary<1x3, int8> {\n"
              "  %w = arith.constant dense<[[5, -7, 0]]> : tensor<1x3xi8>\n"
              "  %p = bitnet.pack %w : tensor<1x3xi8> -> !bitnet.ternary<1x3, int8>\n"
              "  return %p : !bitnet.ternary<1x3, int8>\n}\n").encode()), "-o", s.path("t.so")])
    s.run("compile a directory", ["bitnet-compile", s.work, "-o", s.path("t.so")])
    s.run("compile a missing file", ["bitnet-compile", s.path("missing.onnx"), "-o", s.path("t.so")])
    fifo = s.path("fifo.onnx")
    os.mkfifo(fifo)
    s.run("compile a FIFO", ["bitnet-compile", fifo, "-o", s.path("t.so")])
    hf = s.path("hf")
    os.makedirs(hf)
    with open(os.path.join(hf, "config.json"), "w") as f:
        f.write('{"architectures": ["BitNetForCausalLM"], "hidden_size": "x"')
    s.run("compile HF dir with broken config", ["bitnet-compile", hf, "-o", s.path("t.so")])

    # --- bitnet-compile: bad options ------------------------------------
    for opts in (["--cpu=pentium9000"], ["--features=+frobnicate"], ["--emit=foo"],
                 ["--mlir-stage=loops", "--emit=mlir"], ["--opt-level=9"],
                 ["--target=sparc-sun-solaris"], ["--kernels=magic"],
                 ["--weight-format=i3"], ["--input-shape=x:"], ["--input-shape=tokens:0x-1"],
                 ["--max-tensor-bytes=-5"], ["-q", "-v"], ["--variants=pentium9000"],
                 ["-o", s.path("no/such/dir/x.so")], ["--float-weights=f8"],
                 ["--kv-cache=i4"], ["--gpu-arch=sm_90"]):
        s.run("compile " + " ".join(opts),
              ["bitnet-compile", example] + opts + ([] if "-o" in opts else ["-o", s.path("t.so")]))
    s.run("compile to stdout as so", ["bitnet-compile", example, "-o", "-"], must_fail=False)

    # --- bitnet-run and Python load: malformed model files ---------------
    so_bytes = open(good_so, "rb").read()
    for cut in truncations(so_bytes):
        p = s.write("trunc_%d.so" % cut, so_bytes[:cut])
        if cut >= len(so_bytes) - 24:
            # Only the checksum trailer is cut: the object is whole and runs,
            # and --verify says the checksum is missing.
            s.run("run model with a cut trailer %d" % cut,
                  ["bitnet-run", p, "--random", "--quiet"], must_fail=False)
            s.run("verify model with a cut trailer %d" % cut,
                  ["bitnet-run", p, "--random", "--quiet", "--verify"])
            continue
        s.run("run truncated model %d" % cut, ["bitnet-run", p, "--random", "--quiet"])
        s.run("generate with truncated model %d" % cut,
              ["bitnet-generate", p, "--prompt", "A", "-n", "2", "--quiet"])
    damaged = bytearray(so_bytes)
    damaged[len(damaged) // 2] ^= 0xFF
    p = s.write("damaged.so", bytes(damaged))
    s.run("run --verify a damaged model", ["bitnet-run", p, "--random", "--verify", "--quiet"])
    s.run("run a text file", ["bitnet-run", s.write("text.so", b"hello\n"), "--random"])
    s.run("run a directory", ["bitnet-run", s.work, "--random"])
    fifo_so = s.path("fifo.so")
    os.mkfifo(fifo_so)
    s.run("run a FIFO", ["bitnet-run", fifo_so, "--random"])
    s.run("run a missing model", ["bitnet-run", s.path("missing.so"), "--random"])
    s.run("python load truncated",
          [sys.executable, "-c", "import bitnet_mlir, sys; bitnet_mlir.load(sys.argv[1])",
           s.path("trunc_%d.so" % (len(so_bytes) // 2))], tool=False)
    s.run("python compile unknown cpu",
          [sys.executable, "-c",
           "import bitnet_mlir, sys; bitnet_mlir.compile(sys.argv[1], sys.argv[2], cpu='pentium9000')",
           example, s.path("t.so")], tool=False)

    # --- bitnet-run: malformed inputs and options -----------------------
    import numpy as np  # noqa: E402 (the sweep needs NumPy only from here)
    np.save(s.path("tok_big.npy"), np.array([100000], dtype=np.int32))
    np.save(s.path("tok_neg.npy"), np.array([-1000], dtype=np.int32))
    np.save(s.path("pos_big.npy"), np.array(1 << 30, dtype=np.int32))
    np.save(s.path("tok_f32.npy"), np.array([1.0], dtype=np.float32))
    np.save(s.path("tok_shape.npy"), np.array([[1, 2]], dtype=np.int32))
    good_npy = open(s.path("tok_big.npy"), "rb").read()
    for name, data in (("npy_empty", b""), ("npy_magic", b"\x93NUMPX" + good_npy[6:]),
                       ("npy_header", good_npy[:10] + b"{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }"),
                       ("npy_truncated", good_npy[:-2]),
                       ("npy_huge_shape", good_npy.replace(b"(1,)", b"(99999999999999,)"))):
        s.run("run with " + name,
              ["bitnet-run", good_so, "--input", "tokens=" + s.write(name + ".npy", data), "--random"])
    for name, spec in (("token id past the vocabulary", "tokens=tok_big.npy"),
                       ("negative token id", "tokens=tok_neg.npy"),
                       ("position past the cache", "position=pos_big.npy"),
                       ("float token ids", "tokens=tok_f32.npy"),
                       ("token ids of another shape", "tokens=tok_shape.npy"),
                       ("a FIFO as input", "tokens=" + fifo),
                       ("a directory as input", "tokens=" + s.work),
                       ("no such input", "nope=tok_big.npy"),
                       ("no value", "tokens=")):
        s.run("run with " + name, ["bitnet-run", good_so, "--input", spec, "--random"])
    for opts in (["--threads", "0"], ["--threads", "-1"], ["--repeat", "0"], ["--seed", "x"],
                 ["--warmup", "1e9"], ["--output-dir", "/proc/no"], ["--profile", "/no/p.json"],
                 ["--frobnicate"]):
        s.run("run " + " ".join(opts), ["bitnet-run", example_so, "--random"] + opts)

    # --- bitnet-generate and bitnet-perplexity --------------------------
    for opts in (["--temperature", "nan"], ["--temperature", "inf"], ["--temperature", "-1"],
                 ["--top-p", "2"], ["--top-k", "-3"], ["--stop", ""], ["-n", "-1"],
                 ["-c", "100000"], ["-f", s.path("missing.txt")], ["-f", fifo],
                 ["--tokens", "1,x"], ["--tokens", "99999"], ["--threads", "0"],
                 ["--prefill", s.path("trunc_%d.so" % (len(so_bytes) // 2))],
                 ["--trace-ids", "/no/such/dir/ids"]):
        s.run("generate " + " ".join(opts),
              ["bitnet-generate", good_so, "--prompt", "A", "-n", "2", "--quiet"] + opts)
    s.run("generate with the example (not a decoder)",
          ["bitnet-generate", example_so, "--prompt", "A", "-n", "2"])
    s.run("perplexity of an empty file",
          ["bitnet-perplexity", good_so, "-f", s.write("empty.txt", b"")])
    s.run("perplexity of one character",
          ["bitnet-perplexity", good_so, "-f", s.write("one.txt", b"A")])
    s.run("perplexity of binary text",
          ["bitnet-perplexity", good_so, "-f", s.write("binary.txt", os.urandom(3000)),
           "-c", "64"], must_fail=False)
    s.run("perplexity with ctx-size 1", ["bitnet-perplexity", good_so, "-f", s.path("binary.txt"),
                                         "-c", "1"])
    s.run("perplexity of a missing file", ["bitnet-perplexity", good_so, "-f", s.path("missing.txt")])
    s.run("tokenize with a truncated model",
          ["bitnet-tokenize", s.path("trunc_%d.so" % (len(so_bytes) // 2)), "hello"])


if __name__ == "__main__":
    sys.exit(main())
