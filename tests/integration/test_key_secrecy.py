"""The plaintext key, the platform secret and the Vault token appear nowhere: not in the repr
of any object that held them, not in the logs, not in exception messages or tracebacks, and
not in the stored ciphertext rows."""

from __future__ import annotations

import base64
import logging
import secrets
import traceback

import attrs
import pytest

from adapters.keystores.fernet import FernetKeyStore
from adapters.keystores.vault import VaultTransitKeyStore
from domain.errors import KeyStoreUnavailable
from domain.secrets import Secret
from domain.use_cases.key_maintenance import KeyMaintenance, Progress
from domain.use_cases.key_store_set import KeyStoreSet
from entrypoints.settings import Settings
from tests.fakes import InMemoryCredentialRepository
from tests.support.credentials import stored_credential
from tests.support.openbao import OpenBaoServer, free_port

pytestmark = pytest.mark.integration


@attrs.define
class Exposure:
    """Everything a test saw, to be searched for the secrets afterwards."""

    texts: list[str] = attrs.Factory(list)

    def show(self, *objects: object) -> None:
        for obj in objects:
            self.texts.extend((repr(obj), str(obj)))

    def error(self, error: BaseException) -> None:
        self.texts.extend((str(error), repr(error), "".join(traceback.format_exception(error))))


async def test_no_key_secret_or_token_shows_anywhere(
    openbao: OpenBaoServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    api_key = f"sk-ant-api03-CANARY{secrets.token_hex(12)}Qa"
    fernet_secret = f"fernet-secret-{secrets.token_hex(16)}"
    new_fernet_secret = f"fernet-secret-{secrets.token_hex(16)}"
    plaintext_b64 = base64.b64encode(api_key.encode()).decode()
    forbidden = (api_key, api_key[len("sk-ant-") :], plaintext_b64, fernet_secret)
    forbidden += (new_fernet_secret, openbao.root_token)
    seen = Exposure()

    settings = Settings.from_environ(
        {
            "TIERKEEPER_SECRET_KEY": f"{new_fernet_secret},{fernet_secret}",
            "TIERKEEPER_VAULT_ADDR": openbao.addr,
            "TIERKEEPER_VAULT_TOKEN": openbao.root_token,
        }
    )
    key = Secret(api_key)
    fernet = FernetKeyStore([Secret(fernet_secret)])
    vault = VaultTransitKeyStore(
        openbao.addr,
        token=Secret(openbao.root_token),
        transit_key=f"secrecy-{secrets.token_hex(4)}",
    )
    stores = KeyStoreSet(fernet, (vault,))
    repository = InMemoryCredentialRepository()
    jobs = KeyMaintenance(repository, stores)
    events: list[Progress] = []
    seen.show(settings, key, fernet, vault, vault._client, stores, jobs)

    from_fernet = await fernet.encrypt(key)
    from_vault = await vault.encrypt(key)
    await repository.put(stored_credential(1, from_fernet))
    await repository.put(stored_credential(2, from_vault))
    await vault.rotate_key()
    seen.show(from_fernet, from_vault, await fernet.decrypt(from_fernet))
    seen.show(await jobs.rotate(events.append))
    seen.show(await jobs.migrate("vault", events.append))
    rotated = KeyMaintenance(
        repository,
        KeyStoreSet(FernetKeyStore([Secret(new_fernet_secret), Secret(fernet_secret)]), (vault,)),
    )
    seen.show(await rotated.migrate("fernet", events.append), await rotated.verify(events.append))
    seen.show(*events)

    failures = [
        FernetKeyStore([Secret(new_fernet_secret)]).decrypt(
            attrs.evolve(from_fernet, key_version=from_fernet.key_version + 1)
        ),
        fernet.decrypt(attrs.evolve(from_fernet, token=from_fernet.token[:-8] + "AAAAAAAA")),
        vault.decrypt(attrs.evolve(from_vault, token=from_vault.token[:-8] + "AAAAAAAA")),
        VaultTransitKeyStore(openbao.addr, token=Secret(fernet_secret)).encrypt(key),
        VaultTransitKeyStore(
            f"http://127.0.0.1:{free_port()}", token=Secret(openbao.root_token)
        ).encrypt(key),
    ]
    for failing in failures:
        with pytest.raises(KeyStoreUnavailable) as caught:
            await failing
        seen.error(caught.value)

    rows = list(repository.rows.values())
    assert {row.ciphertext.store for row in rows} == {"fernet"}
    seen.show(*rows)
    seen.texts.extend(row.ciphertext.token for row in rows)
    seen.texts.append(caplog.text)
    seen.texts.extend(record.getMessage() for record in caplog.records)

    assert len(seen.texts) > 40
    assert any(r.name.startswith("urllib3") for r in caplog.records), "the HTTP calls were logged"
    leaks = [(value[:12], text[:80]) for text in seen.texts for value in forbidden if value in text]
    assert leaks == []
