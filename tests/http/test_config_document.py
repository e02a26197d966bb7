"""Thin gateway endpoints (issue #14 step 5): the config document decrypts nothing, and
saving a key hands the plaintext in hand to the config writer."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from domain.byok import Ciphertext
from domain.errors import KeyStoreUnavailable
from domain.secrets import Secret
from domain.use_cases.key_store_set import KeyStoreSet
from entrypoints.bootstrap import Services
from tests.http.conftest import Customer, key_for, make_active
from tests.http.test_byok import put_key


def count_key_store_calls(monkeypatch: pytest.MonkeyPatch, *, decrypt_fails: bool) -> Counter[str]:
    """Counts every encrypt and decrypt of the app's key store from now on."""
    calls: Counter[str] = Counter()
    encrypt, decrypt = KeyStoreSet.encrypt, KeyStoreSet.decrypt

    async def counted_encrypt(self: KeyStoreSet, plaintext: Secret) -> Ciphertext:
        calls["encrypt"] += 1
        return await encrypt(self, plaintext)

    async def counted_decrypt(self: KeyStoreSet, ciphertext: Ciphertext) -> Secret:
        calls["decrypt"] += 1
        if decrypt_fails:
            raise KeyStoreUnavailable("the key store does not answer")
        return await decrypt(self, ciphertext)

    monkeypatch.setattr(KeyStoreSet, "encrypt", counted_encrypt)
    monkeypatch.setattr(KeyStoreSet, "decrypt", counted_decrypt)
    return calls


async def test_the_config_document_of_a_tenant_on_its_own_key_needs_no_decrypt(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_active(services, customer.tenant_id, "byok")
    assert (await put_key(client, customer)).status_code == 200
    path = f"/api/v1/gateway/tenants/{customer.tenant_id}/config"
    before = (await client.get(path, headers=service_headers)).json()
    calls = count_key_store_calls(monkeypatch, decrypt_fails=True)
    response = await client.get(path, headers=service_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["openclaw"], body["env_names"], body["digest"]) == (
        before["openclaw"],
        before["env_names"],
        before["digest"],
    )
    assert "TIERKEEPER_BYOK_OPENAI_KEY" in body["env_names"]
    assert key_for("openai") not in response.text
    assert calls["decrypt"] == 0


async def test_saving_a_key_encrypts_it_once_and_decrypts_nothing(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_active(services, customer.tenant_id, "byok")
    assert (await put_key(client, customer)).status_code == 200
    calls = count_key_store_calls(monkeypatch, decrypt_fails=True)
    replaced = await put_key(client, customer, api_key=key_for("openai", "-second"))
    assert replaced.status_code == 200, replaced.text
    assert calls == Counter({"encrypt": 1})
    env_files = list(Path(environ["TIERKEEPER_CONFIG_ROOT"]).rglob(".env"))  # noqa: ASYNC240
    assert len(env_files) == 1
    assert key_for("openai", "-second") in env_files[0].read_text()
