"""Bad calls to the LLM proxy are refused with 400 in the provider's own error shape, naming
what is wrong, before anything is admitted or forwarded; an unknown key is 401."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from litestar.testing import AsyncTestClient

from domain.errors import DatabaseUnavailable
from entrypoints.bootstrap import Services
from entrypoints.http.app import create_app
from entrypoints.http.controllers.llm_proxy import MAX_BODY_BYTES

pytestmark = pytest.mark.http

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
ACCESS_LOG = "tierkeeper.http.access"


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


@attrs.frozen
class FailingProxy:
    """An LLM proxy whose every call fails as its storage or its code might."""

    error: Exception

    async def call(self, presented_key: str, call: Any) -> Any:
        raise self.error


FAILURES = {
    "database down": (DatabaseUnavailable("the database is gone"), 503, "database_unavailable"),
    "a bug": (RuntimeError("secret detail sk-ant-0123"), 500, "internal_error"),
}


@pytest.fixture(params=list(FAILURES))
async def failing(
    request: pytest.FixtureRequest, services: Services
) -> AsyncIterator[tuple[AsyncTestClient[Any], int, str]]:
    error, status, code = FAILURES[request.param]
    app = create_app(attrs.evolve(services, llm_proxy=FailingProxy(error)))
    async with AsyncTestClient(app) as test_client:
        yield test_client, status, code


async def test_a_failing_call_is_answered_like_any_other_routes_failure(
    failing: tuple[AsyncTestClient[Any], int, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The call routes bypass Litestar, not its exception handlers: a database that is down
    is a 503 to retry, anything unexpected a bare 500 that quotes nothing of the failure;
    both logged as any request is."""
    client, status, code = failing
    caplog.set_level(logging.INFO, logger=ACCESS_LOG)
    response = await client.post(
        OPENAI, json={"model": "kimi-k2.5", "messages": []},
        headers={"Authorization": "Bearer tkv_x"},
    )  # fmt: skip
    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.headers.get("retry-after") == ("1" if status == 503 else None)
    assert "sk-ant-0123" not in response.text
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOG]
    assert [(line["path"], line["status"], line["outcome"]) for line in logged] == [
        (OPENAI, status, code)
    ]


async def test_the_call_paths_keep_litestars_answers_for_other_methods_and_spellings(
    client: AsyncTestClient[Any],
) -> None:
    """Only an exact ``POST`` takes the fast path: other methods are still told which one
    the route allows, and a trailing slash still reaches the same call."""
    wrong_method = await client.get(OPENAI)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
    slashed = await client.post(
        f"{ANTHROPIC}/", content=b"{not json", headers={"x-api-key": "tkv_x"}
    )
    assert slashed.status_code == 400
    assert slashed.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("path", [OPENAI, f"{OPENAI}/"])
async def test_a_body_past_the_proxys_limit_is_a_413_in_the_providers_shape(
    client: AsyncTestClient[Any], path: str
) -> None:
    """The limit is the providers' own (32 MiB), not the framework's 10 MB default, on the
    fast path and on Litestar's route alike (one body reader)."""
    padding = b" " * (MAX_BODY_BYTES - 40)
    within = await client.post(
        path,
        content=b'{"model": "kimi-k2.5"}' + padding,
        headers={"Authorization": "Bearer tkv_x"},
    )
    assert within.status_code == 401  # read whole and parsed; only the key is unknown
    beyond = await client.post(
        path, content=b"{" + padding + b" " * 64 + b"}", headers={"Authorization": "Bearer tkv_x"}
    )
    assert beyond.status_code == 413
    assert beyond.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("path", [OPENAI, f"{OPENAI}/"])
async def test_an_openai_call_with_anthropics_system_field_is_refused_before_its_key_is_read(
    client: AsyncTestClient[Any], path: str
) -> None:
    """Refused on every route (an Anthropic fallback would drop it): 400 naming the field
    and the message to send instead, before the key is looked up (this key is unknown)."""
    response = await client.post(
        path, json={"model": "kimi-k2.5", "system": "be brief", "messages": []},
        headers={"Authorization": "Bearer tkv_x"},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "system: not an OpenAI Chat Completions field; send system "
            "instructions as a message with role 'system'",
            "type": "invalid_request_error",
            "param": "system",
            "code": "invalid_request",
        }
    }


async def test_an_anthropic_call_keeps_its_system_field(client: AsyncTestClient[Any]) -> None:
    response = await client.post(
        ANTHROPIC, json={"model": "claude-sonnet-4-6", "system": "be brief", "max_tokens": 9,
                         "messages": []},
        headers={"x-api-key": "tkv_x"},
    )  # fmt: skip
    assert response.status_code == 401  # parsed whole; only the key is unknown
