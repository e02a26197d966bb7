"""The HTTP server choice (ADR 0006): uvicorn with 1 and 2 workers serving the product app on
the embedded default (SQLite + Fernet), measured with ``bench/loadgen.py`` on loopback.

    python bench/bench_http_server.py [--duration 8] [--connections 32]

Prints one JSON line per (workers, endpoint): requests/s, p50/p99 latency, statuses.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TIERKEEPER = str(Path(sys.executable).parent / "tierkeeper")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready")


def loadgen(spec: dict[str, object]) -> dict[str, object]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "loadgen.py"), handle.name],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    for workers in args.workers:
        var = Path(tempfile.mkdtemp(prefix="tk-bench-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIERKEEPER_")}
        env["TIERKEEPER_VAR_DIR"] = str(var)
        port = free_port()
        server = subprocess.Popen(
            [TIERKEEPER, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}/readyz")
            tenants = []
            for index in range(20):
                signup = httpx.post(
                    f"{base}/api/v1/auth/signup",
                    json={"email": f"b{index}@example.com", "password": "bench password"},
                    timeout=30,
                ).json()
                tenants.append(signup["tenant"]["id"])
            for tenant in tenants:
                subprocess.run(
                    [TIERKEEPER, "tenants", "set-tier", tenant, "premium", "--status", "active"],
                    env=env, check=True, capture_output=True,
                )  # fmt: skip
            token = subprocess.run(
                [TIERKEEPER, "tokens", "create", "--service", "bench"],
                env=env, check=True, capture_output=True, text=True,
            ).stdout.split()[-1]  # fmt: skip
            common = {
                "port": port,
                "connections": args.connections,
                "warmup_s": 2.0,
                "duration_s": args.duration,
            }
            for kind, path, extra in (
                ("get", "/api/v1/tiers", {}),
                ("post_admit", "/api/v1/gateway/admit", {"token": token, "tenants": tenants}),
            ):
                result = loadgen({**common, "kind": kind, "path": path, **extra})
                print(json.dumps({"workers": workers, "path": path, **result}), flush=True)
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
