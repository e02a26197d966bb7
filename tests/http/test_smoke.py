"""The app starts on the real embedded adapters and answers its health checks."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient


async def test_healthz_answers_ok(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
