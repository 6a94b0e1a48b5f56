"""bitnet-serve, the OpenAI-compatible server, on the bundled fortunes model.

Starts the server on a free loopback port and checks, with the standard
library's HTTP client only:
- greedy completions, streamed and not, give bitnet-generate's text for the
  same prompt, with the right usage and finish_reason;
- concurrent streaming clients each get exactly the text of their request
  run alone (no token lost or repeated), or 429;
- a full queue answers 429 with Retry-After; a client that goes away
  mid-stream does not hold up the next request; a slow reader gets it all;
- malformed requests get 4xx with OpenAI's error body, among good requests
  that still succeed, and ~200 mutated bodies never get a 5xx;
- --api-key guards /v1 only; /metrics has its counters and histograms;
- SIGTERM during a stream: the streams finish, /health says 503 (or the
  port is closed), and the process exits with 0.

Environment: BITNET_COMPILE, BITNET_GENERATE, BITNET_SERVE (the tools).
"""

import http.client
import json
import os
import random
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "models", "fortunes", "fortunes.onnx")
COMPILER = os.environ.get("BITNET_COMPILE", "bitnet-compile")
GENERATE = os.environ.get("BITNET_GENERATE", "bitnet-generate")
SERVE = os.environ.get("BITNET_SERVE", "bitnet-serve")
# A runtime test model with a tokenizer and Llama 3's chat template
# (runtime/tests/models/tokenizer_decoder.c, chat_llama3), when built.
CHAT_MODEL = os.environ.get("BITNET_CHAT_MODEL")

# Prompts of characters in the model's vocabulary (so that bitnet-generate
# echoes them unchanged).
PROMPTS = ["The cat ", "A program is ", "Once upon a time ", "the world "]


class Server:
    """A bitnet-serve process on a free port of 127.0.0.1."""

    def __init__(self, so, *args, env=None):
        self.proc = subprocess.Popen(
            [SERVE, so, "--port", "0", "--threads", "1", "--quiet", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=env)
        self.stderr = []
        deadline = time.monotonic() + 30
        self.port = None
        while self.port is None:
            line = self.proc.stderr.readline()
            if not line or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("bitnet-serve did not start: " +
                                   "".join(self.stderr) + line)
            self.stderr.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
        # Keeps reading stderr so that the server never blocks on it.
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body) of one request on a new connection."""
        c = self.conn()
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def post(self, path, body, headers=None):
        status, head, data = self.request("POST", path, body, headers)
        return status, head, json.loads(data) if data else None

    def open_stream(self, body):
        """A streamed POST /v1/completions of `body`, left open: (the
        connection, its response), for a client that goes away mid-stream."""
        c = self.conn()
        c.request("POST", "/v1/completions",
                  body=json.dumps(dict(body, stream=True)))
        return c, c.getresponse()

    def stream(self, path, body, headers=None, on_event=None):
        """Status and the parsed events of a streamed request; the last
        event is the string '[DONE]' when the stream ended properly."""
        c = self.conn()
        try:
            c.request("POST", path, body=json.dumps(dict(body, stream=True)),
                      headers=headers or {})
            r = c.getresponse()
            if r.status != 200:
                return r.status, json.loads(r.read())
            events = []
            while True:
                line = r.readline()
                if not line:
                    break
                line = line.decode()
                if not line.startswith("data: "):
                    continue
                data = line[len("data: "):].strip()
                events.append(data if data == "[DONE]" else json.loads(data))
                if on_event:
                    on_event(events[-1])
                if data == "[DONE]":
                    break
            return 200, events
        finally:
            c.close()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.reader.join(timeout=5)
            self.proc.stderr.close()


def stream_text(events):
    """The text of a completion stream, and its last chunk before [DONE]."""
    text = "".join(e["choices"][0]["text"] for e in events[:-1])
    return text, events[-2]


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.so = os.path.join(cls.tmp.name, "f.so")
        subprocess.run([COMPILER, MODEL, "--input-shape=tokens:1", "-q", "-o",
                        cls.so], check=True, timeout=120)
        cls.server = Server(cls.so)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.tmp.cleanup()

    def complete(self, prompt, n, **extra):
        request = dict(prompt=prompt, max_tokens=n, temperature=0)
        request.update(extra)
        status, _, body = self.server.post("/v1/completions", request)
        self.assertEqual(status, 200, body)
        return body

    def assertApiError(self, status, body, want=400):
        self.assertEqual(status, want, body)
        err = body["error"]
        self.assertIsInstance(err["message"], str)
        self.assertEqual(set(err), {"message", "type", "param", "code"})
        return err

    # 1. bitnet-generate's tokens.
    def test_greedy_matches_bitnet_generate(self):
        n = 24
        ids = []
        for prompt in PROMPTS[:2]:
            out = subprocess.run(
                [GENERATE, self.so, "--prompt", prompt, "-n", str(n),
                 "--temperature", "0", "--quiet", "--threads", "1"],
                capture_output=True, text=True, check=True, timeout=60)
            self.assertTrue(out.stdout.startswith(prompt))
            self.assertTrue(out.stdout.endswith("\n"))
            want = out.stdout[len(prompt):-1]

            body = self.complete(prompt, n)
            self.assertEqual(body["object"], "text_completion")
            self.assertEqual(body["model"], "f")
            # cmpl-<this process's random tag>-<counter>: replicas behind a
            # load balancer give distinct ids.
            self.assertRegex(body["id"], r"^cmpl-[0-9a-f]{16}-[0-9]+$")
            ids.append(body["id"])
            self.assertIsInstance(body["created"], int)
            choice = body["choices"][0]
            self.assertEqual(choice["index"], 0)
            self.assertEqual(choice["text"], want)
            self.assertEqual(choice["finish_reason"], "length")
            usage = body["usage"]
            self.assertEqual(usage["prompt_tokens"], len(prompt))
            self.assertEqual(usage["completion_tokens"], n)
            self.assertEqual(usage["total_tokens"], len(prompt) + n)

            status, events = self.server.stream(
                "/v1/completions",
                dict(prompt=prompt, max_tokens=n, temperature=0))
            self.assertEqual(status, 200, events)
            self.assertEqual(events[-1], "[DONE]")
            text, last = stream_text(events)
            self.assertEqual(text, want)
            self.assertEqual(last["object"], "text_completion")
            self.assertEqual(last["choices"][0]["finish_reason"], "length")
            self.assertEqual(last["usage"]["completion_tokens"], n)
            for e in events[:-2]:
                self.assertIsNone(e["choices"][0]["finish_reason"])
        self.assertNotEqual(ids[0], ids[1])
        self.assertEqual(ids[0].split("-")[1], ids[1].split("-")[1])

    def test_seed_and_stop(self):
        # The same seed gives the same text; a stop text ends it and is
        # left out.
        a = self.complete(PROMPTS[0], 20, temperature=0.9, seed=7)
        b = self.complete(PROMPTS[0], 20, temperature=0.9, seed=7)
        self.assertEqual(a["choices"][0]["text"], b["choices"][0]["text"])
        full = self.complete(PROMPTS[0], 30)["choices"][0]["text"]
        stop = full[5:8]
        cut = full[:full.index(stop)]
        body = self.complete(PROMPTS[0], 30, stop=[stop, "\x01"])
        self.assertEqual(body["choices"][0]["text"], cut)
        self.assertEqual(body["choices"][0]["finish_reason"], "stop")
        status, events = self.server.stream(
            "/v1/completions",
            dict(prompt=PROMPTS[0], max_tokens=30, temperature=0, stop=stop))
        text, last = stream_text(events)
        self.assertEqual(text, cut)
        self.assertEqual(last["choices"][0]["finish_reason"], "stop")

    def test_end_of_context_is_length(self):
        body = self.complete(PROMPTS[0], 100000)
        self.assertEqual(body["choices"][0]["finish_reason"], "length")
        usage = body["usage"]
        self.assertGreater(usage["completion_tokens"], 10)
        self.assertLess(usage["total_tokens"], 100000)

    def test_models_and_chat_without_template(self):
        status, _, body = self.server.request("GET", "/v1/models")
        self.assertEqual(status, 200)
        body = json.loads(body)
        self.assertEqual(body["object"], "list")
        self.assertEqual(body["data"][0]["id"], "f")
        # The fortunes model has a character vocabulary, no chat template.
        status, _, body = self.server.post(
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}]})
        err = self.assertApiError(status, body)
        self.assertIn("chat template", err["message"])

    # 2. Concurrent streams.
    def test_concurrent_streams_match_runs_alone(self):
        n = 30
        alone = {p: self.complete(p, n)["choices"][0]["text"]
                 for p in PROMPTS}
        results, errors = [], []
        deadline = time.monotonic() + 3

        def client(k):
            i = k
            while time.monotonic() < deadline:
                prompt = PROMPTS[i % len(PROMPTS)]
                i += 1
                try:
                    status, events = self.server.stream(
                        "/v1/completions",
                        dict(prompt=prompt, max_tokens=n, temperature=0))
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))
                    return
                results.append((prompt, status, events))

        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(errors, [])
        self.assertGreater(len(results), 4)
        done = 0
        for prompt, status, events in results:
            self.assertIn(status, (200, 429))
            if status == 200:
                self.assertEqual(events[-1], "[DONE]")
                self.assertEqual(stream_text(events)[0], alone[prompt])
                done += 1
        self.assertGreater(done, 0)

    # 3. The queue, clients that go away, slow readers.
    def test_full_queue_gets_429(self):
        server = Server(self.so, "--queue", "2")
        try:
            got = []

            def flood():
                status, head, body = server.post(
                    "/v1/completions",
                    dict(prompt=PROMPTS[2], max_tokens=100000,
                         temperature=0))
                got.append((status, head, body))

            for _ in range(3):  # timing: a busy machine may keep up once
                threads = [threading.Thread(target=flood) for _ in range(24)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=60)
                if any(s == 429 for s, _, _ in got):
                    break
            self.assertEqual({s for s, _, _ in got} - {200, 429}, set())
            refused = [(h, b) for s, h, b in got if s == 429]
            self.assertTrue(refused, "no request was refused")
            head, body = refused[0]
            self.assertEqual(head.get("Retry-After"), "1")
            self.assertApiError(429, body, 429)
            self.assertTrue(any(s == 200 for s, _, _ in got))
        finally:
            self.assertEqual(server.stop(), 0)

    def test_client_gone_mid_stream(self):
        c, r = self.server.open_stream(
            dict(prompt=PROMPTS[1], max_tokens=100000, temperature=0))
        self.assertEqual(r.status, 200)
        self.assertTrue(r.readline().startswith(b"data: "))
        c.sock.close()
        c.close()
        start = time.monotonic()
        body = self.complete(PROMPTS[0], 10)
        self.assertEqual(body["usage"]["completion_tokens"], 10)
        self.assertLess(time.monotonic() - start, 20)

    def metric(self, name):
        _, _, text = self.server.request("GET", "/metrics")
        for line in text.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        self.fail("no metric " + name)

    def test_client_gone_while_waiting_is_not_run(self):
        # A streamed request waits behind others; its client goes away once
        # the response has begun (the request is queued then). It must not
        # generate a single token.
        before = self.metric("bitnet_serve_generated_tokens_total")
        used = []

        def full():
            status, _, body = self.server.post(
                "/v1/completions", dict(prompt=PROMPTS[2],
                                        max_tokens=100000, temperature=0))
            used.append(body["usage"]["completion_tokens"])

        threads = [threading.Thread(target=full) for _ in range(12)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while (self.metric("bitnet_serve_queue_depth") < 3 and
               time.monotonic() < deadline and
               any(t.is_alive() for t in threads)):
            time.sleep(0.005)
        c, r = self.server.open_stream(
            dict(prompt=PROMPTS[1], max_tokens=100000, temperature=0))
        self.assertEqual(r.status, 200)
        c.sock.close()
        c.close()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(len(used), 12)
        time.sleep(0.3)
        after = self.metric("bitnet_serve_generated_tokens_total")
        self.assertEqual(after - before, sum(used))

    def test_slow_reader_gets_everything(self):
        n = 40
        want = self.complete(PROMPTS[3], n)["choices"][0]["text"]
        status, events = self.server.stream(
            "/v1/completions",
            dict(prompt=PROMPTS[3], max_tokens=n, temperature=0),
            on_event=lambda e: time.sleep(0.02))
        self.assertEqual(status, 200)
        self.assertEqual(events[-1], "[DONE]")
        self.assertEqual(stream_text(events)[0], want)

    # 4. Bad requests.
    def test_bad_requests(self):
        good = {"prompt": "The cat ", "max_tokens": 3, "temperature": 0}
        cases = [
            (b"{not json", None),
            (b"[1, 2]", None),
            (b'{"prompt": "\xff\xfe"}', None),
            (b'{"prompt": "a", "temperature": NaN}', None),
            (dict(good, temperature=float("inf")), None),  # "Infinity"
            (b'{"prompt": "a", "temperature": 1e999}', None),  # overflow
            (dict(good, temperature=-1), "temperature"),
            (dict(good, temperature=3), "temperature"),
            (dict(good, temperature="hot"), "temperature"),
            (dict(good, top_p=0), "top_p"),
            (dict(good, top_p=1.5), "top_p"),
            (dict(good, top_k=-1), "top_k"),
            (dict(good, top_k=2.5), "top_k"),
            (dict(good, max_tokens=0), "max_tokens"),
            (dict(good, max_tokens=-3), "max_tokens"),
            (dict(good, max_tokens="5"), "max_tokens"),
            (dict(good, seed="x"), "seed"),
            (dict(good, stream="yes"), "stream"),
            (dict(good, stop=5), "stop"),
            (dict(good, stop=[""]), "stop"),
            (dict(good, stop=["a", "b", "c", "d", "e"]), "stop"),
            (dict(good, prompt=["a"]), "prompt"),
            (dict(good, prompt="a\u0000b"), "prompt"),
            (dict(good, prompt=""), "prompt"),
            (dict(good, prompt="The cat " * 100), "prompt"),
            (dict(good, frequency_penaltyy=1), "frequency_penaltyy"),
            ({"max_tokens": 3}, "prompt"),
        ]
        for body, param in cases:
            with self.subTest(body=body):
                status, _, answer = self.server.post("/v1/completions", body)
                err = self.assertApiError(status, answer)
                self.assertEqual(err["type"], "invalid_request_error")
                if param:
                    self.assertEqual(err["param"], param)
                # Good traffic in between still succeeds.
                self.assertEqual(len(self.complete("The cat ", 3)
                                     ["choices"][0]["text"]), 3)
        chat_cases = [
            ({"messages": "hi"}, "messages"),
            ({"messages": []}, "messages"),
            ({"messages": [{"role": "user"}]}, "messages[0]"),
            ({"messages": [{"role": "robot", "content": "x"}]},
             "messages[0].role"),
            ({"messages": [{"role": "user", "content": "x", "extra": 1}]},
             "messages[0].extra"),
        ]
        for body, param in chat_cases:
            with self.subTest(body=body):
                status, _, answer = self.server.post("/v1/chat/completions",
                                                     body)
                self.assertEqual(self.assertApiError(status, answer)["param"],
                                 param)
        status, _, _ = self.server.request("GET", "/v1/nothing")
        self.assertEqual(status, 404)

    def test_fuzz_never_5xx(self):
        rng = random.Random(1234)
        seeds = [
            {"prompt": "The cat ", "max_tokens": 4, "temperature": 0.5,
             "top_p": 0.9, "top_k": 5, "seed": 3, "stop": ["x", "y"]},
            {"prompt": "A ", "max_tokens": 2, "stream": True},
            {"messages": [{"role": "user", "content": "hi"}]},
        ]
        values = [None, True, False, 0, -1, 1, 2.5, 1e308, -1e308, "",
                  "\u00e9", [], {}, [1, "a"], {"a": 1}, 2 ** 64, -2 ** 63]
        c = self.server.conn()
        try:
            for i in range(200):
                base = dict(rng.choice(seeds))
                path = ("/v1/chat/completions" if "messages" in base
                        else "/v1/completions")
                kind = rng.randrange(3)
                if kind == 0:  # a field's value replaced
                    key = rng.choice(list(base))
                    base[key] = rng.choice(values)
                    body = json.dumps(base).encode()
                elif kind == 1:  # a field added or removed
                    if rng.random() < 0.5:
                        base.pop(rng.choice(list(base)))
                    else:
                        base[rng.choice(["n", "user", "model", "zz", "max_tokens"])] = rng.choice(values)
                    body = json.dumps(base).encode()
                else:  # bytes flipped, cut or inserted
                    body = bytearray(json.dumps(base).encode())
                    for _ in range(rng.randint(1, 4)):
                        at = rng.randrange(len(body))
                        op = rng.randrange(3)
                        if op == 0:
                            body[at] = rng.randrange(256)
                        elif op == 1:
                            del body[at:at + rng.randint(1, 5)]
                        else:
                            body.insert(at, rng.randrange(256))
                        if not body:
                            body = bytearray(b"{")
                    body = bytes(body)
                c.request("POST", path, body=body)
                r = c.getresponse()
                r.read()
                self.assertLess(r.status, 500, body)
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = self.server.conn()
        finally:
            c.close()
        self.assertIsNone(self.server.proc.poll())
        self.complete("The cat ", 3)

    # 5. API key and metrics.
    def test_api_key(self):
        server = Server(self.so, "--api-key", "sekret")
        try:
            body = dict(prompt="The cat ", max_tokens=3, temperature=0)
            status, _, answer = server.post("/v1/completions", body)
            self.assertEqual(self.assertApiError(status, answer, 401)["code"],
                             "invalid_api_key")
            status, _, answer = server.post(
                "/v1/completions", body, {"Authorization": "Bearer wrong"})
            self.assertEqual(status, 401)
            status, _, _ = server.request("GET", "/v1/models")
            self.assertEqual(status, 401)
            status, _, answer = server.post(
                "/v1/completions", body, {"Authorization": "Bearer sekret"})
            self.assertEqual(status, 200, answer)
            self.assertEqual(server.request("GET", "/health")[0], 200)
            self.assertEqual(server.request("GET", "/metrics")[0], 200)
        finally:
            self.assertEqual(server.stop(), 0)
        # The key from the environment.
        env = dict(os.environ, BITNET_API_KEY="fromenv")
        server = Server(self.so, env=env)
        try:
            status, _, _ = server.request("GET", "/v1/models")
            self.assertEqual(status, 401)
            status, _, _ = server.request(
                "GET", "/v1/models", headers={"Authorization":
                                              "Bearer fromenv"})
            self.assertEqual(status, 200)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_metrics(self):
        self.complete("The cat ", 5)
        self.server.stream("/v1/completions",
                           dict(prompt="The cat ", max_tokens=5,
                                temperature=0))
        status, head, text = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(head["Content-Type"].startswith("text/plain"))
        text = text.decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        ok = values['bitnet_serve_requests_total{endpoint="/v1/completions",'
                    'status="200"}']
        self.assertGreaterEqual(ok, 2)
        self.assertGreaterEqual(values["bitnet_serve_prompt_tokens_total"],
                                16)
        self.assertGreaterEqual(
            values["bitnet_serve_generated_tokens_total"], 10)
        self.assertEqual(values["bitnet_serve_queue_depth"], 0)
        self.assertIn(values["bitnet_serve_slots_in_use"], (0, 1))
        self.assertEqual(values["bitnet_serve_slots"], 1)
        for h in ("bitnet_serve_time_to_first_token_seconds",
                  "bitnet_serve_inter_token_latency_seconds"):
            self.assertIn("# TYPE %s histogram" % h, text)
            count = values[h + "_count"]
            self.assertGreaterEqual(count, 2)
            self.assertEqual(values[h + '_bucket{le="+Inf"}'], count)
            self.assertGreater(values[h + "_sum"], 0)
            self.assertLess(values[h + "_sum"] / count, 10)
            buckets = [v for k, v in values.items()
                       if k.startswith(h + "_bucket")]
            self.assertEqual(buckets, sorted(buckets))

    # 6. SIGTERM.
    def test_sigterm_finishes_streams(self):
        server = Server(self.so, "--shutdown-timeout", "20")
        want = {p: server.post("/v1/completions",
                               dict(prompt=p, max_tokens=200,
                                    temperature=0))[2]["choices"][0]["text"]
                for p in PROMPTS}
        first = threading.Event()
        results = []

        def client(k):
            prompt = PROMPTS[k % len(PROMPTS)]
            try:
                status, events = server.stream(
                    "/v1/completions",
                    dict(prompt=prompt, max_tokens=200, temperature=0),
                    on_event=lambda e: first.set())
            except ConnectionError:  # arrived after the server stopped
                status, events = "refused", None
            results.append((prompt, status, events))

        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(12)]
        for t in threads:
            t.start()
        self.assertTrue(first.wait(30))
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        health = []
        while server.proc.poll() is None and time.monotonic() - start < 25:
            try:
                health.append(server.request("GET", "/health")[0])
            except OSError:
                health.append("refused")
            time.sleep(0.01)
        for t in threads:
            t.join(timeout=30)
        self.assertEqual(server.stop(timeout=25), 0)
        self.assertLess(time.monotonic() - start, 25)
        # Once the signal is seen, /health never says 200 again.
        while health and health[0] == 200:
            health.pop(0)
        self.assertNotIn(200, health)
        self.assertEqual(len(results), 12)
        for prompt, status, events in results:
            if status == 200:
                self.assertEqual(events[-1], "[DONE]")
                self.assertEqual(stream_text(events)[0], want[prompt])
            else:
                self.assertIn(status, (503, "refused"))  # after the signal
        self.assertTrue(any(s == 200 for _, s, _ in results))

    def test_shutdown_timeout_stops_the_rest(self):
        # With no time to finish, the requests waiting and running are
        # stopped: each client still gets an answer, and the exit is 0.
        server = Server(self.so, "--shutdown-timeout", "0")
        got = []

        def full():
            try:
                status, _, body = server.post(
                    "/v1/completions", dict(prompt=PROMPTS[2],
                                            max_tokens=100000,
                                            temperature=0))
                got.append(status)
            except ConnectionError:
                got.append("refused")

        threads = [threading.Thread(target=full) for _ in range(12)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(server.stop(timeout=20), 0)
        self.assertLess(time.monotonic() - start, 10)
        for t in threads:
            t.join(timeout=30)
        self.assertEqual(len(got), 12)
        self.assertEqual(set(got) - {200, 503, "refused"}, set())


class ServeCommandLine(unittest.TestCase):
    def run_serve(self, *args):
        return subprocess.run([SERVE, *args], capture_output=True, text=True,
                              timeout=30)

    def test_help_and_version(self):
        out = self.run_serve("--help")
        self.assertEqual(out.returncode, 0)
        for option in ("--host", "--port", "--threads", "--queue",
                       "--api-key", "--shutdown-timeout", "--model-name",
                       "--quiet", "--version", "/v1/completions",
                       "/v1/chat/completions", "/metrics", "/health"):
            self.assertIn(option, out.stdout)
        out = self.run_serve("--version")
        self.assertEqual(out.returncode, 0)
        self.assertTrue(out.stdout.startswith("bitnet-serve (bitnet-mlir) "))

    def test_usage_errors_before_loading(self):
        # The model does not exist: options are checked first (status 2).
        for args in (["--port", "70000"], ["--port", "x"], ["--queue", "0"],
                     ["--threads", "0"], ["--shutdown-timeout", "-1"],
                     ["--api-key", ""], ["--bogus"], ["--port"], []):
            with self.subTest(args=args):
                out = self.run_serve(*(["/nonexistent.so"] if args else []),
                                     *args)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn("bitnet-serve: ", out.stderr)
        # A model that does not load, an address it cannot listen on: 1.
        for args in (["/nonexistent.so"], [__file__],
                     [CHAT_MODEL or "/nonexistent.so", "--host",
                      "256.0.0.1"]):
            with self.subTest(args=args):
                out = self.run_serve(*args, "--port", "0")
                self.assertEqual(out.returncode, 1, out.stderr)
                self.assertIn("bitnet-serve: ", out.stderr)


@unittest.skipUnless(CHAT_MODEL, "BITNET_CHAT_MODEL is not set")
class ServeChat(unittest.TestCase):
    """Chat completions against bitnet-generate --chat, on a test model
    that replies with a fixed script of multi-byte characters, given a
    byte at a time, then the end-of-turn token."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(CHAT_MODEL, "--model-name", "chat")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def generate_chat(self, *args):
        out = subprocess.run(
            [GENERATE, CHAT_MODEL, "--chat", "--temperature", "0", "--quiet",
             "--threads", "1", "-n", "200", *args],
            capture_output=True, text=True, check=True, timeout=60)
        self.assertTrue(out.stdout.endswith("\n"))
        return out.stdout[:-1]

    def test_chat_matches_bitnet_generate(self):
        for system in (None, "Be brief."):
            messages = [{"role": "user", "content": "hi"}]
            args = ["--prompt", "hi"]
            if system:
                messages.insert(0, {"role": "system", "content": system})
                args += ["--system", system]
            want = self.generate_chat(*args)
            self.assertTrue(want)
            request = {"messages": messages, "temperature": 0}
            status, _, body = self.server.post("/v1/chat/completions",
                                               request)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["object"], "chat.completion")
            self.assertEqual(body["model"], "chat")
            choice = body["choices"][0]
            self.assertEqual(choice["message"],
                             {"role": "assistant", "content": want})
            self.assertEqual(choice["finish_reason"], "stop")
            usage = body["usage"]
            # The reply's bytes, one token each, and the end of turn.
            self.assertEqual(usage["completion_tokens"],
                             len(want.encode()) + 1)
            self.assertEqual(usage["total_tokens"],
                             usage["prompt_tokens"] +
                             usage["completion_tokens"])

            status, events = self.server.stream("/v1/chat/completions",
                                                request)
            self.assertEqual(status, 200, events)
            self.assertEqual(events[-1], "[DONE]")
            chunks = events[:-1]
            for e in chunks:
                self.assertEqual(e["object"], "chat.completion.chunk")
            self.assertEqual(chunks[0]["choices"][0]["delta"]["role"],
                             "assistant")
            text = "".join(e["choices"][0]["delta"].get("content", "")
                           for e in chunks)
            self.assertEqual(text, want)
            self.assertEqual(chunks[-1]["choices"][0]["finish_reason"],
                             "stop")
            self.assertEqual(chunks[-1]["usage"], usage)

    def test_chat_length_and_stop(self):
        want = self.generate_chat("--prompt", "hi")
        request = {"messages": [{"role": "user", "content": "hi"}],
                   "temperature": 0}
        status, _, body = self.server.post(
            "/v1/chat/completions", dict(request, max_tokens=4))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["choices"][0]["finish_reason"], "length")
        self.assertEqual(body["usage"]["completion_tokens"], 4)
        self.assertTrue(want.startswith(body["choices"][0]["message"]
                                        ["content"]))
        stop = want[4:6]
        status, _, body = self.server.post(
            "/v1/chat/completions", dict(request, stop=stop))
        self.assertEqual(body["choices"][0]["message"]["content"],
                         want[:want.index(stop)])
        self.assertEqual(body["choices"][0]["finish_reason"], "stop")


if __name__ == "__main__":
    unittest.main()
