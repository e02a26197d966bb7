"""A local LLM provider on 127.0.0.1 speaking both wire formats the proxy forwards to:
OpenAI Chat Completions (``…/chat/completions``) and Anthropic Messages (``…/v1/messages``),
streamed (server-sent events, written chunk by chunk) and not, always reporting usage.

Each provider lives under its own prefix (``http://127.0.0.1:PORT/moonshot/v1`` …); the
answer's text names the prefix and model that served it. What it answers is set per test:

- ``fail[prefix] = [429, 500, …]``: the next requests to that prefix get these statuses;
- a key containing ``unauthorized`` → 401, ``forbidden`` → 403 (the error body echoes the
  key, as some providers do, so a test can prove the proxy never passes it on);
- ``usage``: the (input, output, cache read) tokens every answer reports;
- ``chunks`` and ``chunk_delay_s``: how many text chunks a stream sends, and how slowly;
- ``answer_delay_s``: how long every answer waits before its first byte;
- ``set_cookie``: a ``Set-Cookie`` header every answer carries (providers' load balancers
  set such cookies; a shared client must never send them back on another call).

Every request is recorded (prefix, path, the key presented, the JSON body).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from domain.catalog import Catalog

OPENAI_PATH = "/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


@attrs.frozen
class StubRequest:
    prefix: str
    path: str
    key: str | None
    body: dict[str, Any]
    headers: dict[str, str]


@attrs.define
class LlmStub:
    port: int
    usage: tuple[int, int, int] = (23, 11, 5)
    chunks: int = 3
    chunk_delay_s: float = 0.0
    answer_delay_s: float = 0.0
    set_cookie: str | None = None
    fail: dict[str, list[int]] = attrs.Factory(dict)
    requests: list[StubRequest] = attrs.Factory(list)
    disconnects: int = 0
    """Streams whose reader went away before the end."""
    lock: threading.Lock = attrs.Factory(threading.Lock)

    def base_url(self, prefix: str, suffix: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{prefix}{suffix}"

    def provider_env(self, catalog: Catalog) -> dict[str, str]:
        """``TIERKEEPER_PROVIDER_<ID>_BASE_URL`` for every platform and BYOK provider, each
        under its own prefix, in the shape its catalog base URL has."""
        env = {}
        for provider in (*catalog.platform_providers, *catalog.byok_providers):
            suffix = ""
            if provider.api == "openai-completions":
                suffix = "/v1"
            elif provider.api == "google-generative-ai":
                suffix = "/v1beta"
            env[f"TIERKEEPER_PROVIDER_{provider.id.upper()}_BASE_URL"] = self.base_url(
                provider.id, suffix
            )
        return env

    def next_failure(self, prefix: str) -> int | None:
        with self.lock:
            queue = self.fail.get(prefix)
            return queue.pop(0) if queue else None

    def served(self, prefix: str | None = None) -> list[StubRequest]:
        return [r for r in self.requests if prefix is None or r.prefix == prefix]


def _openai_answer(model: str, text: str, usage: tuple[int, int, int]) -> dict[str, Any]:
    inp, out, cache = usage
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": inp + cache,
            "completion_tokens": out,
            "total_tokens": inp + cache + out,
            "prompt_tokens_details": {"cached_tokens": cache},
        },
    }


def _anthropic_answer(model: str, text: str, usage: tuple[int, int, int]) -> dict[str, Any]:
    inp, out, cache = usage
    return {
        "id": "msg_stub",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": inp, "output_tokens": out, "cache_read_input_tokens": cache},
    }


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _openai_stream(
    model: str, pieces: list[str], usage: tuple[int, int, int], include_usage: bool
) -> Iterator[bytes]:
    base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": model}
    for i, piece in enumerate(pieces):
        delta = {"content": piece} | ({"role": "assistant"} if i == 0 else {})
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        yield _sse(base | {"choices": [choice]})
    yield _sse(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        yield _sse(base | {"choices": [], "usage": _openai_answer(model, "", usage)["usage"]})
    yield _sse("[DONE]")


def _anthropic_stream(
    model: str, pieces: list[str], usage: tuple[int, int, int]
) -> Iterator[bytes]:
    inp, out, cache = usage
    start = _anthropic_answer(model, "", usage) | {"content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": inp, "output_tokens": 1, "cache_read_input_tokens": cache}
    yield _sse({"type": "message_start", "message": start}, "message_start")
    yield _sse(
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "text", "text": ""}},
        "content_block_start",
    )  # fmt: skip
    for piece in pieces:
        yield _sse(
            {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": piece}},
            "content_block_delta",
        )  # fmt: skip
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    yield _sse(
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": out}},
        "message_delta",
    )  # fmt: skip
    yield _sse({"type": "message_stop"}, "message_stop")


def _handler(stub: LlmStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _json(self, status: int, body: object) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if stub.set_cookie:
                self.send_header("Set-Cookie", stub.set_cookie)
            self.end_headers()
            self.wfile.write(payload)

        def _error(self, anthropic: bool, status: int, message: str) -> None:
            kind = {401: "authentication_error", 403: "permission_error",
                    429: "rate_limit_error"}.get(status, "api_error")  # fmt: skip
            if anthropic:
                self._json(status, {"type": "error", "error": {"type": kind, "message": message}})
            else:
                self._json(status, {"error": {"message": message, "type": kind, "code": None}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            prefix, _, rest = self.path.lstrip("/").partition("/")
            path = "/" + rest
            anthropic = path.endswith(ANTHROPIC_PATH)
            if not anthropic and not path.endswith(OPENAI_PATH):
                self._json(404, {"error": "not found"})
                return
            if anthropic:
                key = self.headers.get("x-api-key")
            else:
                auth = self.headers.get("Authorization", "")
                key = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
            body = json.loads(raw)
            with stub.lock:
                stub.requests.append(
                    StubRequest(
                        prefix, path, key, body, {k.lower(): v for k, v in self.headers.items()}
                    )
                )
            if stub.answer_delay_s:
                time.sleep(stub.answer_delay_s)
            if not key:
                self._error(anthropic, 401, "no API key")
                return
            for marker, status in (("unauthorized", 401), ("forbidden", 403)):
                if marker in key:
                    self._error(anthropic, status, f"Incorrect API key provided: {key}")
                    return
            failure = stub.next_failure(prefix)
            if failure is not None:
                self._error(anthropic, failure, f"stub failure {failure}")
                return
            model = body.get("model", "")
            pieces = [f"{prefix}:{model}"] + [f" part{i}" for i in range(1, stub.chunks)]
            if not body.get("stream"):
                text = "".join(pieces)
                if anthropic:
                    self._json(200, _anthropic_answer(model, text, stub.usage))
                else:
                    self._json(200, _openai_answer(model, text, stub.usage))
                return
            if anthropic:
                events = _anthropic_stream(model, pieces, stub.usage)
            else:
                include = bool((body.get("stream_options") or {}).get("include_usage"))
                events = _openai_stream(model, pieces, stub.usage, include)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for event in events:
                    self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                    self.wfile.flush()
                    if stub.chunk_delay_s:
                        time.sleep(stub.chunk_delay_s)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                with stub.lock:
                    stub.disconnects += 1
                self.close_connection = True

    return Handler


@contextmanager
def running_llm_stub() -> Iterator[LlmStub]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    stub = LlmStub(port=server.server_address[1])
    server.RequestHandlerClass = _handler(stub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
