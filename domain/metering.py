"""Metering rules: admission against the day's message cap and the period's token budget,
settlement with model weights, reservation expiry and threshold crossings.

The usage ledger applies these rules atomically in its storage; ``evaluate_admission`` is the
rule itself, which the in-memory ledger runs directly and the SQL ledger mirrors in one
conditional statement per counter.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime, timedelta
from decimal import Decimal

import attrs

from domain.errors import ValidationError
from domain.ids import MessageId, ModelRef, ReservationId, TenantId
from domain.windows import Window

THRESHOLD_PERCENTS = (80, 100)
MAX_TOKENS_PER_MESSAGE = 2_000_000


class RefusalReason(enum.Enum):
    MESSAGE_CAP_REACHED = "message_cap_reached"
    TOKEN_BUDGET_EXHAUSTED = "token_budget_exhausted"
    SUBSCRIPTION_INACTIVE = "subscription_inactive"
    TENANT_UNKNOWN = "tenant_unknown"
    BYOK_KEY_INVALID = "byok_key_invalid"


class Credential(enum.Enum):
    """Whose key served a message."""

    TENANT = "tenant"
    PLATFORM = "platform"


class LimitKind(enum.Enum):
    MESSAGES = "messages"
    TOKENS = "tokens"


@attrs.frozen
class AdmissionRequest:
    """Everything the ledger needs to admit one message atomically.

    ``token_budget`` is the platform-token budget of the period (None: no limit) and
    ``reserve_tokens`` what this message holds against it until settled. With
    ``reservation_optional`` (a BYOK tenant's own key serves, platform models only as
    fallbacks) a budget that cannot hold the reservation admits the message holding nothing,
    without its platform fallbacks. ``route`` is what the admission offers; its settlement
    is checked against it.
    """

    tenant_id: TenantId
    message_id: MessageId
    day: Window
    period: Window
    message_cap: int
    token_budget: int | None
    reserve_tokens: int
    now: datetime
    reservation_expires_at: datetime
    tenant_revision: int | None = None
    """The revision of the tenant the request was built from; when given, the ledger answers
    ``TenantChanged``, changing nothing, unless the stored tenant still has it."""
    reservation_optional: bool = False
    route: OfferedRoute = attrs.field(factory=lambda: OfferedRoute((), None, Decimal(1)))


@attrs.frozen
class OfferedRoute:
    """What an admission offered, kept with its reservation: the model refs of the route,
    the model on the tenant's own key (None: the route has no tenant key), and the highest
    budget weight among the route's platform models (what an unoffered model is rated at).
    """

    models: tuple[ModelRef, ...]
    tenant_key_model: ModelRef | None
    max_weight: Decimal

    def without_platform(self) -> OfferedRoute:
        """The route once its platform fallbacks are withdrawn: the tenant's key alone."""
        own = (self.tenant_key_model,) if self.tenant_key_model else ()
        return attrs.evolve(self, models=own)


@attrs.frozen
class Counters:
    """A tenant's standing in one day and one period, as the ledger holds it."""

    messages_today: int
    platform_tokens_settled: int
    platform_tokens_reserved: int
    own_key_tokens: int = 0

    def platform_tokens_committed(self) -> int:
        """Settled platform tokens plus those held by unexpired reservations."""
        return self.platform_tokens_settled + self.platform_tokens_reserved


@attrs.frozen
class Admitted:
    """``held_tokens``: what the reservation holds against the platform budget; an optional
    reservation admitted holding nothing withdrew the route's platform fallbacks."""

    reservation_id: ReservationId
    counters: Counters
    replayed: bool = False
    held_tokens: int = 0


@attrs.frozen
class Refused:
    reason: RefusalReason
    resets_at: datetime | None


@attrs.frozen
class TenantChanged:
    """The stored tenant no longer has the request's revision (or is gone): the ledger did
    nothing, and the request must be built again from the tenant as stored."""


AdmissionOutcome = Admitted | Refused | TenantChanged


def evaluate_admission(counters: Counters, request: AdmissionRequest) -> Refused | int:
    """A message is admitted only if the day's count is below the cap and the period's
    committed tokens plus this reservation fit the budget (an optional reservation that does
    not fit is admitted holding nothing); otherwise the refusal says why and when the limit
    resets. An int means: admit, holding that many tokens."""
    if counters.messages_today >= request.message_cap:
        return Refused(RefusalReason.MESSAGE_CAP_REACHED, request.day.resets_at)
    return evaluate_reservation(counters, request)


def evaluate_reservation(counters: Counters, request: AdmissionRequest) -> Refused | int:
    """A reservation holds while the period's committed tokens plus it fit the budget (an
    optional reservation that does not fit holds nothing); the message cap is not read. An
    int means: hold that many tokens."""
    if request.token_budget is not None and (
        counters.platform_tokens_committed() + request.reserve_tokens > request.token_budget
    ):
        if request.reservation_optional:
            return 0
        return Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, request.period.resets_at)
    return request.reserve_tokens


def reserved_counters(counters: Counters, held_tokens: int) -> Counters:
    """A reservation holds its tokens; the day's message count does not move."""
    return attrs.evolve(
        counters, platform_tokens_reserved=counters.platform_tokens_reserved + held_tokens
    )


def admitted_counters(counters: Counters, held_tokens: int) -> Counters:
    """An admitted message counts against the day at once and holds its reservation."""
    return attrs.evolve(
        reserved_counters(counters, held_tokens), messages_today=counters.messages_today + 1
    )


def offered_route(request: AdmissionRequest, held_tokens: int) -> OfferedRoute:
    """The route the admission offered: an optional reservation that holds nothing offers
    the tenant's key alone."""
    if request.reservation_optional and held_tokens == 0:
        return request.route.without_platform()
    return request.route


def reservation_tokens(max_tokens: int | None, default: int) -> int:
    """The gateway's ``max_tokens`` for the answer, or the catalog default."""
    if max_tokens is None:
        return default
    if max_tokens < 1 or max_tokens > MAX_TOKENS_PER_MESSAGE:
        raise ValidationError(
            f"max_tokens must be between 1 and {MAX_TOKENS_PER_MESSAGE}", field="max_tokens"
        )
    return max_tokens


def reservation_expiry(now: datetime, ttl_seconds: int) -> datetime:
    return now + timedelta(seconds=ttl_seconds)


@attrs.frozen
class TokenUsage:
    """What the gateway reports after an answer."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0

    def total(self) -> int:
        """Every token processed: input, output and cache reads."""
        return self.input_tokens + self.output_tokens + self.cache_read_tokens


def check_token_usage(usage: TokenUsage) -> None:
    for field, value in (
        ("input_tokens", usage.input_tokens),
        ("output_tokens", usage.output_tokens),
        ("cache_read_tokens", usage.cache_read_tokens),
    ):
        if value < 0 or value > MAX_TOKENS_PER_MESSAGE * 10:
            raise ValidationError(
                f"{field} must be between 0 and {MAX_TOKENS_PER_MESSAGE * 10}", field=field
            )


def weighted_tokens(usage: TokenUsage, budget_weight: Decimal) -> int:
    """Budget tokens of a message: every token processed (input, output, cache reads) times
    the model's budget weight, rounded up so a weight never rounds a cost away."""
    return math.ceil(Decimal(usage.total()) * budget_weight)


@attrs.frozen
class DrawnFromLease:
    """A call's reservation of ``tokens`` taken out of the budget lease ``lease_id`` (a
    reservation one process holds for many calls) without a ledger statement. Before
    settling the call, the ledger moves them from the lease's hold to a reservation of the
    call's own on the lease's day, period, route and expiry, in the same transaction and
    once (a call that already has a reservation draws nothing); a lease no longer held
    lends its route and no tokens."""

    lease_id: MessageId
    tokens: int


@attrs.frozen
class SettlementRequest:
    """What the gateway reports for ``message_id``; the ledger checks it against the route
    its admission offered (``settlement_terms``) and replaces the reservation by the count.

    ``reported_weight`` is the catalog's budget weight of the reported model (None: the
    catalog does not know it); ``unadmitted_weight`` rates an unknown model settled without
    an admission (the highest weight of the tenant's route now).
    """

    tenant_id: TenantId
    message_id: MessageId
    model: ModelRef
    credential: Credential
    usage: TokenUsage
    reported_weight: Decimal | None
    unadmitted_weight: Decimal
    period: Window
    day: Window
    at: datetime
    tenant_revision: int | None = None
    """As in ``AdmissionRequest``: when given, the ledger answers ``TenantChanged``, writing
    nothing, unless the stored tenant still has it."""
    token_budget: int | None = None
    """The platform-token budget of the period (a BYOK tenant's fallback budget; None: no
    limit): the ledger writes the thresholds of it this settlement crosses
    (``crossed_percents``) to the notifications outbox in the settling transaction."""
    drawn: DrawnFromLease | None = None
    """Where the call's reservation came from when it was drawn from a budget lease."""


class Anomaly(enum.Enum):
    """Why a settlement was not counted as the gateway reported it."""

    NOT_ADMITTED = "not_admitted"
    TENANT_KEY_NOT_ROUTED = "tenant_key_not_routed"
    MODEL_NOT_OFFERED = "model_not_offered"


@attrs.frozen
class SettlementTerms:
    """How a settlement counts: against the platform budget unless ``counted_as`` is the
    tenant's key, ``weighted`` budget tokens, and the anomaly that made it differ from the
    report (None: counted as reported)."""

    counted_as: Credential
    weighted: int
    anomaly: Anomaly | None


def settlement_terms(route: OfferedRoute | None, request: SettlementRequest) -> SettlementTerms:
    """A settlement never makes tokens free: ``tenant`` counts as the tenant's key only when
    its admission routed the message there; a model the route did not offer (or the catalog
    does not know) is rated at the route's most expensive model; a settlement without an
    admission counts in full as platform usage."""
    if route is None:
        weight = request.reported_weight or request.unadmitted_weight
        return SettlementTerms(
            Credential.PLATFORM, weighted_tokens(request.usage, weight), Anomaly.NOT_ADMITTED
        )
    offered = request.model in route.models and request.reported_weight is not None
    weight = request.reported_weight if offered and request.reported_weight else route.max_weight
    weighted = weighted_tokens(request.usage, weight)
    if request.credential is Credential.TENANT:
        if route.tenant_key_model is not None:
            return SettlementTerms(Credential.TENANT, weighted, None)
        return SettlementTerms(Credential.PLATFORM, weighted, Anomaly.TENANT_KEY_NOT_ROUTED)
    return SettlementTerms(
        Credential.PLATFORM, weighted, None if offered else Anomaly.MODEL_NOT_OFFERED
    )


@attrs.frozen
class Settled:
    counters_before: Counters
    counters_after: Counters
    terms: SettlementTerms
    replayed: bool = False


SettlementOutcome = Settled | TenantChanged


@attrs.frozen
class Threshold:
    """A limit crossed in one window: notified once per (tenant, kind, window, percent)."""

    tenant_id: TenantId
    kind: LimitKind
    percent: int
    window_key: str
    used: int
    limit: int


def crossed_percents(before: int, after: int, limit: int | None) -> tuple[int, ...]:
    """The thresholds (80%, 100%) that ``before → after`` crosses upward against ``limit``
    (none without a limit; a limit of 0 is never crossed, usage is never negative)."""
    if limit is None:
        return ()
    return tuple(
        percent for percent in THRESHOLD_PERCENTS if before * 100 < percent * limit <= after * 100
    )


def remaining(limit: int | None, used: int) -> int | None:
    """What is left of a limit; None where there is no limit. Never negative."""
    return None if limit is None else max(0, limit - used)


@attrs.frozen
class UsageRecord:
    """One settled message, as the usage report reads it back."""

    tenant_id: TenantId
    message_id: MessageId
    model: str
    credential: Credential
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    weighted_tokens: int
    at: datetime


@attrs.frozen
class MessageCounts:
    """A tenant's messages admitted in a period, and of those how many were settled (usage
    reported) and how many expired (never settled, reservation let go)."""

    admitted: int = 0
    settled: int = 0
    expired: int = 0
