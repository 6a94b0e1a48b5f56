#!/usr/bin/python3
"""End-to-end benchmark: a decoder with the shapes of bitnet-b1.58-2B-4T.

  /usr/bin/python3 bench/e2e/bench_2b.py [--build build] [--work DIR]
                                         [--format onnx|gguf|hf]

1. writes the model with random ternary weights, made once in --work and
   never committed: ONNX (models/gen_2b.py; 1.9 GB of external data), a GGUF
   file in bitnet.cpp's I2_S form or a Hugging Face directory in the packed
   form of microsoft/bitnet-b1.58-2B-4T (models/gen_2b_checkpoint.py; 1.2 GB
   each); compile time and the compiler's peak RSS (the linker's included)
   are reported for every build;
2. compiles decode builds (one token a step) with an f16 and with an int8
   embedding table and head (--float-weights=f16 / int8; bitnet.cpp's
   reference figures have an f16 head) and a prefill build (128 tokens a
   step, f16, logits of the last token only);
3. measures this machine's read bandwidth (bitnet-kernel-bench read_bandwidth)
   on 1 and 2 threads;
4. runs bitnet-generate: decode tokens/s at 1 and 2 threads after a 128-token
   prompt, prefill tokens/s of that prompt with the prefill build, peak RSS;
5. in the same run, the float baseline on the bundled small model: the
   reference (scalar float) path against the kernels;
6. prints the table with the bandwidth bound (weights read per token over the
   measured bandwidth) and the ratios to the orientation figures of the issue
   (bitnet.cpp on this machine kind).

Takes about 10 minutes on 2 cores, most of it compiling the two builds.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PY = "/usr/bin/python3"
# bitnet.cpp (llama-bench, same shapes, random weights, fp16 embeddings and
# head) measured on this machine kind, tokens/s.
BITNET_CPP = {"decode/1": 5.7, "decode/2": 10.4, "prefill/1": 23.8,
              "prefill/2": 46.5}


def log(msg):
    print(f"bench_2b: {msg}", flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


# Runs a command and prints the peak RSS of it and its children (in KiB) on
# stderr: ru_maxrss of RUSAGE_CHILDREN in a process that runs nothing else.
PEAK_RSS = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:])\n"
            "print('peak-rss-kib', resource.getrusage("
            "resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(r.returncode)\n")


def model_bytes(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f))
                   for f in os.listdir(path))
    total = os.path.getsize(path)
    data = path + ".data"  # ONNX external data beside the model
    return total + (os.path.getsize(data) if os.path.exists(data) else 0)


def compile_model(build, model, so, tokens, precision, extra=()):
    """Compiles and returns (seconds, peak RSS in MB), or None if up to date."""
    compiler = os.path.join(build, "bin", "bitnet-compile")
    if os.path.exists(so) and os.path.getmtime(so) > max(
            os.path.getmtime(model), os.path.getmtime(compiler)):
        log(f"{so} is up to date")
        return None
    cmd = [compiler, model, f"--input-shape=tokens:{tokens}",
           f"--float-weights={precision}", *extra, "-o", so]
    log("$ " + " ".join(cmd))
    start = time.time()
    r = subprocess.run([PY, "-c", PEAK_RSS, *cmd], check=True,
                       capture_output=True, text=True)
    seconds = time.time() - start
    rss = int(re.search(r"peak-rss-kib (\d+)", r.stderr).group(1)) / 1024
    log(f"compiled {so} in {seconds:.0f} s, peak RSS {rss:.0f} MB")
    return seconds, rss


def bandwidth(build):
    out = os.path.join(build, "bench-2b-bandwidth.json")
    run([os.path.join(build, "bench", "bitnet-kernel-bench"),
         "--benchmark_filter=^read_bandwidth", "--benchmark_min_time=0.5",
         f"--benchmark_out={out}", "--benchmark_out_format=json"])
    with open(out) as f:
        data = json.load(f)
    result = {}
    for b in data["benchmarks"]:
        threads = int(b["name"].split("/")[1])
        result[threads] = b["GB/s"]
    return result


def generate(build, so, prompt, new, threads, prefill=None):
    extra = ["--prefill", prefill] if prefill else []
    r = run([os.path.join(build, "bin", "bitnet-generate"), so, *extra,
             "--tokens",
             ",".join(map(str, prompt)), "-n", str(new), "--temperature", "0",
             "--threads", str(threads), "--ids"])
    stats = {}
    m = re.search(r"prompt: (\d+) tokens in ([\d.]+) s \(([\d.]+) tokens/s\)",
                  r.stderr)
    stats["prompt_tps"] = float(m.group(3))
    m = re.search(r"decode: (\d+) tokens in ([\d.]+) s \(([\d.]+) tokens/s\)",
                  r.stderr)
    stats["decode_tps"] = float(m.group(3))
    m = re.search(r"weights \(read-only data of the model\): ([\d.]+) MB; "
                  r"KV cache: ([\d.]+) MB; peak RSS: ([\d.]+) MB", r.stderr)
    stats["weights_mb"], stats["kv_mb"], stats["rss_mb"] = map(float, m.groups())
    stats["tokens"] = [int(t) for t in r.stdout.split()]
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", default=None,
                    help="where the model and builds go (default BUILD/bench-2b)")
    ap.add_argument("--decode-tokens", type=int, default=48)
    ap.add_argument("--format", choices=("onnx", "gguf", "hf"), default="onnx",
                    help="the model's file format (default onnx)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    work = os.path.abspath(args.work or os.path.join(build, "bench-2b"))
    os.makedirs(work, exist_ok=True)

    fmt = args.format
    model = os.path.join(work, {"onnx": "b2.onnx", "gguf": "b2.gguf",
                                "hf": "b2-hf"}[fmt])
    if not os.path.exists(model):
        if fmt == "onnx":
            run([PY, os.path.join(ROOT, "models", "gen_2b.py"), model,
                 "--context", "256"])
        else:
            run([PY, os.path.join(ROOT, "models", "gen_2b_checkpoint.py"),
                 "--format", fmt, model, "--context", "256"])
    suffix = "" if fmt == "onnx" else "-" + fmt
    decode_so = {p: os.path.join(work, f"decode-{p}{suffix}.so")
                 for p in ("f16", "int8")}
    prefill_so = os.path.join(work, f"prefill128-f16{suffix}.so")
    compiles = {}
    for p, so in decode_so.items():
        compiles[f"decode, {p} head"] = compile_model(build, model, so, 1, p)
    compiles["prefill 128"] = compile_model(build, model, prefill_so, 128,
                                            "f16", ["--last-token-logits"])

    bw = bandwidth(build)
    log(f"read bandwidth: {bw[1]:.1f} GB/s on 1 thread, {bw[2]:.1f} on 2")

    prompt = [(i * 7919 + 13) % 128256 for i in range(128)]
    results, results8 = {}, {}
    for threads in (1, 2):
        d = generate(build, decode_so["f16"], prompt, args.decode_tokens,
                     threads)
        d8 = generate(build, decode_so["int8"], prompt, args.decode_tokens,
                      threads)
        p = generate(build, decode_so["f16"], prompt, 1, threads,
                     prefill=prefill_so)
        results[threads] = (d, p)
        results8[threads] = d8
        log(f"{threads} threads: decode {d['decode_tps']:.2f} tokens/s "
            f"(int8 head {d8['decode_tps']:.2f}), prefill "
            f"{p['prompt_tps']:.2f} tokens/s, peak RSS {d['rss_mb']:.0f} MB")

    # Float baseline on the bundled model: reference path against kernels.
    small = os.path.join(ROOT, "models", "fortunes", "fortunes.onnx")
    small_tps = {}
    for kernels in ("reference", "auto"):
        so = os.path.join(work, f"fortunes-{kernels}.so")
        run([os.path.join(build, "bin", "bitnet-compile"), small,
             "--input-shape=tokens:1", f"--kernels={kernels}", "-o", so])
        s = generate(build, so, [40, 41, 42, 43], 200, 1)
        small_tps[kernels] = s["decode_tps"]

    d1 = results[1][0]
    weight_bytes = d1["weights_mb"] * 1e6
    print()
    size_mb = model_bytes(model) / 1e6
    print(f"Compiling the {fmt.upper()} model ({size_mb:.0f} MB), this machine:")
    for name, result in compiles.items():
        if result is None:
            print(f"  {name:24s} up to date (delete the .so to time it)")
        else:
            seconds, rss = result
            print(f"  {name:24s}{seconds:8.0f} s, peak RSS {rss:6.0f} MB "
                  f"({rss / size_mb:.2f}x the model)")
    print()
    print("2B-scale decoder (random weights, f16 embeddings and head unless "
          "said, f16 KV cache of 256 tokens)")
    print(f"  weights read per token: {weight_bytes / 1e6:.0f} MB "
          f"(ternary + head, the model's read-only data); KV cache "
          f"{d1['kv_mb']:.0f} MB; peak RSS {d1['rss_mb']:.0f} MB "
          f"({d1['rss_mb'] / (d1['weights_mb'] + d1['kv_mb']):.2f}x weights + KV)")
    print(f"  {'':24s}{'measured':>12s}{'bound':>10s}{'of bound':>10s}"
          f"{'bitnet.cpp':>12s}{'ratio':>8s}")
    for threads in (1, 2):
        d, p = results[threads]
        bound = bw[threads] * 1e9 / weight_bytes
        ref = BITNET_CPP[f"decode/{threads}"]
        print(f"  decode, {threads} thread{'s' if threads > 1 else ' '}      "
              f"{d['decode_tps']:10.2f}/s{bound:9.1f}/s"
              f"{100 * d['decode_tps'] / bound:9.0f}%{ref:11.1f}/s"
              f"{d['decode_tps'] / ref:7.2f}x")
    weight8 = results8[1]["weights_mb"] * 1e6
    for threads in (1, 2):
        d8 = results8[threads]
        bound = bw[threads] * 1e9 / weight8
        print(f"  decode int8 head, {threads}T  "
              f"{d8['decode_tps']:10.2f}/s{bound:9.1f}/s"
              f"{100 * d8['decode_tps'] / bound:9.0f}%   (weights read per "
              f"token {weight8 / 1e6:.0f} MB)")
    for threads in (1, 2):
        d, p = results[threads]
        ref = BITNET_CPP[f"prefill/{threads}"]
        print(f"  prefill 128, {threads} thread{'s' if threads > 1 else ' '} "
              f"{p['prompt_tps']:10.2f}/s{'':10s}{'':10s}{ref:11.1f}/s"
              f"{p['prompt_tps'] / ref:7.2f}x")
    print(f"  read bandwidth measured in this run: {bw[1]:.1f} GB/s (1 thread), "
          f"{bw[2]:.1f} GB/s (2 threads)")
    print(f"  greedy tokens agree across thread counts: "
          f"{results[1][0]['tokens'] == results[2][0]['tokens']}")
    print()
    print("Float baseline, bundled model (1 thread, decode tokens/s): "
          f"reference path {small_tps['reference']:.0f}, kernels "
          f"{small_tps['auto']:.0f} ({small_tps['auto'] / small_tps['reference']:.1f}x)")


if __name__ == "__main__":
    sys.exit(main())
