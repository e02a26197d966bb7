"""``tierkeeper serve --workers 2``: the workers share nothing in memory, yet ``/metrics``
answered by either of them counts every admission both answered (prometheus-client's
multiprocess mode, directory managed by ``serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

TIERKEEPER = str(Path(sys.executable).parent / "tierkeeper")
ROOT = Path(__file__).resolve().parents[2]
ADMITS = 60
REFUSED = 5
CONCURRENCY = 16
READY_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(environ: dict[str, str], *args: str) -> str:
    done = subprocess.run([TIERKEEPER, *args], env=environ, cwd=str(ROOT), capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout


@contextlib.contextmanager
def serve_two_workers(environ: dict[str, str], log: Path) -> Iterator[str]:
    port = _free_port()
    command = [TIERKEEPER, "serve", "--port", str(port), "--workers", "2"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=environ, cwd=str(ROOT), stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"serve not ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


async def admit_all(base: str, token: str, tenants: list[str]) -> list[int]:
    """Each request on a new connection, so both workers accept some."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=60) as client:
        requests = [
            client.post(f"{base}/api/v1/gateway/admit",
                        json={"tenant_id": tenant, "message_id": f"m-{i}", "max_tokens": 10})
            for i, tenant in enumerate(tenants)
        ]  # fmt: skip
        return [response.status_code for response in await asyncio.gather(*requests)]


def admitted_value(text: str, outcome: str, reason: str = "") -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tierkeeper_admissions_total" and sample.labels == {
                "outcome": outcome,
                "reason": reason,
            }:
                return float(sample.value)
    return 0.0


def admitted_per_process(directory: Path) -> dict[str, float]:
    """Each worker's own admitted count, read from its file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        total = 0.0
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            metric, _, labels, *_ = json.loads(key)
            if metric == "tierkeeper_admissions" and labels.get("outcome") == "admitted":
                total += value
        counts[path.stem] = total
    return counts


def test_metrics_from_either_worker_sum_both_workers_counts(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TIERKEEPER_")},
        "TIERKEEPER_VAR_DIR": str(tmp_path / "var"),
        "TIERKEEPER_CONFIG_ROOT": str(tmp_path / "openclaw"),
        "TIERKEEPER_SECRET_KEY": "workers-test-platform-secret-0123456789",
        "TIERKEEPER_METRICS_TOKEN": "scrape-me-0123456789",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    token = cli(environ, "tokens", "create", "--service", "gw").strip().splitlines()[-1]
    with serve_two_workers(environ, tmp_path / "serve.log") as base:
        account = {"email": "w@example.com", "password": "correct horse battery"}
        signup = httpx.post(f"{base}/api/v1/auth/signup", json=account)
        assert signup.status_code == 201, signup.text
        tenant = signup.json()["tenant"]["id"]
        cli(environ, "tenants", "set-tier", tenant, "premium", "--status", "active")
        statuses = asyncio.run(admit_all(base, token, [tenant] * ADMITS + ["t-unknown"] * REFUSED))
        assert statuses.count(200) == ADMITS
        scraper = {"Authorization": "Bearer scrape-me-0123456789"}
        scrapes = []
        for _ in range(6):
            with httpx.Client(headers=scraper, timeout=30) as client:
                scrapes.append(client.get(f"{base}/metrics").text)
        per_process = admitted_per_process(metrics_dir)

    assert [admitted_value(text, "admitted") for text in scrapes] == [ADMITS] * 6
    assert [admitted_value(text, "refused", "tenant_unknown") for text in scrapes] == [REFUSED] * 6
    workers_that_admitted = [count for count in per_process.values() if count > 0]
    assert len(workers_that_admitted) == 2, per_process
    assert sum(workers_that_admitted) == ADMITS
