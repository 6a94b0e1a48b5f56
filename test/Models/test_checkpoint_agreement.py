"""Checkpoints compiled by bitnet-compile, against their peers' outputs.

GGUFAgreement: GGUF files against bitnet.cpp on the same files.
TokenizerAgreement: the GGUF fixtures' tokenizer against bitnet.cpp's ids for
llama.cpp's llama-bpe test strings (skipped without ../shared/testdata).
HFAgreement: Hugging Face directories (test/Models/hf) against the float32
torch reference of BitNetForCausalLM (models/hf_bitnet.py), whose outputs
are recorded there: with f32 KV caches the numerics are the contract's on
both sides, and the logits agree to 1e-5 (measured: 1.2e-6); with the
default f16 caches to 0.1 (measured: 0.055), with the same greedy tokens.

The fixtures in test/Models/gguf (README.md there says how they were made)
hold small random BitNet models in I2_S, TQ1_0 and TQ2_0, and what bitnet.cpp
computed on them: the prompt's token ids, a 32-step greedy continuation and
the logits of every step. For each file this test compiles a one-token decode
step and checks:

- the tokenizer carried in the compiled model gives bitnet.cpp's prompt ids;
- teacher-forced on bitnet.cpp's tokens, the logits of every step are within
  the tolerances below, and the greedy token agrees with bitnet.cpp's on all
  but a few steps;
- generating greedily from the prompt gives bitnet.cpp's tokens, up to the
  first step where the two disagree by a margin smaller than the tolerance.

Why the logits are not identical: bitnet.cpp rounds Q, the attention
probabilities and the final hidden state to f16, which this compiler keeps in
f32 (the numerics contract rounds only the int8 activations and, with the
default --kv-cache=f16, the cached keys and values). A last-bit difference
that moves one activation across an int8 rounding boundary moves logits by a
step of about 0.2 (measured in the fixtures' README with a float64
re-computation: up to 2.9 on single rows). TQ1_0/TQ2_0 in bitnet.cpp also
quantise activations per 256-value block, not per token as the contract says,
so those files are compared more loosely (the README measured 2.4 between
bitnet.cpp's own I2_S and TQ logits of the same weights).
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "test", "Models", "gguf")
HF_FIXTURES = os.path.join(ROOT, "test", "Models", "hf")
COMPILER = os.environ.get("BITNET_COMPILE", "bitnet-compile")
TOKENIZE = os.environ.get("BITNET_TOKENIZE", "bitnet-tokenize")

import bitnet_mlir  # noqa: E402

# (file stem, median |logit difference| per step, max over the 33 steps,
# steps whose argmax may differ). Measured (default f16 KV cache, Zen 5 and
# Emerald Rapids give the same): I2_S median 0.21, max 8.6 (one step), 1 to 4
# argmax differences; TQ1_0/TQ2_0 median 0.26, max 9.1, 1 difference. The
# logits of these random models have a standard deviation of 3.3 and reach
# 14; a median of 0.21 is one int8 rounding step somewhere in the network,
# which a random (untrained) network amplifies more than a trained one.
CASES = [
    ("tiny-bitnet-b1.58-i2_s", 0.3, 10.0, 4),
    ("tiny-bitnet-i2_s", 0.3, 10.0, 5),
    ("tiny-bitnet-b1.58-tq1_0", 0.35, 10.0, 4),
    ("tiny-bitnet-b1.58-tq2_0", 0.35, 10.0, 4),
]
# Where greedy generation parts from bitnet.cpp's, bitnet.cpp's own top two
# logits must be closer than this (a near tie that one rounding step flips).
NEAR_TIE = 1.0


class CompiledModelTest(unittest.TestCase):
    """Compiled models in a temporary folder, and what the tests do with
    them."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def assert_prompt_ids(self, so, meta):
        """The tokenizer carried in `so` gives the recorded prompt ids."""
        ids = subprocess.run([TOKENIZE, so, "--add-bos"], input=meta["prompt"],
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual([int(t) for t in ids.split()], meta["prompt_ids"])

    @staticmethod
    def run_tokens(model, ids):
        """Logits after each of `ids`, fed one at a time from position 0."""
        caches = {s.name: np.zeros(s.shape, s.dtype)
                  for s in model.inputs if s.state}
        rows = []
        for p, t in enumerate(ids):
            out = model.run(tokens=np.asarray([t], np.int32),
                            position=np.asarray(p, np.int32), **caches)
            rows.append((out if isinstance(out, np.ndarray) else out[0])[0])
        return np.stack(rows), caches


class GGUFAgreement(CompiledModelTest):
    def compiled(self, stem):
        so = os.path.join(self.tmp.name, stem + ".so")
        if not os.path.exists(so):
            subprocess.run([COMPILER, os.path.join(FIXTURES, stem + ".gguf"),
                            "-o", so], check=True)
        return so

    @staticmethod
    def recorded(stem):
        with open(os.path.join(FIXTURES, stem + ".json")) as f:
            meta = json.load(f)
        logits = np.load(os.path.join(FIXTURES, meta["logits"]))
        return meta, logits

    def check_case(self, stem, median_tol, max_tol, argmax_misses):
        meta, want = self.recorded(stem)
        so = self.compiled(stem)
        model = bitnet_mlir.load(so, threads=2)

        # The tokenizer travelled with the model.
        self.assert_prompt_ids(so, meta)

        # Teacher-forced on bitnet.cpp's tokens.
        prompt, gen = meta["prompt_ids"], meta["generated_ids"]
        logits, _ = self.run_tokens(model, prompt + gen)
        got = logits[len(prompt) - 1:]
        self.assertEqual(got.shape, want.shape)
        diff = np.abs(got - want).max(axis=1)
        misses = int(np.sum(got.argmax(1) != want.argmax(1)))
        print(f"{stem}: |logit diff| per step median {np.median(diff):.4f}, "
              f"max {diff.max():.4f}; argmax differs on {misses} of "
              f"{len(diff)} steps")
        self.assertLessEqual(np.median(diff), median_tol)
        self.assertLessEqual(diff.max(), max_tol)
        self.assertLessEqual(misses, argmax_misses)

        # Free-running greedy generation from the prompt.
        tokens = list(prompt)
        caches = None
        first_logits, caches = self.run_tokens(model, prompt)
        step_logits = first_logits[-1]
        generated = []
        for step in range(len(gen)):
            nxt = int(step_logits.argmax())
            generated.append(nxt)
            if nxt != gen[step]:
                break
            out = model.run(tokens=np.asarray([nxt], np.int32),
                            position=np.asarray(len(tokens), np.int32),
                            **caches)
            tokens.append(nxt)
            step_logits = (out if isinstance(out, np.ndarray) else out[0])[0]
        agree = sum(1 for a, b in zip(generated, gen) if a == b)
        print(f"{stem}: greedy generation agrees with bitnet.cpp for "
              f"{agree} of {len(gen)} tokens")
        if agree < len(gen):
            # Where the two part, bitnet.cpp's own choice was a near tie.
            top = np.sort(want[agree])[-2:]
            self.assertLess(top[1] - top[0], NEAR_TIE,
                            f"step {agree}: bitnet.cpp chose {gen[agree]} "
                            f"by a margin of {top[1] - top[0]:.3f}")

    def test_bitnet_b158_i2_s(self):
        self.check_case(*CASES[0])

    def test_bitnet_i2_s(self):
        self.check_case(*CASES[1])

    def test_bitnet_b158_tq1_0(self):
        self.check_case(*CASES[2])

    def test_bitnet_b158_tq2_0(self):
        self.check_case(*CASES[3])


class HFAgreement(CompiledModelTest):
    def check_form(self, form, kv_cache, tol):
        with open(os.path.join(HF_FIXTURES, form + ".reference.json")) as f:
            meta = json.load(f)
        want = np.load(os.path.join(HF_FIXTURES, form + ".logits.npy"))
        so = os.path.join(self.tmp.name, f"{form}-{kv_cache}.so")
        subprocess.run([COMPILER, os.path.join(HF_FIXTURES, form),
                        f"--kv-cache={kv_cache}", "-o", so], check=True)
        self.assert_prompt_ids(so, meta)
        model = bitnet_mlir.load(so, threads=2)
        prompt, gen = meta["prompt_ids"], meta["generated_ids"]
        logits, _ = self.run_tokens(model, prompt + gen)
        got = logits[len(prompt) - 1:]
        diff = np.abs(got - want).max()
        print(f"{form}, {kv_cache} KV cache: max |logit difference| {diff:.2e}")
        self.assertLess(diff, tol)
        # Greedy: the reference's tokens are the argmax of its logits.
        self.assertEqual(list(got.argmax(1)[:-1]), gen)

    def test_packed_f32_cache(self):
        self.check_form("packed", "f32", 1e-5)

    def test_bf16_f32_cache(self):
        self.check_form("bf16", "f32", 1e-5)

    def test_packed_f16_cache(self):
        self.check_form("packed", "f16", 0.1)


class TokenizerAgreement(unittest.TestCase):
    """The GGUF fixtures' tokenizer against bitnet.cpp's tokenization of
    llama.cpp's llama-bpe test strings (../shared/testdata/tokenizer), which
    tiny-vocab.llama-bpe.out records: one line per case, ids without BOS."""

    def test_llama_bpe_cases(self):
        inp = os.path.join(ROOT, "..", "shared", "testdata", "tokenizer",
                           "llama-bpe.inp")
        if not os.path.exists(inp):
            self.skipTest(f"{inp} is absent")
        with open(inp, encoding="utf-8") as f:
            cases = f.read().split("\n__ggml_vocab_test__\n")
        if cases and cases[-1] == "":
            cases.pop()
        with open(os.path.join(FIXTURES, "tiny-vocab.llama-bpe.out")) as f:
            want = [line.split() for line in f.read().split("\n")[:len(cases)]]
        self.assertEqual(len(cases), len(want))
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(FIXTURES, "tiny-bitnet-b1.58-i2_s.gguf")
            files = []
            for i, text in enumerate(cases):
                files.append(os.path.join(tmp, f"case{i}"))
                with open(files[-1], "w", encoding="utf-8") as f:
                    f.write(text)
            got = subprocess.run([TOKENIZE, source, *files],
                                 capture_output=True, text=True,
                                 check=True).stdout.split("\n")
        mismatches = [i for i in range(len(cases)) if got[i].split() != want[i]]
        print(f"llama-bpe cases: {len(cases) - len(mismatches)} of "
              f"{len(cases)} give bitnet.cpp's ids")
        self.assertEqual(mismatches, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
