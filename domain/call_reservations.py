"""One LLM call's reservation (spec §13): the proxy holds a call's tokens against the
period's budget without counting a message, because message caps stay with admission and
one agent message may make several calls. The call's reservation is settled like a
message's (``UsageLedger.settle`` under the call's id) and swept like one when never
settled."""

from __future__ import annotations

import attrs

from domain.metering import AdmissionRequest, Counters, RefusalReason, Refused


def evaluate_call_reservation(counters: Counters, request: AdmissionRequest) -> Refused | int:
    """A call holds its reservation while the period's committed tokens plus it fit the
    budget (an optional reservation that does not fit holds nothing); the message cap is
    not read. An int means: reserve, holding that many tokens."""
    if request.token_budget is not None and (
        counters.platform_tokens_committed() + request.reserve_tokens > request.token_budget
    ):
        if request.reservation_optional:
            return 0
        return Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, request.period.resets_at)
    return request.reserve_tokens


def reserved_counters(counters: Counters, held_tokens: int) -> Counters:
    """A call's reservation holds its tokens; the day's message count does not move."""
    return attrs.evolve(
        counters, platform_tokens_reserved=counters.platform_tokens_reserved + held_tokens
    )
