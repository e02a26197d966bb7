"""The catalog: tiers, models, platform providers, BYOK providers and tool policies as data.

Every price, cap, model id and provider detail lives here and nowhere else. The catalog is
handed to the rules; no rule looks it up globally. ``build_catalog`` turns plain mappings
(as read from the TOML file by an adapter) into validated values.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from domain.errors import CatalogError, ValidationError
from domain.ids import ModelRef, ProviderId, TierId
from domain.model_capabilities import ModelCapabilities, build_capabilities
from domain.tool_policy import ToolPolicy, build_tool_policy, catalog_flag

STARTER = TierId("starter")
PREMIUM = TierId("premium")
BYOK = TierId("byok")


class AuthStyle(enum.Enum):
    """How a provider expects its API key on a request."""

    BEARER = "bearer"
    X_API_KEY = "x-api-key"
    X_GOOG_API_KEY = "x-goog-api-key"


@attrs.frozen
class ModelRates:
    """A model's list prices in USD per million tokens: check against the provider's page."""

    usd_per_mtok_input: Decimal
    usd_per_mtok_output: Decimal
    usd_per_mtok_cache_read: Decimal


@attrs.frozen
class Model:
    """A model the platform serves on its own keys."""

    ref: ModelRef
    name: str
    rates: ModelRates
    budget_weight: Decimal
    capabilities: ModelCapabilities

    def provider(self) -> str:
        return split_model_ref(self.ref)[0]

    def model_id(self) -> str:
        return split_model_ref(self.ref)[1]


@attrs.frozen
class PlatformProvider:
    """A provider the platform pays for; its key is only ever an env reference."""

    id: str
    name: str
    api: str
    base_url: str
    env_var: str


@attrs.frozen
class Price:
    amount_cents: int
    currency: str
    interval: str


@attrs.frozen
class Tier:
    """What a tier sells. ``tokens_per_period`` None means no platform limit."""

    id: TierId
    name: str
    price: Price
    primary_model: ModelRef | None
    fallback_models: tuple[ModelRef, ...]
    selectable_models: tuple[ModelRef, ...]
    messages_per_day: int
    tokens_per_period: int | None
    tool_policy: str
    legacy_ids: tuple[str, ...]
    platform_fallback_tier: TierId | None
    """For ``byok``: the tier whose models and token budget serve platform fallback."""


@attrs.frozen
class ProviderModelOption:
    """A model listed for a BYOK provider, with what it can do on the tenant's key."""

    id: str
    name: str
    capabilities: ModelCapabilities


@attrs.frozen
class ByokProvider:
    """A provider whose key a customer may bring, as OpenClaw and its test endpoint see it."""

    id: ProviderId
    name: str
    openclaw_provider_id: str
    api: str
    base_url: str
    env_var: str
    """The tenant's variable in its secrets file; never a platform variable name."""
    key_prefix: str
    key_hint: str
    test_path: str
    auth_style: AuthStyle
    extra_headers: tuple[tuple[str, str], ...]
    models: tuple[ProviderModelOption, ...]
    accepts_any_model: bool
    unlisted_model: ModelCapabilities | None
    """For a provider that accepts any model: what is assumed of a model it does not list."""
    key_url: str = ""
    """Where a customer creates a key for this provider (an https page); empty when unknown."""

    def model_name(self, model_id: str) -> str:
        """A listed model's name; an unlisted one is called by its id."""
        return next((m.name for m in self.models if m.id == model_id), model_id)

    def model_capabilities(self, model_id: str) -> ModelCapabilities:
        """A listed model's capabilities, or the conservative assumption for one the
        provider accepts without listing it."""
        for option in self.models:
            if option.id == model_id:
                return option.capabilities
        if self.unlisted_model is None:
            raise ValidationError(
                f"{self.name} has no model {model_id!r} in the catalog", field="model_preference"
            )
        return self.unlisted_model


def _names_to_tier_ids(catalog: Catalog) -> Mapping[str, TierId]:
    """Each tier id and legacy alias, to the tier id it names (unique: ``check_catalog``)."""
    return {name: t.id for t in catalog.tiers for name in (t.id, *t.legacy_ids)}


def _tiers_by_id(catalog: Catalog) -> Mapping[str, Tier]:
    return {t.id: t for t in catalog.tiers}


def _models_by_ref(catalog: Catalog) -> Mapping[str, Model]:
    return {m.ref: m for m in catalog.models}


@attrs.frozen
class Catalog:
    """The catalog's data, with its lookups by id built once, on first use (every admit asks
    for a tier; a cached property, not a field, so the catalog's fields stay its data)."""

    tiers: tuple[Tier, ...]
    models: tuple[Model, ...]
    platform_providers: tuple[PlatformProvider, ...]
    byok_providers: tuple[ByokProvider, ...]
    tool_policies: tuple[ToolPolicy, ...]
    reservation_tokens_default: int
    reservation_ttl_seconds: int
    past_due_grace_days: int

    @functools.cached_property
    def _tier_names(self) -> Mapping[str, TierId]:
        return _names_to_tier_ids(self)

    @functools.cached_property
    def _tiers(self) -> Mapping[str, Tier]:
        return _tiers_by_id(self)

    @functools.cached_property
    def _models(self) -> Mapping[str, Model]:
        return _models_by_ref(self)

    def normalise_tier_id(self, tier_id: str) -> TierId:
        """A tier id or a legacy alias (``basic``, ``plus``) names the current tier id."""
        found = self._tier_names.get(tier_id.strip().lower())
        if found is None:
            known = ", ".join(t.id for t in self.tiers)
            raise ValidationError(
                f"unknown tier {tier_id!r}; expected one of {known}", field="tier"
            )
        return found

    def tier(self, tier_id: str) -> Tier:
        return self._tiers[self.normalise_tier_id(tier_id)]

    def model(self, ref: str) -> Model:
        model = self._models.get(ref)
        if model is None:
            raise ValidationError(f"unknown model {ref!r}", field="model")
        return model

    def find_model(self, ref: str) -> Model | None:
        return self._models.get(ref)

    def platform_provider(self, provider_id: str) -> PlatformProvider:
        return next(p for p in self.platform_providers if p.id == provider_id)

    def byok_provider(self, provider_id: str) -> ByokProvider:
        for provider in self.byok_providers:
            if provider.id == provider_id:
                return provider
        known = ", ".join(p.id for p in self.byok_providers)
        raise ValidationError(
            f"unknown provider {provider_id!r}; expected one of {known}", field="provider"
        )

    def tool_policy(self, name: str) -> ToolPolicy:
        return next(p for p in self.tool_policies if p.name == name)

    def platform_env_vars(self) -> frozenset[str]:
        return frozenset(p.env_var for p in self.platform_providers)


def split_model_ref(ref: str) -> tuple[str, str]:
    """OpenClaw splits a model ref on its first slash: provider, then the model id."""
    provider, sep, model = ref.partition("/")
    if not sep or not provider or not model:
        raise ValidationError(f"model ref {ref!r} must be 'provider/model'", field="model")
    return provider, model


# --- building from plain data -------------------------------------------------------------

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")


def build_catalog(data: Mapping[str, Any]) -> Catalog:
    """Validate plain catalog data (as parsed from TOML) and build the catalog."""
    try:
        policies = tuple(
            build_tool_policy(name, spec) for name, spec in _table(data, "tool_policies").items()
        )
        models = tuple(_build_model(ref, spec) for ref, spec in _table(data, "models").items())
        platform = tuple(
            _build_platform_provider(pid, spec)
            for pid, spec in _table(data, "platform_providers").items()
        )
        known_models: dict[str, Model] = {m.ref: m for m in models}
        byok = tuple(
            _build_byok_provider(pid, spec, known_models)
            for pid, spec in _table(data, "byok_providers").items()
        )
        tiers = tuple(_build_tier(tid, spec) for tid, spec in _table(data, "tiers").items())
        metering = _table(data, "metering")
        catalog = Catalog(
            tiers=tiers,
            models=models,
            platform_providers=platform,
            byok_providers=byok,
            tool_policies=policies,
            reservation_tokens_default=_positive_int(metering, "reservation_tokens_default"),
            reservation_ttl_seconds=_positive_int(metering, "reservation_ttl_seconds"),
            past_due_grace_days=_non_negative_int(metering, "past_due_grace_days"),
        )
    except (KeyError, TypeError, AttributeError, ArithmeticError, ValueError) as exc:
        if isinstance(exc, CatalogError):
            raise
        raise CatalogError(f"catalog is malformed: {exc!r}") from None
    check_catalog(catalog)
    return catalog


def check_catalog(catalog: Catalog) -> None:
    """Cross-references hold: known models and providers, unique ids, the three tiers exist."""
    _unique(
        "tier id", [t.id for t in catalog.tiers] + [a for t in catalog.tiers for a in t.legacy_ids]
    )
    _unique("model ref", [m.ref for m in catalog.models])
    _unique("platform provider", [p.id for p in catalog.platform_providers])
    _unique("BYOK provider", [p.id for p in catalog.byok_providers])
    for byok_provider in catalog.byok_providers:
        _unique(f"{byok_provider.id} model", [m.id for m in byok_provider.models])
    _unique("tool policy", [p.name for p in catalog.tool_policies])
    for required in (STARTER, PREMIUM, BYOK):
        if required not in {t.id for t in catalog.tiers}:
            raise CatalogError(f"catalog has no {required!r} tier")
    model_refs = {m.ref for m in catalog.models}
    provider_ids = {p.id for p in catalog.platform_providers}
    for model in catalog.models:
        if model.provider() not in provider_ids:
            raise CatalogError(f"model {model.ref!r} names unknown platform provider")
    for tier in catalog.tiers:
        named = [*tier.fallback_models, *tier.selectable_models]
        if tier.primary_model is not None:
            named.append(tier.primary_model)
        for ref in named:
            if ref not in model_refs:
                raise CatalogError(f"tier {tier.id!r} names unknown model {ref!r}")
        if (
            tier.primary_model is not None
            and tier.selectable_models
            and (tier.primary_model not in tier.selectable_models)
        ):
            raise CatalogError(f"tier {tier.id!r}: primary model must be selectable")
        if tier.tool_policy not in {p.name for p in catalog.tool_policies}:
            raise CatalogError(f"tier {tier.id!r} names unknown tool policy {tier.tool_policy!r}")
        if tier.platform_fallback_tier is not None and tier.platform_fallback_tier not in {
            t.id for t in catalog.tiers
        }:
            raise CatalogError(f"tier {tier.id!r} falls back to unknown tier")
    byok = next(t for t in catalog.tiers if t.id == BYOK)
    if byok.platform_fallback_tier is None:
        raise CatalogError("the byok tier must name its platform_fallback_tier")
    platform_env = catalog.platform_env_vars()
    for provider in catalog.byok_providers:
        if provider.env_var in platform_env or provider.openclaw_provider_id in provider_ids:
            raise CatalogError(
                f"BYOK provider {provider.id!r} reuses a platform name; its key would be billed"
                " to the platform"
            )


def _unique(what: str, values: Iterable[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise CatalogError(f"duplicate {what} {value!r}")
        seen.add(value)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise CatalogError(f"catalog needs a [{key}] table")
    return value


def _positive_int(spec: Mapping[str, Any], key: str) -> int:
    value = spec[key]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise CatalogError(f"{key} must be a positive integer, got {value!r}")
    return value


def _non_negative_int(spec: Mapping[str, Any], key: str) -> int:
    value = spec[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CatalogError(f"{key} must be a non-negative integer, got {value!r}")
    return value


def _rate(spec: Mapping[str, Any], key: str, default: str | None = None) -> Decimal:
    raw = spec.get(key, default)
    if raw is None:
        raise CatalogError(f"{key} is required")
    value = Decimal(str(raw))
    if not value.is_finite():
        raise CatalogError(f"{key} must be a finite number, got {raw!r}")
    if value < 0:
        raise CatalogError(f"{key} must not be negative, got {raw!r}")
    return value


def _build_model(ref: str, spec: Mapping[str, Any]) -> Model:
    split_model_ref(ref)
    weight = _rate(spec, "budget_weight", "1.0")
    if weight <= 0:
        raise CatalogError(f"model {ref!r}: budget_weight must be positive")
    return Model(
        ref=ModelRef(ref),
        name=str(spec["name"]),
        rates=ModelRates(
            usd_per_mtok_input=_rate(spec, "usd_per_mtok_input"),
            usd_per_mtok_output=_rate(spec, "usd_per_mtok_output"),
            usd_per_mtok_cache_read=_rate(spec, "usd_per_mtok_cache_read"),
        ),
        budget_weight=weight,
        capabilities=build_capabilities(spec, f"model {ref!r}"),
    )


def _env_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        raise CatalogError(f"{where}: env_var {value!r} must be an upper-case variable name")
    return value


def _build_platform_provider(pid: str, spec: Mapping[str, Any]) -> PlatformProvider:
    return PlatformProvider(
        id=pid,
        name=str(spec["name"]),
        api=str(spec["api"]),
        base_url=str(spec["base_url"]),
        env_var=_env_name(spec["env_var"], f"platform provider {pid!r}"),
    )


def _build_model_option(
    pid: str, spec: Mapping[str, Any], known_models: Mapping[str, Model]
) -> ProviderModelOption:
    """A listed BYOK model states its capabilities, or names the platform model it is
    (``same_model_as``) and takes that model's, so one model is described once."""
    model_id = str(spec["id"])
    where = f"BYOK provider {pid!r} model {model_id!r}"
    same_as = spec.get("same_model_as")
    if same_as is None:
        capabilities = build_capabilities(spec, where)
    elif same_as not in known_models:
        raise CatalogError(f"{where}: same_model_as names unknown model {same_as!r}")
    elif any(key in spec for key in _CAPABILITY_KEYS):
        raise CatalogError(f"{where}: capabilities come from {same_as!r}; state them only there")
    else:
        capabilities = known_models[same_as].capabilities
    return ProviderModelOption(id=model_id, name=str(spec["name"]), capabilities=capabilities)


_CAPABILITY_KEYS = ("input", "reasoning", "context_window", "max_tokens")


def _build_byok_provider(
    pid: str, spec: Mapping[str, Any], known_models: Mapping[str, Model]
) -> ByokProvider:
    where = f"BYOK provider {pid!r}"
    accepts_any_model = catalog_flag(spec, "accepts_any_model", False, where)
    unlisted = spec.get("unlisted_model")
    if accepts_any_model and not isinstance(unlisted, Mapping):
        raise CatalogError(f"{where}: accepts any model, so it needs an [unlisted_model] table")
    if not accepts_any_model and unlisted is not None:
        raise CatalogError(f"{where}: unlisted_model is only for a provider accepting any model")
    return ByokProvider(
        id=ProviderId(pid),
        name=str(spec["name"]),
        openclaw_provider_id=str(spec["openclaw_provider_id"]),
        api=str(spec["api"]),
        base_url=str(spec["base_url"]),
        env_var=_env_name(spec["env_var"], f"BYOK provider {pid!r}"),
        key_prefix=str(spec["key_prefix"]),
        key_hint=str(spec["key_hint"]),
        test_path=str(spec["test_path"]),
        auth_style=AuthStyle(spec["auth_style"]),
        extra_headers=tuple(sorted((str(k), str(v)) for k, v in spec.get("headers", {}).items())),
        models=tuple(_build_model_option(pid, m, known_models) for m in spec["models"]),
        accepts_any_model=accepts_any_model,
        unlisted_model=(
            None if unlisted is None else build_capabilities(unlisted, f"{where} unlisted_model")
        ),
        key_url=_key_url(spec.get("key_url", ""), f"BYOK provider {pid!r}"),
    )


def _key_url(value: Any, where: str) -> str:
    """Empty, or an https address a customer can follow to create a key."""
    if value == "":
        return ""
    if not isinstance(value, str) or not value.startswith("https://") or " " in value:
        raise CatalogError(f"{where}: key_url {value!r} must be an https:// address")
    return value


def _build_tier(tid: str, spec: Mapping[str, Any]) -> Tier:
    budget = spec.get("tokens_per_period")
    if budget is not None:
        budget = _non_negative_int(spec, "tokens_per_period")
    fallback_tier = spec.get("platform_fallback_tier")
    return Tier(
        id=TierId(tid),
        name=str(spec["name"]),
        price=Price(
            amount_cents=_non_negative_int(spec, "price_cents"),
            currency=str(spec.get("currency", "usd")),
            interval=str(spec.get("interval", "month")),
        ),
        primary_model=spec.get("primary_model"),  # ModelRef is a NewType of str: nothing to convert
        fallback_models=tuple(ModelRef(m) for m in spec.get("fallback_models", ())),
        selectable_models=tuple(ModelRef(m) for m in spec.get("selectable_models", ())),
        messages_per_day=_non_negative_int(spec, "messages_per_day"),
        tokens_per_period=budget,
        tool_policy=str(spec["tool_policy"]),
        legacy_ids=tuple(str(a) for a in spec.get("legacy_ids", ())),
        platform_fallback_tier=TierId(fallback_tier) if fallback_tier else None,
    )
