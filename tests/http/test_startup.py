"""What the app does once it has built its services at startup: everything built by then is
moved out of the garbage collector's way, so a full collection later scans only what
requests made (a full collection stops every request in the process)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from entrypoints.bootstrap import Services, build_services
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.http.conftest import PROBE_TIMEOUT_S, TEST_PASSWORD_HASHER


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """No object frozen before the test, none after it (the rest of the run collects as
    usual)."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
async def test_what_startup_built_is_kept_out_of_later_collections(
    environ: dict[str, str],
) -> None:
    async def build(settings: Settings) -> Services:
        return await build_services(
            settings, probe_timeout_s=PROBE_TIMEOUT_S, password_hasher=TEST_PASSWORD_HASHER
        )

    assert gc.get_freeze_count() == 0
    app = create_app(settings=Settings.from_environ(environ), build=build)
    client: AsyncTestClient[Any]
    async with AsyncTestClient(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        services = app.state.services
        collected = {id(tracked) for tracked in gc.get_objects()}
        assert id(services) not in collected and id(services.metering) not in collected
        assert gc.get_freeze_count() > 10_000  # the modules, the app and its services


@pytest.mark.usefixtures("unfrozen")
async def test_an_app_given_its_services_freezes_nothing(services: Services) -> None:
    """Tests and embedders that build the services themselves own their process."""
    async with AsyncTestClient(create_app(services)) as client:
        assert (await client.get("/healthz")).status_code == 200
    assert gc.get_freeze_count() == 0
