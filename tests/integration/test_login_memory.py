"""64 logins at once against the real server at the production Argon2 profile (64 MiB per
hash): at most two hashes run at a time and the excess is shed at once with 503 and
Retry-After, so the process's peak memory grows by about two hashes' worth, not sixty-four.
Before the bound, 128 such logins took the server from 116 MiB to 1,119 MiB."""

from __future__ import annotations

import asyncio
import collections
import os
from pathlib import Path

import httpx
import pytest

from adapters.security.bounded import DEFAULT_MAX_RUNNING
from adapters.sql.database import upgrade
from tests.support.app_server import running_app

pytestmark = pytest.mark.integration

LOGINS = 64
ARGON2_MIB = 64
"""argon2-cffi's default memory cost (RFC 9106 low-memory profile), used by the product."""
ALLOWED_GROWTH_MIB = DEFAULT_MAX_RUNNING * ARGON2_MIB + 64
"""The bound this test states: the hashes allowed to run at once, plus 64 MiB for
everything else a burst of requests allocates."""


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) / 1024
    raise AssertionError(f"no {field} for {pid}")


async def burst(base_url: str, wave: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def one(n: int) -> httpx.Response:
            return await client.post(
                "/api/v1/auth/login",
                json={"email": f"nobody{wave}-{n}@example.com", "password": "wrong password 1"},
                # one address per login (trusted from loopback): throttling refuses none
                headers={"X-Forwarded-For": f"10.{wave}.0.{n + 1}"},
            )

        return list(await asyncio.gather(*(one(n) for n in range(LOGINS))))


async def test_sixty_four_logins_at_once_keep_memory_bounded_and_shed_the_excess(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'tk.sqlite3'}"
    upgrade(url)
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TIERKEEPER_")},
        "TIERKEEPER_VAR_DIR": str(tmp_path / "var"),
        "TIERKEEPER_DATABASE_URL": url,
        "TIERKEEPER_CONFIG_ROOT": str(tmp_path / "openclaw"),
    }
    with running_app(environ, tmp_path) as app:
        pid = app.process.pid
        before = memory_mib(pid, "VmRSS")
        answers = [*await burst(app.base_url, 0), *await burst(app.base_url, 1)]
        peak = memory_mib(pid, "VmHWM")
    statuses = collections.Counter(a.status_code for a in answers)
    print(f"RSS before {before:.0f} MiB, peak {peak:.0f} MiB, answers {dict(statuses)}")
    assert set(statuses) <= {401, 503}, statuses
    assert statuses[401] >= DEFAULT_MAX_RUNNING
    assert statuses[503] > 0
    shed = next(a for a in answers if a.status_code == 503)
    assert shed.json()["code"] == "overloaded"
    assert shed.headers["retry-after"] == "1"
    assert peak - before <= ALLOWED_GROWTH_MIB, (before, peak)
