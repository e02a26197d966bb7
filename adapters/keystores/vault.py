"""``VaultTransitKeyStore``: BYOK keys encrypted by HashiCorp Vault's (or OpenBao's) transit
engine through hvac.

Vault holds the encryption key; tierkeeper stores only the ``vault:vN:…`` ciphertext, whose
``N`` is the transit key version recorded as ``key_version``. The named key is created on
first use when missing. Rotation is Vault's: ``rotate_key`` adds a version, ``rewrap``
re-encrypts a ciphertext under the latest one without the plaintext leaving Vault.

hvac is synchronous: every call runs in a worker thread (``asyncio.to_thread``) so the event
loop never blocks on Vault. Failures become ``KeyStoreUnavailable`` with a detail written
here, never Vault's raw message, so neither the key nor the token can leak through it.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import hvac
import hvac.exceptions
import requests

from domain.byok import Ciphertext
from domain.errors import KeyStoreUnavailable, ValidationError
from domain.secrets import Secret

T = TypeVar("T")
_VERSION_PREFIX = re.compile(r"^vault:v(\d+):")


def vault_key_version(token: str) -> int:
    """The transit key version a ``vault:vN:…`` ciphertext was made with."""
    match = _VERSION_PREFIX.match(token)
    if match is None:
        raise KeyStoreUnavailable("the Vault ciphertext has no vault:vN: version prefix")
    return int(match.group(1))


class VaultTransitKeyStore:
    """Transit encrypt/decrypt/rewrap under one named key, with token or AppRole login."""

    name = "vault"

    def __init__(
        self,
        addr: str,
        *,
        token: Secret | None = None,
        role_id: str | None = None,
        secret_id: Secret | None = None,
        transit_key: str = "tierkeeper-byok",
        mount_point: str = "transit",
        approle_mount_point: str = "approle",
        timeout_seconds: float = 5.0,
        latest_version_ttl_seconds: float = 1.0,
        verify: bool | str = True,
    ) -> None:
        if token is None and role_id is None:
            raise ValidationError(
                "the Vault key store needs TIERKEEPER_VAULT_TOKEN or "
                "TIERKEEPER_VAULT_ROLE_ID and TIERKEEPER_VAULT_SECRET_ID",
                field="TIERKEEPER_VAULT_TOKEN",
            )
        self.addr = addr.rstrip("/")
        self.transit_key = transit_key
        self.mount_point = mount_point
        self._approle_mount_point = approle_mount_point
        self._role_id = role_id
        self._secret_id = secret_id
        self._client = hvac.Client(
            url=self.addr,
            token=token.reveal() if token is not None else None,
            timeout=timeout_seconds,
            verify=verify,
        )
        self._needs_login = token is None
        self._key_ready = False
        self._latest_ttl = latest_version_ttl_seconds
        self._latest: tuple[int, float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"VaultTransitKeyStore(addr={self.addr!r}, mount_point={self.mount_point!r}, "
            f"transit_key={self.transit_key!r})"
        )

    def __getstate__(self) -> None:
        raise TypeError("a key store is never pickled")

    async def encrypt(self, plaintext: Secret) -> Ciphertext:
        encoded = base64.b64encode(plaintext.reveal().encode()).decode("ascii")

        def call() -> str:
            response = self._client.secrets.transit.encrypt_data(
                self.transit_key, plaintext=encoded, mount_point=self.mount_point
            )
            return str(response["data"]["ciphertext"])

        token = await self._run("encrypt", call)
        return Ciphertext(self.name, vault_key_version(token), token)

    async def decrypt(self, ciphertext: Ciphertext) -> Secret:
        self._ensure_ours(ciphertext)

        def call() -> Secret:
            response = self._client.secrets.transit.decrypt_data(
                self.transit_key, ciphertext=ciphertext.token, mount_point=self.mount_point
            )
            return Secret(base64.b64decode(response["data"]["plaintext"]).decode())

        return await self._run("decrypt", call, ciphertext)

    async def is_current(self, ciphertext: Ciphertext) -> bool:
        """Compared with the key's latest version, read from Vault at most once per
        ``latest_version_ttl_seconds``."""
        if ciphertext.store != self.name:
            return False
        return ciphertext.key_version == await self.latest_version(max_age=self._latest_ttl)

    async def rewrap(self, ciphertext: Ciphertext) -> Ciphertext:
        self._ensure_ours(ciphertext)

        def call() -> str:
            response = self._client.secrets.transit.rewrap_data(
                self.transit_key, ciphertext=ciphertext.token, mount_point=self.mount_point
            )
            return str(response["data"]["ciphertext"])

        token = await self._run("rewrap", call, ciphertext)
        return Ciphertext(self.name, vault_key_version(token), token)

    async def check(self) -> None:
        """Vault answers, is unsealed, accepts the credentials, and the key exists."""

        def call() -> bool:
            return bool(self._client.sys.is_sealed())

        if await self._run("check", call):
            raise KeyStoreUnavailable(f"Vault at {self.addr} is sealed")
        await self.latest_version(max_age=0.0)

    async def latest_version(self, max_age: float = 0.0) -> int:
        """The transit key's latest version (cached for ``max_age`` seconds)."""
        cached = self._latest
        if cached is not None and time.monotonic() - cached[1] < max_age:
            return cached[0]
        return await self._run("read key", self._read_latest_version)

    async def rotate_key(self) -> int:
        """Add a new version to the transit key; returns it. New encryptions use it at once;
        older ciphertexts still decrypt until rewrapped (``tierkeeper keys rotate``)."""

        def call() -> int:
            self._client.secrets.transit.rotate_key(self.transit_key, mount_point=self.mount_point)
            return self._read_latest_version()

        return await self._run("rotate key", call)

    def _read_latest_version(self) -> int:
        response = self._client.secrets.transit.read_key(
            self.transit_key, mount_point=self.mount_point
        )
        latest = int(response["data"]["latest_version"])
        self._latest = (latest, time.monotonic())
        return latest

    async def _run(
        self, operation: str, call: Callable[[], T], ciphertext: Ciphertext | None = None
    ) -> T:
        return await asyncio.to_thread(self._call_sync, operation, call, ciphertext)

    def _call_sync(self, operation: str, call: Callable[[], T], ciphertext: Ciphertext | None) -> T:
        try:
            try:
                self._prepare()
                return call()
            except hvac.exceptions.Forbidden:
                if self._role_id is None:
                    raise
                self._needs_login = True  # an expired AppRole token: log in again, once
                self._prepare()
                return call()
        except KeyStoreUnavailable:
            raise
        except Exception as error:
            raise KeyStoreUnavailable(self._describe(operation, error, ciphertext)) from None

    def _prepare(self) -> None:
        with self._lock:
            if self._needs_login:
                self._login()
                self._needs_login = False
            if not self._key_ready:
                try:
                    self._read_latest_version()
                except hvac.exceptions.InvalidPath:
                    self._client.secrets.transit.create_key(
                        self.transit_key, key_type="aes256-gcm96", mount_point=self.mount_point
                    )
                    self._read_latest_version()
                self._key_ready = True

    def _login(self) -> None:
        try:
            self._client.auth.approle.login(
                role_id=self._role_id,
                secret_id=self._secret_id.reveal() if self._secret_id else None,
                mount_point=self._approle_mount_point,
            )
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden):
            raise KeyStoreUnavailable(
                f"Vault at {self.addr} refused the AppRole login at "
                f"auth/{self._approle_mount_point}/: check the role id and secret id"
            ) from None

    def _describe(self, operation: str, error: Exception, ciphertext: Ciphertext | None) -> str:
        where = f"Vault at {self.addr}"
        if isinstance(error, requests.exceptions.Timeout):
            return f"{where} did not answer in time ({operation})"
        if isinstance(error, requests.exceptions.RequestException):
            return f"{where} is unreachable ({operation})"
        if isinstance(error, hvac.exceptions.VaultDown):
            return f"{where} is sealed or down ({operation})"
        if isinstance(error, hvac.exceptions.VaultNotInitialized):
            return f"{where} is not initialized ({operation})"
        if isinstance(error, hvac.exceptions.Unauthorized | hvac.exceptions.Forbidden):
            return (
                f"{where} refused the credentials ({operation}): check the token or the "
                f"AppRole's policy on {self.mount_point}/ and key {self.transit_key!r}"
            )
        if isinstance(error, hvac.exceptions.InvalidPath):
            return (
                f"{where} has no transit engine at {self.mount_point}/ "
                f"or no key {self.transit_key!r} ({operation})"
            )
        if isinstance(error, hvac.exceptions.InvalidRequest) and ciphertext is not None:
            return (
                f"the Vault ciphertext (version {ciphertext.key_version}) does not {operation}: "
                f"it was altered, truncated, or made by another key than {self.transit_key!r}"
            )
        if isinstance(error, ValueError | UnicodeError | KeyError | TypeError):
            return f"{where} gave an unexpected answer ({operation})"
        return f"{where} failed ({operation}: {type(error).__name__})"

    def _ensure_ours(self, ciphertext: Ciphertext) -> None:
        if ciphertext.store != self.name:
            raise KeyStoreUnavailable(
                f"the Vault key store cannot read a ciphertext of the {ciphertext.store!r} store"
            )
