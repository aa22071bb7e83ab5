"""Spawn the fake ClinicalTrials.gov server and talk to it (for Python tests).

    with SpawnedFake(data_dir) as fake:          # data_dir = .../ctgov_v2
        status, headers, body = fake.get("/api/v2/version")
        fake.control("faults", {"kind": "503", "count": 2})

The process is started with --watch-parent and a bounded --max-lifetime, so
it never outlives the test run; stop() sends SIGTERM, then SIGKILL.
Standard library only. Not thread-safe (one SpawnedFake per test thread).
"""

import http.client
import json
import os
import selectors
import signal
import subprocess
import sys
import time

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "fake_ctgov.py")


def shared_ctgov_dir():
    """<TRIALMATCH_SHARED_DATA_DIR or ../shared/data>/ctgov_v2."""
    shared = os.environ.get("TRIALMATCH_SHARED_DATA_DIR")
    if not shared:
        repo = os.path.dirname(os.path.dirname(os.path.dirname(SCRIPT)))
        shared = os.path.join(os.path.dirname(repo), "shared", "data")
    return os.path.join(shared, "ctgov_v2")


class StartError(RuntimeError):
    pass


class SpawnedFake:
    def __init__(self, data_dir, *flags, max_lifetime=600, timeout=60,
                 python=None):
        self.data_dir = data_dir
        self.flags = list(flags)
        self.max_lifetime = max_lifetime
        self.timeout = timeout
        self.python = python or sys.executable
        self.proc = None
        self.port = None

    def start(self):
        cmd = [self.python, "-B", SCRIPT, "--data-dir", self.data_dir, "--port", "0",
               "--max-lifetime", str(self.max_lifetime), "--watch-parent"]
        cmd += self.flags
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        line = self._read_line(self.timeout)
        if not line.startswith("LISTENING "):
            self.stop()
            raise StartError(f"fake_ctgov did not start (said {line!r}, "
                             f"exit {self.proc.returncode})")
        self.port = int(line.split()[1])
        return self

    def _read_line(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        data = b""
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            data += chunk
        sel.close()
        return data.decode("utf-8", "replace").strip()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/api/v2"

    def stop(self, grace=5.0):
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns rc."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP ---------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=30):
        """-> (status, {lower-case header: value}, body bytes)."""
        return http_request(self.port, method, path, body, headers, timeout)

    def get(self, path, headers=None, timeout=30):
        return self.request("GET", path, headers=headers, timeout=timeout)

    def get_json(self, path):
        status, _, body = self.get(path)
        if status != 200:
            raise AssertionError(f"GET {path} -> {status}: {body[:300]!r}")
        return json.loads(body)

    def control(self, op, args=None):
        """POST /__control/<op> with JSON `args`; returns the JSON answer."""
        status, _, body = self.request(
            "POST", "/__control/" + op, json.dumps(args or {}).encode())
        if status >= 300:
            raise AssertionError(f"control {op} -> {status}: {body!r}")
        return json.loads(body)

    def stats(self, path=None):
        query = f"?path={path}" if path else ""
        return json.loads(self.get("/__control/stats" + query)[2])


def http_request(port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()
