"""The LLM proxy's overhead: the same calls sent to a stub upstream directly and through
tierkeeper's proxy, in one run, on 127.0.0.1.

    .venv/bin/python bench/bench_proxy.py [--connections 64] [--duration 8] [--warmup 2]
        [--tenants 64] [--upstream-latency-ms 0] [--workers 1] [--only whole|streamed]
        [--floor] [--json OUT] [--profile PYSPY.txt]

The upstream is ``bench/llm_stub_app.py`` (a bare ASGI app under uvicorn, answering OpenAI
Chat Completions whole or as a six-event stream with usage; with ``--upstream-latency-ms``
it waits that long before the first byte and between stream events, as a real provider
does, instead of answering in ~30 µs). The proxy is the tierkeeper app under uvicorn
(``--workers`` processes, one by default; uvloop, httptools) in proxy mode on embedded
PostgreSQL, with the Moonshot base URL pointed at the stub, N starter tenants seeded
through the use cases (a bench catalog lifts their caps so no call is refused), and each
connection using one tenant's virtual key. Every proxied call is admitted, forwarded, read
for usage and settled.

For each of (whole, streamed) x (1, C connections) the load generator (this script in its
own process: closed loop, keep-alive HTTP/1.1 over asyncio) runs warm-up then a measured
window against the stub and then against the proxy, and reports p50/p99 latency, for
streams the time to the first body byte, requests per second, and the CPU each server and
the proxy's PostgreSQL used per call. Afterwards the settlements in the database are
counted against the 200s the clients saw.

``--floor`` adds a third target between them: ``bench/null_proxy_app.py``, a pass-through
proxy with tierkeeper's upstream client and nothing else (no key check, ledger, routing or
parsing), under the same uvicorn settings. Its overhead is what the two HTTP hops alone
cost on this machine; the second table compares tierkeeper's proxy with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's tests/ importable
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
LOOPBACK = "127.0.0.1"
PLATFORM_KEY = "pk-bench-moonshot-0123456789"
READY_TIMEOUT_S = 60.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process and its live children so far (Linux ``/proc``):
    uvicorn's worker processes under ``--workers N``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(
        self, target: str, app_dir: Path, env: dict[str, str], log: Path, workers: int = 1
    ) -> None:
        self.port = free_port()
        command = [
            PYTHON, "-m", "uvicorn", target, "--factory", "--host", LOOPBACK,
            "--port", str(self.port), "--app-dir", str(app_dir), "--loop", "uvloop",
            "--http", "httptools", "--no-access-log", "--log-level", "warning",
            "--workers", str(workers),
        ]  # fmt: skip
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, env=env, cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT
            )

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}{path}", timeout=2)
                return
            time.sleep(0.2)
        raise TimeoutError(self.log.read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


# ---------------------------------------------------------------- load generator (subprocess)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> float:
    """Read the whole body; answer the instant its first byte arrived."""
    if "content-length" in headers:
        first = time.perf_counter()
        await reader.readexactly(int(headers["content-length"]))
        return first
    first = 0.0
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        if not first:
            first = time.perf_counter()
        await reader.readexactly(size + 2)
        if size == 0:
            return first


async def _worker(spec: dict[str, Any], conn: int, out: dict[str, Any]) -> None:
    keys = spec["keys"]
    key = keys[conn % len(keys)] if keys else "none"
    body = json.dumps(
        {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "hi"}],
         "max_tokens": 100, "stream": spec["stream"]}
    ).encode()  # fmt: skip
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection(LOOPBACK, spec["port"])
    start = time.perf_counter()
    measure_from, end = start + spec["warmup_s"], start + spec["warmup_s"] + spec["duration_s"]
    try:
        while (sent := time.perf_counter()) < end:
            writer.write(request)
            status, headers = await _read_head(reader)
            first = await _read_body(reader, headers)
            done = time.perf_counter()
            if sent >= measure_from:
                out["statuses"][status] += 1
                out["latency"].append(done - sent)
                out["ttfb"].append(first - sent)
    finally:
        writer.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def _loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"statuses": Counter(), "latency": [], "ttfb": []}
    await asyncio.gather(*(_worker(spec, c, out) for c in range(spec["connections"])))
    n = len(out["latency"])
    return {
        "requests": n,
        "rps": round(n / spec["duration_s"], 1),
        "p50_ms": _pct(out["latency"], 0.50),
        "p99_ms": _pct(out["latency"], 0.99),
        "ttfb_p50_ms": _pct(out["ttfb"], 0.50),
        "ttfb_p99_ms": _pct(out["ttfb"], 0.99),
        "statuses": {str(k): v for k, v in out["statuses"].items()},
    }


def loadgen_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    print(json.dumps(asyncio.run(_loadgen(spec))))


# ---------------------------------------------------------------- the benchmark


def bench_catalog(work: Path) -> Path:
    """The shipped catalog with caps and budgets lifted: a benchmark measures, never refuses."""
    from adapters.catalog.toml_loader import default_catalog_text

    text = re.sub(r"messages_per_day = \d+", "messages_per_day = 100000000",
                  default_catalog_text())  # fmt: skip
    text = re.sub(r"tokens_per_period = \d+", "tokens_per_period = 900000000000", text)
    path = work / "bench-catalog.toml"
    path.write_text(text)
    return path


async def seed(env: dict[str, str], count: int) -> list[str]:
    """N active starter tenants; their virtual keys, as written into their ``.env``."""
    from adapters.security.passwords import Argon2PasswordHasher
    from domain.secrets import Secret
    from domain.tenants import SubscriptionStatus
    from entrypoints.bootstrap import build_services
    from entrypoints.settings import Settings

    hasher = Argon2PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    services = await build_services(Settings.from_environ(env), password_hasher=hasher)
    keys = []
    try:
        for n in range(count):
            signed = await services.accounts.signup(f"bench{n}@example.com", Secret("x" * 12))
            await services.tenants.change_tier(signed.tenant.id, "starter",
                                               SubscriptionStatus.ACTIVE)  # fmt: skip
            env_file = Path(env["TIERKEEPER_CONFIG_ROOT"]) / signed.tenant.id / ".env"
            keys.append(env_file.read_text().strip().partition("=")[2])
    finally:
        await services.close()
    return keys


async def settled_count(env: dict[str, str]) -> int:
    from datetime import UTC, datetime, timedelta

    from entrypoints.bootstrap import build_services
    from entrypoints.settings import Settings

    services = await build_services(Settings.from_environ(env))
    try:
        now = datetime.now(UTC)
        rows = await services.ports.ledger.usage_records(now - timedelta(hours=2), now)
        return len(rows)
    finally:
        await services.close()


def load(work: Path, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    path = work / f"{re.sub(r'[^a-z0-9]+', '-', name)}.json"
    path.write_text(json.dumps(spec))
    budget = spec["warmup_s"] + spec["duration_s"] + 60
    done = subprocess.run([PYTHON, __file__, "--loadgen", str(path)], capture_output=True,
                          text=True, timeout=budget, check=True)  # fmt: skip
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--tenants", type=int, default=64)
    parser.add_argument("--upstream-latency-ms", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=1, help="the proxy's uvicorn workers")
    parser.add_argument(
        "--only", choices=("whole", "streamed"), help="run one kind of call, not both"
    )
    parser.add_argument(
        "--floor", action="store_true", help="also measure a pass-through proxy (the floor)"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--profile", type=Path, help="py-spy record of the proxy at C connections: OUT-whole.txt…"
    )
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args.loadgen)
        return

    from bench_admission import postmaster_pid

    from adapters.sql.database import upgrade
    from tests.support import postgres

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp, \
            postgres.fresh_database("bench_proxy") as url:  # fmt: skip
        work = Path(tmp)
        upgrade(url)
        database_pid = postmaster_pid(url)
        assert database_pid is not None, "the embedded PostgreSQL runs on this machine"
        stub_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work),
            "LLM_STUB_LATENCY_MS": str(args.upstream_latency_ms),
        }
        stub = Server("llm_stub_app:create_app", ROOT / "bench", stub_env, work / "stub.log")
        env = {
            **stub_env,
            "TIERKEEPER_DATABASE_URL": url,
            "TIERKEEPER_VAR_DIR": str(work / "var"),
            "TIERKEEPER_CONFIG_ROOT": str(work / "openclaw"),
            "TIERKEEPER_SECRET_KEY": "bench-platform-secret-0123456789abcdef",
            "TIERKEEPER_CATALOG": str(bench_catalog(work)),
            "TIERKEEPER_OPENCLAW_MODE": "proxy",
            "TIERKEEPER_PLATFORM_KEY_MOONSHOT": PLATFORM_KEY,
            "TIERKEEPER_PROVIDER_MOONSHOT_BASE_URL": f"http://{LOOPBACK}:{stub.port}/v1",
        }
        keys = asyncio.run(seed(env, args.tenants))
        if args.workers > 1:  # as ``serve --workers N`` does: the workers' metrics in files
            env["PROMETHEUS_MULTIPROC_DIR"] = str(work / "metrics")
            (work / "metrics").mkdir()
        proxy = Server(
            "entrypoints.http.app:create_app", ROOT, env, work / "proxy.log", args.workers
        )
        floor = None
        if args.floor:
            floor_env = {**stub_env, "NULL_PROXY_UPSTREAM": f"http://{LOOPBACK}:{stub.port}"}
            floor = Server("null_proxy_app:create_app", ROOT / "bench", floor_env,
                           work / "floor.log")  # fmt: skip
        targets = [("direct", stub), *([("floor", floor)] if floor else []), ("proxy", proxy)]
        try:
            stub.wait_ready("/")
            proxy.wait_ready("/healthz")
            if floor is not None:
                floor.wait_ready("/")
            for stream in (False, True):
                if args.only and args.only != ("streamed" if stream else "whole"):
                    continue
                for conns in (1, args.connections):
                    for target, server in targets:
                        name = f"{'streamed' if stream else 'whole'} {conns}c {target}"
                        spy = None
                        if args.profile and target == "proxy" and conns > 1:
                            kind = "streamed" if stream else "whole"
                            out = args.profile.with_name(f"{args.profile.stem}-{kind}.txt")
                            spy = subprocess.Popen([
                                str(Path(PYTHON).parent / "py-spy"), "record", "-o",
                                str(out), "-f", "raw", "--subprocesses", "-d",
                                str(int(args.duration)), "-p", str(proxy.process.pid),
                            ])  # fmt: skip
                        before = cpu_seconds(server.process.pid)
                        database_before = cpu_seconds(database_pid)  # postmaster, backends
                        results[name] = load(work, name, {
                            "port": server.port, "connections": conns, "stream": stream,
                            "keys": keys, "warmup_s": args.warmup, "duration_s": args.duration,
                        })  # fmt: skip
                        # the server's CPU over warm-up and window, per call answered in both
                        calls = results[name]["requests"] * (args.warmup + args.duration)
                        used = cpu_seconds(server.process.pid) - before
                        results[name]["server_cpu_ms_per_call"] = round(
                            1000 * used / (calls / args.duration), 3
                        )
                        database = cpu_seconds(database_pid) - database_before
                        results[name]["database_cpu_ms_per_call"] = round(
                            1000 * database / (calls / args.duration), 3
                        )
                        print(name, json.dumps(results[name]), flush=True)
                        if spy is not None:
                            spy.wait(timeout=args.duration + 60)
        finally:
            proxy.stop()
            stub.stop()
            if floor is not None:
                floor.stop()
            if any(set(r["statuses"]) - {"200"} for r in results.values()):
                print(f"\nnot every call was answered 200; the proxy's log:\n"
                      f"{proxy.log.read_text()[-4000:]}")  # fmt: skip
        settled = asyncio.run(settled_count(env))
    answered = sum(sum(r["statuses"].values()) for n, r in results.items() if n.endswith("proxy"))
    print(f"\nsettlements in the database: {settled} (proxied 200s measured: {answered},"
          " plus warm-up calls)")  # fmt: skip
    print("\n| calls | conns | direct p50 / p99 ms | proxy p50 / p99 ms | p50 overhead ms |"
          " TTFB direct / proxy p50 ms | direct / proxy rps | throughput ratio |"
          " server CPU ms per call, stub / proxy / its database |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for stream in ("whole", "streamed"):
        for conns in (1, args.connections):
            if f"{stream} {conns}c direct" not in results:
                continue
            d, p = results[f"{stream} {conns}c direct"], results[f"{stream} {conns}c proxy"]
            print(
                f"| {stream} | {conns} | {d['p50_ms']} / {d['p99_ms']} | {p['p50_ms']} / "
                f"{p['p99_ms']} | {p['p50_ms'] - d['p50_ms']:.3f} | {d['ttfb_p50_ms']} / "
                f"{p['ttfb_p50_ms']} | {d['rps']} / {p['rps']} | {p['rps'] / d['rps']:.2f} | "
                f"{d['server_cpu_ms_per_call']} / {p['server_cpu_ms_per_call']} / "
                f"{p['database_cpu_ms_per_call']} |"
            )
    if args.floor:
        print_floor(results, args.connections)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def print_floor(results: dict[str, dict[str, Any]], connections: int) -> None:
    """Tierkeeper's proxy against the pass-through floor, both over the direct stub."""
    print("\n| calls | conns | floor / proxy p50 overhead ms | floor / proxy throughput ratio |"
          " server CPU ms per call, floor / proxy |")  # fmt: skip
    print("|---|---|---|---|---|")
    for stream in ("whole", "streamed"):
        for conns in (1, connections):
            if f"{stream} {conns}c floor" not in results:
                continue
            d, f, p = (results[f"{stream} {conns}c {t}"] for t in ("direct", "floor", "proxy"))
            print(
                f"| {stream} | {conns} | {f['p50_ms'] - d['p50_ms']:.3f} / "
                f"{p['p50_ms'] - d['p50_ms']:.3f} | {f['rps'] / d['rps']:.2f} / "
                f"{p['rps'] / d['rps']:.2f} | {f['server_cpu_ms_per_call']} / "
                f"{p['server_cpu_ms_per_call']} |"
            )


if __name__ == "__main__":
    main()
