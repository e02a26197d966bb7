"""Virtual keys: the one credential a tenant's gateway holds in proxy mode (spec §13).

A virtual key (``tkv_…``) names a tenant to the LLM proxy and nothing else: it is useless
against any provider. Only its SHA-256 is looked up; the plaintext is kept encrypted by the
key store, like a BYOK key, so a config written again carries the same key until it is
rotated on purpose.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import attrs

from domain.byok import Ciphertext
from domain.ids import TenantId
from domain.secrets import Secret

VIRTUAL_KEY_PREFIX = "tkv_"
VIRTUAL_KEY_BYTES = 32
VIRTUAL_KEY_ENV = "TIERKEEPER_VIRTUAL_KEY"
"""The variable of the tenant's ``.env`` that holds its virtual key in proxy mode."""
MAX_PRESENTED_LENGTH = 200


@attrs.frozen
class StoredVirtualKey:
    """A tenant's current virtual key: looked up by hash, re-rendered from the ciphertext."""

    tenant_id: TenantId
    key_hash: str
    ciphertext: Ciphertext
    created_at: datetime


def new_virtual_key() -> Secret:
    """A fresh key: the ``tkv_`` prefix and 32 random bytes, URL-safe (the size is said on
    purpose although it is the default of ``token_urlsafe`` today, which therefore no test
    can tell from it)."""
    random_part = secrets.token_urlsafe(VIRTUAL_KEY_BYTES)  # pragma: no mutate (None is 32 too)
    return Secret(VIRTUAL_KEY_PREFIX + random_part)


def virtual_key_hash(key: Secret) -> str:
    """The stored form of a key: its SHA-256 in hex (the key has 256 random bits, so no
    salt or slow hash is needed to keep it from being guessed)."""
    return hashlib.sha256(key.reveal().encode()).hexdigest()


def looks_like_virtual_key(presented: str) -> bool:
    """Only ``tkv_`` strings of a sane length are worth a lookup."""
    return presented.startswith(VIRTUAL_KEY_PREFIX) and len(presented) <= MAX_PRESENTED_LENGTH
