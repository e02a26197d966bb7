"""The welcome message and the model names it uses, to the letter."""

from __future__ import annotations

import pytest

from domain.catalog import Catalog
from domain.ids import ModelRef
from domain.metering import Credential
from domain.routing import ModelChoice, Route, decide_route
from domain.welcome import model_name, welcome_message
from tests.unit.conftest import make_tenant


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("moonshot/kimi-k2.5", "Kimi K2.5"),
        ("byok-openai/gpt-4.1-mini", "GPT-4.1 mini on your OpenAI key"),
        ("byok-openrouter/openai/gpt-4.1", "GPT-4.1 (via OpenRouter) on your OpenRouter key"),
        ("byok-openrouter/mistralai/large", "mistralai/large on your OpenRouter key"),
        ("acme/some-model", "some-model"),
    ],
)
def test_a_model_is_named_by_the_catalog_or_its_providers_listing(
    catalog: Catalog, ref: str, name: str
) -> None:
    """A BYOK ref splits on its first slash; an unlisted model is named by its id."""
    assert model_name(catalog, ref) == name


def test_a_tenant_without_a_usable_model_is_told_to_add_a_key(catalog: Catalog) -> None:
    byok = make_tenant(tier="byok")
    assert welcome_message(catalog, byok, Route(primary=None, fallbacks=())) == (
        "Welcome to your agent on the Bring Your Own Key plan. Add a working AI provider key in "
        "Settings → AI Provider to start. You can send up to 200 messages a day. Tokens on your "
        "own key have no platform limit."
    )


def test_a_byok_tenant_on_its_own_key_hears_its_model_and_no_token_limit(
    catalog: Catalog,
) -> None:
    route = Route(ModelChoice(ModelRef("byok-anthropic/claude-opus-4-6"), Credential.TENANT), ())
    assert welcome_message(catalog, make_tenant(tier="byok"), route) == (
        "Welcome to your agent on the Bring Your Own Key plan. Your agent answers with Claude "
        "Opus 4.6 on your Anthropic key. You can send up to 200 messages a day. Tokens on your "
        "own key have no platform limit."
    )


def test_a_premium_tenant_hears_its_monthly_token_budget(catalog: Catalog) -> None:
    premium = make_tenant(tier="premium")
    assert welcome_message(catalog, premium, decide_route(catalog, premium, None)) == (
        "Welcome to your agent on the Premium plan. Your agent answers with Claude Sonnet 4.6. "
        "You can send up to 200 messages a day. Your plan includes 2,000,000 tokens per billing "
        "month."
    )
