"""Memory of the API process under a burst of logins: 64 at once for unknown accounts (each
pays one Argon2 hash at argon2-cffi's production profile, 64 MiB), from 64 client addresses
(``X-Forwarded-For`` from loopback, which uvicorn trusts), so throttling refuses none of them
and every one reaches the password hasher.

Runs two servers one after the other: the product (``BoundedPasswordHasher``: two hashes at a
time, sixteen waiting, the rest shed with 503) and, for comparison, the same app with the
bound taken out. Prints the server's RSS before, its peak (``VmHWM``) after, and the answers.

    .venv/bin/python bench/bench_login_memory.py [--logins 64] [--waves 2]

Not part of the product. Numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def unbounded_app() -> object:
    """The app with the hashing bound taken out (the comparison only)."""
    import entrypoints.bootstrap as bootstrap
    from entrypoints.http.app import create_app

    bootstrap.bounded = lambda hasher: hasher  # type: ignore[assignment]
    return create_app()


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def burst(base_url: str, logins: int, wave: int) -> collections.Counter[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def one(n: int) -> int:
            response = await client.post(
                "/api/v1/auth/login",
                json={"email": f"nobody{wave}-{n}@example.com", "password": "wrong password 1"},
                headers={"X-Forwarded-For": f"10.{wave}.{n // 250}.{n % 250 + 1}"},
            )
            return response.status_code

        return collections.Counter(await asyncio.gather(*(one(n) for n in range(logins))))


def run(factory: str, logins: int, waves: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TIERKEEPER_")},
            "TIERKEEPER_VAR_DIR": tmp,
            "TIERKEEPER_DATABASE_URL": f"sqlite:///{tmp}/tk.sqlite3",
            "TIERKEEPER_CONFIG_ROOT": f"{tmp}/openclaw",
            "PYTHONPATH": str(ROOT),
        }
        subprocess.run(
            [sys.executable, "-c", "from adapters.sql.database import upgrade; import sys; "
             "upgrade(sys.argv[1])", env["TIERKEEPER_DATABASE_URL"]],
            env=env, check=True, cwd=ROOT, capture_output=True,
        )  # fmt: skip
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log", "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            before = memory_kib(process.pid)
            answers: collections.Counter[int] = collections.Counter()
            started = time.perf_counter()
            for wave in range(waves):
                answers += asyncio.run(burst(base, logins, wave))
            seconds = time.perf_counter() - started
            after = memory_kib(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)
    return {
        "rss_before_mib": round(before["VmRSS"] / 1024),
        "peak_mib": round(after["VmHWM"] / 1024),
        "rss_after_mib": round(after["VmRSS"] / 1024),
        "answers": dict(sorted(answers.items())),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=64)
    parser.add_argument("--waves", type=int, default=2)
    args = parser.parse_args()
    for name, factory in (
        ("bounded (product)", "entrypoints.http.app:create_app"),
        ("unbounded (comparison)", "bench.bench_login_memory:unbounded_app"),
    ):
        print(name, run(factory, args.logins, args.waves), flush=True)


if __name__ == "__main__":
    main()
