"""The LLM proxy's rules (spec §13): which upstreams serve a call, in which order, and what
an upstream's answer means for the call.

A call arrives in one wire format (OpenAI Chat Completions or Anthropic Messages) and names
a model. The tenant's route (the §3 fallback rules, decided at admission) lists the models it
may run; the call is served by the requested model first and then by the route's later
choices that speak the same wire format (either format for a plain text call, whole or
streamed, which ``domain/wire_translation.py`` translates), so the caller sees one answer.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable

import attrs

from domain.bounded_memory import remember
from domain.catalog import AuthStyle, Catalog, split_model_ref
from domain.ids import ModelRef
from domain.metering import Credential
from domain.routing import ModelChoice, Route


class WireFormat(enum.Enum):
    OPENAI = "openai"
    """OpenAI Chat Completions: ``POST {base}/chat/completions``, the base ending in ``/v1``."""
    ANTHROPIC = "anthropic"
    """Anthropic Messages: ``POST {base}/v1/messages``."""


OPENAI_APIS = frozenset({"openai-completions"})
ANTHROPIC_APIS = frozenset({"anthropic-messages"})
GOOGLE_API = "google-generative-ai"
GOOGLE_OPENAI_PATH = "/openai/chat/completions"
"""Gemini's OpenAI-compatible endpoint, below the provider's ``v1beta`` base URL."""


def wire_of_api(api: str) -> WireFormat | None:
    """The wire format the proxy speaks to an upstream of this OpenClaw ``api`` style; Gemini
    is reached through its OpenAI-compatible endpoint. None: the proxy cannot serve it."""
    if api in OPENAI_APIS or api == GOOGLE_API:
        return WireFormat.OPENAI
    if api in ANTHROPIC_APIS:
        return WireFormat.ANTHROPIC
    return None


def proxied_api(api: str) -> str:
    """The ``api`` style a proxy-mode config gives a provider: Gemini is spoken to in the
    OpenAI format, every other provider in its own."""
    return "openai-completions" if api == GOOGLE_API else api


def proxy_base_url(proxy_url: str, api: str) -> str:
    """Where a proxy-mode config points a provider: OpenAI-style clients append
    ``/chat/completions`` to a base ending in ``/v1``; Anthropic clients append ``/v1``."""
    base = proxy_url.rstrip("/")
    if wire_of_api(api) is WireFormat.ANTHROPIC:
        return base
    return f"{base}/v1"


@attrs.frozen
class Upstream:
    """One provider call the proxy may make for a route choice."""

    choice: ModelChoice
    provider_id: str
    """The catalog id: a platform provider (``moonshot``) or a BYOK provider (``openai``)."""
    model_id: str
    url: str
    wire: WireFormat
    auth_style: AuthStyle
    extra_headers: tuple[tuple[str, str], ...]


def upstream_for(catalog: Catalog, choice: ModelChoice) -> Upstream | None:
    """The upstream of a route choice: a platform model on its platform provider, or the
    tenant's model on its BYOK provider (addressed as ``byok-<provider>/<model>``). None when
    the provider's format is one the proxy does not speak."""
    provider_ref, model_id = split_model_ref(choice.ref)
    if choice.credential is Credential.PLATFORM:
        platform = catalog.platform_provider(provider_ref)
        api, base, provider_id = platform.api, platform.base_url, platform.id
        extra: tuple[tuple[str, str], ...] = ()
        style = AuthStyle.BEARER if wire_of_api(api) is WireFormat.OPENAI else AuthStyle.X_API_KEY
    else:
        byok = next(
            (p for p in catalog.byok_providers if p.openclaw_provider_id == provider_ref), None
        )
        if byok is None:
            return None
        api, base, provider_id, extra = byok.api, byok.base_url, byok.id, byok.extra_headers
        style = AuthStyle.BEARER if api == GOOGLE_API else byok.auth_style
    wire = wire_of_api(api)
    if wire is None:
        return None
    return Upstream(
        choice=choice,
        provider_id=provider_id,
        model_id=model_id,
        url=upstream_url(base, api),
        wire=wire,
        auth_style=style,
        extra_headers=extra,
    )


def upstream_url(base_url: str, api: str) -> str:
    base = base_url.rstrip("/")
    if api == GOOGLE_API:
        return base + GOOGLE_OPENAI_PATH
    if wire_of_api(api) is WireFormat.ANTHROPIC:
        return base + "/v1/messages"
    return base + "/chat/completions"


def call_plan(
    catalog: Catalog,
    route: Route,
    selectable: tuple[ModelRef, ...],
    requested_model: str,
    wire: WireFormat,
    across_wires: bool = False,
) -> tuple[Upstream, ...]:
    """The upstreams that serve a call, in order: the requested model (a route choice, or a
    platform model the tier lets the tenant select), then the route's later choices in the
    call's wire format, or (``across_wires``: a plain text call the proxy translates) in
    either. Empty when the tenant may not run the requested model this way."""
    choices = list(route.choices())
    extra = [ModelChoice(ref, Credential.PLATFORM) for ref in selectable]
    candidates = dict.fromkeys((*choices, *extra))
    upstreams = [u for c in candidates if (u := upstream_for(catalog, c)) is not None]
    same_wire = [u for u in upstreams if u.wire is wire]
    first = next((u for u in same_wire if u.model_id == requested_model), None)
    if first is None:
        return ()
    later = upstreams if across_wires else same_wire
    later_route = [u for u in later if u.choice in choices and _after(u, first, choices)]
    return (first, *later_route)


MAX_CALL_PLANS = 4_096
"""Plans kept per process: the requested model is the caller's word, so the memory is bounded."""
PlanKey = tuple[Route, tuple[ModelRef, ...], str, WireFormat]


@attrs.define
class CallPlans:
    """One catalog's call plans worked out so far, by route, selectable models, requested
    model and wire format: the plan within the call's format and the one across formats.
    They depend on the catalog alone, which never changes while the process runs, so each
    is worked out once per process instead of once per call (its owner always passes the
    same catalog)."""

    _known: dict[PlanKey, tuple[tuple[Upstream, ...], tuple[Upstream, ...]]] = attrs.field(
        factory=dict, init=False
    )

    def plans(
        self,
        catalog: Catalog,
        route: Route,
        selectable: tuple[ModelRef, ...],
        requested_model: str,
        wire: WireFormat,
    ) -> tuple[tuple[Upstream, ...], tuple[Upstream, ...]]:
        """``call_plan`` within the call's wire format, and across wire formats."""
        key = (route, selectable, requested_model, wire)
        known = self._known.get(key)
        if known is None:
            known = (
                call_plan(catalog, route, selectable, requested_model, wire),
                call_plan(catalog, route, selectable, requested_model, wire, True),
            )
            remember(self._known, key, known, MAX_CALL_PLANS)
        return known


def _after(candidate: Upstream, first: Upstream, choices: list[ModelChoice]) -> bool:
    """Whether a route choice comes after the first upstream's (a selectable model outside
    the route starts from the route's top)."""
    if first.choice not in choices:
        return True
    return choices.index(candidate.choice) > choices.index(first.choice)


class Verdict(enum.Enum):
    ANSWER = "answer"
    """The caller gets this answer, success or not."""
    KEY_REJECTED = "key_rejected"
    """The tenant's own key was refused: mark it invalid and go on to the next upstream."""
    TRY_NEXT = "try_next"
    """Rate limited or failing: go on to the next upstream."""


def judge_upstream_status(status_code: int, credential: Credential) -> Verdict:
    """401/403 on the tenant's key mean the key is bad; 429 and 5xx move to the next
    fallback, and so does a refused platform key (the operator's fault, never shown to the
    tenant); anything else is the answer."""
    if status_code in (401, 403):
        return Verdict.KEY_REJECTED if credential is Credential.TENANT else Verdict.TRY_NEXT
    if status_code == 429 or status_code >= 500:
        return Verdict.TRY_NEXT
    return Verdict.ANSWER


@attrs.frozen
class UpstreamRequest:
    """One provider call: the URL, the headers (the real key among them) and the body."""

    url: str
    headers: tuple[tuple[str, str], ...] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)


@attrs.frozen
class UpstreamResponse:
    """A provider's answer whose body is read as it arrives; ``close()`` releases the
    connection (to the pool when the body was read to its end)."""

    status_code: int
    content_type: str
    chunks: AsyncIterator[bytes] = attrs.field(repr=False)
    close: Callable[[], Awaitable[None]] = attrs.field(repr=False)
