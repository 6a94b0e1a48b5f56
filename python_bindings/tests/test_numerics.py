"""Compiled models against a NumPy implementation of the numerics contract:
the quantised parts (int8 activations, ternary weights, int32 dot products,
scales) must match exactly, float results within a few ulp."""

import os
import unittest

import numpy as np

import bitnet_mlir
import support
from support import (EXAMPLES_DIR, TempDirTestCase, assert_bits_equal,
                     assert_close_ulp, dense_attr)

# The latent weights of examples/bitlinear.mlir.
EXAMPLE_W = np.array([[0.9, -0.4, 0.0, 1.2, -1.1, 0.3, 0.05, -0.8],
                      [-0.2, 0.7, 0.6, -0.9, 0.0, 0.0, 1.5, 0.1],
                      [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                      [1.0, 1.0, -1.0, -1.0, 0.5, -0.5, 0.25, -0.25]],
                     np.float32)


def ties(m, k):
    """max|x| = 127 makes s_x = 1, so x * s_x lands exactly on .5 ties."""
    x = np.empty((m, k), np.float32)
    for r in range(m):
        for i in range(k):
            x[r, i] = 127.0 if i == 0 else float((i * 7 + r) % 19) - 9.5
    return x


class ReferenceSelfCheck(unittest.TestCase):
    """The NumPy reference itself follows the contract's rounding."""

    def test_round_half_to_even(self):
        np.testing.assert_array_equal(
            np.round(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.5], np.float32)),
            [0, 2, 2, -0, -2, 4])
        xq, s = support.quantize_activations(np.array([[127.0, 0.5, 1.5, -2.5]], np.float32))
        self.assertEqual(s[0], np.float32(1))
        np.testing.assert_array_equal(xq, [[127, 0, 2, -2]])

    def test_pack_layouts(self):
        wq = np.array([[-1, 0, 1, 1, -1]], np.int8)
        # codes 0 1 2 2 | 0 (+ padding code 1): 0 + 4 + 32 + 128, then 0 + 4 + 16 + 64
        np.testing.assert_array_equal(support.pack_i2(wq), [[164, 84]])
        # base 3: 0 + 3 + 18 + 54 + 0
        np.testing.assert_array_equal(support.pack_base3(wq), [[75]])


class ExampleModel(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.so = bitnet_mlir.compile(os.path.join(EXAMPLES_DIR, "bitlinear.mlir"),
                                     os.path.join(cls.tmp, "bitlinear.so"))

    def setUp(self):
        self.model = bitnet_mlir.load(self.so, threads=2)
        self.addCleanup(self.model.close)
        self.wq, self.ws = support.ternarize(EXAMPLE_W)

    def test_descriptor(self):
        m = self.model
        self.assertEqual(m.name, "bitlinear")
        self.assertEqual(len(m.inputs), 1)
        self.assertEqual(len(m.outputs), 1)
        x, y = m.inputs[0], m.outputs[0]
        self.assertEqual((x.name, x.dtype, x.shape, x.dtype_name), ("x", np.float32, (2, 8), "f32"))
        self.assertEqual((y.name, y.dtype, y.shape, y.nbytes), ("y", np.float32, (2, 4), 32))
        self.assertTrue(m.producer.startswith("bitnet-compile "))
        self.assertEqual(m.producer, bitnet_mlir.producer)
        self.assertEqual(m.threads, 2)

    def test_bundled_input(self):
        x = np.load(os.path.join(EXAMPLES_DIR, "bitlinear_x.npy"))
        y = self.model.run(x)
        assert_close_ulp(self, support.bitlinear(x, self.wq, self.ws), y)

    def test_random_and_edge_inputs(self):
        rng = np.random.default_rng(1)
        cases = [rng.normal(0, 1, (2, 8)).astype(np.float32),
                 rng.normal(0, 1e4, (2, 8)).astype(np.float32),
                 np.zeros((2, 8), np.float32),               # max clamped to 1e-5
                 ties(2, 8),
                 np.array([[3e30, 1, -1, 0, 0, 0, 0, 0],
                           [-3e30, 0, 0, 0, 0, 0, 0, 5]], np.float32)]
        for x in cases:
            y = self.model.run(x=x)
            assert_close_ulp(self, support.bitlinear(x, self.wq, self.ws), y)


class QuantisedParts(TempDirTestCase):
    def test_quantize_activations_and_ternary_matmul(self):
        m, n, k = 4, 3, 9
        rng = np.random.default_rng(3)
        x = ties(m, k)
        x[1] = 0.0  # an all-zero row
        wq = rng.integers(-1, 2, (n, k)).astype(np.int8)
        src = f"""
func.func @q(%x: tensor<4x9xf32>) -> (tensor<4x9xi8>, tensor<4xf32>, tensor<4x3xi32>) {{
  %q, %s = bitnet.quantize_activations %x : tensor<4x9xf32> -> tensor<4x9xi8>, tensor<4xf32>
  %w = bitnet.constant {dense_attr(wq)} : tensor<3x9xi8> -> !bitnet.ternary<3x9, int8>
  %acc = bitnet.ternary_matmul %q, %w : tensor<4x9xi8>, !bitnet.ternary<3x9, int8> -> tensor<4x3xi32>
  return %q, %s, %acc : tensor<4x9xi8>, tensor<4xf32>, tensor<4x3xi32>
}}
"""
        xq_ref, s_ref = support.quantize_activations(x)
        acc_ref = support.ternary_matmul(xq_ref, wq)
        for fmt in (None, "i2", "base3"):
            model = self.load_source(f"q_{fmt}", src, weight_format=fmt)
            self.assertEqual([o.dtype for o in model.outputs],
                             [np.int8, np.float32, np.int32])
            q, s, acc = model.run(x)
            assert_bits_equal(self, xq_ref, q, f"xq ({fmt})")
            assert_bits_equal(self, s_ref, s, f"s_x ({fmt})")
            assert_bits_equal(self, acc_ref, acc, f"acc ({fmt})")

    def test_ternarize_and_pack_at_run_time(self):
        m, n, k = 2, 5, 11
        rng = np.random.default_rng(11)
        model = self.load_source("latent", """
func.func @latent(%x: tensor<2x11xf32>, %w: tensor<5x11xf32>)
    -> (tensor<2x5xf32>, tensor<5x11xi8>, tensor<f32>) {
  %wq, %ws = bitnet.ternarize %w : tensor<5x11xf32> -> tensor<5x11xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<5x11xi8> -> !bitnet.ternary<5x11, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<2x11xf32>, !bitnet.ternary<5x11, i2>, tensor<f32> -> tensor<2x5xf32>
  return %y, %wq, %ws : tensor<2x5xf32>, tensor<5x11xi8>, tensor<f32>
}
""")
        self.assertEqual(model.outputs[2].shape, ())
        for scale in (0.05, 1.0, 0.0):
            w = rng.normal(0, 1, (n, k)).astype(np.float32) * np.float32(scale)
            if scale:
                w[0, 3] = 0.0
            x = rng.normal(0, 1, (m, k)).astype(np.float32)
            y, wq, ws = model.run(x, w)
            wq_ref, ws_ref = support.ternarize(w)
            assert_bits_equal(self, wq_ref, wq, "Wq")
            assert_bits_equal(self, np.asarray(ws_ref), ws, "s_w")
            assert_close_ulp(self, support.bitlinear(x, wq_ref, ws_ref), y)

    def test_packed_weights_as_inputs(self):
        m, n, k = 3, 6, 19
        rng = np.random.default_rng(7)
        wq = rng.integers(-1, 2, (n, k)).astype(np.int8)
        x = rng.normal(0, 1, (m, k)).astype(np.float32)
        scale = np.float32(0.0421875)
        expected = support.bitlinear(x, wq, scale)
        for fmt, packed in (("i2", support.pack_i2(wq)), ("base3", support.pack_base3(wq))):
            t = f"!bitnet.ternary<6x19, {fmt}>"
            model = self.load_source(f"packed_{fmt}", f"""
func.func @linear(%x: tensor<3x19xf32>, %w: {t}, %s: tensor<f32>) -> tensor<3x6xf32> {{
  %y = bitnet.bitlinear %x, %w scale %s : tensor<3x19xf32>, {t}, tensor<f32> -> tensor<3x6xf32>
  return %y : tensor<3x6xf32>
}}
""")
            spec = model.inputs[1]
            self.assertEqual(spec.dtype, np.int8)
            self.assertEqual(spec.shape, packed.shape, fmt)
            # A 0-d input takes a NumPy scalar of its dtype.
            y = model.run(x, packed.view(np.int8), scale)
            assert_close_ulp(self, expected, y)
            y0 = model.run(x, packed.view(np.int8), np.array(scale))
            assert_bits_equal(self, y, y0)

    def test_batched_input_keeps_leading_dimensions(self):
        rng = np.random.default_rng(5)
        w = rng.normal(0, 0.05, (4, 10)).astype(np.float32)
        x = rng.normal(0, 1, (2, 3, 10)).astype(np.float32)
        model = self.load_source("batched", f"""
func.func @batched(%x: tensor<2x3x10xf32>) -> tensor<2x3x4xf32> {{
  %w = arith.constant {dense_attr(w)} : tensor<4x10xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<4x10xf32> -> tensor<4x10xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<4x10xi8> -> !bitnet.ternary<4x10, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<2x3x10xf32>, !bitnet.ternary<4x10, i2>, tensor<f32> -> tensor<2x3x4xf32>
  return %y : tensor<2x3x4xf32>
}}
""")
        wq, ws = support.ternarize(w)
        y = model.run(x)
        self.assertEqual(y.shape, (2, 3, 4))
        assert_close_ulp(self, support.bitlinear(x, wq, ws), y)

    def test_larger_layer_with_threads(self):
        # Enough rows and columns for the parallel kernels to split the work.
        m, n, k = 8, 64, 256
        rng = np.random.default_rng(21)
        w = rng.normal(0, 0.05, (n, k)).astype(np.float32)
        src = f"""
func.func @layer(%x: tensor<{m}x{k}xf32>) -> tensor<{m}x{n}xf32> {{
  %w = arith.constant {dense_attr(w)} : tensor<{n}x{k}xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<{n}x{k}xf32> -> tensor<{n}x{k}xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<{n}x{k}xi8> -> !bitnet.ternary<{n}x{k}, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<{m}x{k}xf32>, !bitnet.ternary<{n}x{k}, i2>, tensor<f32> -> tensor<{m}x{n}xf32>
  return %y : tensor<{m}x{n}xf32>
}}
"""
        wq, ws = support.ternarize(w)
        x = rng.normal(0, 1, (m, k)).astype(np.float32)
        x[1] = 0.0
        x[2] = ties(1, k)[0]
        expected = support.bitlinear(x, wq, ws)
        # Every kernel family this machine can run (auto picks the best).
        for kernels in ("reference", "auto"):
            so = self.compile_source(f"layer_{kernels}", src, kernels=kernels)
            for threads in (1, 2, 4):
                with bitnet_mlir.load(so, threads=threads) as model:
                    assert_close_ulp(self, expected, model.run(x),
                                     msg=f"{kernels}, {threads} threads")


class OtherOps(TempDirTestCase):
    def test_rmsnorm_and_squared_relu(self):
        rng = np.random.default_rng(13)
        x = rng.normal(0, 2, (3, 37)).astype(np.float32)
        g = rng.normal(0, 2, (37,)).astype(np.float32)
        x[0] = 0.0
        model = self.load_source("norm", """
func.func @norm(%x: tensor<3x37xf32>, %g: tensor<37xf32>) -> (tensor<3x37xf32>, tensor<3x37xf32>) {
  %y = bitnet.rmsnorm %x, %g {epsilon = 1.0e-05 : f32} : tensor<3x37xf32>, tensor<37xf32> -> tensor<3x37xf32>
  %r = bitnet.squared_relu %x : tensor<3x37xf32>
  return %y, %r : tensor<3x37xf32>, tensor<3x37xf32>
}
""")
        y, r = model.run(x, g)
        np.testing.assert_allclose(y, support.rmsnorm(x, g), rtol=1e-5, atol=1e-6)
        assert_bits_equal(self, support.squared_relu(x), r)

    def test_descriptor_names_and_int_passthrough(self):
        model = self.load_source("named", """
func.func @named(%x: tensor<2x3xf32> {bitnet.name = "hidden"}, %i: tensor<4xi32>)
    -> (tensor<2x3xf32>, tensor<4xi32>) attributes {bitnet.output_names = ["out"]} {
  %y = bitnet.squared_relu %x : tensor<2x3xf32>
  return %y, %i : tensor<2x3xf32>, tensor<4xi32>
}
""")
        self.assertEqual([s.name for s in model.inputs], ["hidden", "input1"])
        self.assertEqual([s.name for s in model.outputs], ["out", "output1"])
        self.assertEqual(model.inputs[1].dtype, np.int32)
        x = np.array([[-1, 2, -3], [4, 0, 0.5]], np.float32)
        i = np.array([1, -2, 3, 7], np.int32)
        y, o = model.run(input1=i, hidden=x)
        assert_bits_equal(self, np.array([[0, 4, 0], [16, 0, 0.25]], np.float32), y)
        assert_bits_equal(self, i, o)


if __name__ == "__main__":
    unittest.main()
