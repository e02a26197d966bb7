"""Admission, weighting, reservation and threshold rules, as pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from domain.errors import ValidationError
from domain.ids import MessageId, ModelRef, TenantId
from domain.metering import (
    MAX_TOKENS_PER_MESSAGE,
    AdmissionRequest,
    Counters,
    OfferedRoute,
    RefusalReason,
    Refused,
    TokenUsage,
    admitted_counters,
    check_token_usage,
    crossed_percents,
    evaluate_admission,
    offered_route,
    remaining,
    reservation_expiry,
    reservation_tokens,
    weighted_tokens,
)
from domain.windows import Window

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
DAY = Window(
    date(2026, 3, 15), datetime(2026, 3, 15, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC)
)
PERIOD = Window(
    date(2026, 3, 1), datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
)


def request(cap: int = 50, budget: int | None = 1000, reserve: int = 100) -> AdmissionRequest:
    return AdmissionRequest(
        tenant_id=TenantId("t"), message_id=MessageId("m"), day=DAY, period=PERIOD,
        message_cap=cap, token_budget=budget, reserve_tokens=reserve, now=NOW,
        reservation_expires_at=NOW + timedelta(minutes=15),
    )  # fmt: skip


def counters(messages: int = 0, settled: int = 0, reserved: int = 0) -> Counters:
    return Counters(messages, settled, reserved)


def test_the_last_message_under_the_cap_is_admitted() -> None:
    assert evaluate_admission(counters(messages=49), request(cap=50)) == 100


def test_the_message_at_the_cap_is_refused_until_the_day_resets() -> None:
    refusal = evaluate_admission(counters(messages=50), request(cap=50))
    assert refusal is not None
    assert refusal.reason is RefusalReason.MESSAGE_CAP_REACHED
    assert refusal.resets_at == DAY.resets_at


def test_an_optional_reservation_the_budget_cannot_hold_admits_holding_nothing() -> None:
    """A BYOK tenant's platform fallbacks: offered only while the starter budget holds the
    reservation; with it spent, the message is still admitted on the tenant's own key."""
    optional = attrs.evolve(request(reserve=100), reservation_optional=True)
    assert evaluate_admission(counters(settled=900), optional) == 100
    assert evaluate_admission(counters(settled=901), optional) == 0
    refusal = evaluate_admission(counters(messages=50, settled=901), optional)
    assert isinstance(refusal, Refused) and refusal.reason is RefusalReason.MESSAGE_CAP_REACHED


def test_a_zero_cap_admits_nothing() -> None:
    refusal = evaluate_admission(counters(), request(cap=0))
    assert refusal is not None and refusal.reason is RefusalReason.MESSAGE_CAP_REACHED


def test_a_reservation_that_exactly_fits_the_budget_is_admitted() -> None:
    assert evaluate_admission(counters(settled=600, reserved=300), request(reserve=100)) == 100


def test_a_reservation_one_token_over_the_budget_is_refused_until_the_period_resets() -> None:
    refusal = evaluate_admission(counters(settled=600, reserved=301), request(reserve=100))
    assert refusal is not None
    assert refusal.reason is RefusalReason.TOKEN_BUDGET_EXHAUSTED
    assert refusal.resets_at == PERIOD.resets_at


def test_the_cap_is_checked_before_the_budget() -> None:
    refusal = evaluate_admission(counters(messages=50, settled=5000), request(cap=50))
    assert refusal is not None and refusal.reason is RefusalReason.MESSAGE_CAP_REACHED


def test_no_budget_means_no_token_limit() -> None:
    assert evaluate_admission(counters(settled=10**12), request(budget=None)) == 100


def test_admission_counts_the_message_and_holds_the_reservation() -> None:
    after = admitted_counters(counters(messages=3, settled=10, reserved=20), 100)
    assert after == Counters(4, 10, 120)
    assert after.platform_tokens_committed() == 130


def test_reserve_then_settle_sequences_never_let_admissions_exceed_the_budget() -> None:
    """Interleaved admissions and settlements as the ledger would see them."""
    state = counters()
    admitted = 0
    for step in range(40):
        held = evaluate_admission(state, request(cap=1000, budget=1000, reserve=300))
        if not isinstance(held, Refused):
            state = admitted_counters(state, held)
            admitted += 1
        if step % 3 == 2 and state.platform_tokens_reserved >= 300:  # one answer settles at 50
            state = Counters(state.messages_today, state.platform_tokens_settled + 50,
                             state.platform_tokens_reserved - 300)  # fmt: skip
        assert state.platform_tokens_committed() <= 1000
    assert admitted > 3


def test_reservation_is_max_tokens_or_the_default() -> None:
    assert reservation_tokens(None, 16_000) == 16_000
    assert reservation_tokens(1, 16_000) == 1
    assert reservation_tokens(MAX_TOKENS_PER_MESSAGE, 16_000) == MAX_TOKENS_PER_MESSAGE


@pytest.mark.parametrize("bad", [0, -1, MAX_TOKENS_PER_MESSAGE + 1])
def test_max_tokens_out_of_range_is_a_field_error(bad: int) -> None:
    with pytest.raises(ValidationError) as raised:
        reservation_tokens(bad, 16_000)
    assert raised.value.field == "max_tokens"
    assert raised.value.detail == "max_tokens must be between 1 and 2000000"


def test_reservations_expire_after_the_ttl() -> None:
    assert reservation_expiry(NOW, 900) == NOW + timedelta(minutes=15)


def test_weighted_tokens_count_every_token_times_the_weight_rounded_up() -> None:
    usage = TokenUsage(input_tokens=1000, output_tokens=200, cache_read_tokens=300)
    assert usage.total() == 1500
    assert weighted_tokens(usage, Decimal("1.0")) == 1500
    assert weighted_tokens(usage, Decimal("1.67")) == 2505
    assert weighted_tokens(TokenUsage(1, 0, 0), Decimal("1.67")) == 2
    assert weighted_tokens(TokenUsage(0, 0, 0), Decimal("1.67")) == 0


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "cache_read_tokens"])
def test_negative_token_counts_are_field_errors(field: str) -> None:
    values = {"input_tokens": 1, "output_tokens": 1, "cache_read_tokens": 1, field: -1}
    with pytest.raises(ValidationError) as raised:
        check_token_usage(TokenUsage(**values))
    assert raised.value.field == field


def test_absurd_token_counts_are_field_errors() -> None:
    with pytest.raises(ValidationError):
        check_token_usage(TokenUsage(MAX_TOKENS_PER_MESSAGE * 10 + 1, 0, 0))
    check_token_usage(TokenUsage(MAX_TOKENS_PER_MESSAGE * 10, 0, 0))


@pytest.mark.parametrize(
    ("before", "after", "limit", "crossed"),
    [(39, 40, 50, (80,)), (40, 41, 50, ()), (49, 50, 50, (100,)), (0, 50, 50, (80, 100)),
     (50, 51, 50, ()), (0, 10, None, ()), (0, 10, 0, ()), (79, 80, 100, (80,)),
     (78, 79, 100, ()), (99, 100, 100, (100,)), (0, 1, 1, (80, 100)), (799, 800, 1000, (80,)),
     (0, 799, 1000, ()), (999, 1000, 1000, (100,))],
)  # fmt: skip
def test_thresholds_cross_at_80_and_100_percent(
    before: int, after: int, limit: int | None, crossed: tuple[int, ...]
) -> None:
    assert crossed_percents(before, after, limit) == crossed


def test_remaining_is_never_negative_and_none_without_a_limit() -> None:
    assert remaining(50, 10) == 40
    assert remaining(50, 60) == 0
    assert remaining(None, 10) is None


@pytest.mark.parametrize(
    ("optional", "held", "withdrawn"),
    [(True, 0, True), (True, 100, False), (False, 0, False), (False, 100, False)],
)
def test_only_an_optional_reservation_holding_nothing_withdraws_the_platform_fallbacks(
    optional: bool, held: int, withdrawn: bool
) -> None:
    own, fallback = ModelRef("byok-openai/gpt-4.1"), ModelRef("moonshot/kimi-k2.5")
    route = OfferedRoute((own, fallback), own, Decimal("1.5"))
    asked = attrs.evolve(request(), reservation_optional=optional, route=route)
    expected = OfferedRoute((own,), own, Decimal("1.5")) if withdrawn else route
    assert offered_route(asked, held) == expected
