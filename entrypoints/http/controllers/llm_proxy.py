"""The LLM proxy's endpoints (spec §13, http-api.md "LLM proxy"): the providers' own wire
formats, authenticated by a tenant's virtual key. Errors use the provider's error shape, so
the gateway's client libraries read them as they read the provider's own."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Stream
from litestar.types import Receive

from domain.ids import MessageId
from domain.proxy import WireFormat
from domain.use_cases.llm_proxy import (
    ListedModel,
    LlmProxy,
    ProxyAnswer,
    ProxyCall,
    ProxyRefusal,
    RefusalKind,
)
from entrypoints.http.auth import services_of

MESSAGE_ID_HEADER = "x-tierkeeper-message-id"
REFUSAL_HEADER = "x-tierkeeper-refusal"
_MESSAGE_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
PASSED_HEADERS = ("anthropic-version", "anthropic-beta")
MAX_BODY_BYTES = 32 * 1024 * 1024

_OPENAI_TYPES = {
    RefusalKind.AUTHENTICATION: "invalid_request_error",
    RefusalKind.PERMISSION: "permission_error",
    RefusalKind.NOT_FOUND: "invalid_request_error",
    RefusalKind.INVALID_REQUEST: "invalid_request_error",
    RefusalKind.RATE_LIMIT: "insufficient_quota",
    RefusalKind.UPSTREAM: "server_error",
}
_ANTHROPIC_TYPES = {
    RefusalKind.AUTHENTICATION: "authentication_error",
    RefusalKind.PERMISSION: "permission_error",
    RefusalKind.NOT_FOUND: "not_found_error",
    RefusalKind.INVALID_REQUEST: "invalid_request_error",
    RefusalKind.RATE_LIMIT: "rate_limit_error",
    RefusalKind.UPSTREAM: "api_error",
}


def error_body(wire: WireFormat, refusal: ProxyRefusal) -> dict[str, Any]:
    """The provider's own error shape: OpenAI ``{"error": {message, type, param, code}}``,
    Anthropic ``{"type": "error", "error": {type, message}}``."""
    if wire is WireFormat.OPENAI:
        return {
            "error": {
                "message": refusal.message,
                "type": _OPENAI_TYPES[refusal.kind],
                "param": refusal.param,
                "code": refusal.code,
            }
        }
    return {
        "type": "error",
        "error": {"type": _ANTHROPIC_TYPES[refusal.kind], "message": refusal.message},
    }


def refusal_body(wire: WireFormat, refusal: ProxyRefusal) -> bytes:
    return json.dumps(error_body(wire, refusal)).encode("utf-8")


def refusal_response(
    request: Request[Any, Any, Any], wire: WireFormat, refusal: ProxyRefusal
) -> Response[bytes]:
    request.scope.setdefault("state", {})["error_code"] = refusal.code
    return Response(
        refusal_body(wire, refusal),
        status_code=refusal.status_code,
        media_type="application/json",
        headers={REFUSAL_HEADER: refusal.code},
    )


def presented_key(headers: Mapping[str, str]) -> str:
    """``Authorization: Bearer tkv_…`` (OpenAI clients) or ``x-api-key: tkv_…`` (Anthropic)."""
    api_key = headers.get("x-api-key")
    if api_key:
        return api_key.strip()
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _invalid(message: str) -> ProxyRefusal:
    return ProxyRefusal(400, RefusalKind.INVALID_REQUEST, "invalid_request", message)


SYSTEM_FIELD_REFUSED = ProxyRefusal(
    400, RefusalKind.INVALID_REQUEST, "invalid_request",
    "system: not an OpenAI Chat Completions field; send system instructions as a message "
    "with role 'system'", param="system",
)  # fmt: skip
"""Anthropic's top-level ``system`` sent in an OpenAI call: an OpenAI-compatible upstream
would ignore or reject it and a fallback to Anthropic would drop it, so no route gets it."""


def parse_call(
    wire: WireFormat, body: bytes, headers: Mapping[str, str]
) -> ProxyCall | ProxyRefusal:
    """The call's model, streaming flag and token cap, checked as the providers check them
    (Anthropic requires ``max_tokens``); an OpenAI call may not carry Anthropic's ``system``."""
    if len(body) > MAX_BODY_BYTES:
        return ProxyRefusal(413, RefusalKind.INVALID_REQUEST, "request_too_large",
                            "the request body is too large")  # fmt: skip
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _invalid("the request body is not valid JSON")
    if not isinstance(document, dict):
        return _invalid("the request body must be a JSON object")
    model = document.get("model")
    if not isinstance(model, str) or not model.strip():
        return _invalid("model: a model id is required")
    stream = document.get("stream", False)
    if not isinstance(stream, bool):
        return _invalid("stream: must be true or false")
    if wire is WireFormat.OPENAI:
        if "system" in document:
            return SYSTEM_FIELD_REFUSED
        max_tokens = document.get("max_completion_tokens", document.get("max_tokens"))
    else:
        max_tokens = document.get("max_tokens")
        if max_tokens is None:
            return _invalid("max_tokens: Field required")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        return _invalid("max_tokens: must be a positive integer")
    message_id = headers.get(MESSAGE_ID_HEADER)
    if message_id is not None and not _MESSAGE_ID.match(message_id):
        return _invalid(f"{MESSAGE_ID_HEADER}: printable characters, at most 200")
    return ProxyCall(
        wire=wire,
        body=document,
        model=model,
        stream=stream,
        max_tokens=max_tokens,
        message_id=MessageId(message_id) if message_id else None,
        headers=tuple((name, headers[name]) for name in PASSED_HEADERS if name in headers),
    )


async def read_body(receive: Receive) -> bytes:
    """The request body, read for both spellings of the call routes (the fast path's and
    Litestar's) so they share the providers' limit; past ``MAX_BODY_BYTES`` the rest is not
    kept (``parse_call`` refuses a body that long). A caller that left before sending all of
    it sent nothing (a call that is not JSON: refused, and the refusal goes nowhere)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the caller left (http.disconnect)
            return b""
        chunk = message.get("body", b"")
        if size <= MAX_BODY_BYTES:
            parts.append(chunk)
            size += len(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


def _proxy(request: Request[Any, Any, Any]) -> LlmProxy | None:
    return services_of(request).llm_proxy


PROXY_OFF = ProxyRefusal(404, RefusalKind.NOT_FOUND, "not_found", "the LLM proxy is off")


async def proxy_outcome(
    proxy: LlmProxy | None,
    wire: WireFormat,
    body: bytes,
    headers: Mapping[str, str],
    state: dict[str, Any],
) -> ProxyAnswer | ProxyRefusal:
    """One call, parsed and proxied; what the request log and the metrics read of it (the
    upstreams tried, the refusal's code) is left in ``state``."""
    if proxy is None:
        outcome: ProxyAnswer | ProxyRefusal = PROXY_OFF
    else:
        call = parse_call(wire, body, headers)
        outcome = (
            call
            if isinstance(call, ProxyRefusal)
            else await proxy.call(presented_key(headers), call)
        )
        state["proxy_attempts"] = outcome.attempts
    if isinstance(outcome, ProxyRefusal):
        state["error_code"] = outcome.code
    return outcome


async def serve_call(request: Request[Any, Any, Any], wire: WireFormat) -> Response[Any]:
    """A call that reached Litestar (the exact call paths take ``proxy_fast_path``)."""
    state = request.scope.setdefault("state", {})
    outcome = await proxy_outcome(
        _proxy(request), wire, await read_body(request.receive), request.headers, state
    )
    if isinstance(outcome, ProxyRefusal):
        return refusal_response(request, wire, outcome)
    return answer_response(outcome)


def answer_response(answer: ProxyAnswer) -> Response[Any]:
    if answer.chunks is not None:
        return Stream(
            answer.chunks,
            status_code=answer.status_code,
            media_type=answer.content_type,
            headers={"cache-control": "no-cache"},
        )
    return Response(answer.body, status_code=answer.status_code, media_type=answer.content_type)


def models_body(wire: WireFormat, models: tuple[ListedModel, ...]) -> dict[str, Any]:
    if wire is WireFormat.OPENAI:
        return {
            "object": "list",
            "data": [
                {"id": m.id, "object": "model", "created": 0, "owned_by": m.provider}
                for m in models
            ],
        }
    data = [
        {"type": "model", "id": m.id, "display_name": m.name, "created_at": "1970-01-01T00:00:00Z"}
        for m in models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


class LlmProxyController(Controller):
    path = "/v1"
    tags = ("llm proxy",)
    include_in_schema = False
    opt = {"skip_compression": True}  # noqa: RUF012
    """Answers pass through as the provider sent them: a compressor would hold stream chunks
    back until it had enough to compress."""

    @post("/chat/completions", status_code=200)
    async def chat_completions(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """OpenAI Chat Completions, streamed or not, on the tenant's route."""
        return await serve_call(request, WireFormat.OPENAI)

    @post("/messages", status_code=200)
    async def messages(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Anthropic Messages, streamed or not, on the tenant's route."""
        return await serve_call(request, WireFormat.ANTHROPIC)

    @get("/models")
    async def models(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """The models the tenant may call, in the asking client's format."""
        wire = WireFormat.ANTHROPIC if "anthropic-version" in request.headers else WireFormat.OPENAI
        proxy = _proxy(request)
        if proxy is None:
            return refusal_response(request, wire, PROXY_OFF)
        listed = await proxy.models(presented_key(request.headers))
        if isinstance(listed, ProxyRefusal):
            return refusal_response(request, wire, listed)
        return Response(
            json.dumps(models_body(wire, listed)).encode("utf-8"), media_type="application/json"
        )
