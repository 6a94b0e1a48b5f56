"""bitnet-generate's prompt file (-f), --ctx-size and context shift, on the
bundled fortunes model.

Past the end of the context (--ctx-size), bitnet-generate shifts it: the
oldest half of the tokens is dropped (the BOS token stays; this model has
none) and the rest runs again from an empty KV cache. The greedy tokens after
each shift must be those torch gives for the shortened context
(models/bitnet_decoder.py over the same weights), which checks which tokens
are kept and that they run from position 0 again. With --no-context-shift it
stops at the end of the context, saying so.

The build has f32 KV caches, with which greedy generation agrees with torch
(test_fortunes_agreement.py). Needs python3-torch and python3-onnx.
"""

import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "models"))

import bitnet_decoder as bd  # noqa: E402
import torch  # noqa: E402

MODEL = os.path.join(ROOT, "models", "fortunes", "fortunes.onnx")
HELDOUT = os.path.join(ROOT, "models", "fortunes", "heldout.txt")
COMPILER = os.environ.get("BITNET_COMPILE", "bitnet-compile")
GENERATE = os.environ.get("BITNET_GENERATE", "bitnet-generate")
CTX = 48       # --ctx-size of the shift test
PROMPT = 20    # prompt tokens
NEW = 70       # tokens generated: two shifts (at the 29th and 53rd)


class FortunesGenerate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.so = os.path.join(cls.tmp.name, "decode32.so")
        subprocess.run([COMPILER, MODEL, "--input-shape=tokens:1",
                        "--kv-cache=f32", "-o", cls.so], check=True)
        cls.torch_model, cls.cfg, cls.vocab = bd.load_torch_from_onnx(MODEL)
        index = {t: i for i, t in enumerate(cls.vocab)}
        with open(HELDOUT) as f:
            cls.text = f.read()
        cls.ids = [index[c] for c in cls.text[:PROMPT]]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def generate(self, *args):
        return subprocess.run([GENERATE, self.so, "--threads", "2", *args],
                              capture_output=True, text=True)

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def next_token(self, context):
        with torch.no_grad():
            logits = self.torch_model(torch.tensor([context]))[0, -1]
        return int(logits.argmax())

    def test_prompt_file_is_the_prompt(self):
        prompt = self.text[:60]
        # One line break at the end of the file is not part of the prompt.
        path = self.write("prompt.txt", prompt + "\n")
        from_file = self.generate("-f", path, "-n", "20", "--temperature",
                                  "0", "--quiet")
        given = self.generate("--prompt", prompt, "-n", "20",
                              "--temperature", "0", "--quiet")
        self.assertEqual(from_file.returncode, 0, from_file.stderr)
        self.assertEqual(from_file.stdout, given.stdout)
        self.assertTrue(from_file.stdout.startswith(prompt))
        self.assertGreater(len(from_file.stdout), len(prompt) + 10)

    def test_prompt_file_errors(self):
        empty = self.write("empty.txt", "")
        newline = self.write("newline.txt", "\n")
        for args, message in (
                (["-f", os.path.join(self.tmp.name, "missing.txt")],
                 "No such file"),
                (["-f", empty], "empty"),
                (["-f", newline], "empty"),
                (["-f", self.tmp.name], "not a regular file")):
            r = self.generate(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn("bitnet-generate: -f", r.stderr)
            self.assertIn(message, r.stderr)
        r = self.generate("-f", empty, "--prompt", "x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("one of --prompt, -f and --tokens", r.stderr)

    def test_ctx_size_limits(self):
        r = self.generate("--prompt", "x", "--ctx-size",
                          str(self.cfg.context + 1))
        self.assertEqual(r.returncode, 2)
        self.assertIn("beyond the model's context", r.stderr)
        self.assertIn(f"holds {self.cfg.context} tokens", r.stderr)
        r = self.generate("--prompt", "x", "--ctx-size", "1")
        self.assertEqual(r.returncode, 2)
        # A prompt longer than --ctx-size is an error, shift or not.
        r = self.generate("--prompt", self.text[:CTX + 1], "--ctx-size",
                          str(CTX))
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"the context holds {CTX}", r.stderr)

    def test_stops_at_the_end_of_the_context(self):
        r = self.generate("--tokens", ",".join(map(str, self.ids)), "-n",
                          str(NEW), "--temperature", "0", "--ids",
                          "--ctx-size", str(CTX), "--no-context-shift")
        self.assertEqual(r.returncode, 0, r.stderr)
        printed = [int(t) for t in r.stdout.split()]
        # CTX tokens ran; the last one printed was sampled from the logits at
        # the last position.
        self.assertEqual(len(printed), CTX + 1)
        self.assertIn(f"the context is full ({CTX} tokens", r.stderr)
        self.assertIn("stopped at the end of the context", r.stderr)

    def test_context_shift_matches_torch(self):
        trace = os.path.join(self.tmp.name, "trace.txt")
        r = self.generate("--tokens", ",".join(map(str, self.ids)), "-n",
                          str(NEW), "--temperature", "0", "--ids",
                          "--ctx-size", str(CTX), "--trace-ids", trace)
        self.assertEqual(r.returncode, 0, r.stderr)
        printed = [int(t) for t in r.stdout.split()]
        # The same in torch: when the context is full, the oldest half goes.
        context, want, shifts = list(self.ids), list(self.ids), 0
        for k in range(NEW):
            token = self.next_token(context)
            want.append(token)
            if k == NEW - 1:
                break  # the last token is printed, not run
            if len(context) == CTX:
                context = context[CTX // 2:]
                shifts += 1
            context.append(token)
        self.assertEqual(shifts, 2)
        self.assertEqual(printed, want)
        self.assertIn(f"context: {CTX} tokens; 2 context shifts", r.stderr)
        # The model saw position 0 three times: the prompt and each shift's
        # tokens run again, the kept half first.
        with open(trace) as f:
            lines = f.read().splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("0:")]
        self.assertEqual(len(starts), 3)
        self.assertEqual(int(lines[starts[1]].split()[1]), want[CTX // 2])


if __name__ == "__main__":
    unittest.main()
