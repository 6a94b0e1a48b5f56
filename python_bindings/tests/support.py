"""Shared pieces of the bitnet_mlir tests: paths, temporary models and a
NumPy implementation of the numerics contract (the dialect's documentation,
mirrored from include/bitnet/Reference/Numerics.h)."""

import os
import shutil
import tempfile
import unittest

import numpy as np

import bitnet_mlir

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES_DIR = os.environ.get(
    "BITNET_EXAMPLES_DIR", os.path.join(HERE, "..", "..", "examples"))
# The runtime's hand-written test models (built with the runtime's tests).
RT_TEST_MODELS = os.environ.get("BITNET_RT_TEST_MODELS")


def rt_test_model(name):
    """Path of runtime test model `name`, or skips the test."""
    if not RT_TEST_MODELS:
        raise unittest.SkipTest("BITNET_RT_TEST_MODELS is not set")
    path = os.path.join(RT_TEST_MODELS, name + ".so")
    if not os.path.exists(path):
        raise unittest.SkipTest(f"{path} is not built")
    return path


class TempDirTestCase(unittest.TestCase):
    """A test case with a temporary directory and a helper that writes and
    compiles MLIR source."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bitnet-mlir-test-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def compile_source(self, name, text, **kwargs):
        """Writes `text` to NAME.mlir and compiles it to NAME.so."""
        src = self.write(name + ".mlir", text)
        return bitnet_mlir.compile(src, os.path.join(self.tmp, name + ".so"),
                                   **kwargs)

    def load_source(self, name, text, threads=1, **kwargs):
        model = bitnet_mlir.load(self.compile_source(name, text, **kwargs),
                                 threads=threads)
        self.addCleanup(model.close)
        return model


def dense(array):
    """An MLIR dense literal of `array` (exact for float32 via repr)."""
    array = np.asarray(array)
    if array.ndim == 0:
        return repr(array.item())
    if array.dtype.kind == "f":
        return "[" + ", ".join(dense(a) if array.ndim > 1 else
                               format(float(a), ".9e") for a in array) + "]"
    return "[" + ", ".join(dense(a) if array.ndim > 1 else str(int(a))
                           for a in array) + "]"


def dense_attr(array):
    return "dense<" + dense(array) + ">"


# -- the numerics contract ---------------------------------------------------

F32 = np.float32


def quantize_activations(x):
    """Per token (last axis): s_x = 127 / max(max|x|, 1e-5),
    xq = clamp(round_half_even(x * s_x), -128, 127). Returns (xq, s_x)."""
    x = np.asarray(x, F32)
    amax = np.max(np.abs(x), axis=-1) if x.shape[-1] else np.zeros(x.shape[:-1], F32)
    scale = (F32(127.0) / np.maximum(amax, F32(1e-5))).astype(F32)
    xq = np.clip(np.round(x * scale[..., None]), -128, 127).astype(np.int8)
    return xq, scale


def ternarize(w):
    """Per tensor: s_w = max(mean|W|, 1e-5) (the mean summed in double, in
    order), Wq = clamp(round_half_even(W / s_w), -1, 1). Returns (Wq, s_w)."""
    w = np.asarray(w, F32)
    total = np.add.accumulate(np.abs(w.astype(np.float64)).ravel())[-1] if w.size else 0.0
    mean = F32(total / w.size) if w.size else F32(0)
    scale = max(mean, F32(1e-5))
    wq = np.clip(np.round(w / scale), -1, 1).astype(np.int8)
    return wq, F32(scale)


def ternary_matmul(xq, wq):
    """acc[..., n] = sum_k xq[..., k] * wq[n, k], exact in int32."""
    return np.matmul(xq.astype(np.int32), wq.astype(np.int32).T).astype(np.int32)


def bitlinear(x, wq, s_w):
    """y = (float(acc) * s_w) / s_x, in float32."""
    xq, s_x = quantize_activations(x)
    acc = ternary_matmul(xq, wq)
    return ((acc.astype(F32) * F32(s_w)) / s_x[..., None]).astype(F32)


def squared_relu(x):
    r = np.maximum(np.asarray(x, F32), F32(0))
    return r * r


def rmsnorm(x, gamma, eps=1e-5):
    x = np.asarray(x, F32)
    ms = np.mean(x.astype(np.float64) ** 2, axis=-1).astype(F32)
    inv = F32(1) / np.sqrt(ms + F32(eps))
    return gamma * (x * inv[..., None])


def _pack_rows(wq, per_byte, base):
    n, k = wq.shape
    cols = -(-k // per_byte)
    codes = np.ones((n, cols * per_byte), np.uint32)  # padding: value 0, code 1
    codes[:, :k] = np.clip(wq, -1, 1).astype(np.int32) + 1
    codes = codes.reshape(n, cols, per_byte)
    weights = base ** np.arange(per_byte, dtype=np.uint32)
    return (codes * weights).sum(axis=-1).astype(np.uint8)


def pack_i2(wq):
    """Four 2-bit codes (value + 1) per byte, the first in the low bits."""
    return _pack_rows(wq, 4, 4)


def pack_base3(wq):
    """Five base-3 digits (value + 1) per byte, the first the least
    significant."""
    return _pack_rows(wq, 5, 3)


def assert_bits_equal(test, expected, actual, msg=None):
    """Equal dtype, shape and bit patterns (so -0.0 != 0.0)."""
    expected = np.asarray(expected)
    test.assertEqual(expected.dtype, actual.dtype, msg)
    test.assertEqual(expected.shape, actual.shape, msg)
    e = expected.reshape(-1).view(np.uint8).reshape(expected.size, -1)
    a = np.ascontiguousarray(actual).reshape(-1).view(np.uint8).reshape(actual.size, -1)
    if not np.array_equal(e, a):
        i = int(np.flatnonzero((e != a).any(axis=1))[0])
        test.fail(f"{msg or 'arrays differ'}: element {i} (flat): expected "
                  f"{expected.ravel()[i]!r}, got {actual.ravel()[i]!r}")


def assert_close_ulp(test, expected, actual, maxulp=4, msg=None):
    test.assertEqual(expected.shape, actual.shape, msg)
    test.assertEqual(actual.dtype, np.float32, msg)
    try:
        np.testing.assert_array_max_ulp(expected.astype(F32), actual, maxulp=maxulp)
    except AssertionError as e:
        raise AssertionError(f"{msg or 'float results differ'}: {e}") from None
