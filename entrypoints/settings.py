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
            metrics_token=_secret(env.get("TIERKEEPER_METRICS_TOKEN")),
        )

    def fernet_secrets(self) -> tuple[Secret, ...]:
        """The configured platform secrets, newest first; else one generated once into the
        var directory (mode 0600) so the embedded default needs no setup."""
        if self.secret_keys:
            return self.secret_keys
        path = self.var_dir / "secret_key"
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return _secret_keys(path.read_text().strip())


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None


def _secret_keys(raw: str) -> tuple[Secret, ...]:
    return tuple(Secret(part.strip()) for part in raw.split(",") if part.strip())
