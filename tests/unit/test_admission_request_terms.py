"""What metering asks the ledger for a message answered on the tenant's own key alone: no
platform budget, nothing reserved, and the default weight of 1 (no platform model can be
routed to)."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from domain.catalog import Catalog
from domain.ids import MessageId, TenantId
from domain.metering import AdmissionOutcome, AdmissionRequest, Admitted
from tests.fakes import InMemoryUsageLedger
from tests.unit.conftest import World

pytestmark = pytest.mark.unit


@attrs.define
class RecordingLedger(InMemoryUsageLedger):
    """The fake ledger, keeping each admission request."""

    requests: list[AdmissionRequest] = attrs.Factory(list)

    async def admit(self, request: AdmissionRequest) -> AdmissionOutcome:
        self.requests.append(request)
        return await super().admit(request)


async def test_a_message_on_the_tenants_key_alone_asks_for_no_platform_budget(
    catalog: Catalog,
) -> None:
    world = World(catalog)
    ledger = RecordingLedger(tenants=world.tenant_repo, outbox=world.outbox)
    world.ledger = ledger
    await world.add_tenant("t-1", tier="byok")
    await world.add_key("t-1", allow_platform_fallback=False)
    admission = await world.metering.admit(TenantId("t-1"), MessageId("m-1"), 4000)
    assert isinstance(admission.decision, Admitted)
    assert admission.decision.held_tokens == 0
    (request,) = ledger.requests
    assert (request.token_budget, request.reserve_tokens) == (None, 0)
    assert request.reservation_optional is False
    assert request.route.max_weight == Decimal(1)
    assert request.route.tenant_key_model is not None
