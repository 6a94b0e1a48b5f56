#!/usr/bin/python3
"""Charts of the benchmarks' figures, drawn with Debian's python3-matplotlib.

A roofline places each kernel (and a whole step) by its arithmetic intensity
(operations per byte it reads and writes) and the operations per second it
reached, under the roofs this machine measured in the same run: the read
bandwidth probe (a slanted line, GB/s times intensity) and the int8
dot-product peak probe (a flat line). A kernel near the slanted roof is
memory-bound and at its limit; one far below both has room left.

  bench/charts.py trace TRACE.json --bandwidth GBS [--peak GOPS] -o FILE.png
      the kernels of a bitnet-run --profile trace (bitnet-run MODEL.so
      --random --profile TRACE.json), each kernel name one point (its
      calls summed), and the whole step ("step", all kernels over the
      runs' time);
  bench/charts.py kernel-bench BENCH.json -o PREFIX
      bitnet-kernel-bench's --benchmark_out JSON: its kernels with GOPS and
      weight_GB/s, under its read_bandwidth and int8_peak, one chart per
      thread count (PREFIX-1T.png, PREFIX-2T.png).

bench/e2e/bench_2b.py draws the roofline of a decode step and a prefill step
and, when the peer ran, a bar chart of the comparison (--charts DIR).
"""

import argparse
import json
import re
import sys


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        sys.exit("charts: matplotlib is missing (Debian: apt-get install "
                 "python3-matplotlib; scripts/setup.sh installs it)")
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    return plt


def trace_points(path):
    """(points, step) of a bitnet-run --profile trace: per kernel name
    (label, operations per byte, GOPS), and the whole run's point."""
    with open(path) as f:
        events = json.load(f)["traceEvents"]
    kernels = {}
    first, last = None, None
    for e in events:
        if e.get("ph") != "X" or e.get("cat") != "kernel":
            continue
        args = e.get("args", {})
        k = kernels.setdefault(e["name"], [0, 0, 0.0])
        k[0] += args.get("bytes", 0)
        k[1] += args.get("flops", 0)
        k[2] += e["dur"] * 1e-6  # trace times are in microseconds
        start, end = e["ts"], e["ts"] + e["dur"]
        first = start if first is None else min(first, start)
        last = end if last is None else max(last, end)
    points = [(name, flops / nbytes, flops / seconds * 1e-9)
              for name, (nbytes, flops, seconds) in kernels.items()
              if nbytes > 0 and flops > 0 and seconds > 0]
    total_bytes = sum(k[0] for k in kernels.values())
    total_flops = sum(k[1] for k in kernels.values())
    step = None
    if total_bytes and total_flops and last is not None and last > first:
        step = ("whole run", total_flops / total_bytes,
                total_flops / ((last - first) * 1e-6) * 1e-9)
    return points, step


def roofline(out, points, bandwidth, peak=None, title="", highlight=()):
    """Writes the roofline of `points` [(label, ops/byte, GOPS)] under the
    `bandwidth` (GB/s) and `peak` (GOPS) roofs to `out` (PNG); the points
    of `highlight` are drawn larger."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    xs = [p[1] for p in list(points) + list(highlight)]
    lo = min(xs + [0.5]) / 2
    hi = max(xs + [(peak / bandwidth) if peak else 1]) * 4
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    roof = [bandwidth * x if not peak else min(peak, bandwidth * x)
            for x in grid]
    ax.plot(grid, roof, color="black", linewidth=1.5,
            label=f"read probe {bandwidth:.1f} GB/s"
            + (f", int8 peak {peak:.0f} GOPS" if peak else ""))
    for label, x, y in points:
        ax.scatter([x], [y], s=30)
        ax.annotate(label, (x, y), fontsize=7, xytext=(4, 2),
                    textcoords="offset points")
    for label, x, y in highlight:
        ax.scatter([x], [y], s=120, marker="*", color="crimson", zorder=3)
        ax.annotate(label, (x, y), fontsize=9, xytext=(6, -10),
                    textcoords="offset points", color="crimson")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (operations per byte)")
    ax.set_ylabel("GOPS reached")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def bars(out, rows, ours="bitnet-mlir", peer="peer", title=""):
    """Writes a bar chart of `rows` [(label, our value, peer value)] to
    `out` (PNG), each pair with its ratio above it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    width = 0.38
    for i, (label, a, b) in enumerate(rows):
        ax.bar(i - width / 2, a, width, color="tab:blue",
               label=ours if i == 0 else None)
        ax.bar(i + width / 2, b, width, color="tab:gray",
               label=peer if i == 0 else None)
        if b:
            ax.annotate(f"{a / b:.2f}x", (i, max(a, b)), ha="center",
                        xytext=(0, 3), textcoords="offset points")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r[0] for r in rows], fontsize=8)
    ax.set_ylabel("tokens/s")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def kernel_bench_points(path):
    """Per thread count: (points, read GB/s, int8 GOPS) of a
    bitnet-kernel-bench JSON report."""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        parts = [p for p in b["run_name"].split("/") if p != "real_time"]
        numbers = [p for p in parts if re.fullmatch(r"\d+", p)]
        if not numbers:
            continue
        threads = int(numbers[-1])
        entry = out.setdefault(threads, [[], None, None])
        if parts[0] == "read_bandwidth":
            entry[1] = b["GB/s"]
        elif parts[0] == "int8_peak":
            entry[2] = b["GOPS"]
        elif "GOPS" in b and b.get("weight_GB/s"):
            label = "/".join(p for p in parts if p != numbers[-1])
            entry[0].append((label, b["GOPS"] / b["weight_GB/s"], b["GOPS"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="kind", required=True)
    t = sub.add_parser("trace", help="roofline of a bitnet-run trace")
    t.add_argument("trace")
    t.add_argument("--bandwidth", type=float, required=True,
                   help="the read probe of the same run, GB/s")
    t.add_argument("--peak", type=float, help="the int8 peak probe, GOPS")
    t.add_argument("--title", default="")
    t.add_argument("-o", "--output", required=True)
    k = sub.add_parser("kernel-bench",
                       help="rooflines of a bitnet-kernel-bench JSON report")
    k.add_argument("report")
    k.add_argument("-o", "--output", required=True,
                   help="prefix: PREFIX-1T.png, PREFIX-2T.png")
    args = ap.parse_args()
    if args.kind == "trace":
        points, step = trace_points(args.trace)
        if not points:
            sys.exit(f"charts: {args.trace} holds no kernel with bytes and "
                     "operations")
        roofline(args.output, points, args.bandwidth, args.peak, args.title,
                 highlight=[step] if step else [])
        print(f"charts: wrote {args.output}")
    else:
        per_threads = kernel_bench_points(args.report)
        for threads, (points, bandwidth, peak) in sorted(per_threads.items()):
            if not points or not bandwidth:
                continue
            out = f"{args.output}-{threads}T.png"
            roofline(out, points, bandwidth, peak,
                     f"bitnet-kernel-bench, {threads} thread(s)")
            print(f"charts: wrote {out}")


if __name__ == "__main__":
    main()
