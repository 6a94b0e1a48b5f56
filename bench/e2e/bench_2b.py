#!/usr/bin/python3
"""End-to-end benchmark: a decoder with the shapes of bitnet-b1.58-2B-4T.

  /usr/bin/python3 bench/e2e/bench_2b.py [--build build] [--work DIR]
                                         [--format onnx|gguf|hf] [--rounds N]
                                         [--json FILE] [--tune]
                                         [--peer-llama-bench PATH
                                          --peer-model FILE.gguf]

1. writes the model with random ternary weights, made once in --work and
   never committed: ONNX (models/gen_2b.py; 1.9 GB of external data), a GGUF
   file in bitnet.cpp's I2_S form or a Hugging Face directory in the packed
   form of microsoft/bitnet-b1.58-2B-4T (models/gen_2b_checkpoint.py; 1.2 GB
   each, with Llama 3's tokenizer where ../shared/testdata has its ranks, as
   the real model's, so that bench/serve can serve the same builds);
   compile time and the compiler's peak RSS (the linker's included)
   are reported for every build;
2. compiles decode builds (one token a step) with an f16, an int8 and a
   W8A8 embedding table and head (--float-weights=f16 / int8 / w8a8; bitnet.cpp's
   reference figures have an f16 head); a checkpoint's f16 build carries
   its prefill step (the entry 'prefill': 128 tokens a step, logits of the
   last token only, over the same weights, bitnet-compile's default) and a
   decode-only f16 build (--prefill-tokens=0) stands beside it; an ONNX
   model gets a separate prefill build;
3. measures this machine's read bandwidth (bitnet-kernel-bench read_bandwidth)
   and int8 peak on 1 and 2 threads, and the read bandwidth again around
   every round's decodes (before and after them), since the machine's
   bandwidth drifts within minutes;
4. in --rounds alternating rounds (3 by default), at 1 and 2 threads:
   bitnet-generate's decode tokens/s after a 128-token prompt (and the
   decode-only build's, and with --huge-pages: the weights moved onto
   transparent huge pages) and its time to first token through the prefill
   step; the 128-token prefill step cold (the first run of a fresh process)
   and warm (the median of 5 runs after 2), with bitnet-run (--entry
   prefill); peak RSS decoding with and without the prefill step; and, with
   --peer-llama-bench and --peer-model,
   llama-bench (bitnet.cpp's or llama.cpp's) on that GGUF file, -p 128 -n
   48, in the same round. Medians over the rounds are reported;
5. profiles one decode step to measure the head's streaming rate (GB/s);
6. in the same run, the float baseline on the bundled small model: the
   reference (scalar float) path against the kernels;
   with --tune, also a decode build compiled with bitnet-compile --tune (the
   kernel families timed on this machine per layer shape, 1 and 2 threads
   each with its own build), in the same rounds;
7. draws (bench/charts.py, Debian's python3-matplotlib) the rooflines of a
   decode and a prefill step at 1 and 2 threads, each kernel placed under
   the read-bandwidth and int8-peak probes of the run, and, when the peer
   ran, a bar chart of the comparison (--charts DIR, default --work);
8. prints the table with the bandwidth bound (weights read per token over the
   rounds' median read probe) and the share of it, the median over the rounds
   of each round's tokens/s over that round's own bound, and, only where the
   peer ran in this run, the ratios to it; --json FILE writes the same
   figures (per thread count: decode_tps, decode_huge_pages_tps, bound_tps,
   decode_of_bound, prefill_warm_tps, prefill_cold_tps, ttft_s, peak_rss_mb,
   head_gbps, probe_gbps, probe_gbps_range, and peer_decode_tps /
   peer_prefill_tps when the peer ran).

For a like-for-like peer, give it the same weights: --format gguf benchmarks
the GGUF file that llama-bench reads (--peer-model defaults to it then).
Takes about 10 minutes on 2 cores plus a minute a round.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PY = "/usr/bin/python3"
PROMPT = 128  # prompt tokens, the prefill build's step


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


def probes(build):
    """This machine's read bandwidth (GB/s) and int8 dot-product peak (GOPS)
    per thread count, from bitnet-kernel-bench's probes."""
    out = os.path.join(build, "bench-2b-bandwidth.json")
    run([os.path.join(build, "bench", "bitnet-kernel-bench"),
         "--benchmark_filter=^(read_bandwidth|int8_peak)",
         "--benchmark_min_time=0.5",
         f"--benchmark_out={out}", "--benchmark_out_format=json"])
    with open(out) as f:
        data = json.load(f)
    bandwidth, peak = {}, {}
    for b in data["benchmarks"]:
        threads = int(b["name"].split("/")[1])
        if b["name"].startswith("read_bandwidth"):
            bandwidth[threads] = b["GB/s"]
        else:
            peak[threads] = b["GOPS"]
    return bandwidth, peak


def read_probe(build, threads):
    """The read probe alone on `threads` threads (GB/s): a short run taken
    inside a round, next to the decodes it bounds."""
    out = os.path.join(build, f"bench-2b-read-{threads}.json")
    run([os.path.join(build, "bench", "bitnet-kernel-bench"),
         f"--benchmark_filter=^read_bandwidth/{threads}/",
         "--benchmark_min_time=0.3",
         f"--benchmark_out={out}", "--benchmark_out_format=json"])
    with open(out) as f:
        return json.load(f)["benchmarks"][0]["GB/s"]


def generate(build, so, prompt, new, threads, prefill=None, no_prefill=False,
             huge_pages=False):
    extra = ["--prefill", prefill] if prefill else []
    if no_prefill:
        extra.append("--no-prefill")
    if huge_pages:
        extra.append("--huge-pages")
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


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def bitnet_run(build, so, threads, warmup, repeat, profile=None, extra=()):
    """Runs `so` on random in-range inputs; returns (p50 ms, report text)."""
    cmd = [os.path.join(build, "bin", "bitnet-run"), so, "--random",
           "--threads", str(threads), "--warmup", str(warmup),
           "--repeat", str(repeat), *extra]
    if profile:
        cmd += ["--profile", profile]
    r = run(cmd)
    m = re.search(r"^ms\s+([\d.]+)\s+([\d.]+)", r.stdout, re.M)
    return float(m.group(2)), r.stdout


def prefill_step(build, so, threads, entry=None):
    """The prefill step (a build's, or its entry's) in tokens/s: cold (the
    first run of a fresh process, pages of the model touched for the first
    time) and warm."""
    extra = ["--entry", entry] if entry else []
    cold_ms, _ = bitnet_run(build, so, threads, 0, 1, extra=extra)
    warm_ms, _ = bitnet_run(build, so, threads, 2, 5, extra=extra)
    return PROMPT / (cold_ms / 1e3), PROMPT / (warm_ms / 1e3)


def head_gbps(build, so, threads, work):
    """The largest dense_matmul (the head) of a decode step, in GB/s, from
    bitnet-run's profile of 5 steps (its trace: decode-profile-<T>T.json)."""
    _, report = bitnet_run(
        build, so, threads, 1, 5,
        profile=os.path.join(work, f"decode-profile-{threads}T.json"))
    best = None
    for line in report.splitlines():
        m = re.match(r"dense_matmul \S+ 1x(\d+)x(\d+)\s.*?([\d.]+)\s+[\d.]+$",
                     line)
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), float(m.group(3)))
    return best[1] if best else None


def peer_bench(llama_bench, model, threads, gen):
    """llama-bench -p PROMPT -n gen: (prefill tokens/s, decode tokens/s)."""
    r = run([llama_bench, "-m", model, "-p", str(PROMPT), "-n", str(gen),
             "-t", str(threads), "-r", "1", "-o", "json"])
    prefill = decode = None
    for entry in json.loads(r.stdout):
        if entry.get("n_prompt", 0) > 0 and entry.get("n_gen", 0) == 0:
            prefill = float(entry["avg_ts"])
        elif entry.get("n_gen", 0) > 0 and entry.get("n_prompt", 0) == 0:
            decode = float(entry["avg_ts"])
    if prefill is None or decode is None:
        sys.exit(f"bench_2b: llama-bench printed no pp{PROMPT}/tg{gen} "
                 f"figures:\n{r.stdout}")
    return prefill, decode


def draw_charts(out_dir, work, bw, peak, med, peer):
    """Rooflines of the decode and the prefill step at 1 and 2 threads
    (bench/charts.py), under this run's probes, and the bar chart of the
    peer comparison when the peer ran."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import charts
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log("no charts: python3-matplotlib is not installed")
        return
    os.makedirs(out_dir, exist_ok=True)
    for step in ("decode", "prefill"):
        for t in (1, 2):
            trace = os.path.join(work, f"{step}-profile-{t}T.json")
            points, whole = charts.trace_points(trace)
            out = os.path.join(out_dir, f"roofline-{step}-{t}T.png")
            charts.roofline(
                out, points, bw[t], peak.get(t),
                f"2B-shaped {step} step, {t} thread(s), {cpu_name()}",
                highlight=[(f"{step} step", whole[1], whole[2])]
                if whole else [])
            log(f"wrote {out}")
    if peer:
        rows = []
        for t in (1, 2):
            m = med[t]
            rows.append((f"decode {t}T", m["decode_tps"], m["peer_decode_tps"]))
        for t in (1, 2):
            m = med[t]
            rows.append((f"prefill {PROMPT} {t}T", m["prefill_warm_tps"],
                         m["peer_prefill_tps"]))
        out = os.path.join(out_dir, "peer.png")
        charts.bars(out, rows, peer="peer (llama-bench)",
                    title=f"same run, {cpu_name()}")
        log(f"wrote {out}")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", default=None,
                    help="where the model and builds go (default BUILD/bench-2b)")
    ap.add_argument("--decode-tokens", type=int, default=48)
    ap.add_argument("--format", choices=("onnx", "gguf", "hf"), default="onnx",
                    help="the model's file format (default onnx)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds of every measurement (default 3)")
    ap.add_argument("--json", metavar="FILE",
                    help="also write the figures to FILE as JSON")
    ap.add_argument("--charts", metavar="DIR",
                    help="where the charts go (default: the --work "
                         "directory): rooflines of the decode and prefill "
                         "steps, and the peer comparison when it ran")
    ap.add_argument("--peer-llama-bench", metavar="PATH",
                    help="llama-bench of bitnet.cpp (or llama.cpp) to run "
                         "in the same rounds")
    ap.add_argument("--tune", action="store_true",
                    help="also time decode builds made with bitnet-compile "
                         "--tune against the default cost model's")
    ap.add_argument("--peer-model", metavar="FILE.gguf",
                    help="the GGUF file llama-bench runs (default: the "
                         "benchmarked model with --format gguf)")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    if args.peer_model and not args.peer_llama_bench:
        ap.error("--peer-model needs --peer-llama-bench")
    if args.peer_llama_bench and not os.access(args.peer_llama_bench, os.X_OK):
        ap.error(f"--peer-llama-bench {args.peer_llama_bench}: not an "
                 "executable file")
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
    # A checkpoint's f16 build carries its prefill step (the entry 'prefill',
    # 128 tokens, over the same weights), as bitnet-compile builds it by
    # default; the decode-only build beside it (--prefill-tokens=0) gives
    # the decode-only figures. An ONNX model takes a separate prefill build.
    checkpoint = fmt != "onnx"
    decode_so = {p: os.path.join(work, f"decode-{p}{suffix}.so")
                 for p in ("f16", "int8", "w8a8")}
    compiles = {}
    no_entry = ["--prefill-tokens=0"] if checkpoint else []
    compiles["decode, f16 head" + (" + prefill entry" if checkpoint else "")] = \
        compile_model(build, model, decode_so["f16"], 1, "f16",
                      [f"--prefill-tokens={PROMPT}"] if checkpoint else [])
    compiles["decode, int8 head"] = compile_model(
        build, model, decode_so["int8"], 1, "int8", no_entry)
    compiles["decode, w8a8 head"] = compile_model(
        build, model, decode_so["w8a8"], 1, "w8a8", no_entry)
    if checkpoint:
        alone_so = os.path.join(work, f"decode-f16-alone{suffix}.so")
        compiles["decode only, f16 head"] = compile_model(
            build, model, alone_so, 1, "f16", no_entry)
        prefill_so, prefill_entry = decode_so["f16"], "prefill"
    else:
        alone_so = decode_so["f16"]
        prefill_so, prefill_entry = (
            os.path.join(work, f"prefill128-f16{suffix}.so"), None)
        compiles["prefill 128"] = compile_model(
            build, model, prefill_so, PROMPT, "f16", ["--last-token-logits"])

    tuned_so = {}
    if args.tune:
        for t in (1, 2):
            tuned_so[t] = os.path.join(work, f"decode-f16-tuned-t{t}{suffix}.so")
            compiles[f"decode, --tune, {t}T"] = compile_model(
                build, model, tuned_so[t], 1, "f16",
                ["--tune", f"--tune-threads={t}",
                 f"--tuning-cache={os.path.join(work, 'tuning.json')}"])

    bw_start, peak = probes(build)
    bw = bw_start
    log(f"read bandwidth: {bw[1]:.1f} GB/s on 1 thread, {bw[2]:.1f} on 2; "
        f"int8 peak {peak.get(1, 0):.0f} and {peak.get(2, 0):.0f} GOPS")

    peer_model = args.peer_model or (model if fmt == "gguf" else None)
    if args.peer_llama_bench and not peer_model:
        ap.error("--peer-llama-bench needs --peer-model (or --format gguf)")

    prompt = [(i * 7919 + 13) % 128256 for i in range(PROMPT)]
    # Per thread count, lists over the rounds.
    keys = ("probe_gbps", "decode_tps", "decode_huge_tps", "decode_alone_tps",
            "decode_int8_tps", "decode_w8a8_tps",
            "decode_tuned_tps", "ttft_s", "prefill_cold_tps",
            "prefill_warm_tps", "peer_prefill_tps", "peer_decode_tps")
    rounds = {t: {k: [] for k in keys} for t in (1, 2)}
    last = {}
    for r in range(args.rounds):
        for threads in (1, 2):
            got = rounds[threads]
            # The machine's bandwidth drifts by a third within minutes, so
            # each round's decodes are set against the probe taken around
            # them (the mean of one before and one after).
            before = read_probe(build, threads)
            d = generate(build, decode_so["f16"], prompt, args.decode_tokens,
                         threads)
            d8 = generate(build, decode_so["int8"], prompt,
                          args.decode_tokens, threads)
            dw = generate(build, decode_so["w8a8"], prompt,
                          args.decode_tokens, threads)
            got["decode_w8a8_tps"].append(dw["decode_tps"])
            last_w8a8 = dw
            # The same build with its weights on huge pages (--huge-pages).
            dh = generate(build, decode_so["f16"], prompt, args.decode_tokens,
                          threads, huge_pages=True)
            got["decode_huge_tps"].append(dh["decode_tps"])
            a = d
            if checkpoint:
                a = generate(build, alone_so, prompt, args.decode_tokens,
                             threads, no_prefill=True)
            if tuned_so:
                dt = generate(build, tuned_so[threads], prompt,
                              args.decode_tokens, threads)
                got["decode_tuned_tps"].append(dt["decode_tps"])
            got["probe_gbps"].append((before + read_probe(build, threads)) / 2)
            # The prompt through the prefill step: the build's own entry
            # (bitnet-generate's default) or the separate build.
            p = generate(build, decode_so["f16"], prompt, 1, threads,
                         prefill=None if checkpoint else prefill_so)
            cold, warm = prefill_step(build, prefill_so, threads,
                                      prefill_entry)
            got["decode_alone_tps"].append(a["decode_tps"])
            got["decode_tps"].append(d["decode_tps"])
            got["decode_int8_tps"].append(d8["decode_tps"])
            got["ttft_s"].append(PROMPT / p["prompt_tps"])
            got["prefill_cold_tps"].append(cold)
            got["prefill_warm_tps"].append(warm)
            last[threads] = (d, d8, p, a)
            line = (f"round {r + 1}, {threads} threads: read probe "
                    f"{got['probe_gbps'][-1]:.1f} GB/s, decode "
                    f"{d['decode_tps']:.2f} tokens/s (int8 head "
                    f"{d8['decode_tps']:.2f}), prefill {warm:.1f} warm / "
                    f"{cold:.1f} cold tokens/s")
            if args.peer_llama_bench:
                pp, tg = peer_bench(args.peer_llama_bench, peer_model,
                                    threads, args.decode_tokens)
                got["peer_prefill_tps"].append(pp)
                got["peer_decode_tps"].append(tg)
                line += f"; peer decode {tg:.2f}, prefill {pp:.1f}"
            log(line)
    med = {t: {k: median(v) for k, v in rounds[t].items()} for t in (1, 2)}
    # The bounds are the rounds' probes from here on.
    bw = {t: med[t]["probe_gbps"] for t in (1, 2)}

    def share(threads, key, nbytes):
        """The median over the rounds of each round's tokens/s over that
        round's own bound (its read probe over the bytes a token reads)."""
        g = rounds[threads]
        return median([tps * nbytes / (probe * 1e9)
                       for tps, probe in zip(g[key], g["probe_gbps"]) if tps])
    heads = {t: head_gbps(build, decode_so["f16"], t, work) for t in (1, 2)}
    for t in (1, 2):  # the prefill step's trace, for its roofline
        bitnet_run(build, prefill_so, t, 1, 3,
                   profile=os.path.join(work, f"prefill-profile-{t}T.json"),
                   extra=["--entry", prefill_entry] if prefill_entry else [])

    # Float baseline on the bundled model: reference path against kernels.
    small = os.path.join(ROOT, "models", "fortunes", "fortunes.onnx")
    small_tps = {}
    for kernels in ("reference", "auto"):
        so = os.path.join(work, f"fortunes-{kernels}.so")
        run([os.path.join(build, "bin", "bitnet-compile"), small,
             "--input-shape=tokens:1", f"--kernels={kernels}", "-o", so])
        s = generate(build, so, [40, 41, 42, 43], 200, 1)
        small_tps[kernels] = s["decode_tps"]

    d1 = last[1][0]
    weight_bytes = d1["weights_mb"] * 1e6
    weight8 = last[1][1]["weights_mb"] * 1e6
    weight_w8a8 = last_w8a8["weights_mb"] * 1e6
    weight_alone = last[1][3]["weights_mb"] * 1e6
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
    peer = bool(args.peer_llama_bench)
    print(f"2B-scale decoder on {cpu_name()} (random weights, f16 embeddings "
          f"and head unless said, f16 KV cache of 256 tokens); medians of "
          f"{args.rounds} round{'s' if args.rounds > 1 else ''}")
    if peer:
        print(f"  peer: {args.peer_llama_bench} on {peer_model}, in the same "
              f"rounds")
    print(f"  weights read per token: {weight_bytes / 1e6:.0f} MB "
          f"(ternary + head, the model's read-only data); KV cache "
          f"{d1['kv_mb']:.0f} MB; peak RSS {d1['rss_mb']:.0f} MB "
          f"({d1['rss_mb'] / (d1['weights_mb'] + d1['kv_mb']):.2f}x weights + KV)")
    head = f"  {'':24s}{'measured':>12s}{'bound':>10s}{'of bound':>10s}"
    if peer:
        head += f"{'peer':>12s}{'ratio':>8s}"
    print(head)

    def row(label, value, bound=None, peer_value=None, of_bound=None):
        text = f"  {label:24s}{value:10.2f}/s"
        text += f"{bound:9.1f}/s{100 * of_bound:9.0f}%" if bound else " " * 20
        if peer_value:
            text += f"{peer_value:11.2f}/s{value / peer_value:7.2f}x"
        print(text)

    summary = {"cpu": cpu_name(), "rounds": args.rounds, "format": fmt,
               "weights_mb": weight_bytes / 1e6, "threads": {}}
    for threads in (1, 2):
        m = med[threads]
        bound = bw[threads] * 1e9 / weight_bytes
        of_bound = share(threads, "decode_tps", weight_bytes)
        row(f"decode, {threads}T", m["decode_tps"], bound, m["peer_decode_tps"],
            of_bound)
        row(f"decode, huge pages, {threads}T", m["decode_huge_tps"], bound,
            of_bound=share(threads, "decode_huge_tps", weight_bytes))
        alone_bound = bw[threads] * 1e9 / weight_alone
        if checkpoint:
            row(f"decode only build, {threads}T", m["decode_alone_tps"],
                alone_bound,
                of_bound=share(threads, "decode_alone_tps", weight_alone))
        probes_seen = rounds[threads]["probe_gbps"]
        summary["threads"][str(threads)] = {
            "decode_tps": m["decode_tps"], "bound_tps": bound,
            "decode_of_bound": of_bound,
            "probe_gbps_range": [min(probes_seen), max(probes_seen)],
            "decode_huge_pages_tps": m["decode_huge_tps"],
            "decode_alone_tps": m["decode_alone_tps"],
            "bound_alone_tps": alone_bound,
            "decode_int8_tps": m["decode_int8_tps"],
            "bound_int8_tps": bw[threads] * 1e9 / weight8,
            "decode_int8_of_bound": share(threads, "decode_int8_tps", weight8),
            "decode_w8a8_tps": m["decode_w8a8_tps"],
            "bound_w8a8_tps": bw[threads] * 1e9 / weight_w8a8,
            "decode_w8a8_of_bound": share(threads, "decode_w8a8_tps",
                                          weight_w8a8),
            "prefill_warm_tps": m["prefill_warm_tps"],
            "prefill_cold_tps": m["prefill_cold_tps"],
            "ttft_s": m["ttft_s"], "peak_rss_mb": last[threads][3]["rss_mb"],
            "peak_rss_prefill_mb": last[threads][2]["rss_mb"],
            "head_gbps": heads[threads], "probe_gbps": bw[threads],
            "peak_gops": peak.get(threads)}
        if peer:
            summary["threads"][str(threads)].update(
                peer_decode_tps=m["peer_decode_tps"],
                peer_prefill_tps=m["peer_prefill_tps"])
    for threads in (1, 2):
        row(f"decode int8 head, {threads}T", med[threads]["decode_int8_tps"],
            bw[threads] * 1e9 / weight8,
            of_bound=share(threads, "decode_int8_tps", weight8))
    for threads in (1, 2):
        row(f"decode w8a8 head, {threads}T", med[threads]["decode_w8a8_tps"],
            bw[threads] * 1e9 / weight_w8a8,
            of_bound=share(threads, "decode_w8a8_tps", weight_w8a8))
    if tuned_so:
        for threads in (1, 2):
            m = med[threads]
            row(f"decode --tune, {threads}T", m["decode_tuned_tps"],
                bw[threads] * 1e9 / weight_alone,
                of_bound=share(threads, "decode_tuned_tps", weight_alone))
            print(f"  {'':24s}"
                  f"{m['decode_tuned_tps'] / m['decode_alone_tps']:10.2f}x "
                  f"the default cost model's decode-only build")
            summary["threads"][str(threads)]["decode_tuned_tps"] = \
                m["decode_tuned_tps"]
    for threads in (1, 2):
        m = med[threads]
        row(f"prefill {PROMPT} warm, {threads}T", m["prefill_warm_tps"], None,
            m["peer_prefill_tps"])
        row(f"prefill {PROMPT} cold, {threads}T", m["prefill_cold_tps"], None,
            m["peer_prefill_tps"])
    for threads in (1, 2):
        h = heads[threads]
        print(f"  {threads}T: time to first token {med[threads]['ttft_s']:.2f} s "
              f"(prompt of {PROMPT} through the prefill "
              f"{'entry' if checkpoint else 'build'}); head "
              + (f"{h:.1f} GB/s ({100 * h / bw[threads]:.0f}% of the probe)"
                 if h else "not profiled")
              + f"; peak RSS {last[threads][3]['rss_mb']:.0f} MB decode only, "
              f"{last[threads][2]['rss_mb']:.0f} MB with the prefill "
              f"{'entry' if checkpoint else 'build'} "
              f"({last[threads][2]['rss_mb'] / last[threads][3]['rss_mb']:.2f}x)")
    if not peer:
        print("  (no peer ran: --peer-llama-bench PATH --peer-model FILE.gguf "
              "adds bitnet.cpp's figures of this run)")
    for t in (1, 2):
        seen = rounds[t]["probe_gbps"]
        print(f"  read probe, {t} thread{'s' if t > 1 else ''}: median "
              f"{bw[t]:.1f} GB/s of the rounds (from {min(seen):.1f} to "
              f"{max(seen):.1f}), {bw_start[t]:.1f} before them; each "
              f"share of the bound is the median of the rounds' own")
    print(f"  greedy tokens agree across thread counts: "
          f"{last[1][0]['tokens'] == last[2][0]['tokens']}")
    print()
    print("Float baseline, bundled model (1 thread, decode tokens/s): "
          f"reference path {small_tps['reference']:.0f}, kernels "
          f"{small_tps['auto']:.0f} ({small_tps['auto'] / small_tps['reference']:.1f}x)")
    draw_charts(args.charts or work, work, bw, peak, med, peer)
    if args.json:
        summary["small_model_decode_tps"] = small_tps
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
