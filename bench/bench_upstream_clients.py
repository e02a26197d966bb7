"""The proxy's candidate upstream clients, side by side: CPU per call of httpx and aiohttp,
each sending the same calls (16 at a time, pooled keep-alive connections) to the
benchmark's stub upstream (``bench/llm_stub_app.py`` under uvicorn), reading each answer as
a stream, as the proxy does. Two rounds each, alternating, in one run (ADR 0012).

    .venv/bin/python bench/bench_upstream_clients.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

BENCH = Path(__file__).resolve().parent
BODY = b'{"model":"kimi-k2.5","messages":[],"stream":false}'
HEADERS = {"authorization": "Bearer bench", "content-type": "application/json"}
BATCH = 16


async def measure(one: Callable[[], Awaitable[None]], calls: int) -> tuple[float, float]:
    await one()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls // BATCH):
        await asyncio.gather(*(one() for _ in range(BATCH)))
    return 1000 * (time.process_time() - cpu) / calls, time.perf_counter() - wall


async def with_httpx(url: str, calls: int) -> tuple[float, float]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:

        async def one() -> None:
            request = client.build_request("POST", url, content=BODY, headers=HEADERS)
            response = await client.send(request, stream=True)
            b"".join([chunk async for chunk in response.aiter_bytes()])
            await response.aclose()

        return await measure(one, calls)


async def with_aiohttp(url: str, calls: int) -> tuple[float, float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def one() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                b"".join([chunk async for chunk in response.content.iter_any()])

        return await measure(one, calls)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stub = subprocess.Popen([
        sys.executable, "-m", "uvicorn", "llm_stub_app:create_app", "--factory",
        "--app-dir", str(BENCH), "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--loop", "uvloop", "--http", "httptools",
    ])  # fmt: skip
    try:
        time.sleep(3)
        import uvloop

        uvloop.install()
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        for client in (with_httpx, with_aiohttp, with_httpx, with_aiohttp):
            cpu_ms, wall_s = asyncio.run(client(url, args.calls))
            name = client.__name__.removeprefix("with_")
            print(f"{name:8} {cpu_ms:.3f} ms CPU per call, {args.calls} calls in {wall_s:.2f} s")
    finally:
        stub.terminate()
        stub.wait(timeout=15)


if __name__ == "__main__":
    main()
