"""Bad calls to the LLM proxy are refused with 400 in the provider's own error shape, naming
what is wrong, before anything is admitted or forwarded; an unknown key is 401."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

pytestmark = pytest.mark.http

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"


@pytest.mark.parametrize(
    ("path", "body", "headers", "mentions"),
    [
        (OPENAI, b"{not json", {}, "not valid JSON"),
        (OPENAI, b"[1, 2]", {}, "JSON object"),
        (OPENAI, b'{"messages": []}', {}, "model"),
        (OPENAI, b'{"model": "kimi-k2.5", "stream": "yes"}', {}, "stream"),
        (OPENAI, b'{"model": "kimi-k2.5", "max_tokens": 0}', {}, "max_tokens"),
        (OPENAI, b'{"model": "kimi-k2.5", "max_completion_tokens": true}', {}, "max_tokens"),
        (OPENAI, b'{"model": "kimi-k2.5"}', {"x-tierkeeper-message-id": "has space"},
         "x-tierkeeper-message-id"),
        (ANTHROPIC, b'{"model": "claude-sonnet-4-6", "messages": []}', {}, "max_tokens"),
    ],
)  # fmt: skip
async def test_a_malformed_call_is_a_400_in_the_providers_shape(
    client: AsyncTestClient[Any], path: str, body: bytes, headers: dict[str, str], mentions: str
) -> None:
    response = await client.post(
        path, content=body, headers={"Authorization": "Bearer tkv_x", **headers}
    )
    assert response.status_code == 400
    document = response.json()
    if path == OPENAI:
        assert document["error"]["type"] == "invalid_request_error"
        assert mentions in document["error"]["message"]
    else:
        assert document == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": document["error"]["message"]},
        }
        assert mentions in document["error"]["message"]


async def test_an_unknown_virtual_key_is_401_for_calls_and_model_lists(
    client: AsyncTestClient[Any],
) -> None:
    call = await client.post(
        OPENAI, json={"model": "kimi-k2.5", "messages": []},
        headers={"Authorization": "Bearer tkv_unknown"},
    )  # fmt: skip
    assert call.status_code == 401
    assert call.json()["error"]["code"] == "invalid_api_key"
    assert call.headers["x-tierkeeper-refusal"] == "invalid_api_key"
    listed = await client.get(
        "/v1/models", headers={"x-api-key": "tkv_unknown", "anthropic-version": "2023-06-01"}
    )
    assert listed.status_code == 401
    assert listed.json()["error"]["type"] == "authentication_error"
