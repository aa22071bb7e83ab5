"""Fault injection rules for the fake upstream.

A rule says which requests it hits and what goes wrong:

    path         request path prefix (default "/api/v2"); the query string is
                 not part of it
    kind         429|500|502|503|504 (or `status` with status=NNN),
                 reset, stall, truncate, malformed_json, html, loop_token,
                 latency
    count        hit the next N matching requests (default 1; unlimited when
                 `probability` is given and `count` is not)
    skip         let the first K matching requests through first (default 0)
    probability  hit a matching request with this chance (0..1) ...
    seed         ... drawn from random.Random(seed) (default 0): repeatable
    retry_after  Retry-After header for status faults (seconds or any text)
    status       the status of kind=status
    latency_ms   delay of kind=latency
    stall_seconds  how long kind=stall sleeps after the partial body
                 (default 30, at most 120)
    after_bytes  bytes of the body sent by stall/truncate (default: half)

Rules are checked in the order they were added. Latency rules that hit add
their delay and the check goes on; the first other rule that hits decides
the response. Thread-safe.
"""

import random
import threading

STATUS_KINDS = {"429", "500", "502", "503", "504", "status"}
OTHER_KINDS = {"reset", "stall", "truncate", "malformed_json", "html",
               "loop_token", "latency"}
KINDS = STATUS_KINDS | OTHER_KINDS
MAX_STALL_SECONDS = 120.0

_INT_KEYS = {"count", "skip", "seed", "status", "latency_ms", "after_bytes"}
_FLOAT_KEYS = {"probability", "stall_seconds"}
_KNOWN_KEYS = _INT_KEYS | _FLOAT_KEYS | {"path", "kind", "retry_after"}


class FaultRule:
    def __init__(self, rule_id, spec):
        unknown = set(spec) - _KNOWN_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        spec = dict(spec)
        for key in _INT_KEYS & set(spec):
            if spec[key] is not None:
                spec[key] = int(spec[key])
        for key in _FLOAT_KEYS & set(spec):
            if spec[key] is not None:
                spec[key] = float(spec[key])
        self.id = rule_id
        self.kind = str(spec.get("kind", ""))
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; "
                             f"one of {sorted(KINDS)}")
        self.path = spec.get("path", "/api/v2")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError("fault path must start with '/'")
        self.probability = spec.get("probability")
        if self.probability is not None and not 0 <= self.probability <= 1:
            raise ValueError("probability must be within [0, 1]")
        default_count = None if self.probability is not None else 1
        self.count = spec.get("count", default_count)
        if self.count is not None and self.count < 1:
            raise ValueError("count must be >= 1")
        self.skip = spec.get("skip", 0)
        self.seed = spec.get("seed", 0)
        self.rng = random.Random(self.seed)
        if self.kind == "status":
            self.status = spec.get("status")
            if self.status is None or not 400 <= self.status <= 599:
                raise ValueError("kind=status needs status=400..599")
        elif self.kind in STATUS_KINDS:
            self.status = int(self.kind)
        else:
            self.status = None
        retry_after = spec.get("retry_after")
        self.retry_after = None if retry_after is None else str(retry_after)
        self.latency_ms = spec.get("latency_ms", 0 if self.kind != "latency"
                                   else None)
        if self.kind == "latency" and (self.latency_ms is None
                                       or self.latency_ms < 0):
            raise ValueError("kind=latency needs latency_ms >= 0")
        self.stall_seconds = min(MAX_STALL_SECONDS,
                                 spec.get("stall_seconds") or 30.0)
        self.after_bytes = spec.get("after_bytes")
        self.seen = 0
        self.hits = 0

    @property
    def exhausted(self):
        return self.count is not None and self.hits >= self.count

    def _hit(self, path):
        """Called under the book's lock for every request."""
        if not path.startswith(self.path) or self.exhausted:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.probability is not None and self.rng.random() >= self.probability:
            return False
        self.hits += 1
        return True

    def describe(self):
        return {
            "id": self.id, "kind": self.kind, "path": self.path,
            "count": self.count, "skip": self.skip,
            "probability": self.probability, "seed": self.seed,
            "status": self.status, "retry_after": self.retry_after,
            "latency_ms": self.latency_ms, "stall_seconds": self.stall_seconds,
            "after_bytes": self.after_bytes, "seen": self.seen,
            "hits": self.hits, "exhausted": self.exhausted,
        }


class FaultBook:
    """The active rules. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self._next_id = 1

    def add(self, spec):
        """Validates and adds a rule; returns it. Raises ValueError."""
        with self._lock:
            rule = FaultRule(self._next_id, spec)
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def clear(self):
        with self._lock:
            self._rules = []

    def describe(self):
        with self._lock:
            return [r.describe() for r in self._rules]

    def pick(self, path):
        """-> (delay_seconds, rule or None) for a request to `path`."""
        delay = 0.0
        with self._lock:
            for rule in self._rules:
                if rule._hit(path):
                    if rule.kind == "latency":
                        delay += rule.latency_ms / 1000.0
                        continue
                    return delay, rule
        return delay, None


def parse_fault_flag(text):
    """'path=/api/v2/studies,kind=429,count=2' -> dict for FaultBook.add."""
    spec = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--fault item {item!r} is not key=value")
        spec[key.strip()] = value.strip()
    return spec
