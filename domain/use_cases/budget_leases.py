"""Budget leases: the LLM proxy's calls served from tokens this process holds already
(issue #20, ADR 0003 addendum).

A tenant whose calls come in quick succession has a block of its budget reserved in the
ledger as one held reservation, a *lease*, and its next calls take their reservations out
of the lease in memory: no ledger statement, so no wait, before they go upstream. The
ledger stays the only holder of counts: a lease is held there like any reservation, so
the budget never holds more than it can, whatever the number of processes; each call drawn
from it moves its tokens out of the lease as it settles (``SettlementRequest.drawn``),
and the lease gives back what is left once it is closed and its calls have settled.

- A lease is asked for only by a tenant that called within the last ``seconds`` (one call
  now and then keeps reserving per call: a lease would cost it a statement more), never
  for a call naming its message or a BYOK tenant's optional fallback reservation.
- It holds ``calls`` times the asking call's reservation, at most a ``HEADROOM``-th of
  the budget left, and is not asked for below two calls' worth: near the end of a budget
  every call is reserved alone, and refused exactly.
- It serves calls with the same terms (tenant revision, day, period, budget and route)
  for ``seconds`` at most: a change to the tenant reaches leased calls that late at most,
  since the ledger checked the revision when it granted the lease.
- A process that stops without giving a lease back leaves it held until its reservation
  expires, like any call it was serving.
"""

from __future__ import annotations

from datetime import date

import attrs

from domain.bounded_memory import remember
from domain.ids import MessageId, TenantId
from domain.metering import AdmissionRequest, Admitted, Counters, OfferedRoute
from domain.use_cases.single_flight import SingleFlight

LEASE_CALLS = 32
"""A lease holds this many reservations of the call that asked for it, at most."""
LEASE_SECONDS = 2.0
"""How long a lease serves new calls after it was granted."""
HEADROOM = 4
"""A lease holds at most this fraction (one in ``HEADROOM``) of the budget left."""
MAX_LEASE_TERMS = 100_000
"""Terms remembered (open leases, recent calls); the memory is emptied when full."""


@attrs.frozen
class LeaseTerms:
    """What a call shares with the lease it draws from: the tenant as the ledger checked
    it, its windows, its budget and the route the lease's reservation offers."""

    tenant_id: TenantId
    tenant_revision: int | None
    day: date
    period: date
    token_budget: int | None
    route: OfferedRoute

    @classmethod
    def of(cls, request: AdmissionRequest) -> LeaseTerms:
        return cls(
            request.tenant_id,
            request.tenant_revision,
            request.day.key,
            request.period.key,
            request.token_budget,
            request.route,
        )


@attrs.define(eq=False)
class BudgetLease:
    """A lease as this process holds it: ``free`` tokens still to draw, ``drawing`` calls
    drawn and not yet settled."""

    id: MessageId
    terms: LeaseTerms
    free: int
    granted: Admitted
    drawing: int = 0
    closed: bool = False
    given_back: bool = False

    def give_back(self) -> bool:
        """Whether the lease is to be given back now: closed, with no call left to settle,
        and not given back before (at most once True)."""
        if self.closed and self.drawing == 0 and not self.given_back:
            self.given_back = True
            return True
        return False


@attrs.frozen
class LeaseDraw:
    """One call's reservation taken out of a lease in memory."""

    lease: BudgetLease = attrs.field(repr=False)
    tokens: int


@attrs.define
class BudgetLeases:
    """The leases of one process, by their terms, and the tenants' recent calls."""

    calls: int = LEASE_CALLS
    seconds: float = LEASE_SECONDS
    asking: SingleFlight[LeaseTerms, BudgetLease | None] = attrs.Factory(SingleFlight)
    _open: dict[LeaseTerms, BudgetLease] = attrs.Factory(dict)
    _recent: dict[LeaseTerms, tuple[float, int | None]] = attrs.Factory(dict)
    """Per terms: when a call last had an answer from the ledger, and a ``HEADROOM``-th of
    the budget it left (None: no budget)."""

    def size(self, terms: LeaseTerms, tokens: int) -> int:
        """The tokens of a lease asked for by a call reserving ``tokens``: ``calls`` times
        as many, at most a ``HEADROOM``-th of what the budget had left at the tenant's last
        ledger answer."""
        recent = self._recent.get(terms)
        room = recent[1] if recent is not None else 0
        return self.calls * tokens if room is None else min(self.calls * tokens, room)

    def opened(self, terms: LeaseTerms) -> BudgetLease | None:
        """The lease calls with these terms draw from now, if any."""
        return self._open.get(terms)

    def draw(self, lease: BudgetLease, tokens: int) -> LeaseDraw | None:
        """``tokens`` out of ``lease``; None when it is closed or cannot hold them."""
        if lease.closed or lease.free < tokens:
            return None
        lease.free -= tokens
        lease.drawing += 1
        return LeaseDraw(lease, tokens)

    def worth_asking(self, terms: LeaseTerms, tokens: int, now: float) -> bool:
        """A tenant that had a ledger answer within ``seconds``, while its budget left room
        for a lease of at least two calls reserving ``tokens``."""
        recent = self._recent.get(terms)
        if recent is None or now - recent[0] >= self.seconds:
            return False
        return self.size(terms, tokens) >= 2 * tokens

    def observe(self, terms: LeaseTerms, counters: Counters, now: float) -> None:
        """Remember a ledger answer with these terms: when, and the room it left."""
        budget = terms.token_budget
        room = None
        if budget is not None:
            room = max((budget - counters.platform_tokens_committed()) // HEADROOM, 0)
        remember(self._recent, terms, (now, room), MAX_LEASE_TERMS)

    def refused(self, terms: LeaseTerms, now: float) -> None:
        """The budget could not hold a lease: calls with these terms reserve alone."""
        remember(self._recent, terms, (now, 0), MAX_LEASE_TERMS)

    def open(self, lease: BudgetLease) -> None:
        remember(self._open, lease.terms, lease, MAX_LEASE_TERMS)

    def close(self, lease: BudgetLease) -> bool:
        """No call draws from ``lease`` any more; whether it is to be given back now."""
        lease.closed = True
        if self._open.get(lease.terms) is lease:
            del self._open[lease.terms]
        return lease.give_back()

    def settled(self, draw: LeaseDraw) -> bool:
        """A drawn call settled; whether its lease is to be given back now."""
        draw.lease.drawing -= 1
        return draw.lease.give_back()

    def close_all(self) -> list[BudgetLease]:
        """Close every open lease (the process stops); those to be given back now."""
        return [lease for lease in list(self._open.values()) if self.close(lease)]
