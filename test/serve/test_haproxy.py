"""Two bitnet-serve replicas behind HAProxy, run with deploy/haproxy.cfg as
shipped (its ports and servers come from the environment).

Four clients send greedy completions through HAProxy, each on a connection
of its own: one streams to the end of the context (~250 tokens), the others
ask for 12 tokens, streamed and not in turn. Meanwhile:
1. the replica streaming the long request is killed (SIGKILL): requests
   fail only if they were in progress at the kill, every request begun after
   it succeeds (those HAProxy sent to the dead replica before marking it
   DOWN are sent again, to the other), and the other replica serves on;
2. it is started again on its port: HAProxy marks it UP and sends it work;
3. the other one is stopped by SIGTERM while it streams the long request:
   it finishes what it holds, HAProxy sends the rest elsewhere, and no
   request fails at all;
4. with no replica left, HAProxy answers 503 with an error body in
   OpenAI's shape.
A request succeeds when it gets exactly the text the model gives its prompt
alone. The time HAProxy took to mark each replica DOWN or UP (read from its
stats socket), the requests in progress at the kill and how many of them
failed, and the requests' counts are printed.

Everything listens on 127.0.0.1 only, and every process is killed at the
end. Exits with 77 (skipped) when haproxy is not installed.

Environment: BITNET_COMPILE, BITNET_SERVE (the tools, as test_serve.py),
HAPROXY (default: haproxy on PATH, or in /usr/sbin).
"""

import csv
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import test_serve

ROOT = test_serve.ROOT
CONFIG = os.path.join(ROOT, "deploy", "haproxy.cfg")
HAPROXY = os.environ.get("HAPROXY") or shutil.which(
    "haproxy", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
PROMPTS = test_serve.PROMPTS
CLIENTS = 4


def free_port():
    """A port of 127.0.0.1 that nothing listens on (HAProxy cannot bind to
    port 0 and say which it got)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HAProxy:
    """HAProxy on deploy/haproxy.cfg, in the foreground, its log in a file,
    with a stats socket for the servers' states."""

    def __init__(self, tmp, replicas):
        self.socket_path = os.path.join(tmp, "haproxy.sock")
        self.log_path = os.path.join(tmp, "haproxy.log")
        for _ in range(3):  # the port may be taken before HAProxy binds it
            self.port = free_port()
            env = dict(os.environ,
                       BITNET_HAPROXY_BIND="127.0.0.1:%d" % self.port,
                       BITNET_HAPROXY_STATS_SOCKET=self.socket_path)
            env.pop("BITNET_HAPROXY_STATS_BIND", None)
            for k in range(1, 9):
                env.pop("BITNET_REPLICA%d" % k, None)
            for k, port in enumerate(replicas, 1):
                env["BITNET_REPLICA%d" % k] = "127.0.0.1:%d" % port
            if os.path.exists(self.socket_path):
                os.unlink(self.socket_path)
            with open(self.log_path, "w") as log:
                self.proc = subprocess.Popen(
                    [HAPROXY, "-f", CONFIG], stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, env=env)
            deadline = time.monotonic() + 10
            while (self.proc.poll() is None and time.monotonic() < deadline
                   and not os.path.exists(self.socket_path)):
                time.sleep(0.01)
            if self.proc.poll() is None and os.path.exists(self.socket_path):
                return
            self.kill()
        raise RuntimeError("haproxy did not start: " + self.log())

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def command(self, line):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.settimeout(5)
            s.connect(self.socket_path)
            s.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    return b"".join(chunks).decode()
                chunks.append(data)
        finally:
            s.close()

    def servers(self):
        """{server name: its row of 'show stat'} of the backend."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(text.splitlines())
        return {r["svname"]: r for r in rows
                if r["pxname"] == "bitnet" and
                r["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_for(self, name, status, timeout=10, every=0.005):
        """The time at which server `name` had `status` ('UP' after a
        passed check, 'DOWN'), looking every few milliseconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.servers()[name]
            if row["status"] == status and (status != "UP" or
                                            row["check_status"] == "L7OK"):
                return time.monotonic()
            time.sleep(every)
        raise AssertionError("%s is not %s after %g s: %s" %
                             (name, status, timeout, self.servers()[name]))

    def sessions(self):
        """{client port: server} of the requests in progress."""
        return {int(m.group(1)): m.group(2) for m in re.finditer(
            r"src=127\.0\.0\.1:(\d+) fe=bitnet be=bitnet srv=(\w+)",
            self.command("show sess"))}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Request:
    """One request of the load: its kind, and what has been seen of it."""

    def __init__(self, prompt, max_tokens, stream):
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.stream = stream
        self.port = None  # the client's port, as HAProxy's "show sess" has it
        self.events = 0
        self.start = time.monotonic()
        self.end = None
        self.error = None  # None if it got all of the expected text

    def __repr__(self):
        return "%s request of %d tokens: %s" % (
            "streamed" if self.stream else "unstreamed", self.max_tokens,
            self.error or "ok")


class Load:
    """CLIENTS threads sending greedy completions through HAProxy, each on
    a new connection, until stopped: client 0 streams to the end of the
    context (a long request, ~250 tokens), the others ask for SHORT tokens,
    streamed and not in turn. `want` has the text of each (prompt,
    max_tokens)."""

    LONG = 100000
    SHORT = 12

    def __init__(self, port, want):
        self.port = port
        self.want = want
        self.requests = []
        self.current = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(k,))
                        for k in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def run(self, req):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            c.connect()
            req.port = c.sock.getsockname()[1]
            c.request("POST", "/v1/completions", body=json.dumps(
                dict(prompt=req.prompt, max_tokens=req.max_tokens,
                     temperature=0, stream=req.stream)))
            r = c.getresponse()
            if r.status != 200:
                return "HTTP %d %r" % (r.status, r.read()[:200])
            if not req.stream:
                text = json.loads(r.read())["choices"][0]["text"]
            else:
                text = ""
                while True:
                    line = r.readline()
                    if not line:
                        return "stream cut after %d events" % req.events
                    if not line.startswith(b"data: "):
                        continue
                    data = line[len(b"data: "):].strip()
                    if data == b"[DONE]":
                        break
                    text += json.loads(data)["choices"][0]["text"]
                    req.events += 1
            want = self.want[req.prompt, req.max_tokens]
            if text != want:
                return "text %r, not %r" % (text, want)
            return None
        except (OSError, http.client.HTTPException, ValueError) as e:
            return repr(e)
        finally:
            c.close()

    def client(self, k):
        i = k
        while not self.stopping.is_set():
            if k == 0:
                req = Request(PROMPTS[i % len(PROMPTS)], self.LONG, True)
            else:
                req = Request(PROMPTS[i % len(PROMPTS)], self.SHORT,
                              i % 2 == 0)
            i += 1
            with self.lock:
                self.requests.append(req)
                self.current[k] = req
            req.error = self.run(req)
            req.end = time.monotonic()

    def done(self):
        """The requests that have ended."""
        with self.lock:
            return [r for r in self.requests if r.end is not None]

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads)


def started(requests, after, before=float("inf")):
    return [r for r in requests if after <= r.start < before]


def failed(requests):
    return [r for r in requests if r.error is not None]


class HAProxyFailover(unittest.TestCase):
    def test_kill_restart_and_drain(self):
        begin = time.monotonic()
        processes = []
        with tempfile.TemporaryDirectory() as tmp:
            try:
                self.run_scenario(tmp, processes)
            finally:
                for p in processes:
                    if isinstance(p, HAProxy):
                        p.kill()
                        continue
                    if p.proc.poll() is None:
                        p.proc.kill()
                    p.proc.wait()
                    p.reader.join(timeout=5)
                    p.proc.stderr.close()
        print("haproxy test: %.1f s in all" % (time.monotonic() - begin))

    def start_replica(self, so, processes, port=0):
        server = test_serve.Server(so, "--port", str(port),
                                   "--shutdown-timeout", "10")
        processes.append(server)
        return server

    def run_scenario(self, tmp, processes):
        so = os.path.join(tmp, "f.so")
        subprocess.run([test_serve.COMPILER, test_serve.MODEL,
                        "--input-shape=tokens:1", "-q", "-o", so],
                       check=True, timeout=120)
        replicas = {"replica1": self.start_replica(so, processes),
                    "replica2": self.start_replica(so, processes)}
        lb = HAProxy(tmp, [r.port for r in replicas.values()])
        processes.append(lb)
        try:
            for name in replicas:
                lb.wait_for(name, "UP")
            # The text of each request, from a replica directly.
            want = {}
            for p in PROMPTS:
                for n in (Load.LONG, Load.SHORT):
                    _, _, body = replicas["replica1"].post(
                        "/v1/completions",
                        dict(prompt=p, max_tokens=n, temperature=0))
                    want[p, n] = body["choices"][0]["text"]
            load = Load(lb.port, want)
            try:
                self.kill_restart_and_drain(so, processes, lb, load,
                                            replicas)
            finally:
                load.stop()
        except BaseException:
            lines = [line for line in lb.log().splitlines()
                     if '"POST ' not in line or " 200 " not in line]
            print("haproxy's log, but for its 200 responses:\n" +
                  "\n".join(lines[-100:]), file=sys.stderr)
            raise

    def kill_restart_and_drain(self, so, processes, lb, load, replicas):
        # 1. SIGKILL the replica that streams client 0's long request, once
        # the stream has begun.
        time.sleep(1)
        deadline = time.monotonic() + 10
        while True:
            self.assertLess(time.monotonic(), deadline,
                            "no long stream was seen in progress")
            stream = load.current[0]
            if stream.events > 0 and stream.end is None:
                victim = lb.sessions().get(stream.port)
                if victim:
                    break
            time.sleep(0.001)
        (survivor,) = set(replicas) - {victim}
        kill_at = time.monotonic()
        replicas[victim].proc.kill()
        replicas[victim].proc.wait()
        dead_at = time.monotonic()
        down_at = lb.wait_for(victim, "DOWN")
        time.sleep(1.5)
        restart_at = time.monotonic()
        done = load.done()
        in_progress = [r for r in load.requests if r.start < dead_at and
                       (r.end is None or r.end > kill_at)]
        print("kill: SIGKILL to %s, which had the long stream; DOWN %.3f s "
              "later. Requests in progress at the kill: %d, of which %d "
              "failed; begun between the kill and DOWN: %d (%d failed); "
              "begun after DOWN: %d (%d failed)" %
              (victim, down_at - kill_at, len(in_progress),
               len(failed(in_progress)), len(started(done, kill_at, down_at)),
               len(failed(started(done, kill_at, down_at))),
               len(started(done, down_at)),
               len(failed(started(done, down_at)))))
        for r in failed(done):
            print("  failed: %r, begun %+.3f s from the kill" %
                  (r, r.start - kill_at))
        # Requests failed only if they were in progress at the kill; those
        # sent to the dead replica before it was DOWN went elsewhere.
        for r in failed(done):
            self.assertIn(r, in_progress)
        self.assertEqual(failed(started(done, dead_at)), [])
        self.assertEqual(failed(started(done, down_at)), [])
        self.assertGreaterEqual(len(started(done, down_at)), CLIENTS)
        self.assertLess(down_at - kill_at, 5)
        self.assertEqual(lb.servers()[survivor]["status"], "UP")
        self.assertIsNone(replicas[survivor].proc.poll())

        # 2. The victim again, on its port: UP, and given requests.
        served = int(lb.servers()[victim]["stot"])
        restarted = self.start_replica(so, processes, replicas[victim].port)
        up_at = lb.wait_for(victim, "UP")
        deadline = time.monotonic() + 10
        while int(lb.servers()[victim]["stot"]) == served:
            self.assertLess(time.monotonic(), deadline,
                            "%s gets no requests after UP" % victim)
            time.sleep(0.01)
        print("restart: %s UP %.3f s after it listened again" %
              (victim, up_at - restart_at))

        # 3. SIGTERM the survivor while it streams the long request: it
        # finishes, and nothing fails.
        deadline = time.monotonic() + 10
        while True:
            self.assertLess(time.monotonic(), deadline,
                            "no long stream was seen in progress on %s" %
                            survivor)
            stream = load.current[0]
            if (stream.events > 0 and stream.end is None and
                    lb.sessions().get(stream.port) == survivor):
                break
            time.sleep(0.001)
        term_at = time.monotonic()
        replicas[survivor].proc.send_signal(signal.SIGTERM)
        drained_at = lb.wait_for(survivor, "DOWN")
        self.assertEqual(replicas[survivor].proc.wait(timeout=15), 0)
        exit_at = time.monotonic()
        time.sleep(1)
        load.stop()
        done = load.done()
        drain = started(done, restart_at)
        print("drain: SIGTERM to %s, DOWN %.3f s later, exited after "
              "%.3f s; requests begun since the restart: %d (%d failed)" %
              (survivor, drained_at - term_at, exit_at - term_at,
               len(drain), len(failed(drain))))
        for r in failed(drain):
            print("  failed: %r, begun %+.3f s from SIGTERM" %
                  (r, r.start - term_at))
        self.assertEqual(failed(drain), [])
        self.assertIsNone(stream.error)
        self.assertGreaterEqual(len(started(done, exit_at)), CLIENTS)

        # 4. No replica left: HAProxy's 503, in OpenAI's shape.
        restarted.proc.kill()
        lb.wait_for(victim, "DOWN")
        c = http.client.HTTPConnection("127.0.0.1", lb.port, timeout=10)
        try:
            c.request("POST", "/v1/completions", body=json.dumps(
                dict(prompt=PROMPTS[0], max_tokens=4)))
            r = c.getresponse()
            self.assertEqual(r.status, 503)
            self.assertEqual(r.getheader("Retry-After"), "1")
            self.assertEqual(set(json.loads(r.read())["error"]),
                             {"message", "type", "param", "code"})
        finally:
            c.close()

        print("in all: %d requests, %d succeeded, %d failed; served by "
              "%s: %s, by %s (both runs): %s" %
              (len(done), len(done) - len(failed(done)), len(failed(done)),
               survivor, lb.servers()[survivor]["stot"], victim,
               lb.servers()[victim]["stot"]))


if __name__ == "__main__":
    if not HAPROXY:
        print("haproxy is not installed: skipped")
        sys.exit(77)
    unittest.main()
