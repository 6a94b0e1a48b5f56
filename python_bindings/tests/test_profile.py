"""Profiling: run(..., profile=True), the Profiler context, the Chrome trace
and the per-kernel table."""

import json
import os
import unittest

import numpy as np

import bitnet_mlir
from support import EXAMPLES_DIR, TempDirTestCase, rt_test_model


class Profiling(TempDirTestCase):
    def setUp(self):
        self.model = bitnet_mlir.load(rt_test_model("parallel"), threads=2)
        self.addCleanup(self.model.close)
        self.x = np.arange(1000, dtype=np.float32)

    def test_profile_one_run(self):
        self.assertIsNone(self.model.last_profile)
        y, z, seen = self.model.run(self.x, profile=True)
        np.testing.assert_array_equal(z, 3 * self.x + 1)
        self.assertEqual(list(seen[:2]), [1, 1])  # hooks were on
        prof = self.model.last_profile
        self.assertIsInstance(prof, bitnet_mlir.Profiler)
        self.assertEqual(prof.runs, 1)
        self.assertGreater(prof.total_ns, 0)
        kernels = prof.kernels
        self.assertEqual([k.name for k in kernels], ["scale", "shift"])
        for k in kernels:
            self.assertIsInstance(k, bitnet_mlir.KernelStats)
            self.assertEqual(k.calls, 1)
            self.assertEqual(k.bytes, 2 * 1000 * 4)
            self.assertEqual(k.flops, 1000)
            self.assertGreater(k.total_ns, 0)
            self.assertLessEqual(k.min_ns, k.max_ns)
            self.assertAlmostEqual(k.mean_time, k.total_ns * 1e-9)
            self.assertAlmostEqual(k.gbps, k.bytes / k.total_ns)
            self.assertGreater(k.gflops, 0)
        # Profiling is off again for the next run.
        _, _, seen = self.model.run(self.x)
        self.assertEqual(list(seen[:2]), [0, 0])
        self.assertEqual(self.model.last_profile.runs, 1)

    def test_profiler_context(self):
        with bitnet_mlir.Profiler(self.model) as prof:
            self.assertTrue(prof.active)
            for _ in range(3):
                self.model.run(self.x)
        self.assertFalse(prof.active)
        self.model.run(self.x)  # not counted
        self.assertEqual(prof.runs, 3)
        self.assertEqual(prof.kernel("scale").calls, 3)
        self.assertEqual(prof.kernel("shift").bytes, 3 * 8000)
        with self.assertRaises(KeyError):
            prof.kernel("nope")
        table = prof.table()
        self.assertIn("scale", table)
        self.assertIn("GB/s", table)
        self.assertIn("Profiler", repr(prof))
        prof.reset()
        self.assertEqual(prof.runs, 0)
        self.assertEqual(prof.kernels, [])

    def test_chrome_trace(self):
        with bitnet_mlir.Profiler(self.model) as prof:
            self.model.run(self.x)
            self.model.run(self.x)
        path = os.path.join(self.tmp, "trace.json")
        prof.write_trace(path)
        with open(path) as f:
            trace = json.load(f)
        names = [e["name"] for e in trace["traceEvents"] if e.get("ph") == "X"]
        self.assertEqual(names.count("scale"), 2)
        self.assertEqual(names.count("shift"), 2)
        with self.assertRaises(bitnet_mlir.RuntimeError):
            prof.write_trace(os.path.join(self.tmp, "no", "dir", "trace.json"))

    def test_one_profiler_for_two_models(self):
        other = bitnet_mlir.load(rt_test_model("parallel"), threads=1)
        self.addCleanup(other.close)
        with bitnet_mlir.Profiler(self.model, other) as prof:
            self.model.run(self.x)
            other.run(self.x)
        self.assertEqual(prof.runs, 2)
        self.assertEqual(prof.kernel("scale").calls, 2)

    def test_one_active_profiler_per_model(self):
        with bitnet_mlir.Profiler(self.model):
            with self.assertRaisesRegex(ValueError, "another active Profiler"):
                bitnet_mlir.Profiler(self.model).start()
            with self.assertRaisesRegex(ValueError, "profile=True"):
                self.model.run(self.x, profile=True)
        # Both free again.
        with bitnet_mlir.Profiler(self.model) as again:
            self.model.run(self.x)
        self.assertEqual(again.runs, 1)

    def test_bad_max_events(self):
        with self.assertRaisesRegex(ValueError, "max_events"):
            bitnet_mlir.Profiler(self.model, max_events=-1)

    def test_compiled_cpu_kernel_reports_itself(self):
        out = os.path.join(self.tmp, "vnni.so")
        try:
            bitnet_mlir.compile(os.path.join(EXAMPLES_DIR, "bitlinear.mlir"), out,
                                kernels="avx512vnni")
        except bitnet_mlir.CompileError as e:
            self.skipTest(f"no AVX-512 VNNI kernels for this machine: {e}")
        x = np.load(os.path.join(EXAMPLES_DIR, "bitlinear_x.npy"))
        with bitnet_mlir.load(out, threads=2) as m:
            with bitnet_mlir.Profiler(m) as prof:
                m.run(x)
                m.run(x)
        self.assertEqual(prof.runs, 2)
        kernels = prof.kernels
        self.assertTrue(kernels)
        self.assertTrue(any("bitlinear" in k.name for k in kernels),
                        [k.name for k in kernels])
        for k in kernels:
            self.assertEqual(k.calls, 2)
            self.assertGreater(k.bytes, 0)
            self.assertGreater(k.gbps, 0)

    def test_compiled_model(self):
        so = bitnet_mlir.compile(os.path.join(EXAMPLES_DIR, "bitlinear.mlir"),
                                 os.path.join(self.tmp, "bitlinear.so"))
        x = np.load(os.path.join(EXAMPLES_DIR, "bitlinear_x.npy"))
        with bitnet_mlir.load(so, threads=1) as m:
            plain = m.run(x)
            profiled = m.run(x, profile=True)
            np.testing.assert_array_equal(plain, profiled)
            prof = m.last_profile
            self.assertEqual(prof.runs, 1)
            # Whatever kernels the compiled code reports (the CPU kernels
            # do; the reference lowering reports none).
            for k in prof.kernels:
                self.assertEqual(k.calls, 1)
                self.assertGreater(k.bytes, 0)
            path = os.path.join(self.tmp, "compiled_trace.json")
            prof.write_trace(path)
            with open(path) as f:
                self.assertIn("traceEvents", json.load(f))


if __name__ == "__main__":
    unittest.main()
