"""Model.generate(): text generation over the runtime's tokenizer and
sampler, against the bitnet-generate tool on the same compiled models.

Uses the bundled fortunes model (a character vocabulary) and a tiny GGUF
checkpoint of test/Models/gguf (a byte-level BPE tokenizer), compiled with
bitnet-compile ($BITNET_COMPILE) and run by bitnet-generate
($BITNET_GENERATE); skipped when those are not given.
"""

import os
import subprocess
import tempfile
import unittest
import warnings

import bitnet_mlir

from support import EXAMPLES_DIR

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FORTUNES = os.path.join(ROOT, "models", "fortunes", "fortunes.onnx")
TINY_GGUF = os.path.join(ROOT, "test", "Models", "gguf",
                         "tiny-bitnet-b1.58-i2_s.gguf")
COMPILER = os.environ.get("BITNET_COMPILE")
GENERATE = os.environ.get("BITNET_GENERATE")
PROMPT = "The computer "


def setUpModule():
    if not COMPILER or not GENERATE:
        raise unittest.SkipTest("BITNET_COMPILE and BITNET_GENERATE are not "
                                "set")


class GenerateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.fortunes_so = os.path.join(cls.tmp.name, "fortunes.so")
        cls.fortunes4_so = os.path.join(cls.tmp.name, "fortunes4.so")
        cls.tiny_so = os.path.join(cls.tmp.name, "tiny.so")
        for src, so, s in ((FORTUNES, cls.fortunes_so, 1),
                           (FORTUNES, cls.fortunes4_so, 4),
                           (TINY_GGUF, cls.tiny_so, 1)):
            subprocess.run([COMPILER, src, f"--input-shape=tokens:{s}", "-o",
                            so], check=True)
        cls.model = bitnet_mlir.load(cls.fortunes_so, threads=1)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()
        cls.tmp.cleanup()

    def tool(self, so, *args):
        r = subprocess.run([GENERATE, so, "--threads", "1", "--quiet", *args],
                           capture_output=True, check=True)
        return r.stdout.decode("utf-8", "replace")

    def test_greedy_equals_the_tool(self):
        got = self.model.generate(PROMPT, max_tokens=80, temperature=0)
        want = self.tool(self.fortunes_so, "--prompt", PROMPT, "-n", "80",
                         "--temperature", "0")
        self.assertEqual(PROMPT + got + "\n", want)
        self.assertEqual(len(got), 80)  # one character a token

    def test_sampling_with_a_seed_equals_the_tool(self):
        for temperature, top_k, top_p, seed in ((0.8, 40, 0.95, 7),
                                                (1.3, 0, 1.0, 123),
                                                (0.6, 5, 0.5, 2)):
            got = self.model.generate(PROMPT, max_tokens=60,
                                      temperature=temperature, top_k=top_k,
                                      top_p=top_p, seed=seed)
            want = self.tool(self.fortunes_so, "--prompt", PROMPT, "-n", "60",
                             "--temperature", str(temperature), "--top-k",
                             str(top_k), "--top-p", str(top_p), "--seed",
                             str(seed))
            self.assertEqual(PROMPT + got + "\n", want, seed)
        a = self.model.generate(PROMPT, max_tokens=60, temperature=1, seed=1)
        b = self.model.generate(PROMPT, max_tokens=60, temperature=1, seed=2)
        self.assertNotEqual(a, b)

    def test_token_ids_as_the_prompt(self):
        ids = [int(t) for t in self.tool(self.fortunes_so, "--prompt", PROMPT,
                                         "-n", "0", "--ids").split()]
        self.assertEqual(len(ids), len(PROMPT))
        self.assertEqual(self.model.generate(ids, max_tokens=30,
                                             temperature=0),
                         self.model.generate(PROMPT, max_tokens=30,
                                             temperature=0))

    def test_tokenizer_model_equals_the_tool(self):
        prompt = "The quick brown fox"
        with bitnet_mlir.load(self.tiny_so, threads=1) as tiny:
            got = tiny.generate(prompt, max_tokens=24, temperature=0)
            sampled = tiny.generate(prompt, max_tokens=24, seed=5)
        want = self.tool(self.tiny_so, "--prompt", prompt, "-n", "24",
                         "--temperature", "0")
        self.assertEqual(prompt + got + "\n", want)
        self.assertGreater(len(got), 0)
        want = self.tool(self.tiny_so, "--prompt", prompt, "-n", "24",
                         "--seed", "5")
        self.assertEqual(prompt + sampled + "\n", want)

    def test_stream_yields_the_same_text_in_pieces(self):
        whole = self.model.generate(PROMPT, max_tokens=50, temperature=0)
        stream = self.model.generate(PROMPT, max_tokens=50, temperature=0,
                                     stream=True)
        self.assertFalse(isinstance(stream, str))
        first = next(stream)
        self.assertEqual(first, whole[0])  # as soon as it is generated
        pieces = [first, *stream]
        self.assertEqual(len(pieces), 50)
        self.assertEqual("".join(pieces), whole)

    def test_stop_strings(self):
        whole = self.model.generate(PROMPT, max_tokens=80, temperature=0)
        stop = whole[20:23]
        cut = whole[:whole.find(stop)]
        self.assertEqual(self.model.generate(PROMPT, max_tokens=80,
                                             temperature=0, stop=stop), cut)
        pieces = list(self.model.generate(PROMPT, max_tokens=80,
                                          temperature=0, stop=[stop, "\x00"],
                                          stream=True))
        self.assertEqual("".join(pieces), cut)
        # A stop string that never comes changes nothing.
        self.assertEqual(self.model.generate(PROMPT, max_tokens=80,
                                             temperature=0,
                                             stop="not in it at all"), whole)

    def test_prefill_build_gives_the_same_text(self):
        with bitnet_mlir.load(self.fortunes4_so, threads=1) as four:
            got = four.generate(PROMPT, max_tokens=40, temperature=0)
        self.assertEqual(got, self.model.generate(PROMPT, max_tokens=40,
                                                  temperature=0))

    def test_past_the_context(self):
        # Shifted as the tool shifts it.
        got = self.model.generate(PROMPT, max_tokens=90, temperature=0,
                                  ctx_size=40)
        want = self.tool(self.fortunes_so, "--prompt", PROMPT, "-n", "90",
                         "--temperature", "0", "--ctx-size", "40")
        self.assertEqual(PROMPT + got + "\n", want)
        self.assertEqual(len(got), 90)
        # Or stopped, with a warning.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = self.model.generate(PROMPT, max_tokens=90, temperature=0,
                                      ctx_size=40, context_shift=False)
        self.assertEqual(len(got), 40 - len(PROMPT) + 1)
        self.assertTrue(any("context is full" in str(w.message)
                            for w in caught))

    def test_bad_arguments(self):
        m = self.model
        for kwargs, error in (
                (dict(temperature=float("nan")), ValueError),
                (dict(temperature=-1), ValueError),
                (dict(top_p=0), ValueError),
                (dict(top_p=float("nan")), ValueError),
                (dict(top_k=-1), ValueError),
                (dict(max_tokens=-1), ValueError),
                (dict(max_tokens=2.5), TypeError),
                (dict(stop=""), ValueError),
                (dict(stop=[1]), TypeError),
                (dict(seed=-1), ValueError),
                (dict(ctx_size=10_000), ValueError),
                (dict(ctx_size=1), ValueError)):
            with self.assertRaises(error, msg=kwargs):
                m.generate(PROMPT, **kwargs)
            # Also when streaming: at the call, not at the first piece.
            with self.assertRaises(error, msg=kwargs):
                m.generate(PROMPT, stream=True, **kwargs)
        with self.assertRaisesRegex(ValueError, "the context holds 10"):
            m.generate("x" * 11, ctx_size=10)
        with self.assertRaisesRegex(ValueError, "outside the vocabulary"):
            m.generate([1, 100000])
        with self.assertRaisesRegex(ValueError, "empty"):
            m.generate("")
        with self.assertRaises(TypeError):
            m.generate(b"bytes")
        self.assertEqual(m.generate(PROMPT, max_tokens=0), "")

    def test_not_a_decoder(self):
        so = bitnet_mlir.compile(os.path.join(EXAMPLES_DIR, "bitlinear.mlir"),
                                 os.path.join(self.tmp.name, "bitlinear.so"))
        with bitnet_mlir.load(so, threads=1) as m:
            with self.assertRaisesRegex(ValueError, "not a decoder step"):
                m.generate("x")


if __name__ == "__main__":
    unittest.main()
