"""Settings: one attrs value built from the environment, passed explicitly, secrets hidden.

Every variable is documented in the README's configuration table (spec §8).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import attrs

from domain.errors import ValidationError
from domain.secrets import Secret

KEY_STORES = ("fernet", "vault")
LEGACY_PRICE_TIERS = {"basic": "starter", "plus": "premium"}


@attrs.frozen
class Settings:
    var_dir: Path
    database_url: str
    key_store: str
    secret_keys: tuple[Secret, ...]
    vault_addr: str | None
    vault_token: Secret | None
    vault_transit_key: str
    vault_role_id: str | None
    vault_secret_id: Secret | None
    config_root: Path
    catalog_path: Path | None
    environ: Mapping[str, str] = attrs.field(repr=False)
    stripe_api_key: Secret | None
    stripe_webhook_secret: Secret | None
    stripe_api_base: str | None
    stripe_prices: tuple[tuple[str, str], ...]
    """(price id, tier id) pairs, legacy ids included, as configured."""
    public_url: str
    smtp_url: Secret | None = None
    """``TIERKEEPER_SMTP_URL``; None: mail is written as ``.eml`` files under ``var/mail``."""
    mail_from: str = "tierkeeper@localhost"
    notifications_poll_s: float = 5.0
    """How often the deliverer inside ``serve`` looks for due notifications; 0 turns it off."""
    webhook_allow_private: bool = False
    """Whether customers' webhooks may target loopback and private addresses (development)."""
    openclaw_mode: str = "direct"
    """``direct`` (configs reference provider keys) or ``proxy`` (configs use the LLM proxy)."""
    proxy_url: str = ""
    """Where tenants' gateways reach the LLM proxy; ``public_url`` when not set."""
    platform_keys: tuple[tuple[str, Secret], ...] = attrs.field(default=(), repr=False)
    """(provider id, key) from ``TIERKEEPER_PLATFORM_KEY_<PROVIDER>``."""
    metrics_token: Secret | None = None
    """``TIERKEEPER_METRICS_TOKEN``: a bearer token that may read ``/metrics`` (service
    tokens may too)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        var_dir = Path(env.get("TIERKEEPER_VAR_DIR", "./var"))
        key_store = env.get("TIERKEEPER_KEY_STORE", "fernet").strip().lower()
        if key_store not in KEY_STORES:
            raise ValidationError(
                f"TIERKEEPER_KEY_STORE must be one of {', '.join(KEY_STORES)}, got {key_store!r}",
                field="TIERKEEPER_KEY_STORE",
            )
        prices = []
        for tier in ("starter", "premium", "byok", "basic", "plus"):
            price = env.get(f"TIERKEEPER_STRIPE_PRICE_{tier.upper()}", "").strip()
            if price:
                prices.append((price, LEGACY_PRICE_TIERS.get(tier, tier)))
        return cls(
            var_dir=var_dir,
            database_url=env.get("TIERKEEPER_DATABASE_URL")
            or f"sqlite:///{(var_dir / 'tierkeeper.sqlite3').as_posix()}",
            key_store=key_store,
            secret_keys=_secret_keys(env.get("TIERKEEPER_SECRET_KEY", "")),
            vault_addr=env.get("TIERKEEPER_VAULT_ADDR") or None,
            vault_token=_secret(env.get("TIERKEEPER_VAULT_TOKEN")),
            vault_transit_key=env.get("TIERKEEPER_VAULT_TRANSIT_KEY") or "tierkeeper-byok",
            vault_role_id=env.get("TIERKEEPER_VAULT_ROLE_ID") or None,
            vault_secret_id=_secret(env.get("TIERKEEPER_VAULT_SECRET_ID")),
            config_root=Path(env.get("TIERKEEPER_CONFIG_ROOT") or var_dir / "openclaw"),
            catalog_path=Path(env["TIERKEEPER_CATALOG"]) if env.get("TIERKEEPER_CATALOG") else None,
            environ=env,
            stripe_api_key=_secret(env.get("TIERKEEPER_STRIPE_API_KEY")),
            stripe_webhook_secret=_secret(env.get("TIERKEEPER_STRIPE_WEBHOOK_SECRET")),
            stripe_api_base=env.get("TIERKEEPER_STRIPE_API_BASE") or None,
            stripe_prices=tuple(prices),
            public_url=(env.get("TIERKEEPER_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            smtp_url=_secret(env.get("TIERKEEPER_SMTP_URL")),
            mail_from=env.get("TIERKEEPER_MAIL_FROM") or "tierkeeper@localhost",
            notifications_poll_s=_seconds(env, "TIERKEEPER_NOTIFICATIONS_POLL_SECONDS", 5.0),
            webhook_allow_private=env.get("TIERKEEPER_WEBHOOK_ALLOW_PRIVATE", "").strip().lower()
            in ("1", "true", "yes"),
            openclaw_mode=_openclaw_mode(env.get("TIERKEEPER_OPENCLAW_MODE", "")),
            proxy_url=(
                env.get("TIERKEEPER_PROXY_URL")
                or env.get("TIERKEEPER_PUBLIC_URL")
                or "http://127.0.0.1:8000"
            ).rstrip("/"),
            platform_keys=_platform_keys(env),
            metrics_token=_secret(env.get("TIERKEEPER_METRICS_TOKEN")),
        )

    def fernet_secrets(self) -> tuple[Secret, ...]:
        """The configured platform secrets, newest first; else one generated once into the
        var directory (mode 0600) so the embedded default needs no setup."""
        if self.secret_keys:
            return self.secret_keys
        path = self.var_dir / "secret_key"
        if not path.exists():
            self.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return _secret_keys(path.read_text().strip())


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:
        raise ValidationError(f"{name} must be a number of seconds (0 turns it off)", field=name)
    return value


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None


def _secret_keys(raw: str) -> tuple[Secret, ...]:
    return tuple(Secret(part.strip()) for part in raw.split(",") if part.strip())


OPENCLAW_MODES = ("direct", "proxy")
PLATFORM_KEY_PREFIX = "TIERKEEPER_PLATFORM_KEY_"


def _openclaw_mode(raw: str) -> str:
    mode = raw.strip().lower() or "direct"
    if mode not in OPENCLAW_MODES:
        raise ValidationError(
            f"TIERKEEPER_OPENCLAW_MODE must be one of {', '.join(OPENCLAW_MODES)}, got {mode!r}",
            field="TIERKEEPER_OPENCLAW_MODE",
        )
    return mode


def _platform_keys(env: Mapping[str, str]) -> tuple[tuple[str, Secret], ...]:
    """``TIERKEEPER_PLATFORM_KEY_MOONSHOT=…`` gives the key of platform provider ``moonshot``."""
    keys = [
        (name[len(PLATFORM_KEY_PREFIX) :].lower(), Secret(value.strip()))
        for name, value in env.items()
        if name.startswith(PLATFORM_KEY_PREFIX) and value.strip()
    ]
    return tuple(sorted(keys, key=lambda item: item[0]))
