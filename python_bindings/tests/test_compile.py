"""bitnet_mlir.compile(): outputs, options and every error path."""

import os
import threading
import time
import unittest
import warnings

import numpy as np

import bitnet_mlir
from support import EXAMPLES_DIR, TempDirTestCase, dense_attr

EXAMPLE = os.path.join(EXAMPLES_DIR, "bitlinear.mlir")

# Attention over KV caches: one decoder step of one head.
ATTENTION_STEP = """
func.func @step(%q: tensor<1x1x4xf32>, %k: tensor<1x1x4xf32>, %v: tensor<1x1x4xf32>,
                %kc: tensor<8x1x4xf32>, %vc: tensor<8x1x4xf32>, %pos: tensor<i32>)
    -> (tensor<1x1x4xf32>, tensor<8x1x4xf32>, tensor<8x1x4xf32>) {
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %pos
      : tensor<1x1x4xf32>, tensor<1x1x4xf32>, tensor<1x1x4xf32>, tensor<8x1x4xf32>, tensor<8x1x4xf32>, tensor<i32>
      -> tensor<1x1x4xf32>, tensor<8x1x4xf32>, tensor<8x1x4xf32>
  return %o, %kc1, %vc1 : tensor<1x1x4xf32>, tensor<8x1x4xf32>, tensor<8x1x4xf32>
}
"""

SQUARED_RELU = """
func.func @act(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %y = bitnet.squared_relu %x : tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}
"""


class CompileOutputs(TempDirTestCase):
    def test_shared_object_to_a_given_path(self):
        out = os.path.join(self.tmp, "given.so")
        result = bitnet_mlir.compile(EXAMPLE, out)
        self.assertEqual(result, out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(4), b"\x7fELF")

    def test_default_output_is_next_to_the_input(self):
        src = self.write("beside.mlir", SQUARED_RELU)
        result = bitnet_mlir.compile(src)
        self.assertEqual(result, os.path.join(self.tmp, "beside.so"))
        self.assertTrue(os.path.exists(result))
        obj = bitnet_mlir.compile(src, emit="obj")
        self.assertEqual(obj, os.path.join(self.tmp, "beside.o"))
        with open(obj, "rb") as f:
            self.assertEqual(f.read(4), b"\x7fELF")

    def test_path_like_arguments(self):
        import pathlib
        src = pathlib.Path(self.write("pathlike.mlir", SQUARED_RELU))
        out = bitnet_mlir.compile(src, pathlib.Path(self.tmp) / "pathlike.so")
        self.assertIsInstance(out, str)
        self.assertTrue(os.path.exists(out))

    def test_mlir_text_stages(self):
        text = bitnet_mlir.compile(EXAMPLE, emit="mlir")
        self.assertIsInstance(text, str)
        # Ternarisation and packing fold at compile time.
        self.assertIn("bitnet.bitlinear", text)
        self.assertNotIn("bitnet.ternarize", text)
        linalg = bitnet_mlir.compile(EXAMPLE, emit="mlir", mlir_stage="linalg")
        self.assertNotIn("bitnet.bitlinear", linalg)
        llvm_dialect = bitnet_mlir.compile(EXAMPLE, emit="mlir", mlir_stage="llvm")
        self.assertIn("llvm.func", llvm_dialect)
        self.assertIn("bitnet_model_run", llvm_dialect)

    def test_llvm_ir_text(self):
        text = bitnet_mlir.compile(EXAMPLE, emit="llvm")
        self.assertIn("define", text)
        self.assertIn("@bitnet_model_run", text)
        self.assertIn("@bitnet_model_info", text)

    def test_text_to_a_file(self):
        out = os.path.join(self.tmp, "example.ll")
        self.assertEqual(bitnet_mlir.compile(EXAMPLE, out, emit="llvm"), out)
        with open(out) as f:
            self.assertIn("@bitnet_model_run", f.read())

    def test_options_reach_the_pipeline(self):
        # Every weight format and optimisation level gives a loadable model
        # that computes the same thing.
        x = np.load(os.path.join(EXAMPLES_DIR, "bitlinear_x.npy"))
        results = []
        for fmt in ("int8", "i2", "base3"):
            for level in (0, 3):
                out = os.path.join(self.tmp, f"opt_{fmt}_{level}.so")
                bitnet_mlir.compile(EXAMPLE, out, weight_format=fmt,
                                    opt_level=level, entry="bitlinear")
                with bitnet_mlir.load(out, threads=1) as model:
                    results.append(model.run(x))
        for r in results[1:]:
            np.testing.assert_array_equal(results[0], r)

    def test_decoder_options_reach_the_pipeline(self):
        # The KV-cache type and the float-weight precision, with
        # bitnet-compile's defaults: an f16 cache unless asked otherwise.
        src = self.write("attention.mlir", ATTENTION_STEP)

        def entry_signature(**kwargs):
            text = bitnet_mlir.compile(src, emit="mlir", mlir_stage="linalg",
                                       kernels="reference", **kwargs)
            return next(line for line in text.splitlines()
                        if "func.func @step" in line)

        self.assertIn("tensor<8x1x4xf16>", entry_signature())
        self.assertIn("tensor<8x1x4xf32>", entry_signature(kv_cache="f32"))
        with self.assertRaisesRegex(ValueError, r"unknown kv_cache='f8'"):
            bitnet_mlir.compile(src, emit="mlir", kv_cache="f8")
        with self.assertRaisesRegex(ValueError, r"unknown float_weights='fp8'"):
            bitnet_mlir.compile(src, emit="mlir", float_weights="fp8")

    def test_entry_selects_the_function(self):
        src = self.write("two_funcs.mlir", """
func.func @first(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = bitnet.squared_relu %x : tensor<4xf32>
  return %y : tensor<4xf32>
}
func.func @second(%x: tensor<3xf32>) -> tensor<3xf32> {
  return %x : tensor<3xf32>
}
""")
        with self.assertRaises(bitnet_mlir.CompileError):
            bitnet_mlir.compile(src, os.path.join(self.tmp, "ambiguous.so"))
        for entry, shape in (("first", (4,)), ("second", (3,))):
            out = bitnet_mlir.compile(src, os.path.join(self.tmp, entry + ".so"),
                                      entry=entry)
            with bitnet_mlir.load(out, threads=1) as model:
                self.assertEqual(model.name, entry)
                self.assertEqual(model.inputs[0].shape, shape)

    def test_kernel_families(self):
        x = np.load(os.path.join(EXAMPLES_DIR, "bitlinear_x.npy"))
        results = []
        for kernels in (None, "auto", "reference"):
            out = os.path.join(self.tmp, f"kernels_{kernels}.so")
            bitnet_mlir.compile(EXAMPLE, out, kernels=kernels)
            with bitnet_mlir.load(out, threads=1) as model:
                results.append(model.run(x))
        for r in results[1:]:
            np.testing.assert_array_equal(results[0], r)

    def test_weight_format_changes_the_reference_lowering(self):
        texts = {fmt: bitnet_mlir.compile(EXAMPLE, emit="mlir", mlir_stage="linalg",
                                          kernels="reference", weight_format=fmt)
                 for fmt in ("int8", "i2", "base3")}
        self.assertEqual(len(set(texts.values())), 3)

    def test_cross_target_object(self):
        out = os.path.join(self.tmp, "aarch64.o")
        bitnet_mlir.compile(EXAMPLE, out, emit="obj",
                            target="aarch64-linux-gnu", cpu="generic")
        with open(out, "rb") as f:
            header = f.read(20)
        self.assertEqual(header[:4], b"\x7fELF")
        self.assertEqual(int.from_bytes(header[18:20], "little"), 183)  # EM_AARCH64

    def test_gil_is_released_while_compiling(self):
        # A model big enough to take a while; another thread must make
        # progress while the compiler runs.
        rng = np.random.default_rng(0)
        w = rng.normal(0, 0.05, (96, 512)).astype(np.float32)
        src = self.write("big.mlir", f"""
func.func @big(%x: tensor<4x512xf32>) -> tensor<4x96xf32> {{
  %w = arith.constant {dense_attr(w)} : tensor<96x512xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<96x512xf32> -> tensor<96x512xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<96x512xi8> -> !bitnet.ternary<96x512, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<4x512xf32>, !bitnet.ternary<96x512, i2>, tensor<f32> -> tensor<4x96xf32>
  return %y : tensor<4x96xf32>
}}
""")
        window = {}

        def work():
            window["start"] = time.perf_counter()
            bitnet_mlir.compile(src, os.path.join(self.tmp, "big.so"))
            window["end"] = time.perf_counter()

        ticks = []
        thread = threading.Thread(target=work)
        thread.start()
        while thread.is_alive():
            ticks.append(time.perf_counter())
            time.sleep(0.001)
        thread.join()
        start, end = window["start"], window["end"]
        if end - start < 0.05:
            self.skipTest(f"compilation too quick to observe ({end - start:.3f} s)")
        inside = [t for t in ticks if start + 0.01 < t < end - 0.01]
        self.assertGreater(len(inside), 3,
                           f"the main thread did not run during {end - start:.3f} s "
                           "of compilation: the GIL was held")


class CompileErrors(TempDirTestCase):
    def assertCompileError(self, *args, contains=(), **kwargs):
        with self.assertRaises(bitnet_mlir.CompileError) as cm:
            bitnet_mlir.compile(*args, **kwargs)
        message = str(cm.exception)
        for text in contains:
            self.assertIn(text, message)
        self.assertIsInstance(cm.exception, bitnet_mlir.Error)
        self.assertTrue(cm.exception.diagnostics)
        self.assertIn(cm.exception.diagnostics.strip(), message)
        return cm.exception

    def test_missing_file(self):
        missing = os.path.join(self.tmp, "missing.mlir")
        self.assertCompileError(missing, contains=(missing, "No such file"))

    def test_not_a_model_file(self):
        path = self.write("notes.txt", "hello")
        self.assertCompileError(path, os.path.join(self.tmp, "notes.so"),
                                contains=("notes.txt", "error:"))

    def test_syntax_error_is_located(self):
        path = self.write("bad_op.mlir", """func.func @f(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %y = bitnet.squared_relu %x : tensor<2x8xf32>
  %z = bitnet.frobnicate %y : tensor<2x8xf32>
  return %z : tensor<2x8xf32>
}
""")
        e = self.assertCompileError(
            path, os.path.join(self.tmp, "bad_op.so"),
            contains=(f"{path}:3:8: error:", "bitnet.frobnicate"))
        # The source line and a caret, as bitnet-compile prints them.
        self.assertIn("%z = bitnet.frobnicate %y", e.diagnostics)
        self.assertIn("^", e.diagnostics)

    def test_error_on_a_long_line_shows_an_excerpt(self):
        # Weights written inline make one line of the whole matrix; the
        # message shows the part of it around the column.
        line = (f'  %w = bitnet.constant dense<"0x{"FF" * 50000}"> : '
                "tensor<200x250xi8> -> !bitnet.ternary<200x1000, i2>")
        path = self.write("long.mlir", "func.func @f() -> !bitnet.ternary<200x1000, i2> {\n"
                          f"{line}\n"
                          "  return %w : !bitnet.ternary<200x1000, i2>\n}\n")
        e = self.assertCompileError(
            path, emit="mlir",
            contains=(f"{path}:2:8: error:", "not a valid i2 encoding",
                      f"column 8 of a line of {len(line)} characters"))
        self.assertIn('%w = bitnet.constant dense<"0xFFFF', e.diagnostics)
        self.assertLess(len(e.diagnostics), 2000)

    def test_verifier_error_is_located(self):
        path = self.write("bad_shape.mlir", """
func.func @f(%x: tensor<2x8xf32>, %w: !bitnet.ternary<4x7, i2>, %s: tensor<f32>) -> tensor<2x4xf32> {
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x7, i2>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}
""")
        self.assertCompileError(path, emit="mlir",
                                contains=(f"{path}:3:8: error:",
                                          "'bitnet.bitlinear' op", "8 features"))

    def test_parse_error(self):
        path = self.write("truncated.mlir", "func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n")
        self.assertCompileError(path, emit="llvm", contains=(f"{path}:", "error:"))

    def test_unknown_entry(self):
        self.assertCompileError(EXAMPLE, os.path.join(self.tmp, "entry.so"),
                                entry="nope", contains=("nope",))

    def test_failed_pass_does_not_dump_the_module(self):
        e = self.assertCompileError(EXAMPLE, os.path.join(self.tmp, "entry.so"),
                                    entry="nope")
        self.assertLess(len(str(e).splitlines()), 10, str(e))

    def test_unknown_target(self):
        self.assertCompileError(EXAMPLE, os.path.join(self.tmp, "t.so"),
                                target="bogus-none-triple",
                                contains=("bogus-none-triple",))

    def test_unknown_cpu_of_this_machine(self):
        # LLVM only warns on an unknown CPU, then stops the process on the
        # host's triple; the compiler refuses it first.
        self.assertCompileError(EXAMPLE, os.path.join(self.tmp, "c.so"),
                                cpu="pentium9000",
                                contains=("unknown CPU 'pentium9000'",))

    def test_features_the_code_depends_on(self):
        # LLVM stops the process on these ("64-bit code requested on a
        # subtarget that doesn't support it", or a crash in instruction
        # selection); the compiler refuses them first.
        for features, contains in (("-64bit", "'64bit' cannot be disabled"),
                                   ("+soft-float",
                                    "'soft-float' cannot be enabled")):
            with self.subTest(features=features):
                self.assertCompileError(EXAMPLE, os.path.join(self.tmp, "f.so"),
                                        features=features, contains=(contains,))

    def test_fatal_errors_and_crashes_raise(self):
        # Inside compile(), an LLVM fatal error or a crash raises instead of
        # ending the interpreter, and compiling goes on working after it.
        from bitnet_mlir import _native
        with self.assertRaises(bitnet_mlir.CompileError) as cm:
            _native._fail_in_compiler("fatal")
        self.assertIn("a fatal error for the test", str(cm.exception))
        with self.assertRaises(bitnet_mlir.CompileError) as cm:
            _native._fail_in_compiler("crash")
        self.assertIn("crashed", str(cm.exception))
        self.assertIn("Segmentation fault", str(cm.exception))
        _native._fail_in_compiler("nothing")
        out = os.path.join(self.tmp, "after.so")
        bitnet_mlir.compile(EXAMPLE, out)
        self.assertTrue(os.path.getsize(out) > 0)

    def test_unknown_or_unsupported_kernels(self):
        self.assertCompileError(EXAMPLE, os.path.join(self.tmp, "k.so"),
                                kernels="bogus", contains=("bogus",))
        self.assertCompileError(EXAMPLE, os.path.join(self.tmp, "k.o"), emit="obj",
                                target="aarch64-linux-gnu", kernels="avx512vnni",
                                contains=("avx512vnni", "aarch64"))

    def test_unwritable_output(self):
        self.assertCompileError(
            EXAMPLE, os.path.join(self.tmp, "no", "such", "dir", "x.so"),
            contains=("error:", "no directory"))
        self.assertCompileError(
            EXAMPLE, os.path.join(self.tmp, "no", "such", "dir", "x.ll"),
            emit="llvm", contains=("error:", "no directory"))

    def test_error_is_not_sticky(self):
        # A failure leaves nothing behind that breaks the next compilation.
        path = self.write("bad_again.mlir", "this is not MLIR")
        with self.assertRaises(bitnet_mlir.CompileError):
            bitnet_mlir.compile(path, emit="mlir")
        self.assertIn("bitnet.bitlinear", bitnet_mlir.compile(EXAMPLE, emit="mlir"))

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "emit='exe'"):
            bitnet_mlir.compile(EXAMPLE, emit="exe")
        with self.assertRaisesRegex(ValueError, "weight_format='i3'"):
            bitnet_mlir.compile(EXAMPLE, weight_format="i3")
        with self.assertRaisesRegex(ValueError, "opt_level must be 0 to 3, got 4"):
            bitnet_mlir.compile(EXAMPLE, opt_level=4)
        with self.assertRaisesRegex(ValueError, "opt_level"):
            bitnet_mlir.compile(EXAMPLE, opt_level=-1)
        with self.assertRaisesRegex(TypeError, "opt_level"):
            bitnet_mlir.compile(EXAMPLE, opt_level="2")
        with self.assertRaisesRegex(ValueError, "mlir_stage needs emit='mlir'"):
            bitnet_mlir.compile(EXAMPLE, emit="so", mlir_stage="linalg")
        with self.assertRaisesRegex(ValueError, "mlir_stage='lowered'"):
            bitnet_mlir.compile(EXAMPLE, emit="mlir", mlir_stage="lowered")
        with self.assertRaisesRegex(TypeError, "path must be"):
            bitnet_mlir.compile(42)
        with self.assertRaisesRegex(TypeError, "target must be"):
            bitnet_mlir.compile(EXAMPLE, target=3)

    def test_no_warning_on_a_clean_model(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            bitnet_mlir.compile(EXAMPLE, emit="mlir")


if __name__ == "__main__":
    unittest.main()
