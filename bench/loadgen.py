"""A closed-loop HTTP/1.1 load generator: a fixed number of keep-alive connections, each
sending its next request when the previous answer is in, for a bounded time.

It speaks just enough HTTP/1.1 (Content-Length bodies) over asyncio streams on uvloop, so
on a 2-core machine it takes as little CPU as possible from the server it measures; httpx
costs several times more per request. Loopback only: the host must be 127.0.0.1.

    python bench/loadgen.py SPEC.json   # prints one JSON result on stdout

The spec names the request kind (``get``, ``post_admit``, ``post_settle``), the path, the
connections, the warm-up and measured durations and a request bound; answers are counted by
status, latencies of the measured window give p50/p99. For admits, every 200 is written to
``admitted_out`` (tenant and message id), so a settle run can settle exactly those and the
benchmark can compare what clients were told with what the database holds.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REQUEST_TIMEOUT_S = 10.0
LOOPBACK = "127.0.0.1"


class Spec:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.host: str = raw.get("host", LOOPBACK)
        if self.host != LOOPBACK:
            raise SystemExit("the load generator only targets 127.0.0.1")
        self.port: int = int(raw["port"])
        self.kind: str = raw["kind"]
        self.path: str = raw["path"]
        self.connections: int = int(raw.get("connections", 64))
        self.warmup_s: float = float(raw.get("warmup_s", 2.0))
        self.duration_s: float = float(raw.get("duration_s", 10.0))
        self.max_requests: int = int(raw.get("max_requests", 2_000_000))
        self.token: str | None = raw.get("token")
        self.tenants: list[str] = list(raw.get("tenants", []))
        self.hot: list[str] = list(raw.get("hot", []))
        self.hot_fraction: float = float(raw.get("hot_fraction", 0.0))
        self.run_id: str = raw.get("run_id", "run")
        self.max_tokens: int = int(raw.get("max_tokens", 1000))
        self.settle_from: str | None = raw.get("settle_from")
        self.admitted_out: str | None = raw.get("admitted_out")
        self.seed: int = int(raw.get("seed", 1))


class Shared:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.sent = 0
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.measured_statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.admitted: list[tuple[str, str]] = []
        self.to_settle: list[tuple[str, str]] = []
        self.settle_next = 0


def _head(spec: Spec, method: str, body: bytes) -> bytes:
    lines = [f"{method} {spec.path} HTTP/1.1", f"Host: {spec.host}:{spec.port}"]
    if spec.token:
        lines.append(f"Authorization: Bearer {spec.token}")
    if method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _next_request(shared: Shared, rng: random.Random, conn: int, n: int) -> tuple[bytes, Any]:
    spec = shared.spec
    if spec.kind == "get":
        return _head(spec, "GET", b""), None
    if spec.kind == "post_admit":
        pool = spec.hot if spec.hot and rng.random() < spec.hot_fraction else spec.tenants
        tenant = rng.choice(pool)
        message = f"{spec.run_id}-{conn}-{n}"
        body = json.dumps(
            {"tenant_id": tenant, "message_id": message, "max_tokens": spec.max_tokens}
        ).encode()
        return _head(spec, "POST", body) + body, (tenant, message)
    if spec.kind == "post_settle":
        if shared.settle_next < len(shared.to_settle):
            tenant, message = shared.to_settle[shared.settle_next]
            shared.settle_next += 1
        else:  # ran out of admitted messages: unknown ids settle without a reservation
            tenant, message = rng.choice(spec.tenants), f"{spec.run_id}-x-{conn}-{n}"
        body = json.dumps(
            {
                "tenant_id": tenant,
                "message_id": message,
                "model": "moonshot/kimi-k2.5",
                "input_tokens": 300,
                "output_tokens": 200,
                "credential": "platform",
            }
        ).encode()
        return _head(spec, "POST", body) + body, None
    raise SystemExit(f"unknown kind {spec.kind!r}")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        elif name.strip().lower() == b"transfer-encoding":
            raise RuntimeError("chunked answers are not supported")
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _worker(shared: Shared, conn: int, start: float, measure_from: float, end: float) -> None:
    spec = shared.spec
    rng = random.Random(spec.seed * 1_000_003 + conn)
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    n = 0
    while time.perf_counter() < end and shared.sent < spec.max_requests:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(spec.host, spec.port)
            except OSError as exc:
                shared.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
                continue
        assert reader is not None
        payload, admit_key = _next_request(shared, rng, conn, n)
        n += 1
        shared.sent += 1
        t0 = time.perf_counter()
        try:
            writer.write(payload)
            status, _ = await asyncio.wait_for(_read_response(reader), REQUEST_TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, RuntimeError) as exc:
            shared.errors[type(exc).__name__] += 1
            writer.close()
            writer = None
            continue
        t1 = time.perf_counter()
        shared.statuses[status] += 1
        if admit_key is not None and status == 200:
            shared.admitted.append(admit_key)
        if measure_from <= t0 and t1 <= end:
            shared.latencies.append(t1 - t0)
            shared.measured_statuses[status] += 1
    if writer is not None:
        writer.close()


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


async def run(spec: Spec, to_settle: list[tuple[str, str]]) -> dict[str, Any]:
    """Drive the load; the result's ``admitted_keys`` are the (tenant, message) of every 200
    an admit run got."""
    shared = Shared(spec)
    shared.to_settle = to_settle
    start = time.perf_counter()
    measure_from = start + spec.warmup_s
    end = measure_from + spec.duration_s
    await asyncio.gather(
        *(_worker(shared, c, start, measure_from, end) for c in range(spec.connections))
    )
    # a run bounded by max_requests ends before its duration: rate over the time it took
    measured_s = min(end, time.perf_counter()) - measure_from
    latencies = sorted(shared.latencies)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / measured_s if measured_s > 0 else float("nan"),
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "statuses": {str(k): v for k, v in sorted(shared.statuses.items())},
        "measured_statuses": {str(k): v for k, v in sorted(shared.measured_statuses.items())},
        "errors": dict(shared.errors),
        "sent": shared.sent,
        "admitted": len(shared.admitted),
        "admitted_keys": shared.admitted,
    }


def main() -> None:
    spec = Spec(json.loads(Path(sys.argv[1]).read_text()))
    to_settle: list[tuple[str, str]] = []
    if spec.settle_from:
        lines = Path(spec.settle_from).read_text().splitlines()
        to_settle = [tuple(json.loads(line)) for line in lines if line.strip()]
    try:
        import uvloop

        result = uvloop.run(run(spec, to_settle))
    except ImportError:  # plain asyncio still works, only slower
        result = asyncio.run(run(spec, to_settle))
    admitted = result.pop("admitted_keys")
    if spec.admitted_out:
        Path(spec.admitted_out).write_text("".join(json.dumps(k) + "\n" for k in admitted))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
