"""Schemathesis against ``/schema/openapi.json``, over ASGI (no socket): bounded examples per
operation, as a customer and as the gateway. Zero 5xx, and every answer conforms to the
document: a documented status, its content type, its schema."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from domain.byok import CredentialInput
from domain.secrets import Secret
from entrypoints.bootstrap import Services, build_services
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.http.conftest import PROBE_TIMEOUT_S, TEST_PASSWORD_HASHER, http_environ, key_for
from tests.support.provider_stub import ProviderStub

pytestmark = pytest.mark.http

MAX_EXAMPLES = 12
SKIPPED_PATHS = {"/api/v1/auth/logout"}
"""Logging out would revoke the fuzzer's own token; logout has its own tests."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _fuzzed_app(environ: dict[str, str], tokens: dict[str, str]) -> Any:
    async def build(settings: Settings) -> Services:
        services = await build_services(
            settings, probe_timeout_s=PROBE_TIMEOUT_S, password_hasher=TEST_PASSWORD_HASHER
        )
        signed = await services.accounts.signup("fuzz@example.com", Secret("fuzzing password"))
        await services.tenants.change_tier(signed.tenant.id, "byok")
        await services.credentials.put(
            signed.tenant.id,
            signed.user.id,
            CredentialInput(
                provider="openai",
                model_preference="gpt-4o",
                api_key=Secret(key_for("openai")),
                allow_platform_fallback=True,
            ),
        )
        tokens["customer"] = signed.token.reveal()
        tokens["service"] = (await services.accounts.create_service_token("fuzz")).reveal()
        tokens["tenant_id"] = signed.tenant.id
        return services

    return create_app(settings=Settings.from_environ(environ), build=build)


def _fuzz(
    schema: Any, headers: dict[str, str], tag_filter: set[str] | None, statuses: Counter[int]
) -> list[str]:
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tags = set(operation.definition.raw.get("tags", []))
        if tag_filter is not None and not tags & tag_filter:
            continue
        if operation.path in SKIPPED_PATHS:
            continue

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:  # schemathesis raises failure groups
                failures.append(f"{case.operation.label}: {str(exc).splitlines()[0:6]}")

        run()
    return failures


def test_fuzzing_the_api_finds_no_server_errors_and_no_schema_breaks(
    tmp_path: Path, sqlite_template: Path, provider_stub: ProviderStub
) -> None:
    tokens: dict[str, str] = {}
    app = _fuzzed_app(http_environ(tmp_path, sqlite_template, provider_stub), tokens)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    customer = {"Authorization": f"Bearer {tokens['customer']}"}
    service = {"Authorization": f"Bearer {tokens['service']}"}
    statuses: Counter[int] = Counter()
    failures = _fuzz(schema, customer, None, statuses)
    failures += _fuzz(schema, service, {"gateway"}, statuses)
    assert failures == []
    assert not any(status >= 500 for status in statuses)
    assert statuses[200] > 0 and statuses[422] > 0, statuses
