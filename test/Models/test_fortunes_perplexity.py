"""bitnet-perplexity on the bundled fortunes model against the torch reference.

Compiles models/fortunes/fortunes.onnx (a one-token step with the default f16
KV caches, and a 12-token step), scores models/fortunes/heldout.txt, text the
model never saw, with bitnet-perplexity and with models/perplexity_reference.py
(the same windows in torch), and compares: the perplexities within 0.5%, their
standard errors within 5% (measured: 0.03% and 0.1%). Then the tool's errors:
a missing, empty or one-token text, a --ctx-size beyond the context, a
last-token-logits build. Last, a model with a BPE tokenizer that asks for a
BOS token (a tiny GGUF checkpoint of test/Models/gguf): the tool's figures are
recomputed through the Python bindings, with the tokenizer's ids and BOS as
each window's first token.

Needs python3-torch and python3-onnx.
"""

import math
import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "models"))

import bitnet_decoder as bd  # noqa: E402
import bitnet_mlir  # noqa: E402
import numpy as np  # noqa: E402
import perplexity_reference as ref  # noqa: E402
import torch  # noqa: E402

MODEL = os.path.join(ROOT, "models", "fortunes", "fortunes.onnx")
HELDOUT = os.path.join(ROOT, "models", "fortunes", "heldout.txt")
TINY_GGUF = os.path.join(ROOT, "test", "Models", "gguf",
                         "tiny-bitnet-b1.58-i2_s.gguf")
COMPILER = os.environ.get("BITNET_COMPILE", "bitnet-compile")
PERPLEXITY = os.environ.get("BITNET_PERPLEXITY", "bitnet-perplexity")
PPL_TOL = 0.005  # relative
ERR_TOL = 0.05   # relative, on the standard error
FINAL = re.compile(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+) "
                   r"\(mean NLL [0-9.]+ nats over ([0-9]+) tokens\)")


class FortunesPerplexity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.step1 = os.path.join(cls.tmp.name, "step1.so")
        cls.step12 = os.path.join(cls.tmp.name, "step12.so")
        cls.last = os.path.join(cls.tmp.name, "last.so")
        for so, flags in ((cls.step1, ["--input-shape=tokens:1"]),
                          (cls.step12, ["--input-shape=tokens:12"]),
                          (cls.last, ["--input-shape=tokens:12",
                                      "--last-token-logits"])):
            subprocess.run([COMPILER, MODEL, *flags, "-o", so], check=True)
        cls.torch_model, cls.cfg, cls.vocab = bd.load_torch_from_onnx(MODEL)
        with open(HELDOUT, encoding="utf-8") as f:
            cls.ids = ref.encode(cls.vocab, f.read())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def tool(self, *args):
        return subprocess.run([PERPLEXITY, *args, "--threads", "2"],
                              capture_output=True, text=True)

    def score(self, so, n_ctx, extra=()):
        r = self.tool(so, "-f", HELDOUT, *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = FINAL.search(r.stdout)
        self.assertIsNotNone(m, r.stdout)
        windows = len(self.ids) // n_ctx
        per_window = n_ctx - 1 - n_ctx // 2
        self.assertIn(f"windows: {windows} of {n_ctx} tokens", r.stdout)
        self.assertIn(f"{per_window} tokens a window, "
                      f"{windows * per_window} in all", r.stdout)
        # The running perplexity after each window.
        self.assertEqual(len(re.findall(r"\[\d+\][0-9.]+,", r.stdout)),
                         windows)
        self.assertEqual(int(m.group(3)), windows * per_window)
        return float(m.group(1)), float(m.group(2))

    def check_against_torch(self, got, n_ctx):
        nlls = ref.window_nlls(self.torch_model, self.ids, n_ctx)
        want_ppl, want_err, _ = ref.perplexity(nlls)
        ppl, err = got
        print(f"ctx {n_ctx}: bitnet-perplexity {ppl:.4f} +/- {err:.5f}, torch "
              f"{want_ppl:.4f} +/- {want_err:.5f}, relative difference "
              f"{abs(ppl - want_ppl) / want_ppl:.2e}")
        self.assertLess(abs(ppl - want_ppl) / want_ppl, PPL_TOL)
        self.assertLess(abs(err - want_err) / want_err, ERR_TOL)
        # A trained model: far better than uniform over the vocabulary.
        self.assertLess(want_ppl, 0.5 * self.cfg.vocab)

    def test_whole_context_windows_match_torch(self):
        n_ctx = self.cfg.context
        got = self.score(self.step1, n_ctx)
        self.check_against_torch(got, n_ctx)
        # The 12-token build runs the same windows, 12 tokens a step; the
        # last step of a window would run past the 256-row KV cache (at
        # 252), so it starts at 244 and runs 8 tokens again.
        ppl12, _ = self.score(self.step12, n_ctx)
        self.assertLess(abs(ppl12 - got[0]) / got[0], 1e-3)

    def test_ctx_size_windows_match_torch(self):
        got = self.score(self.step12, 64, ["--ctx-size", "64"])
        self.check_against_torch(got, 64)

    def test_errors(self):
        empty = os.path.join(self.tmp.name, "empty.txt")
        open(empty, "w").close()
        one = os.path.join(self.tmp.name, "one.txt")
        with open(one, "w") as f:
            f.write("x")
        cases = [
            ([self.step1, "-f", os.path.join(self.tmp.name, "missing.txt")],
             1, "No such file"),
            ([self.step1, "-f", empty], 1, "empty"),
            ([self.step1, "-f", one], 1, "at least 2"),
            ([self.step1, "-f", HELDOUT, "--ctx-size", "1000"], 2,
             "beyond the model's context"),
            ([self.last, "-f", HELDOUT], 1, "--last-token-logits"),
            ([self.step1], 2, "no text given"),
            ([self.step1, "-f", HELDOUT, "--ctx-size", "0"], 2, "--ctx-size"),
            ([self.step1, "-f", self.tmp.name], 1, "not a regular file"),
        ]
        for args, status, message in cases:
            r = self.tool(*args)
            self.assertEqual(r.returncode, status, (args, r.stderr))
            self.assertIn(message, r.stderr, args)
            self.assertNotIn("Final estimate", r.stdout, args)

    def test_short_text_is_one_window(self):
        short = os.path.join(self.tmp.name, "short.txt")
        with open(short, "w") as f:
            f.write("Hello")
        r = self.tool(self.step1, "-f", short)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("one window of 5", r.stdout)
        m = FINAL.search(r.stdout)
        self.assertEqual(int(m.group(3)), 2)  # positions 3 and 4 of 5
        ids = ref.encode(self.vocab, "Hello")
        want, _, _ = ref.perplexity(ref.window_nlls(self.torch_model, ids, 5))
        # Two tokens: within the per-token tolerance of the f16 KV caches.
        self.assertLess(abs(math.log(float(m.group(1)) / want)), 0.05)

    def test_help_and_version(self):
        r = subprocess.run([PERPLEXITY, "--help"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--ctx-size", r.stdout)
        r = subprocess.run([PERPLEXITY, "--version"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("bitnet-perplexity (bitnet-mlir)"))


class TokenizerModelPerplexity(unittest.TestCase):
    def test_bos_windows_match_the_bindings(self):
        with tempfile.TemporaryDirectory() as tmp:
            so = os.path.join(tmp, "tiny.so")
            subprocess.run([COMPILER, TINY_GGUF, "--input-shape=tokens:1",
                            "-o", so], check=True)
            text = ("The quick brown fox jumps over the lazy dog. The quick "
                    "brown fox jumps over the lazy dog again, and the dog "
                    "sleeps.\n")
            path = os.path.join(tmp, "text.txt")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([PERPLEXITY, so, "-f", path, "--ctx-size",
                                "16", "--threads", "1"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("(the model's tokenizer)", r.stdout)
            m = FINAL.search(r.stdout)
            with bitnet_mlir.load(so, threads=1) as model:
                tok = bitnet_mlir._native.Tokenizer(
                    model.metadata["bitnet.tokenizer"])
                self.assertTrue(tok.add_bos)
                ids = tok.encode(text, False)
                self.assertIn(f"{len(ids)} tokens", r.stdout)
                nlls = []
                for w in range(len(ids) // 16):
                    window = [tok.bos_id] + ids[w * 16 + 1:(w + 1) * 16]
                    caches = {s.name: np.zeros(s.shape, s.dtype)
                              for s in model.inputs if s.state}
                    for p in range(15):
                        logits = model.run(
                            tokens=np.array([window[p]], np.int32),
                            position=np.array(p, np.int32),
                            **caches)[0].astype(np.float64)
                        if p >= 8:
                            top = logits.max()
                            lse = top + np.log(np.exp(logits - top).sum())
                            nlls.append(lse - logits[window[p + 1]])
        want_ppl, want_err, _ = ref.perplexity(np.array(nlls))
        self.assertEqual(int(m.group(3)), len(nlls))
        self.assertAlmostEqual(float(m.group(1)) / want_ppl, 1, places=4)
        self.assertAlmostEqual(float(m.group(2)) / want_err, 1, places=3)


if __name__ == "__main__":
    unittest.main()
