#!/usr/bin/python3
"""Serving benchmark: bitnet-serve under 1, 2, 4, ... concurrent streams.

Starts bitnet-serve on 127.0.0.1 with a compiled decoder, then for each
concurrency level C runs C client threads, each sending --requests streaming
POST /v1/completions requests back to back (temperature 0, max_tokens
--tokens), timestamping every server-sent event as it arrives. Per level it
reports the aggregate decode tokens/s (every stream's tokens after its first,
divided by the level's wall time), the per-stream decode tokens/s, the time
to first token and the inter-token latency (p50/p99), and the requests that
succeeded, got 429 or failed. It also runs bitnet-generate on the same
prompt for the single-stream figure without the server.

With --compile CHECKPOINT (a .gguf file, a Hugging Face directory, or "2b"
for the 2B-shaped random checkpoint of models/gen_2b_checkpoint.py) it first
compiles the model with bitnet-compile, --max-sequences=B making a batched
build that the server batches continuously over B slots.

Standard library only:
  /usr/bin/python3 bench/serve/bench_serve.py MODEL.so [--threads N]
      [--streams 1,2,4,8,16] [--tokens 64] [--requests 2] [--json FILE]
  /usr/bin/python3 bench/serve/bench_serve.py --compile CHECKPOINT
      --max-sequences B [--step-tokens T] [--max-context N] [--work DIR] ...
"""

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HOST = "127.0.0.1"

sys.path.insert(0, os.path.join(ROOT, "bench", "e2e"))
from bench_2b import cpu_name  # noqa: E402


def fail(msg):
    print("bench_serve: " + msg, file=sys.stderr)
    sys.exit(1)


def percentile(xs, p):
    """Linear interpolation between closest ranks; None when empty."""
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Server:
    """bitnet-serve as a child process; its stderr is collected."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.lines = []
        self.port = None
        self.listening = threading.Event()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self.listening.set()
        self.listening.set()

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        self.listening.wait(timeout)
        if self.port is None:
            return False
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _ = self.get("/health")
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def get(self, path):
        c = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            c.close()

    def metrics(self):
        status, text = self.get("/metrics")
        out = {}
        if status != 200:
            return out
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)


def stream_request(port, body, timeout):
    """One streamed completion. Returns a dict: status, t0, the arrival
    times of the events carrying text, the tokens generated (from the last
    chunk's usage), and error (None when the stream ended with [DONE])."""
    res = {"status": None, "t0": time.monotonic(), "events": [],
           "tokens": None, "error": None}
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("POST", "/v1/completions", body=json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        res["status"] = r.status
        if r.status != 200:
            r.read()
            res["error"] = "HTTP %d" % r.status
            return res
        done = False
        while True:
            line = r.readline()
            now = time.monotonic()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                done = True
                break
            ev = json.loads(data)
            if ev.get("error"):
                # The model failed mid-stream: an error event, then [DONE].
                res["error"] = "error event: %s" % ev["error"].get("message")
            if ev.get("choices") and ev["choices"][0].get("text"):
                res["events"].append(now)
            if ev.get("usage"):
                res["tokens"] = ev["usage"].get("completion_tokens")
        if not done and res["error"] is None:
            res["error"] = "stream ended without [DONE]"
    except (OSError, http.client.HTTPException, ValueError) as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        c.close()
    return res


def run_level(port, streams, requests, body, timeout):
    results = []
    lock = threading.Lock()

    def client():
        for _ in range(requests):
            r = stream_request(port, body, timeout)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=client) for _ in range(streams)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0

    ok = [r for r in results if r["error"] is None]
    n429 = sum(1 for r in results if r["status"] == 429)
    failed = len(results) - len(ok) - n429
    errors = sorted({r["error"] for r in results
                     if r["error"] and r["status"] != 429})
    decode_tokens = 0
    ttft, itl, per_stream, tok_per_event = [], [], [], []
    for r in ok:
        ev = r["events"]
        tokens = r["tokens"] if r["tokens"] is not None else len(ev)
        if not ev:
            continue
        ttft.append(ev[0] - r["t0"])
        itl.extend(b - a for a, b in zip(ev, ev[1:]))
        decode_tokens += max(tokens - 1, 0)
        tok_per_event.append(tokens / len(ev))
        span = ev[-1] - ev[0]
        if tokens > 1 and span > 0:
            per_stream.append((tokens - 1) / span)
    ms = lambda x: None if x is None else x * 1e3
    return {
        "streams": streams,
        "requests": len(results),
        "ok": len(ok), "http_429": n429, "failed": failed,
        "errors": errors,
        "wall_s": wall,
        "decode_tokens": decode_tokens,
        "aggregate_decode_tokens_per_s": decode_tokens / wall if wall else 0,
        "per_stream_decode_tokens_per_s_p50":
            statistics.median(per_stream) if per_stream else None,
        "ttft_ms_p50": ms(percentile(ttft, 50)),
        "ttft_ms_p99": ms(percentile(ttft, 99)),
        "itl_ms_p50": ms(percentile(itl, 50)),
        "itl_ms_p99": ms(percentile(itl, 99)),
        "itl_ms_max": ms(max(itl) if itl else None),
        "tokens_per_event":
            statistics.mean(tok_per_event) if tok_per_event else None,
    }


def run_generate(gen, model, prompt, tokens, threads):
    cmd = [gen, model, "--prompt", prompt, "-n", str(tokens),
           "--temperature", "0", "--threads", str(threads)]
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=600)
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        return {"error": "exit %d: %s" % (p.returncode, err.strip()[-500:]),
                "command": cmd}
    out = {"command": cmd}
    m = re.search(r"decode: (\d+) tokens in ([\d.]+) s \(([\d.]+) tokens/s\)",
                  err)
    if m:
        out["decode_tokens"] = int(m.group(1))
        out["decode_s"] = float(m.group(2))
        out["decode_tokens_per_s"] = float(m.group(3))
        # From the rate: the seconds are printed to 1 ms only.
        if out["decode_tokens_per_s"] > 0:
            out["per_token_ms"] = 1e3 / out["decode_tokens_per_s"]
    m = re.search(r"time to first token: ([\d.]+) s", err)
    if m:
        out["ttft_ms"] = float(m.group(1)) * 1e3
    if "decode_tokens_per_s" not in out:
        out["error"] = "no decode statistics in: " + err.strip()[-500:]
    return out


def compile_checkpoint(args):
    """Compiles --compile's checkpoint (made first for "2b") into --work;
    returns the .so and the command."""
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    checkpoint = args.compile
    if checkpoint == "2b":
        checkpoint = os.path.join(work, "b2.gguf")
        if not os.path.exists(checkpoint):
            cmd = ["/usr/bin/python3",
                   os.path.join(ROOT, "models", "gen_2b_checkpoint.py"),
                   "--format", "gguf", checkpoint]
            print("bench_serve: $ " + " ".join(cmd), file=sys.stderr)
            subprocess.run(cmd, check=True)
    if not os.path.exists(checkpoint):
        fail("not found: " + checkpoint)
    name = os.path.basename(checkpoint.rstrip("/")).rsplit(".", 1)[0]
    so = os.path.join(work, "%s-b%s-t%s-c%s.so" % (
        name, args.max_sequences or 0, args.step_tokens or "d",
        args.max_context or "d"))
    cmd = [args.compiler, checkpoint, "-o", so]
    if args.max_sequences:
        cmd.append("--max-sequences=%d" % args.max_sequences)
    if args.step_tokens:
        cmd.append("--input-shape=tokens:%d" % args.step_tokens)
    if args.max_context:
        cmd.append("--max-context=%d" % args.max_context)
    print("bench_serve: $ " + " ".join(cmd), file=sys.stderr)
    start = time.monotonic()
    p = subprocess.run(cmd, stderr=subprocess.PIPE)
    if p.returncode != 0:
        fail("bitnet-compile failed (exit %d): %s" % (
            p.returncode, p.stderr.decode(errors="replace").strip()[-2000:]))
    print("bench_serve: compiled %s in %.0f s" % (
        so, time.monotonic() - start), file=sys.stderr)
    return so, cmd


def fmt(x, spec="%.2f"):
    return "-" if x is None else spec % x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?",
                    help="decoder compiled by bitnet-compile (.so); or "
                    "--compile")
    ap.add_argument("--compile", metavar="CHECKPOINT",
                    help="compile this checkpoint first (.gguf, a Hugging "
                    "Face directory, or 2b: the 2B-shaped random one of "
                    "models/gen_2b_checkpoint.py, made in --work)")
    ap.add_argument("--max-sequences", type=int,
                    help="with --compile: a batched build of B slots "
                    "(bitnet-compile --max-sequences=B)")
    ap.add_argument("--step-tokens", type=int,
                    help="with --compile: tokens a step "
                    "(--input-shape=tokens:T; a batched build's default: B)")
    ap.add_argument("--max-context", type=int,
                    help="with --compile: KV-cache tokens a sequence "
                    "(bitnet-compile --max-context; the 2B model's 4096 take "
                    "300 MB a slot)")
    ap.add_argument("--work", default=os.path.join(ROOT, "build",
                                                   "bench-serve"),
                    help="with --compile: where the checkpoint and the .so "
                    "go (default build/bench-serve)")
    ap.add_argument("--compiler",
                    default=os.path.join(ROOT, "build/bin/bitnet-compile"))
    ap.add_argument("--server",
                    default=os.path.join(ROOT, "build/bin/bitnet-serve"))
    ap.add_argument("--generate",
                    default=os.path.join(ROOT, "build/bin/bitnet-generate"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--streams", default="1,2,4,8,16",
                    help="concurrency levels, comma-separated")
    ap.add_argument("--tokens", type=int, default=64,
                    help="max_tokens of each request")
    ap.add_argument("--requests", type=int, default=2,
                    help="requests each client sends back to back")
    ap.add_argument("--prompt", default="The quick brown fox")
    ap.add_argument("--port", type=int, default=0, help="0: a free one")
    ap.add_argument("--queue", type=int,
                    help="the server's --queue (default: the largest stream "
                    "count, so that no request gets 429)")
    ap.add_argument("--startup-timeout", type=float, default=120)
    ap.add_argument("--request-timeout", type=float, default=600)
    ap.add_argument("--no-generate", action="store_true",
                    help="skip the bitnet-generate comparison")
    ap.add_argument("--json", help="write all the figures to FILE")
    args = ap.parse_args()

    try:
        levels = [int(s) for s in args.streams.split(",") if s.strip()]
    except ValueError:
        fail("--streams: comma-separated integers expected")
    if not levels or min(levels) < 1:
        fail("--streams: positive integers expected")
    if (args.model is None) == (args.compile is None):
        fail("give a compiled MODEL.so or --compile CHECKPOINT (one)")
    if (args.max_sequences or args.step_tokens or args.max_context) and \
            not args.compile:
        fail("--max-sequences, --step-tokens and --max-context are for "
             "--compile")
    compile_cmd = None
    if args.compile:
        args.model, compile_cmd = compile_checkpoint(args)
    for path in (args.model, args.server):
        if not os.path.exists(path):
            fail("not found: " + path)

    # No request of the largest level waits for a place in the queue (those
    # beyond the slots wait there).
    queue = args.queue if args.queue is not None else max(levels)
    cmd = [args.server, args.model, "--host", HOST, "--port", str(args.port),
           "--threads", str(args.threads), "--queue", str(queue), "--quiet"]
    body = {"prompt": args.prompt, "max_tokens": args.tokens,
            "temperature": 0, "stream": True}
    report = {"cpu": cpu_name(), "threads": args.threads,
              "model": os.path.abspath(args.model),
              "compile_command": compile_cmd,
              "server_command": cmd, "prompt": args.prompt,
              "max_tokens": args.tokens,
              "requests_per_client": args.requests, "queue": queue}

    server = Server(cmd)
    try:
        if not server.wait_ready(args.startup_timeout):
            tail = "\n  ".join(server.lines[-10:]) or "(no output)"
            code = server.proc.poll()
            fail("bitnet-serve did not start%s: %s\n  %s" % (
                "" if code is None else " (exit %d)" % code,
                " ".join(cmd), tail))
        m = server.metrics()
        report["server_slots"] = m.get("bitnet_serve_slots")
        # A warm-up request: page the weights in, check the prompt works.
        warm = stream_request(server.port, dict(body, max_tokens=2),
                              args.request_timeout)
        if warm["error"]:
            fail("warm-up request failed: %s" % warm["error"])
        report["levels"] = []
        for c in levels:
            before = server.metrics()
            r = run_level(server.port, c, args.requests, body,
                          args.request_timeout)
            after = server.metrics()
            # The server's own mean gap between tokens (its histogram):
            # per token even where events carry several.
            key = "bitnet_serve_inter_token_latency_seconds_"
            n = after.get(key + "count", 0) - before.get(key + "count", 0)
            total = after.get(key + "sum", 0) - before.get(key + "sum", 0)
            r["server_itl_ms_mean"] = total / n * 1e3 if n > 0 else None
            report["levels"].append(r)
            print("bench_serve: %d stream(s): %d ok, %.1f decode tokens/s"
                  % (c, r["ok"], r["aggregate_decode_tokens_per_s"]),
                  file=sys.stderr)
        m = server.metrics()
        report["server_metrics_end"] = {
            k: v for k, v in m.items()
            if k.startswith(("bitnet_serve_requests_total",
                             "bitnet_serve_generated_tokens_total",
                             "bitnet_serve_slots"))}
    finally:
        server.stop()

    gen = None
    if not args.no_generate:
        if not os.path.exists(args.generate):
            fail("not found: " + args.generate)
        gen = run_generate(args.generate, args.model, args.prompt,
                           args.tokens, args.threads)
        report["generate"] = gen

    base = next((l for l in report["levels"] if l["streams"] == 1), None)
    base_agg = base["aggregate_decode_tokens_per_s"] if base else None
    for l in report["levels"]:
        l["vs_1_stream"] = (l["aggregate_decode_tokens_per_s"] / base_agg
                            if base_agg else None)

    if base and gen and "decode_tokens_per_s" in gen:
        # Events that carry several tokens make the client's gaps per
        # event; the server's own mean gap between tokens is used then.
        coalesced = (base["tokens_per_event"] or 1) > 1.05
        ps = base["per_stream_decode_tokens_per_s_p50"]
        server_ms = base["itl_ms_p50"]
        if coalesced:
            server_ms = base["server_itl_ms_mean"]
            ps = 1e3 / server_ms if server_ms else None
        report["server_single_stream_tokens_per_s"] = ps
        report["server_vs_generate"] = (ps / gen["decode_tokens_per_s"]
                                        if ps else None)
        report["server_per_token_ms_source"] = (
            "server ITL mean (/metrics)" if coalesced else "ITL p50")
        if server_ms is not None and "per_token_ms" in gen:
            report["server_overhead_ms_per_token"] = (
                server_ms - gen["per_token_ms"])

    # The table.
    slots = report.get("server_slots")
    print()
    print("CPU: %s; threads: %d; model: %s" % (
        report["cpu"], args.threads, os.path.basename(args.model)))
    print("bitnet-serve batch slots: %s (the sequences decoded at once; "
          "the rest wait in the queue of %d)" % (
              "unknown" if slots is None else "%d" % slots, queue))
    print("each client: %d streamed request(s) of %d tokens, temperature 0, "
          "prompt %r" % (args.requests, args.tokens, args.prompt))
    print()
    print("| streams | ok | 429 | failed | decode t/s (all) | vs 1 stream "
          "| t/s per stream | TTFT p50 ms | TTFT p99 ms | ITL p50 ms "
          "| ITL p99 ms | server ITL mean ms |")
    print("| ------: | -: | --: | -----: | ---------------: | ----------: "
          "| -------------: | ----------: | ----------: | ---------: "
          "| ---------: | -----------------: |")
    for l in report["levels"]:
        print("| %7d | %2d | %3d | %6d | %16s | %11s | %14s | %11s | %11s "
              "| %10s | %10s | %18s |" % (
                  l["streams"], l["ok"], l["http_429"], l["failed"],
                  fmt(l["aggregate_decode_tokens_per_s"]),
                  fmt(l["vs_1_stream"], "%.2fx"),
                  fmt(l["per_stream_decode_tokens_per_s_p50"]),
                  fmt(l["ttft_ms_p50"]), fmt(l["ttft_ms_p99"]),
                  fmt(l["itl_ms_p50"], "%.3f"),
                  fmt(l["itl_ms_p99"], "%.3f"),
                  fmt(l["server_itl_ms_mean"], "%.3f")))
    print()
    several = [l for l in report["levels"]
               if l["tokens_per_event"] and l["tokens_per_event"] > 1.05]
    if several:
        print("note: some events carried several tokens (up to %.2f tokens "
              "per event on average), so ITL is per event, not per token"
              % max(l["tokens_per_event"] for l in several))
    for l in report["levels"]:
        for e in l["errors"]:
            print("note: %d stream(s): %s" % (l["streams"], e))
    if gen:
        if "error" in gen:
            print("bitnet-generate: " + gen["error"])
        else:
            print("bitnet-generate (no server): %.2f decode tokens/s, "
                  "%.3f ms per token, TTFT %s ms" % (
                      gen["decode_tokens_per_s"], gen.get("per_token_ms", 0),
                      fmt(gen.get("ttft_ms"))))
            if report.get("server_vs_generate") is not None:
                print("server single stream / bitnet-generate: %.2f / %.2f "
                      "= %.3f (from the %s; target: within 5%%)" % (
                          report["server_single_stream_tokens_per_s"],
                          gen["decode_tokens_per_s"],
                          report["server_vs_generate"],
                          "server's ITL mean"
                          if report["server_per_token_ms_source"] != "ITL p50"
                          else "1-stream t/s per stream"))
            if report.get("server_overhead_ms_per_token") is not None:
                print("server overhead per token (%s - generate's "
                      "per-token time): %.3f ms" % (
                          report["server_per_token_ms_source"],
                          report["server_overhead_ms_per_token"]))

    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print("wrote " + args.json)


if __name__ == "__main__":
    main()
