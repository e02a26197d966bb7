"""Serve one LLM call for a tenant's gateway (spec §13): authenticate its virtual key, admit
the call against the right budget, forward it with the real key along the tenant's route,
pass the answer through as it arrives, and settle the usage the provider reported."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any

import attrs

from domain.catalog import AuthStyle, Catalog
from domain.errors import UpstreamUnreachable
from domain.ids import MessageId, ModelRef, TenantId
from domain.llm_usage import NO_TOKENS, StreamUsageReader, answer_usage
from domain.metering import Credential, RefusalReason, Refused, TokenUsage, reservation_tokens
from domain.ports import CredentialRepository, KeyStore, LlmUpstream, TenantRepository
from domain.proxy import (
    CallPlans,
    Upstream,
    UpstreamRequest,
    UpstreamResponse,
    Verdict,
    WireFormat,
    judge_upstream_status,
    upstream_for,
)
from domain.routing import Route, decide_route
from domain.secrets import Secret
from domain.tenants import Tenant
from domain.use_cases.budget_leases import LeaseDraw
from domain.use_cases.credentials import Credentials
from domain.use_cases.metering import Metering
from domain.use_cases.virtual_keys import VirtualKeys
from domain.wire_translation import (
    StreamTranslator,
    plain_text_chat,
    translate_answer,
    translate_request,
)

log = logging.getLogger("tierkeeper.llm_proxy")

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
REDACTED = b"[redacted]"


class RefusalKind(enum.Enum):
    """What went wrong, as the providers' error shapes name it."""

    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    INVALID_REQUEST = "invalid_request"
    RATE_LIMIT = "rate_limit"
    UPSTREAM = "upstream"


@attrs.frozen
class ProxyCall:
    """A call as the gateway made it: its wire format, parsed body and what it asks for."""

    wire: WireFormat
    body: Mapping[str, Any] = attrs.field(repr=False)
    model: str
    stream: bool
    max_tokens: int | None
    message_id: MessageId | None
    headers: tuple[tuple[str, str], ...] = ()
    """Headers passed on to the provider (``anthropic-version``, ``anthropic-beta``)."""


@attrs.frozen
class UpstreamAttempt:
    """One upstream the call was sent to: its provider and the status it answered (None:
    unreachable). Every attempt before the last is an in-call fallback."""

    provider_id: str
    status_code: int | None


@attrs.frozen
class ProxyRefusal:
    status_code: int
    kind: RefusalKind
    code: str
    message: str
    attempts: tuple[UpstreamAttempt, ...] = ()
    param: str | None = None
    """The request field refused, where one is to blame (OpenAI's error names it)."""


@attrs.frozen
class ProxyAnswer:
    """The provider's answer: whole (``body``) or passed through as it arrives (``chunks``)."""

    status_code: int
    content_type: str
    body: bytes = attrs.field(repr=False, default=b"")
    chunks: AsyncIterator[bytes] | None = attrs.field(repr=False, default=None)
    attempts: tuple[UpstreamAttempt, ...] = ()


@attrs.frozen
class CallEntry:
    """Where one call's tokens settle: its tenant, its ledger id and its reservation."""

    tenant_id: TenantId
    ledger_id: MessageId
    call: ProxyCall
    reserve: int
    drawn: LeaseDraw | None = None

    def settles_in_background(self) -> bool:
        """A call on its own reservation settles after its caller has the answer; one on
        a named message's reservation before (the gateway settles that message after its
        last call, and must find the call's usage settled: its own settle then replays)."""
        return self.ledger_id != self.call.message_id


@attrs.frozen
class ListedModel:
    id: str
    name: str
    provider: str


_REFUSALS = {
    RefusalReason.MESSAGE_CAP_REACHED: (
        429,
        RefusalKind.RATE_LIMIT,
        "the daily message cap is reached",
    ),
    RefusalReason.TOKEN_BUDGET_EXHAUSTED: (
        429,
        RefusalKind.RATE_LIMIT,
        "the token budget for the period is spent",
    ),
    RefusalReason.BYOK_KEY_INVALID: (
        429,
        RefusalKind.RATE_LIMIT,
        "the tenant's own key is invalid and platform fallback is disabled",
    ),
    RefusalReason.SUBSCRIPTION_INACTIVE: (
        403,
        RefusalKind.PERMISSION,
        "the subscription is not active",
    ),
    RefusalReason.TENANT_UNKNOWN: (
        401,
        RefusalKind.AUTHENTICATION,
        "the virtual key's tenant is unknown",
    ),
}
"""Every metering refusal's status, kind and words in the proxy's answer."""
UNKNOWN_KEY = ProxyRefusal(401, RefusalKind.AUTHENTICATION, "invalid_api_key", "invalid API key")


def refusal_for(refused: Refused) -> ProxyRefusal:
    """A metering refusal in the proxy's terms: cap and budget answer 429 like a provider's
    rate limit, an inactive subscription 403."""
    status, kind, message = _REFUSALS[refused.reason]
    if refused.resets_at is not None:
        message = f"{message}; it resets at {refused.resets_at.isoformat()}"
    return ProxyRefusal(status, kind, refused.reason.value, message)


@attrs.frozen
class LlmProxy:
    catalog: Catalog
    virtual_keys: VirtualKeys
    metering: Metering
    credentials: Credentials
    stored_credentials: CredentialRepository
    tenants: TenantRepository
    key_store: KeyStore
    upstream: LlmUpstream
    platform_keys: Mapping[str, Secret] = attrs.field(repr=False)
    """The platform's own provider keys by catalog provider id."""
    _finishing: set[asyncio.Task[None]] = attrs.field(factory=set, init=False, repr=False, eq=False)
    _plans: CallPlans = attrs.field(factory=CallPlans, init=False, repr=False, eq=False)

    async def call(self, presented_key: str, call: ProxyCall) -> ProxyAnswer | ProxyRefusal:
        """Reserve the call's tokens (no message counted: caps stay with admission; a call
        naming its admitted message uses that message's reservation while it is held), then
        try the route's upstreams in order until one answers; the caller sees that answer.
        A model the tenant may not use is refused before anything is reserved."""
        tenant_id = await self.virtual_keys.tenant_for(presented_key)
        if tenant_id is None:
            return UNKNOWN_KEY
        call_id = MessageId(f"call-{secrets.token_hex(12)}")
        reserved = await self.metering.reserve_call(
            tenant_id, call_id, call.message_id, call.max_tokens,
            lambda tenant, route: self._plan(tenant, route, call),
        )  # fmt: skip
        admission, plan = reserved.admission, reserved.plan
        if admission is None:
            return _model_not_found(call)
        if isinstance(admission.decision, Refused):
            return refusal_for(admission.decision)
        reserve = reservation_tokens(call.max_tokens, self.catalog.reservation_tokens_default)
        entry = CallEntry(tenant_id, reserved.ledger_id, call, reserve, reserved.drawn)
        if not plan:  # the platform fallbacks were withdrawn: the budget cannot hold the call
            await self._settle(entry, None, NO_TOKENS)
            return refusal_for(Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, None))
        attempts: list[UpstreamAttempt] = []
        answering = await self._first_answer(entry, plan, attempts)
        if answering is None:
            await self._settle(entry, None, NO_TOKENS)
            return _exhausted(tuple(attempts))
        upstream, key, response = answering
        answer = await self._answer(entry, upstream, key, response)
        return attrs.evolve(answer, attempts=tuple(attempts))

    async def _first_answer(
        self, entry: CallEntry, plan: Sequence[Upstream], attempts: list[UpstreamAttempt]
    ) -> tuple[Upstream, Secret, UpstreamResponse] | None:
        """Try the plan's upstreams in order (platform fallbacks are in it only when the
        hold covers them) until one answers; each attempt is noted. A failure on the way
        (the key store, the credentials, a cancelled call) settles the call as it leaves:
        its whole reservation, on the upstream's model, while a request was out; nothing
        otherwise. So neither its reservation nor the budget lease it drew from stays held
        until it expires."""
        sending: Upstream | None = None
        try:
            for upstream in plan:
                key = await self._key_for(entry.tenant_id, upstream)
                if key is None:
                    continue
                sending = upstream
                response = await self._send(entry, upstream, key)
                sending = None
                if response is None:
                    attempts.append(UpstreamAttempt(upstream.provider_id, None))
                    continue
                attempts.append(UpstreamAttempt(upstream.provider_id, response.status_code))
                verdict = judge_upstream_status(response.status_code, upstream.choice.credential)
                if verdict is Verdict.ANSWER:
                    return upstream, key, response
                await response.close()
                if verdict is Verdict.KEY_REJECTED:
                    await self.credentials.report_key_failure(
                        entry.tenant_id, upstream.provider_id, response.status_code
                    )
        except BaseException:
            usage = NO_TOKENS if sending is None else TokenUsage(0, entry.reserve)
            self._in_background(self._settle(entry, sending, usage))
            raise
        return None

    async def _send(
        self, entry: CallEntry, upstream: Upstream, key: Secret
    ) -> UpstreamResponse | None:
        """The call sent to ``upstream``; None when it could not be reached."""
        try:
            return await self.upstream.send(self._request(entry, upstream, key))
        except UpstreamUnreachable:
            return None

    async def models(self, presented_key: str) -> tuple[ListedModel, ...] | ProxyRefusal:
        """The models the tenant's route and tier offer right now."""
        tenant_id = await self.virtual_keys.tenant_for(presented_key)
        if tenant_id is None:
            return UNKNOWN_KEY
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            return UNKNOWN_KEY
        credential = await self.stored_credentials.get(tenant.id)
        route = decide_route(self.catalog, tenant, credential)
        tier = self.catalog.tier(tenant.tier)
        seen: dict[str, ListedModel] = {}
        for choice in route.choices():
            upstream = upstream_for(self.catalog, choice)
            if upstream is not None:
                seen.setdefault(upstream.model_id, _listed(self.catalog, upstream))
        for ref in tier.selectable_models:
            model = self.catalog.model(ref)
            seen.setdefault(
                model.model_id(), ListedModel(model.model_id(), model.name, model.provider())
            )
        return tuple(seen.values())

    def _plan(self, tenant: Tenant, route: Route, call: ProxyCall) -> tuple[Upstream, ...]:
        """The route's upstreams for the requested model, or the tier's selectable model
        when the route itself does not offer it; fallbacks in the other wire format only
        when the route has some and the call is plain text (read only then)."""
        selectable = self.catalog.tier(tenant.tier).selectable_models
        plan, wider = self._plans.plans(self.catalog, route, selectable, call.model, call.wire)
        if len(wider) == len(plan) or plain_text_chat(call.body, call.wire) is None:
            return plan
        return wider

    async def _key_for(self, tenant_id: TenantId, upstream: Upstream) -> Secret | None:
        """The platform's key for a platform choice; the tenant's key, decrypted for this
        call only, for its own. None when no such key is configured or stored."""
        if upstream.choice.credential is Credential.PLATFORM:
            return self.platform_keys.get(upstream.provider_id)
        stored = await self.stored_credentials.get(tenant_id)
        if stored is None or not stored.usable():
            return None
        return await self.key_store.decrypt(stored.ciphertext)

    def _request(self, entry: CallEntry, upstream: Upstream, key: Secret) -> UpstreamRequest:
        """The call as this upstream takes it: in its format, naming its model, capped at
        what the call reserved where the format requires a cap (an OpenAI stream asks for
        its usage); the key as ``x-api-key`` where the upstream wants it so, else as a bearer
        token (Gemini too, on its OpenAI-compatible endpoint)."""
        call = entry.call
        body = translate_request(call.body, call.wire, upstream.wire, entry.reserve)
        assert body is not None  # the plan crosses wires only for a call that translates
        body["model"] = upstream.model_id
        if upstream.wire is WireFormat.OPENAI and call.stream:
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                      "include_usage": True}  # fmt: skip
        headers = [("content-type", "application/json"), *upstream.extra_headers]
        if upstream.auth_style is AuthStyle.X_API_KEY:
            headers.append(("x-api-key", key.reveal()))
        else:
            headers.append(("authorization", f"Bearer {key.reveal()}"))
        if upstream.wire is WireFormat.ANTHROPIC:
            names = {name for name, _ in headers}
            passed = dict(call.headers)
            passed.setdefault("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
            headers += [(n, v) for n, v in passed.items() if n not in names]
        return UpstreamRequest(upstream.url, tuple(headers), json.dumps(body).encode())

    async def _answer(
        self, entry: CallEntry, upstream: Upstream, key: Secret, response: UpstreamResponse
    ) -> ProxyAnswer | ProxyRefusal:
        """A streamed success passes through as it arrives and settles when it ends (or the
        caller leaves); anything else is read whole, scrubbed of the key, and answered while
        its settlement runs as its own task (exact all the same; ``drain`` waits for it),
        except on a named message's reservation: the gateway settles that message after its
        last call, and must find it settled with what the provider measured."""
        if entry.call.stream and 200 <= response.status_code < 300:
            chunks = self._relay(entry, upstream, response)
            return ProxyAnswer(response.status_code, response.content_type, chunks=chunks)
        try:
            body = b"".join([chunk async for chunk in response.chunks])
        except BaseException:  # the provider answered; what it measured is not known
            self._in_background(self._settle(entry, upstream, TokenUsage(0, entry.reserve)))
            raise
        finally:
            await response.close()
        usage = answer_usage(upstream.wire, body) if response.status_code < 300 else None
        settling = self._settle(entry, upstream, usage or NO_TOKENS)
        if entry.settles_in_background():
            self._in_background(settling)
        else:
            await settling
        if upstream.wire is not entry.call.wire:
            return _translated(body, upstream, entry.call.wire, response.status_code)
        return ProxyAnswer(response.status_code, response.content_type, _scrub(body, key))

    async def _relay(
        self, entry: CallEntry, upstream: Upstream, response: UpstreamResponse
    ) -> AsyncIterator[bytes]:
        """Each chunk goes to the caller as it comes; the usage events are read on the way.
        Whether the stream ends or the caller goes away, the call settles what the provider
        reported, or its whole reservation when it reported nothing; as its own task, so the
        stream's end waits for no ledger (except on a named message's reservation)."""
        reader = StreamUsageReader(upstream.wire)
        translator = None
        if upstream.wire is not entry.call.wire:
            options = entry.call.body.get("stream_options")
            asked = isinstance(options, dict) and options.get("include_usage") is True
            translator = StreamTranslator(upstream.wire, entry.call.wire, upstream.model_id, asked)
        try:
            async for chunk in response.chunks:
                reader.feed(chunk)
                out = translator.feed(chunk) if translator else chunk
                if out:  # a translated event may still be incomplete
                    yield out
            if translator is not None and (tail := translator.finish()):
                yield tail
        except BaseException:
            self._in_background(self._close_and_settle(entry, upstream, response, reader))
            raise
        settling = self._close_and_settle(entry, upstream, response, reader)
        if entry.settles_in_background():
            self._in_background(settling)  # the stream ends without waiting for the ledger
        else:
            await settling

    async def _close_and_settle(
        self,
        entry: CallEntry,
        upstream: Upstream,
        response: UpstreamResponse,
        reader: StreamUsageReader,
    ) -> None:
        await response.close()
        usage = reader.finish() or TokenUsage(0, entry.reserve)
        await self._settle(entry, upstream, usage)

    def _in_background(self, work: Awaitable[None]) -> None:
        """Settlement off the caller's path (a whole answer), or outliving a cancelled
        stream: it runs as its own task, kept until done."""
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        task.add_done_callback(_report_failure)

    async def _settle(self, entry: CallEntry, upstream: Upstream | None, usage: TokenUsage) -> None:
        """Settle the call's usage against its ledger entry. A named message the gateway
        settled itself while this call ran replays; the call's tokens then settle under an
        id of their own (a settlement without admission counts in full: nothing is free)."""
        model = upstream.choice.ref if upstream else ModelRef(entry.call.model)
        credential = upstream.choice.credential if upstream else Credential.PLATFORM
        settle = self.metering.settle
        first = await settle(
            entry.tenant_id, entry.ledger_id, model, usage, credential, entry.drawn
        )
        if first.replayed and usage.total():  # only a named message's id is ever replayed
            extra = MessageId(f"{entry.ledger_id}~{secrets.token_hex(8)}")
            await settle(entry.tenant_id, extra, model, usage, credential)

    async def drain(self) -> None:
        """Wait for settlements still running after their callers left (shutdown, tests);
        the budget leases are closed first, and given back as their last calls settle."""
        await self.metering.end_leases()
        while self._finishing:
            await asyncio.gather(*list(self._finishing), return_exceptions=True)


def _report_failure(task: asyncio.Task[None]) -> None:
    """A settlement that failed in its own task is logged, never lost silently."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("a proxied call's settlement failed", exc_info=error)


def _listed(catalog: Catalog, upstream: Upstream) -> ListedModel:
    model = catalog.find_model(upstream.choice.ref)
    name = model.name if model is not None else upstream.model_id
    return ListedModel(upstream.model_id, name, upstream.provider_id)


def _scrub(body: bytes, key: Secret) -> bytes:
    """An error body never carries the key it was answered to (some providers echo it)."""
    raw = key.reveal().encode()
    return body.replace(raw, REDACTED) if raw and raw in body else body


def _translated(
    body: bytes, upstream: Upstream, wire: WireFormat, status_code: int
) -> ProxyAnswer | ProxyRefusal:
    """A fallback's whole answer in the caller's format; its refusal (never its body, which
    is in the other format) as the proxy's own error."""
    translated = translate_answer(body, upstream.wire, wire, upstream.model_id)
    if status_code < 300 and translated is not None:
        return ProxyAnswer(status_code, "application/json", translated)
    message = f"the fallback model {upstream.model_id!r} could not answer this call"
    if status_code >= 400:  # a client error: a 5xx went on to the next upstream
        return ProxyRefusal(status_code, RefusalKind.INVALID_REQUEST, "upstream_refused", message)
    return ProxyRefusal(502, RefusalKind.UPSTREAM, "upstream_refused", message)


def _model_not_found(call: ProxyCall) -> ProxyRefusal:
    return ProxyRefusal(
        404,
        RefusalKind.NOT_FOUND,
        "model_not_found",
        f"the model {call.model!r} is not one this tenant may use in this format",
    )


def _exhausted(attempts: tuple[UpstreamAttempt, ...]) -> ProxyRefusal:
    """Every upstream failed: the caller sees the last failure's kind (rate limited, or
    anything else as unavailable), never its body."""
    if attempts and attempts[-1].status_code == 429:
        return ProxyRefusal(
            429, RefusalKind.RATE_LIMIT, "upstream_rate_limited",
            "every model this tenant may use is rate limited; try again shortly", attempts,
        )  # fmt: skip
    return ProxyRefusal(
        502, RefusalKind.UPSTREAM, "upstream_unavailable",
        "no model this tenant may use answered; try again shortly", attempts,
    )  # fmt: skip
