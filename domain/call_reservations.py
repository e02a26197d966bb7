"""One LLM call's reservation (spec §13): the proxy holds a call's tokens against the
period's budget without counting a message, because message caps stay with admission and
one agent message may make several calls. The call's reservation is settled like a
message's (``UsageLedger.settle`` under the call's id) and swept like one when never
settled."""

from __future__ import annotations

from domain.metering import AdmissionRequest, Counters, Refused, evaluate_reservation


def evaluate_call_reservation(counters: Counters, request: AdmissionRequest) -> Refused | int:
    """A call holds its reservation while the period's committed tokens plus it fit the
    budget, exactly as a message's reservation does (an optional one that does not fit holds
    nothing); the message cap is not read. An int means: reserve, holding that many tokens."""
    return evaluate_reservation(counters, request)
