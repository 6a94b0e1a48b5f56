"""A decoder that carries a prefill step (bitnet-compile --prefill-tokens).

The shared object holds the one-token step and the entry 'prefill' (S tokens
a step, the last token's logits) over one copy of the weights. These tests
compile a GGUF fixture (test/Models/gguf) and check that:

- the entry computes what a separate prefill build of the same file does
  (--input-shape=tokens:S --last-token-logits), bit for bit, chunk after
  chunk on the same caches;
- a prompt run in its chunks, then decoded by the main step on the same
  caches, gives the logits and caches of the one-token build run token by
  token (the numerics contract's float tolerance: other kernels);
- the file holds the weight data once: its weight symbols add up to the
  one-token build's, not twice them;
- bitnet-generate runs a prompt through the entry by default (its steps
  are S tokens), and generates the same greedy tokens as without it
  (--no-prefill) and as with the separate build (--prefill).
"""

import os
import struct
import subprocess
import tempfile
import unittest

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE = os.path.join(ROOT, "test", "Models", "gguf",
                       "tiny-bitnet-b1.58-i2_s.gguf")
COMPILER = os.environ.get("BITNET_COMPILE", "bitnet-compile")
GENERATE = os.environ.get("BITNET_GENERATE", "bitnet-generate")

import bitnet_mlir  # noqa: E402

S = 4          # --prefill-tokens
CONTEXT = 64   # --max-context


def weight_bytes(path):
    """Bytes of the weight data symbols (__bitnet_*weights_*) in the symbol
    table of the ELF64 file at `path`."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF" and data[4] == 2, path
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum)]
    total = 0
    for _, kind, _, _, offset, size, link, _, _, entsize in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strings = sections[link][4]
        for at in range(offset, offset + size, entsize):
            name_at, _, _, _, _, bytes_ = struct.unpack_from("<IBBHQQ", data,
                                                             at)
            end = data.index(b"\0", strings + name_at)
            name = data[strings + name_at:end].decode()
            if name.startswith("__bitnet_") and "weights_" in name:
                total += bytes_
    return total


class Steps:
    """A build (or an entry of one) with caches it shares with others."""

    def __init__(self, so, caches=None, entry=None):
        self.model = bitnet_mlir.load(so, threads=2, entry=entry)
        self.caches = caches if caches is not None else {
            s.name: np.zeros(s.shape, s.dtype)
            for s in self.model.inputs if s.state}
        self.tokens = next(s for s in self.model.inputs
                           if s.name == "tokens").shape[0]

    def run(self, tokens, position):
        assert len(tokens) == self.tokens
        out = self.model.run(tokens=np.asarray(tokens, np.int32),
                             position=np.int32(position), **self.caches)
        return out if isinstance(out, np.ndarray) else out[0]


class PrefillEntryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.so = {}
        builds = {"single": ["--prefill-tokens", "0"],
                  "entry": ["--prefill-tokens", str(S)],
                  "separate": ["--input-shape", f"tokens:{S}",
                               "--last-token-logits"]}
        for name, extra in builds.items():
            path = os.path.join(cls.tmp.name, name + ".so")
            subprocess.run([COMPILER, FIXTURE, "--max-context", str(CONTEXT),
                            "-o", path, *extra], check=True)
            cls.so[name] = path
        cls.vocab = Steps(cls.so["single"]).model.outputs[0].shape[-1]
        rng = np.random.default_rng(11)
        cls.prompt = [int(t) for t in rng.integers(1, cls.vocab, 3 * S + 1)]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_entry_is_listed(self):
        main = bitnet_mlir.load(self.so["entry"], threads=1)
        self.assertEqual(main.entries, ["prefill"])
        self.assertIsNone(main.entry)
        self.assertEqual(bitnet_mlir.load(self.so["single"]).entries, [])
        entry = bitnet_mlir.load(self.so["entry"], entry="prefill")
        self.assertEqual(entry.entry, "prefill")
        self.assertEqual(entry.metadata, main.metadata)
        # The caches have the main step's names and shapes.
        self.assertEqual([(s.name, s.shape) for s in entry.inputs if s.state],
                         [(s.name, s.shape) for s in main.inputs if s.state])
        with self.assertRaises(bitnet_mlir.RuntimeError) as raised:
            bitnet_mlir.load(self.so["entry"], entry="chunk")
        self.assertIn("has no entry named 'chunk' (it has: 'prefill')",
                      str(raised.exception))

    def test_entry_is_the_separate_prefill_build(self):
        entry = Steps(self.so["entry"], entry="prefill")
        separate = Steps(self.so["separate"])
        for c in range(3):
            chunk = self.prompt[c * S:(c + 1) * S]
            a, b = entry.run(chunk, c * S), separate.run(chunk, c * S)
            self.assertEqual(a.shape, (1, self.vocab))
            np.testing.assert_array_equal(a, b)
        for name in entry.caches:
            np.testing.assert_array_equal(entry.caches[name],
                                          separate.caches[name])

    def test_chunks_then_decoding_agree_with_one_token_steps(self):
        main = Steps(self.so["entry"])
        entry = Steps(self.so["entry"], caches=main.caches, entry="prefill")
        alone = Steps(self.so["single"])
        for c in range(3):
            last = entry.run(self.prompt[c * S:(c + 1) * S], c * S)
        for p, token in enumerate(self.prompt[:3 * S]):
            want = alone.run([token], p)
        np.testing.assert_allclose(last[0], want[0], rtol=1e-4, atol=1e-4)
        # Decoding goes on from the entry's caches in the main step.
        for p in range(3 * S, len(self.prompt) + 4):
            token = self.prompt[p] if p < len(self.prompt) else p
            got, want = main.run([token], p), alone.run([token], p)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        for name in main.caches:
            np.testing.assert_allclose(main.caches[name], alone.caches[name],
                                       rtol=1e-3, atol=1e-3)

    def test_weights_are_held_once(self):
        single = weight_bytes(self.so["single"])
        both = weight_bytes(self.so["entry"])
        self.assertGreater(single, 0)
        self.assertEqual(both, single)

    def generate(self, so, *args):
        trace = os.path.join(self.tmp.name, "trace.txt")
        out = subprocess.run(
            [GENERATE, so, "--tokens", ",".join(map(str, self.prompt)),
             "-n", "12", "--temperature", "0", "--ids", "--quiet",
             "--threads", "2", "--trace-ids", trace, *args],
            check=True, capture_output=True, text=True).stdout
        with open(trace) as f:
            steps = [len(line.split(":")[1].split()) for line in f]
        return out.split(), steps

    def test_generate_runs_the_prompt_through_the_entry(self):
        ids, steps = self.generate(self.so["entry"])
        # Three full chunks, the last prompt token alone, then decoding.
        self.assertEqual(steps[:4], [S, S, S, 1])
        without, steps = self.generate(self.so["entry"], "--no-prefill")
        self.assertEqual(steps[:3], [1, 1, 1])
        self.assertEqual(ids, without)
        separate, steps = self.generate(self.so["single"], "--prefill",
                                        self.so["separate"])
        self.assertEqual(steps[:4], [S, S, S, 1])
        self.assertEqual(ids, separate)


if __name__ == "__main__":
    unittest.main()
