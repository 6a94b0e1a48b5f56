"""bitnet-serve with a batched build: continuous batching over its slots.

Two models, four slots and eight tokens a step each:
- the runtime's hand-written batched test model (BITNET_BATCHED_MODEL,
  runtime/tests/models/tokenizer_decoder.c BATCHED): its text depends on
  its own sequence only, exactly, and each step takes a millisecond, so that
  requests surely overlap;
- the tiny GGUF fixture of test/Models/gguf (two layers, a Llama 3 style
  tokenizer of 800 tokens), its context raised from 256 to 1024 in a copy
  (the GGUF key <arch>.context_length), compiled with bitnet-compile
  --max-sequences=4 --input-shape=tokens:8.

Checked on each, with the standard library's HTTP client on 127.0.0.1:
- greedy completions run alone give bitnet-generate's text on the same build
  (one sequence in slot 0), streamed or not, prompts longer than a step
  included;
- concurrent streaming requests, more than the slots, each give exactly
  their text run alone, and the slots are used together;
- prompts longer than a step arriving while others decode leave every text
  unchanged;
- a client that goes away mid-stream frees its slot (slots_in_use back to 0)
  without changing the text of the request beside it;
- with more clients than slots and queue, the rest get 429, the others their
  text; /metrics says 4 slots;
- (the compiled model) a lone stream runs its decoding steps through the
  build's one-token step, the entry 'one' (bitnet_serve_one_token_steps_total),
  while the texts above stay those of bitnet-generate's runs of eight-token
  steps.

Environment: BITNET_COMPILE, BITNET_GENERATE, BITNET_SERVE (the tools),
BITNET_BATCHED_MODEL (the test model; its tests are skipped without it). The
compiled model's tests are skipped when bitnet-compile has no
--max-sequences.
"""

import os
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from test_serve import Server, stream_text

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE = os.path.join(ROOT, "test", "Models", "gguf",
                       "tiny-bitnet-b1.58-i2_s.gguf")
COMPILER = os.environ.get("BITNET_COMPILE", "bitnet-compile")
TEST_MODEL = os.environ.get("BITNET_BATCHED_MODEL")
GENERATE = os.environ.get("BITNET_GENERATE", "bitnet-generate")

SLOTS, STEP, CONTEXT = 4, 8, 1024

# ASCII prompts (their text comes back unchanged from bitnet-generate's
# echo); the last two are longer than a step of 8 tokens, the last by far.
PROMPTS = [
    "Hi",
    "The quick brown fox",
    "Once upon a time there was a small program that",
    "A list of numbers: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, "
    "16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, and then",
]


def with_context(src, dst, context):
    """Copies the GGUF file `src` to `dst` with its context_length key set to
    `context` (a uint32 in place: the layout does not change)."""
    data = bytearray(open(src, "rb").read())
    key = b"bitnet-b1.58.context_length"
    at = data.find(struct.pack("<Q", len(key)) + key)
    assert at > 0, "no context_length key"
    at += 8 + len(key)
    kind, _ = struct.unpack_from("<II", data, at)
    assert kind == 4, "context_length is not a uint32"
    struct.pack_into("<I", data, at + 4, context)
    with open(dst, "wb") as f:
        f.write(data)


class BatchedCases:
    """The tests, on cls.so (set by the class's setUpClass). `slow_steps`:
    a step takes long enough that requests surely overlap and a client that
    goes away is seen before its request ends by itself."""

    slow_steps = False

    @classmethod
    def start(cls):
        cls.server = Server(cls.so, "--queue", "16")
        cls.alone_cache = {}

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            if cls.tmp:
                cls.tmp.cleanup()

    def complete(self, prompt, n, server=None):
        status, _, body = (server or self.server).post(
            "/v1/completions", dict(prompt=prompt, max_tokens=n,
                                    temperature=0))
        self.assertEqual(status, 200, body)
        return body

    def alone(self, prompt, n):
        """The text and usage of a greedy request run with nothing beside
        it (the tests run one at a time)."""
        key = (prompt, n)
        if key not in self.alone_cache:
            body = self.complete(prompt, n)
            self.alone_cache[key] = (body["choices"][0]["text"],
                                     body["usage"])
        return self.alone_cache[key]

    def metrics(self, server=None):
        _, _, text = (server or self.server).request("GET", "/metrics")
        values = {}
        for line in text.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def wait_idle(self, server=None, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.metrics(server)
            if (m["bitnet_serve_slots_in_use"] == 0 and
                    m["bitnet_serve_queue_depth"] == 0):
                return m
            time.sleep(0.01)
        self.fail("the server did not go idle: %r" % m)

    def watch_slots(self, stop, seen, server=None):
        """Records bitnet_serve_slots_in_use until `stop` is set."""
        while not stop.is_set():
            seen.append(self.metrics(server)["bitnet_serve_slots_in_use"])
            time.sleep(0.002)

    # 1. Alone: bitnet-generate's text.
    def test_alone_matches_bitnet_generate(self):
        n = 24
        for prompt in PROMPTS:
            with self.subTest(prompt=prompt):
                out = subprocess.run(
                    [GENERATE, self.so, "--prompt", prompt, "-n", str(n),
                     "--temperature", "0", "--quiet", "--threads", "1"],
                    capture_output=True, check=True, timeout=60)
                stdout = out.stdout.decode("utf-8", errors="replace")
                self.assertTrue(stdout.startswith(prompt), stdout)
                self.assertTrue(stdout.endswith("\n"))
                want = stdout[len(prompt):-1]
                text, usage = self.alone(prompt, n)
                self.assertEqual(text, want)
                self.assertGreater(usage["prompt_tokens"], 0)
                status, events = self.server.stream(
                    "/v1/completions",
                    dict(prompt=prompt, max_tokens=n, temperature=0))
                self.assertEqual(status, 200, events)
                self.assertEqual(events[-1], "[DONE]")
                self.assertEqual(stream_text(events)[0], want)
        # The longest prompt takes several steps.
        self.assertGreater(self.alone(PROMPTS[-1], n)[1]["prompt_tokens"],
                           3 * STEP)

    # 2. Concurrent streams.
    def test_concurrent_streams_match_alone(self):
        clients = 2 * SLOTS + 2
        jobs = [(PROMPTS[k % len(PROMPTS)], 150 + 37 * k)
                for k in range(clients)]
        want = {job: self.alone(*job)[0] for job in jobs}
        results = [None] * clients
        stop, seen = threading.Event(), []
        watcher = threading.Thread(target=self.watch_slots,
                                   args=(stop, seen))
        watcher.start()

        def client(k):
            time.sleep(0.003 * k)  # long prompts arrive among decodes
            prompt, n = jobs[k]
            results[k] = self.server.stream(
                "/v1/completions",
                dict(prompt=prompt, max_tokens=n, temperature=0))

        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        stop.set()
        watcher.join()
        for k, (status, events) in enumerate(results):
            with self.subTest(client=k):
                self.assertEqual(status, 200, events)
                self.assertEqual(events[-1], "[DONE]")
                self.assertEqual(stream_text(events)[0], want[jobs[k]])
        self.assertLessEqual(max(seen), SLOTS)
        if self.slow_steps:
            self.assertGreater(max(seen), 1, "the requests never overlapped")
        self.wait_idle()

    def test_long_prompts_arrive_while_others_decode(self):
        # Two requests decode; once each has sent text, long prompts come.
        decoding = [(PROMPTS[0], 600), (PROMPTS[1], 600)]
        arriving = [(PROMPTS[3], 40), (PROMPTS[2], 40)]
        want = {job: self.alone(*job)[0] for job in decoding + arriving}
        started = [threading.Event() for _ in decoding]
        results = {}

        def client(job, event=None):
            results[job] = self.server.stream(
                "/v1/completions",
                dict(prompt=job[0], max_tokens=job[1], temperature=0),
                on_event=(lambda e: event.set()) if event else None)

        threads = [threading.Thread(target=client, args=(job, ev))
                   for job, ev in zip(decoding, started)]
        for t in threads:
            t.start()
        for ev in started:
            self.assertTrue(ev.wait(30))
        busy = self.metrics()["bitnet_serve_slots_in_use"]
        late = [threading.Thread(target=client, args=(job,))
                for job in arriving]
        for t in late:
            t.start()
        for t in threads + late:
            t.join(timeout=60)
        for job in decoding + arriving:
            with self.subTest(job=job):
                status, events = results[job]
                self.assertEqual(status, 200, events)
                self.assertEqual(stream_text(events)[0], want[job])
        # The decoding requests were still running when the prompts came
        # (where steps are slow enough to be sure of it: a lone stream of
        # the compiled model runs its one-token steps in a blink).
        if self.slow_steps:
            self.assertGreater(busy, 0)
        self.wait_idle()

    # 3. A client that goes away.
    def test_client_gone_frees_its_slot(self):
        before = self.metrics()["bitnet_serve_generated_tokens_total"]
        full = self.alone(PROMPTS[2], 100000)[1]["completion_tokens"]
        beside_want = self.alone(PROMPTS[1], 300)
        after_alone = self.metrics()["bitnet_serve_generated_tokens_total"]
        beside = {}

        def other():
            beside["got"] = self.server.stream(
                "/v1/completions",
                dict(prompt=PROMPTS[1], max_tokens=300, temperature=0))

        c, r = self.server.open_stream(
            dict(prompt=PROMPTS[2], max_tokens=100000, temperature=0))
        self.assertEqual(r.status, 200)
        t = threading.Thread(target=other)
        t.start()
        self.assertTrue(r.readline().startswith(b"data: "))
        c.sock.close()
        c.close()
        t.join(timeout=60)
        status, events = beside["got"]
        self.assertEqual(status, 200, events)
        self.assertEqual(stream_text(events)[0], beside_want[0])
        m = self.wait_idle()
        # The request that lost its client stopped before the end of its
        # context.
        gone = (m["bitnet_serve_generated_tokens_total"] - after_alone -
                beside_want[1]["completion_tokens"])
        if self.slow_steps:
            self.assertLess(gone, full)
        self.assertGreater(after_alone, before)

    # 4. The queue bound, with more clients than slots.
    def test_more_clients_than_slots_and_queue(self):
        server = Server(self.so, "--queue", "2")
        try:
            m = self.metrics(server)
            self.assertEqual(m["bitnet_serve_slots"], SLOTS)
            want = self.complete(PROMPTS[2], 900,
                                 server)["choices"][0]["text"]
            got = []

            def flood():
                status, _, body = server.post(
                    "/v1/completions",
                    dict(prompt=PROMPTS[2], max_tokens=900, temperature=0))
                got.append((status, body))

            for _ in range(3):  # timing: a fast round may take them all
                threads = [threading.Thread(target=flood)
                           for _ in range(4 * SLOTS)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=60)
                if any(s == 429 for s, _ in got):
                    break
            self.assertEqual({s for s, _ in got} - {200, 429}, set())
            self.assertTrue(any(s == 429 for s, _ in got), "none refused")
            for status, body in got:
                if status == 200:
                    self.assertEqual(body["choices"][0]["text"], want)
                else:
                    self.assertEqual(body["error"]["code"],
                                     "rate_limit_exceeded")
            self.wait_idle(server)
        finally:
            self.assertEqual(server.stop(), 0)


@unittest.skipUnless(TEST_MODEL, "BITNET_BATCHED_MODEL is not set")
class TestModelBatched(BatchedCases, unittest.TestCase):
    slow_steps = True

    @classmethod
    def setUpClass(cls):
        cls.tmp = None
        cls.so = TEST_MODEL
        cls.start()


class CompiledBatched(BatchedCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        gguf = os.path.join(cls.tmp.name, "tiny.gguf")
        with_context(FIXTURE, gguf, CONTEXT)
        cls.so = os.path.join(cls.tmp.name, "tiny.so")
        out = subprocess.run(
            [COMPILER, gguf, "--max-sequences=%d" % SLOTS,
             "--input-shape=tokens:%d" % STEP, "-q", "-o", cls.so],
            capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            cls.tmp.cleanup()
            if "max-sequences" in out.stderr:
                raise unittest.SkipTest("bitnet-compile has no "
                                        "--max-sequences: " + out.stderr)
            raise RuntimeError("bitnet-compile failed: " + out.stderr)
        cls.start()

    # 6. A lone stream runs through the build's one-token step (its entry
    # 'one'), not through steps of eight tokens, seven of them padding.
    def test_lone_stream_runs_the_one_token_step(self):
        self.wait_idle()
        before = self.metrics()
        body = self.complete(PROMPTS[0], 24)
        n = body["usage"]["completion_tokens"]
        self.assertGreater(n, 2)
        after = self.metrics()
        one = (after["bitnet_serve_one_token_steps_total"]
               - before["bitnet_serve_one_token_steps_total"])
        steps = (after["bitnet_serve_steps_total"]
                 - before["bitnet_serve_steps_total"])
        # Every decoding step but the prompt's.
        self.assertGreaterEqual(one, n - 1)
        self.assertLess(one, steps)


if __name__ == "__main__":
    unittest.main()
