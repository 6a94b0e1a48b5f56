"""bench/charts.py: the rooflines and the peer bar chart the benchmarks draw.

Checked on small reports written here: a bitnet-run --profile trace (two
kernels over two runs) and a bitnet-kernel-bench JSON report (the probes and
two kernels at 1 and 2 threads):
- the points are the kernels' summed operations over bytes, and over time;
  the whole run's point sums them all over the span of the runs;
- each chart is written as a PNG file; the kernel report gives one per
  thread count; a trace without kernels is an error that names the file.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import charts  # noqa: E402

try:
    import matplotlib  # noqa: F401
except ImportError:
    raise unittest.SkipTest("python3-matplotlib is not installed")

PNG = b"\x89PNG\r\n\x1a\n"


def kernel(name, ts, dur, nbytes, flops):
    return {"name": name, "cat": "kernel", "ph": "X", "ts": ts, "dur": dur,
            "pid": 1, "tid": 1, "args": {"bytes": nbytes, "flops": flops}}


class ChartsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.trace = os.path.join(self.tmp.name, "trace.json")
        events = [{"name": "process_name", "ph": "M", "pid": 1, "tid": 0,
                   "args": {"name": "bitnet_rt"}}]
        for run in range(2):  # microseconds
            t0 = 1000 * run
            events.append(kernel("head", t0, 500, 4_000_000, 4_000_000))
            events.append(kernel("bitlinear", t0 + 500, 250, 1_000_000,
                                 8_000_000))
        with open(self.trace, "w") as f:
            json.dump({"displayTimeUnit": "ms", "traceEvents": events}, f)

    def test_trace_points(self):
        points, step = charts.trace_points(self.trace)
        got = {name: (x, y) for name, x, y in points}
        # head: 8e6 operations over 8e6 bytes in 1 ms: 8 GOPS.
        self.assertAlmostEqual(got["head"][0], 1.0)
        self.assertAlmostEqual(got["head"][1], 8.0)
        # bitlinear: 16e6 over 2e6 bytes in 0.5 ms: 32 GOPS.
        self.assertAlmostEqual(got["bitlinear"][0], 8.0)
        self.assertAlmostEqual(got["bitlinear"][1], 32.0)
        # All of it over the span of the runs, 1.75 ms.
        self.assertAlmostEqual(step[1], 24e6 / 10e6)
        self.assertAlmostEqual(step[2], 24e6 / 1.75e-3 * 1e-9)

    def run_cli(self, *args):
        return subprocess.run([sys.executable,
                               os.path.join(ROOT, "bench", "charts.py"),
                               *args], capture_output=True, text=True)

    def assert_png(self, path):
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), PNG, path)

    def test_trace_roofline(self):
        out = os.path.join(self.tmp.name, "roof.png")
        r = self.run_cli("trace", self.trace, "--bandwidth", "20",
                         "--peak", "500", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_png(out)

    def test_empty_trace_is_an_error(self):
        empty = os.path.join(self.tmp.name, "empty.json")
        with open(empty, "w") as f:
            json.dump({"traceEvents": []}, f)
        r = self.run_cli("trace", empty, "--bandwidth", "20", "-o",
                         os.path.join(self.tmp.name, "x.png"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("empty.json holds no kernel", r.stderr)

    def test_kernel_bench_rooflines(self):
        report = os.path.join(self.tmp.name, "bench.json")
        benchmarks = []
        for t in (1, 2):
            benchmarks += [
                {"name": f"read_bandwidth/{t}/real_time",
                 "run_name": f"read_bandwidth/{t}/real_time",
                 "run_type": "iteration", "GB/s": 20.0 * t},
                {"name": f"int8_peak/{t}/real_time",
                 "run_name": f"int8_peak/{t}/real_time",
                 "run_type": "iteration", "GOPS": 800.0 * t},
                {"name": f"head_f16/65536x2560/m1/{t}/real_time",
                 "run_name": f"head_f16/65536x2560/m1/{t}/real_time",
                 "run_type": "iteration", "GOPS": 9.0 * t,
                 "weight_GB/s": 18.0 * t},
                {"name": f"mad/qo_2560x2560/m128/hot/{t}/real_time",
                 "run_name": f"mad/qo_2560x2560/m128/hot/{t}/real_time",
                 "run_type": "iteration", "GOPS": 700.0 * t,
                 "weight_GB/s": 2.7 * t}]
        with open(report, "w") as f:
            json.dump({"benchmarks": benchmarks}, f)
        per = charts.kernel_bench_points(report)
        self.assertEqual(sorted(per), [1, 2])
        points, bandwidth, peak = per[2]
        self.assertEqual((bandwidth, peak), (40.0, 1600.0))
        self.assertIn(("head_f16/65536x2560/m1", 0.5, 18.0), points)
        prefix = os.path.join(self.tmp.name, "kernels")
        r = self.run_cli("kernel-bench", report, "-o", prefix)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_png(prefix + "-1T.png")
        self.assert_png(prefix + "-2T.png")

    def test_bars(self):
        out = os.path.join(self.tmp.name, "peer.png")
        charts.bars(out, [("decode 1T", 14.0, 11.0), ("prefill 1T", 80.0,
                                                       30.0)],
                    peer="bitnet.cpp", title="same run")
        self.assert_png(out)


if __name__ == "__main__":
    unittest.main()
