"""A decoder built for several sequences (bitnet-compile --max-sequences).

One step of such a build carries tokens of up to B sequences, each appended
to its own KV-cache slot at its own position (`tokens`, `positions`,
`slots`), and padding tokens (slot -1). These tests compile a GGUF fixture
(test/Models/gguf) and check that:

- a sequence's logits are the same, bit for bit, whether it runs alone (the
  other tokens of each step padding) or shares its steps with other
  sequences, in prompt chunks and in decoding, at any slot;
- they agree with the one-sequence build of the same file run token by
  token (the same kernels: to the last bit here, see below);
- the reference lowering (--kernels=reference) of the batched build agrees
  with the kernels within the float tolerance of the numerics contract;
- padding writes nothing: a slot's cache is untouched by steps that do not
  carry its tokens; positions past the cache are refused.
"""

import os
import subprocess
import tempfile
import unittest

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE = os.path.join(ROOT, "test", "Models", "gguf",
                       "tiny-bitnet-b1.58-i2_s.gguf")
COMPILER = os.environ.get("BITNET_COMPILE", "bitnet-compile")

import bitnet_mlir  # noqa: E402

SEQUENCES = 3  # B
TOKENS = 4     # S: a step's tokens
CONTEXT = 64   # --max-context


class Batched:
    """A batched build with its caches, and the logits of every (sequence,
    position) it has run."""

    def __init__(self, so):
        self.model = bitnet_mlir.load(so, threads=2)
        self.caches = {s.name: np.zeros(s.shape, s.dtype)
                       for s in self.model.inputs if s.state}
        self.logits = {}

    def step(self, entries):
        """Runs one step of (sequence, slot, position, token) entries, the
        rest padding."""
        assert len(entries) <= TOKENS
        tokens = np.zeros(TOKENS, np.int32)
        positions = np.zeros(TOKENS, np.int32)
        slots = np.full(TOKENS, -1, np.int32)
        for t, (_, slot, pos, tok) in enumerate(entries):
            tokens[t], positions[t], slots[t] = tok, pos, slot
        out = self.model.run(tokens=tokens, positions=positions, slots=slots,
                             **self.caches)
        logits = out if isinstance(out, np.ndarray) else out[0]
        for t, (seq, _, pos, _) in enumerate(entries):
            self.logits[(seq, pos)] = logits[t].copy()


def sequences(vocab):
    rng = np.random.default_rng(7)
    # Prompt lengths below, at and above a step's tokens.
    return [list(rng.integers(1, vocab, n)) for n in (6, 3, 9)]


class BatchedDecoderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.so = {}
        for name, extra in (("batched", ["--max-sequences", str(SEQUENCES),
                                         "--input-shape", f"tokens:{TOKENS}"]),
                            ("reference", ["--max-sequences", str(SEQUENCES),
                                           "--input-shape", f"tokens:{TOKENS}",
                                           "--kernels", "reference"]),
                            ("single", [])):
            so = os.path.join(cls.tmp.name, name + ".so")
            subprocess.run([COMPILER, FIXTURE, "-o", so, "-q",
                            "--max-context", str(CONTEXT)] + extra,
                           check=True, timeout=300)
            cls.so[name] = so

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def interface(self, model):
        return {s.name: (tuple(s.shape), s.state) for s in model.inputs}

    def test_interface(self):
        m = bitnet_mlir.load(self.so["batched"])
        inputs = self.interface(m)
        self.assertEqual(inputs["tokens"], ((TOKENS,), False))
        self.assertEqual(inputs["positions"], ((TOKENS,), False))
        self.assertEqual(inputs["slots"], ((TOKENS,), False))
        caches = [v for k, v in inputs.items() if k.startswith("cache.")]
        self.assertTrue(caches)
        for shape, state in caches:
            self.assertTrue(state)
            self.assertEqual(shape[:2], (SEQUENCES, CONTEXT))

    def run_alone(self, so, seq, ids, slot):
        """`ids` of one sequence in `slot`, the prompt a chunk a step."""
        b = Batched(so)
        for at in range(0, len(ids), TOKENS):
            b.step([(seq, slot, p, ids[p])
                    for p in range(at, min(at + TOKENS, len(ids)))])
        return b

    def run_together(self, so, all_ids):
        """The sequences interleaved: the first prefills alone, the others
        arrive later in chunks next to the decoding ones, in slots 2, 0, 1."""
        b = Batched(so)
        slot_of = {0: 2, 1: 0, 2: 1}
        prompt = {0: 6, 1: 3, 2: 9}
        done = {k: 0 for k in range(len(all_ids))}
        started = [0]
        step = 0
        while any(done[k] < len(all_ids[k]) for k in done):
            if step == 1:
                started.append(1)
            if step == 3:
                started.append(2)
            entries = []
            # One token of each decoding sequence, then prompt chunks.
            for k in started:
                if done[k] >= prompt[k] and done[k] < len(all_ids[k]):
                    entries.append((k, slot_of[k], done[k],
                                    all_ids[k][done[k]]))
                    done[k] += 1
            for k in started:
                while (done[k] < prompt[k] and len(entries) < TOKENS):
                    entries.append((k, slot_of[k], done[k],
                                    all_ids[k][done[k]]))
                    done[k] += 1
            b.step(entries)
            step += 1
        return b

    def continuations(self, vocab):
        """Prompts and fixed continuations (teacher forcing keeps the
        schedule independent of the logits)."""
        rng = np.random.default_rng(11)
        return [p + list(rng.integers(1, vocab, 5)) for p in sequences(vocab)]

    def vocab(self):
        m = bitnet_mlir.load(self.so["batched"])
        return [o.shape for o in m.outputs if o.name == "logits"][0][1]

    def test_alone_equals_together(self):
        all_ids = self.continuations(self.vocab())
        together = self.run_together(self.so["batched"], all_ids)
        for k, ids in enumerate(all_ids):
            alone = self.run_alone(self.so["batched"], k, ids, slot=k % 2)
            for p in range(len(ids)):
                np.testing.assert_array_equal(
                    alone.logits[(k, p)], together.logits[(k, p)],
                    err_msg=f"sequence {k}, position {p}")

    def test_agrees_with_single_sequence_build(self):
        all_ids = self.continuations(self.vocab())
        together = self.run_together(self.so["batched"], all_ids)
        single = bitnet_mlir.load(self.so["single"], threads=2)
        worst = 0.0
        for k, ids in enumerate(all_ids):
            caches = {s.name: np.zeros(s.shape, s.dtype)
                      for s in single.inputs if s.state}
            for p, t in enumerate(ids):
                out = single.run(tokens=np.asarray([t], np.int32),
                                 position=np.asarray(p, np.int32), **caches)
                row = (out if isinstance(out, np.ndarray) else out[0])[0]
                worst = max(worst, float(np.abs(
                    row - together.logits[(k, p)]).max()))
        print(f"batched against one-sequence build: max |diff| {worst:.3g}")
        # The same kernels on the same rows; a last-bit difference would
        # still be within the numerics contract's float tolerance.
        self.assertLessEqual(worst, 1e-3)

    def test_reference_lowering_agrees(self):
        all_ids = self.continuations(self.vocab())
        kernels = self.run_together(self.so["batched"], all_ids)
        reference = self.run_together(self.so["reference"], all_ids)
        worst = max(float(np.abs(kernels.logits[key] -
                                 reference.logits[key]).max())
                    for key in kernels.logits)
        print(f"kernels against the reference lowering: max |diff| "
              f"{worst:.3g}")
        self.assertLessEqual(worst, 1e-2)

    def test_padding_writes_nothing(self):
        b = Batched(self.so["batched"])
        ids = sequences(self.vocab())[0]
        b.step([(0, 1, p, ids[p]) for p in range(3)])
        before = {k: v.copy() for k, v in b.caches.items()}
        # Slots -1, B and beyond, and a huge one, at any position.
        tokens = np.asarray(ids[:TOKENS], np.int32)
        b.model.run(tokens=tokens,
                    positions=np.asarray([0, 5, CONTEXT - 1, 7], np.int32),
                    slots=np.asarray([-1, SEQUENCES, 1 << 30, -(1 << 30)],
                                     np.int32),
                    **b.caches)
        for k in before:
            np.testing.assert_array_equal(before[k], b.caches[k], err_msg=k)
        # A token writes its own slot only.
        b.step([(1, 2, 0, ids[0])])
        for k in before:
            changed = np.argwhere(np.any(
                (before[k] != b.caches[k]).reshape(SEQUENCES, CONTEXT, -1),
                axis=2))
            self.assertTrue(all(s == 2 and p == 0 for s, p in changed),
                            f"{k}: rows {changed.tolist()} changed")

    def test_positions_checked(self):
        """A position past the cache is refused by a checked run (the kernels
        clamp it into the cache for unchecked callers)."""
        b = Batched(self.so["batched"])
        ids = sequences(self.vocab())[0]
        with self.assertRaisesRegex(RuntimeError,
                                    rf"'positions'.*\[0, {CONTEXT - 1}\]"):
            b.model.run(tokens=np.asarray(ids[:TOKENS], np.int32),
                        positions=np.asarray([CONTEXT + 100, 0, 0, 0],
                                             np.int32),
                        slots=np.asarray([0, -1, -1, -1], np.int32),
                        **b.caches)

if __name__ == "__main__":
    unittest.main()
