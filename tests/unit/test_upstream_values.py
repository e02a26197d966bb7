"""A provider call and its answer as values: the real key and the bodies stay out of reprs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.proxy import UpstreamRequest, UpstreamResponse

pytestmark = pytest.mark.unit

KEY = "sk-proj-real-provider-key-0123456789"


def test_a_provider_call_shows_its_url_but_not_its_key_or_body() -> None:
    call = UpstreamRequest(
        "https://api.openai.com/v1/chat/completions",
        (("Authorization", f"Bearer {KEY}"),),
        b'{"messages": [{"role": "user", "content": "private words"}]}',
    )
    shown = repr(call)
    assert "https://api.openai.com/v1/chat/completions" in shown
    assert KEY not in shown and "private words" not in shown


def test_an_answer_shows_its_status_but_not_its_body_stream() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"private answer"

    async def close() -> None:
        return None

    answer = UpstreamResponse(200, "application/json", chunks(), close)
    shown = repr(answer)
    assert "200" in shown and "application/json" in shown
    assert "chunks" not in shown and "close" not in shown
