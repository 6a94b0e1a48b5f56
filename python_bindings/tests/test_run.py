"""bitnet_mlir.load() and Model.run(): arguments, outputs, memory, threads
and every error path."""

import builtins
import gc
import os
import threading
import time
import unittest

import numpy as np

import bitnet_mlir
import support
from support import EXAMPLES_DIR, TempDirTestCase, rt_test_model

TWO_INPUTS = """
func.func @two(%x: tensor<2x8xf32> {bitnet.name = "x"}, %g: tensor<8xf32> {bitnet.name = "g"})
    -> (tensor<2x8xf32>, tensor<2x8xf32>) attributes {bitnet.output_names = ["y", "r"]} {
  %y = bitnet.rmsnorm %x, %g {epsilon = 1.0e-05 : f32} : tensor<2x8xf32>, tensor<8xf32> -> tensor<2x8xf32>
  %r = bitnet.squared_relu %x : tensor<2x8xf32>
  return %y, %r : tensor<2x8xf32>, tensor<2x8xf32>
}
"""


class Fixture(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.example = bitnet_mlir.compile(
            os.path.join(EXAMPLES_DIR, "bitlinear.mlir"),
            os.path.join(cls.tmp, "bitlinear.so"))
        src = os.path.join(cls.tmp, "two.mlir")
        with open(src, "w") as f:
            f.write(TWO_INPUTS)
        cls.two = bitnet_mlir.compile(src)

    def setUp(self):
        self.model = bitnet_mlir.load(self.example, threads=1)
        self.addCleanup(self.model.close)
        self.x = np.load(os.path.join(EXAMPLES_DIR, "bitlinear_x.npy"))
        self.expected = self.model.run(self.x).copy()


class Loading(Fixture):
    def test_missing_file(self):
        missing = os.path.join(self.tmp, "missing.so")
        with self.assertRaises(bitnet_mlir.RuntimeError) as cm:
            bitnet_mlir.load(missing)
        e = cm.exception
        self.assertEqual(e.code_name, "NOT_FOUND")
        self.assertIsInstance(e.code, int)
        self.assertIn(missing, str(e))
        self.assertIsInstance(e, builtins.RuntimeError)
        self.assertIsInstance(e, bitnet_mlir.Error)

    def test_not_a_shared_object(self):
        path = self.write("text.so", "not an ELF file")
        with self.assertRaises(bitnet_mlir.RuntimeError) as cm:
            bitnet_mlir.load(path)
        self.assertEqual(cm.exception.code_name, "INVALID_MODEL")
        self.assertIn(path, str(cm.exception))

    def test_broken_descriptors(self):
        for name, code in (("bad_magic", "INVALID_MODEL"),
                           ("bad_version", "INCOMPATIBLE"),
                           ("no_run", "INVALID_MODEL"),
                           ("neg_dim", "INVALID_MODEL")):
            path = rt_test_model(name)
            with self.assertRaises(bitnet_mlir.RuntimeError, msg=name) as cm:
                bitnet_mlir.load(path)
            self.assertEqual(cm.exception.code_name, code, str(cm.exception))

    def test_out_of_range_inputs(self):
        # ids holds token ids of a 4-row table, [-4, 3], and position one of
        # an 8-row cache, [0, 7]: values outside are refused, not clamped.
        with bitnet_mlir.load(rt_test_model("ranged")) as m:
            ids = np.array([-4, 0, 3], dtype=np.int32)
            y = m.run(ids=ids, position=np.array(7, dtype=np.int64))
            np.testing.assert_array_equal(y, [3, 7, 10])
            for ids, position, message in (
                    ([0, 4, 0], 0, "input 0 ('ids') holds 4 at element 1; "
                                   "the model accepts values in [-4, 3]"),
                    ([0, 0, 0], 8, "input 1 ('position') holds 8; the model "
                                   "accepts values in [0, 7]")):
                with self.assertRaises(bitnet_mlir.RuntimeError) as cm:
                    m.run(ids=np.array(ids, dtype=np.int32),
                          position=np.array(position, dtype=np.int64))
                self.assertEqual(cm.exception.code_name, "OUT_OF_RANGE")
                self.assertIn(message, str(cm.exception))

    def test_use_huge_pages(self):
        # The runtime test model with 8 MiB of weights (y = x + 2048, the
        # bytes of one per page): its whole 2 MiB pages move, it computes the
        # same after, and a second call moves nothing. Where the system has
        # no transparent huge pages: UNAVAILABLE, the model unchanged.
        with bitnet_mlir.load(rt_test_model("weights"), threads=1) as m:
            x = np.array([0.5], dtype=np.float32)
            np.testing.assert_array_equal(m.run(x), [2048.5])
            before = m.mapping()
            try:
                moved = m.use_huge_pages()
            except bitnet_mlir.RuntimeError as e:
                self.assertEqual(e.code_name, "UNAVAILABLE")
                np.testing.assert_array_equal(m.run(x), [2048.5])
                return
            self.assertGreaterEqual(moved, 6 << 20)
            self.assertEqual(moved % (2 << 20), 0)
            after = m.mapping()
            for key in ("read_only_bytes", "code_bytes", "writable_bytes"):
                self.assertEqual(after[key], before[key])
            self.assertLessEqual(after["huge_page_bytes"],
                                 after["read_only_bytes"])
            np.testing.assert_array_equal(m.run(x), [2048.5])
            self.assertEqual(m.use_huge_pages(), 0)
        with self.assertRaises(bitnet_mlir.RuntimeError) as cm:
            m.use_huge_pages()
        self.assertEqual(cm.exception.code_name, "FAILED_PRECONDITION")

    def test_verify(self):
        # A compiled model carries the checksum of its bytes: intact it
        # verifies; one flipped byte in the middle, or a stripped trailer,
        # does not.
        with bitnet_mlir.load(self.example) as m:
            m.verify()
        with open(self.example, "rb") as f:
            data = f.read()
        self.assertEqual(data[-24:-16], b"BTNMSUM1")
        damaged = bytearray(data)
        damaged[len(data) // 2] ^= 0x10
        for name, content, code, message in (
                ("damaged.so", bytes(damaged), "INVALID_MODEL",
                 "is damaged: its checksum is"),
                ("stripped.so", data[:-24], "UNAVAILABLE",
                 "carries no checksum")):
            path = os.path.join(self.tmp, name)
            with open(path, "wb") as f:
                f.write(content)
            try:
                m = bitnet_mlir.load(path)
            except bitnet_mlir.RuntimeError:
                continue  # the flipped byte broke loading itself: refused too
            with m:
                with self.assertRaises(bitnet_mlir.RuntimeError) as cm:
                    m.verify()
                self.assertEqual(cm.exception.code_name, code)
                self.assertIn(message, str(cm.exception))
        # The file at the path is no longer the one loaded.
        path = os.path.join(self.tmp, "replaced.so")
        with open(path, "wb") as f:
            f.write(data)
        with bitnet_mlir.load(path) as m:
            os.unlink(path)
            with open(path, "wb") as f:
                f.write(data)
            with self.assertRaises(bitnet_mlir.RuntimeError) as cm:
                m.verify()
            self.assertEqual(cm.exception.code_name, "FAILED_PRECONDITION")

    def test_threads(self):
        for threads in (1, 2, 3):
            with bitnet_mlir.load(self.example, threads=threads) as m:
                self.assertEqual(m.threads, threads)
                np.testing.assert_array_equal(m.run(self.x), self.expected)
        with bitnet_mlir.load(self.example) as m:
            self.assertEqual(m.threads, bitnet_mlir.default_num_threads())

    def test_bad_threads(self):
        with self.assertRaisesRegex(ValueError, "threads must be >= 1.*got 0"):
            bitnet_mlir.load(self.example, threads=0)
        with self.assertRaisesRegex(ValueError, "got -2"):
            bitnet_mlir.load(self.example, threads=-2)
        with self.assertRaisesRegex(TypeError, "threads must be an int"):
            bitnet_mlir.load(self.example, threads="2")
        with self.assertRaisesRegex(TypeError, "threads must be an int"):
            bitnet_mlir.load(self.example, threads=2.0)
        with self.assertRaisesRegex(TypeError, "threads must be an int"):
            bitnet_mlir.load(self.example, threads=True)
        with self.assertRaises(bitnet_mlir.RuntimeError) as cm:
            bitnet_mlir.load(self.example, threads=100000)
        self.assertEqual(cm.exception.code_name, "INVALID_ARGUMENT")

    def test_bad_path_type(self):
        with self.assertRaisesRegex(TypeError, "path must be"):
            bitnet_mlir.load(None)

    def test_description(self):
        m = self.model
        self.assertIn("bitlinear", repr(m))
        self.assertEqual(m.path, self.example)
        self.assertGreaterEqual(m.workspace_bytes, 0)
        self.assertTrue(m.target)
        mapping = m.mapping()
        self.assertGreater(mapping["code_bytes"], 0)
        self.assertEqual(str(m.inputs[0]), "x: float32 (2, 8)")
        self.assertEqual(m.inputs[0].size, 16)
        self.assertEqual(m.inputs[0].ndim, 2)


class Inputs(Fixture):
    def test_positional_named_and_call(self):
        np.testing.assert_array_equal(self.model.run(x=self.x), self.expected)
        np.testing.assert_array_equal(self.model(self.x), self.expected)

    def test_mixed_positional_and_named(self):
        with bitnet_mlir.load(self.two, threads=1) as m:
            g = np.linspace(0.5, 2, 8, dtype=np.float32)
            a = m.run(self.x, g)
            b = m.run(self.x, g=g)
            c = m.run(g=g, x=self.x)
            for got in (b, c):
                np.testing.assert_array_equal(a[0], got[0])
                np.testing.assert_array_equal(a[1], got[1])
            with self.assertRaisesRegex(TypeError, "two values for input 'x'"):
                m.run(self.x, g, x=self.x)
            with self.assertRaisesRegex(TypeError, "missing 1 input: g: float32 \\(8,\\)"):
                m.run(self.x)
            with self.assertRaisesRegex(TypeError, "missing 2 inputs"):
                m.run()

    def test_wrong_count(self):
        with self.assertRaisesRegex(TypeError, r"takes 1 input \(x: float32 \(2, 8\)\), got 2"):
            self.model.run(self.x, self.x)
        with self.assertRaisesRegex(TypeError, "missing 1 input: x"):
            self.model.run()

    def test_unknown_name(self):
        with self.assertRaisesRegex(TypeError, "no input named 'w'.*'x'"):
            self.model.run(w=self.x)

    def test_wrong_dtype_is_not_converted(self):
        for bad in (self.x.astype(np.float64), self.x.astype(np.float16),
                    self.x.astype(np.int32), self.x.astype(">f4")):
            with self.assertRaises(TypeError) as cm:
                self.model.run(bad)
            message = str(cm.exception)
            self.assertIn("input 'x'", message)
            self.assertIn("float32", message)
            self.assertIn(str(bad.dtype), message)

    def test_wrong_shape(self):
        for shape in ((2, 9), (16,), (1, 2, 8), (8, 2), ()):
            bad = np.zeros(shape, np.float32)
            with self.assertRaises(ValueError) as cm:
                self.model.run(bad)
            message = str(cm.exception)
            self.assertIn("input 'x'", message)
            self.assertIn("(2, 8)", message)
            self.assertIn(str(shape), message)

    def test_not_an_array(self):
        for bad in (self.x.tolist(), 1.5, None, "x", memoryview(self.x)):
            with self.assertRaisesRegex(TypeError, "input 'x'.*numpy.ndarray.*float32.*\\(2, 8\\)"):
                self.model.run(bad)

    def test_non_contiguous_inputs_are_copied(self):
        # Documented policy: strided, Fortran-ordered or unaligned inputs of
        # the right dtype and shape are copied into a C-contiguous array.
        wide = np.zeros((2, 16), np.float32)
        wide[:, ::2] = self.x
        strided = wide[:, ::2]
        self.assertFalse(strided.flags.c_contiguous)
        np.testing.assert_array_equal(self.model.run(strided), self.expected)
        fortran = np.asfortranarray(self.x)
        self.assertFalse(fortran.flags.c_contiguous)
        np.testing.assert_array_equal(self.model.run(fortran), self.expected)
        transposed = np.ascontiguousarray(self.x.T).T
        np.testing.assert_array_equal(self.model.run(transposed), self.expected)
        raw = np.zeros(2 * 8 * 4 + 1, np.uint8)
        unaligned = raw[1:].view(np.float32).reshape(2, 8)
        unaligned[...] = self.x
        self.assertFalse(unaligned.flags.aligned)
        np.testing.assert_array_equal(self.model.run(unaligned), self.expected)
        # The caller's arrays are untouched.
        np.testing.assert_array_equal(strided, self.x)

    def test_read_only_input(self):
        ro = self.x.copy()
        ro.flags.writeable = False
        np.testing.assert_array_equal(self.model.run(ro), self.expected)

    def test_scalar_input_dtype_is_checked(self):
        path = self.compile_source("scalar", """
func.func @s(%x: tensor<2x4xf32>, %w: !bitnet.ternary<3x4, int8>, %s: tensor<f32>) -> tensor<2x3xf32> {
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x4xf32>, !bitnet.ternary<3x4, int8>, tensor<f32> -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}
""")
        with bitnet_mlir.load(path, threads=1) as m:
            x = np.ones((2, 4), np.float32)
            w = np.ones((3, 4), np.int8)
            self.assertEqual(m.inputs[2].shape, ())
            m.run(x, w, np.float32(0.5))
            m.run(x, w, np.array(0.5, np.float32))
            with self.assertRaisesRegex(TypeError, "input 'input2'.*float32.*float64"):
                m.run(x, w, np.float64(0.5))
            with self.assertRaisesRegex(TypeError, "input 'input2'.*got float"):
                m.run(x, w, 0.5)
            with self.assertRaisesRegex(TypeError, "input 'input1'.*int8.*uint8"):
                m.run(x, w.view(np.uint8), np.float32(0.5))


class Outputs(Fixture):
    def test_fresh_outputs(self):
        y = self.model.run(self.x)
        self.assertIsInstance(y, np.ndarray)
        self.assertEqual((y.dtype, y.shape), (np.float32, (2, 4)))
        self.assertTrue(y.flags.c_contiguous and y.flags.writeable)
        self.assertEqual(y.ctypes.data % 64, 0)
        y2 = self.model.run(self.x)
        self.assertFalse(np.shares_memory(y, y2))

    def test_out_single_array(self):
        out = np.full((2, 4), np.nan, np.float32)
        y = self.model.run(self.x, out=out)
        self.assertIs(y, out)
        np.testing.assert_array_equal(out, self.expected)

    def test_out_sequence_with_none(self):
        with bitnet_mlir.load(self.two, threads=1) as m:
            g = np.ones(8, np.float32)
            y_ref, r_ref = m.run(self.x, g)
            r = np.empty((2, 8), np.float32)
            y, r2 = m.run(self.x, g, out=(None, r))
            self.assertIs(r2, r)
            np.testing.assert_array_equal(r, r_ref)
            np.testing.assert_array_equal(y, y_ref)
            y_out = np.empty((2, 8), np.float32)
            res = m.run(self.x, g, out=[y_out, r])
            self.assertIsInstance(res, tuple)
            self.assertIs(res[0], y_out)
            with self.assertRaisesRegex(ValueError, "must hold 2 arrays.*got 1"):
                m.run(self.x, g, out=[r])
            with self.assertRaisesRegex(TypeError, "sequence of 2 arrays"):
                m.run(self.x, g, out=r)
            with self.assertRaisesRegex(ValueError, "overlaps"):
                m.run(self.x, g, out=(r, r))
            with self.assertRaisesRegex(ValueError, "overlaps"):
                m.run(self.x, g, out=(None, self.x))

    def test_bad_out(self):
        with self.assertRaisesRegex(TypeError, "output 'y'.*float32.*float64"):
            self.model.run(self.x, out=np.empty((2, 4), np.float64))
        with self.assertRaisesRegex(ValueError, r"output 'y'.*\(2, 4\).*\(4, 2\)"):
            self.model.run(self.x, out=np.empty((4, 2), np.float32))
        with self.assertRaisesRegex(ValueError, "output 'y'.*C-contiguous"):
            self.model.run(self.x, out=np.empty((2, 8), np.float32)[:, ::2])
        ro = np.empty((2, 4), np.float32)
        ro.flags.writeable = False
        with self.assertRaisesRegex(ValueError, "output 'y'.*read-only"):
            self.model.run(self.x, out=ro)
        with self.assertRaisesRegex(TypeError, "out= for output 'y'.*numpy.ndarray.*got list"):
            self.model.run(self.x, out=[[0.0] * 4])
        with self.assertRaisesRegex(ValueError, "must hold 1 array.*got 2"):
            self.model.run(self.x, out=[None, None])
        with self.assertRaisesRegex(TypeError, "out= must be"):
            self.model.run(self.x, out=3)

    def test_outputs_come_from_the_pool(self):
        self.model.run(self.x)   # warm: one output block cached
        gc.collect()
        before = self.model.pool_stats()
        for _ in range(5):
            self.model.run(self.x)   # each result is dropped at once
        after = self.model.pool_stats()
        self.assertIsInstance(after, bitnet_mlir.PoolStats)
        self.assertEqual(after.allocations - before.allocations, 5)
        self.assertEqual(after.allocations_fresh, before.allocations_fresh)
        self.assertEqual(after.allocations_from_pool - before.allocations_from_pool, 5)
        held = [self.model.run(self.x) for _ in range(3)]
        stats = self.model.pool_stats()
        self.assertGreaterEqual(stats.bytes_in_use, 3 * 32)
        self.assertGreaterEqual(stats.peak_bytes_in_use, stats.bytes_in_use)
        del held
        self.model.reset_pool_peaks()
        self.model.trim_pool()

    def test_outputs_outlive_the_model(self):
        m = bitnet_mlir.load(self.example, threads=1)
        y = m.run(self.x)
        m.close()
        del m
        gc.collect()
        np.testing.assert_array_equal(y, self.expected)
        y[...] = 1.0  # still valid memory


class Runtime(Fixture):
    def test_closed_model(self):
        m = bitnet_mlir.load(self.example, threads=1)
        m.close()
        self.assertTrue(m.closed)
        with self.assertRaisesRegex(ValueError, "closed"):
            m.run(self.x)
        with self.assertRaisesRegex(ValueError, "closed"):
            m.pool_stats()
        m.close()  # twice is fine

    def test_failing_run(self):
        with bitnet_mlir.load(rt_test_model("failing"), threads=1) as m:
            with self.assertRaises(bitnet_mlir.RuntimeError) as cm:
                m.run(np.zeros(1, np.float32))
            self.assertEqual(cm.exception.code_name, "RUN_FAILED")
            self.assertIn("7", str(cm.exception))

    def test_dtypes_and_scalars(self):
        with bitnet_mlir.load(rt_test_model("mixed"), threads=1) as m:
            self.assertEqual([s.dtype for s in m.inputs],
                             [np.int32, np.float32, np.bool_])
            self.assertEqual([s.dtype for s in m.outputs],
                             [np.float32, np.int64, np.float16])
            tokens = np.array([1, 2, 3, 4, 5], np.int32)
            mask = np.array([True, False, True, True, False])
            out, total, half = m.run(tokens, np.float32(0.5), mask)
            np.testing.assert_array_equal(out, [0.5, 0, 1.5, 2.0, 0])
            self.assertEqual(total.shape, ())
            self.assertEqual(int(total), 8)
            np.testing.assert_array_equal(half, np.array([[1, -2.5], [0.5, 2]], np.float16))
            with self.assertRaisesRegex(TypeError, "input 'mask'.*bool.*uint8"):
                m.run(tokens, np.float32(0.5), mask.view(np.uint8))

    def test_inputs_are_not_copied_and_gil_is_released(self):
        # The gated model polls its input until it is non-zero: only this
        # thread can open it, which needs the GIL while the run is in
        # progress, and the run must see the caller's own buffer.
        with bitnet_mlir.load(rt_test_model("gated"), threads=1) as m:
            gate = np.zeros(1, np.int32)
            result = {}
            thread = threading.Thread(target=lambda: result.update(y=m.run(gate)))
            thread.start()
            time.sleep(0.05)
            self.assertTrue(thread.is_alive())
            gate[0] = 42
            thread.join(timeout=30)
            self.assertFalse(thread.is_alive())
            self.assertEqual(int(result["y"][0]), 42)

    def test_concurrent_runs_on_one_model_wait_their_turn(self):
        with bitnet_mlir.load(rt_test_model("gated"), threads=1) as m:
            gate = np.zeros(1, np.int32)
            results = {}
            first = threading.Thread(target=lambda: results.update(a=m.run(gate)))
            first.start()
            time.sleep(0.05)
            second = threading.Thread(
                target=lambda: results.update(b=m.run(np.array([7], np.int32))))
            second.start()
            time.sleep(0.05)
            self.assertTrue(second.is_alive())  # waiting for the first run
            gate[0] = 1
            first.join(timeout=30)
            second.join(timeout=30)
            self.assertEqual(int(results["a"][0]), 1)
            self.assertEqual(int(results["b"][0]), 7)

    def test_threads_run_models_in_parallel(self):
        models = [bitnet_mlir.load(self.example, threads=1) for _ in range(3)]
        errors = []

        def work(m):
            try:
                for _ in range(50):
                    np.testing.assert_array_equal(m.run(self.x), self.expected)
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(m,)) for m in models]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for m in models:
            m.close()
        self.assertEqual(errors, [])

    def test_parallel_model_sees_the_thread_pool(self):
        with bitnet_mlir.load(rt_test_model("parallel"), threads=3) as m:
            x = np.arange(1000, dtype=np.float32)
            y, z, seen = m.run(x)
            np.testing.assert_array_equal(y, 3 * x)
            np.testing.assert_array_equal(z, 3 * x + 1)
            # kernel hooks off (no profiler), parallel_for on, 3 threads
            np.testing.assert_array_equal(seen, [0, 0, 1, 3])
        with bitnet_mlir.load(rt_test_model("parallel"), threads=1) as m:
            _, _, seen = m.run(np.zeros(1000, np.float32))
            self.assertEqual(int(seen[2]), 0)


if __name__ == "__main__":
    unittest.main()
