"""The proxy's shared upstream client against the local provider stub (a real socket)."""

from __future__ import annotations

import json

import pytest

from adapters.llm.aiohttp_upstream import AiohttpLlmUpstream
from domain.proxy import UpstreamRequest
from tests.support.llm_stub import running_llm_stub

pytestmark = pytest.mark.integration


async def test_a_cookie_one_answer_sets_is_never_sent_on_a_later_call() -> None:
    """One client serves every tenant: a cookie a provider sets (a load balancer's, a
    session's) must not ride along on the next call, maybe another tenant's. The stub is
    reached as ``localhost``: a cookie jar keeps no cookies of a bare IP address."""
    with running_llm_stub() as stub:
        stub.set_cookie = "lb_session=set-on-the-first-call; Path=/"
        upstream = AiohttpLlmUpstream()
        try:
            for key in ("first-tenant-key", "second-tenant-key"):
                request = UpstreamRequest(
                    f"http://localhost:{stub.port}/moonshot/v1/chat/completions",
                    (("authorization", f"Bearer {key}"), ("content-type", "application/json")),
                    json.dumps({"model": "kimi-k2.5", "messages": []}).encode(),
                )
                response = await upstream.send(request)
                assert response.status_code == 200
                assert b"".join([chunk async for chunk in response.chunks])
                await response.close()
        finally:
            await upstream.aclose()
    assert [r.headers.get("cookie") for r in stub.served("moonshot")] == [None, None]
