"""How the real key stores fail: wrong Fernet secret, tampered tokens, Vault sealed, stopped,
refusing the credentials, or missing its engine. Every failure is ``KeyStoreUnavailable``
with a detail that names the cause and never the key, the secret or the token."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import attrs
import pytest

from adapters.keystores.fernet import FernetKeyStore
from adapters.keystores.vault import VaultTransitKeyStore
from domain.byok import Ciphertext
from domain.errors import KeyStoreUnavailable
from domain.secrets import Secret
from domain.use_cases.key_maintenance import KeyMaintenance
from domain.use_cases.key_store_set import KeyStoreSet
from tests.fakes import InMemoryCredentialRepository
from tests.support.credentials import store_credentials
from tests.support.openbao import TRANSIT_MOUNT, OpenBaoServer, free_port, running_openbao

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("keys_never_logged")]

KEY = Secret("sk-ant-api03-failureCanary-0123456789-Zz9Qa")


def tampered(ciphertext: Ciphertext) -> Ciphertext:
    middle = len(ciphertext.token) // 2
    flipped = "B" if ciphertext.token[middle] == "A" else "A"
    return attrs.evolve(
        ciphertext, token=ciphertext.token[:middle] + flipped + ciphertext.token[middle + 1 :]
    )


def vault_store(server: OpenBaoServer, **overrides: object) -> VaultTransitKeyStore:
    options: dict[str, object] = {
        "token": Secret(server.root_token),
        "transit_key": f"failures-{secrets.token_hex(6)}",
    }
    options.update(overrides)
    return VaultTransitKeyStore(server.addr, **options)  # type: ignore[arg-type]


@pytest.fixture
def own_openbao() -> Iterator[OpenBaoServer]:
    """A server of the test's own, to seal or stop without disturbing the others."""
    with running_openbao() as server:
        yield server


def assert_says_nothing_secret(error: KeyStoreUnavailable, *secret_values: str) -> None:
    shown = f"{error} {error!r} {error.detail}"
    for value in (KEY.reveal(), *secret_values):
        assert value not in shown


async def test_a_fernet_key_made_with_a_secret_no_longer_configured_is_unavailable():
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    ciphertext = await FernetKeyStore([Secret(old)]).encrypt(KEY)

    with pytest.raises(KeyStoreUnavailable) as caught:
        await FernetKeyStore([Secret(new)]).decrypt(ciphertext)

    assert "platform secret that is not configured" in caught.value.detail
    assert "TIERKEEPER_SECRET_KEY" in caught.value.detail
    assert caught.value.code == "key_store_unavailable"
    assert_says_nothing_secret(caught.value, old, new)


async def test_a_tampered_fernet_token_is_unavailable_and_says_it_was_altered():
    secret = secrets.token_urlsafe(32)
    store = FernetKeyStore([Secret(secret)])
    ciphertext = await store.encrypt(KEY)

    with pytest.raises(KeyStoreUnavailable, match="altered or truncated") as caught:
        await store.decrypt(tampered(ciphertext))
    with pytest.raises(KeyStoreUnavailable, match="altered or truncated"):
        await store.rewrap(attrs.evolve(ciphertext, token=ciphertext.token[:20]))

    assert_says_nothing_secret(caught.value, secret)


async def test_a_fernet_token_that_is_not_ascii_is_unavailable_not_a_crash():
    store = FernetKeyStore([Secret(secrets.token_urlsafe(32))])
    ciphertext = await store.encrypt(KEY)

    with pytest.raises(KeyStoreUnavailable):
        await store.decrypt(attrs.evolve(ciphertext, token="gAAAAA€"))


async def test_a_tampered_vault_token_is_unavailable_and_says_it_was_altered(
    openbao: OpenBaoServer,
):
    store = vault_store(openbao)
    ciphertext = await store.encrypt(KEY)

    with pytest.raises(KeyStoreUnavailable, match="altered, truncated") as caught:
        await store.decrypt(tampered(ciphertext))

    assert_says_nothing_secret(caught.value, openbao.root_token)


async def test_a_sealed_vault_is_unavailable_and_works_again_once_unsealed(
    own_openbao: OpenBaoServer,
):
    store = vault_store(own_openbao)
    ciphertext = await store.encrypt(KEY)

    own_openbao.seal()
    for attempt in (store.decrypt(ciphertext), store.encrypt(KEY), store.check()):
        with pytest.raises(KeyStoreUnavailable, match="sealed") as caught:
            await attempt
        assert_says_nothing_secret(caught.value, own_openbao.root_token)
    own_openbao.unseal()

    assert (await store.decrypt(ciphertext)).reveal() == KEY.reveal()


async def test_a_stopped_vault_is_unreachable(own_openbao: OpenBaoServer):
    store = vault_store(own_openbao)
    ciphertext = await store.encrypt(KEY)

    own_openbao.stop()

    with pytest.raises(KeyStoreUnavailable, match="unreachable") as caught:
        await store.decrypt(ciphertext)
    assert caught.value.code == "key_store_unavailable"
    assert_says_nothing_secret(caught.value, own_openbao.root_token)


async def test_a_vault_nobody_listens_on_is_unreachable_at_check():
    store = VaultTransitKeyStore(f"http://127.0.0.1:{free_port()}", token=Secret("t0ken-xyz"))

    with pytest.raises(KeyStoreUnavailable, match="unreachable"):
        await store.check()


async def test_a_job_on_a_sealed_vault_stops_before_writing_anything(own_openbao: OpenBaoServer):
    store = vault_store(own_openbao)
    repository = InMemoryCredentialRepository()
    await store_credentials(repository, store, range(20))
    await store.rotate_key()
    before = dict(repository.rows)
    own_openbao.seal()

    with pytest.raises(KeyStoreUnavailable, match="sealed"):
        await KeyMaintenance(repository, KeyStoreSet(store)).rotate()

    assert repository.rows == before


async def test_a_wrong_vault_token_is_refused_without_being_shown(openbao: OpenBaoServer):
    wrong = "s.wrong-token-" + secrets.token_hex(8)
    store = vault_store(openbao, token=Secret(wrong))

    with pytest.raises(KeyStoreUnavailable, match="refused the credentials") as caught:
        await store.check()

    assert_says_nothing_secret(caught.value, wrong)


async def test_a_missing_transit_engine_is_named_in_the_error(openbao: OpenBaoServer):
    store = vault_store(openbao, mount_point="no-such-transit")

    with pytest.raises(KeyStoreUnavailable, match="no transit engine at no-such-transit/"):
        await store.encrypt(KEY)


async def test_the_transit_key_is_created_on_first_use(openbao: OpenBaoServer):
    store = vault_store(openbao)

    await store.check()

    key = openbao.client().secrets.transit.read_key(store.transit_key, mount_point=TRANSIT_MOUNT)
    assert key["data"]["latest_version"] == 1
    assert key["data"]["exportable"] is False


async def test_vault_calls_run_off_the_event_loop_thread(openbao: OpenBaoServer):
    store = vault_store(openbao)
    await store.check()
    transit = store._client.secrets.transit
    real_encrypt = transit.encrypt_data
    threads: list[threading.Thread] = []

    def recording_encrypt(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread())
        return real_encrypt(*args, **kwargs)

    transit.encrypt_data = recording_encrypt  # type: ignore[method-assign]

    await store.encrypt(KEY)

    assert threads and threads[0] is not threading.main_thread()


@pytest.fixture(scope="module")
def approle(openbao: OpenBaoServer) -> tuple[str, str, str]:
    """An AppRole allowed to use one transit key: (transit key, role id, secret id)."""
    client = openbao.client()
    methods = client.sys.list_auth_methods()
    if "approle/" not in methods.get("data", methods):
        client.sys.enable_auth_method("approle")
    transit_key = f"approle-{secrets.token_hex(4)}"
    policy = "\n".join(
        f'path "{TRANSIT_MOUNT}/{path}/{transit_key}" {{ capabilities = {caps} }}'
        for path, caps in (
            ("encrypt", '["update"]'),
            ("decrypt", '["update"]'),
            ("rewrap", '["update"]'),
            ("keys", '["read", "create", "update"]'),
        )
    )
    client.sys.create_or_update_policy(f"tierkeeper-{transit_key}", policy)
    client.auth.approle.create_or_update_approle(
        transit_key, token_policies=[f"tierkeeper-{transit_key}"], token_ttl="10m"
    )
    role_id = client.auth.approle.read_role_id(transit_key)["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id(transit_key)["data"]["secret_id"]
    return transit_key, role_id, secret_id


async def test_an_approle_login_encrypts_and_decrypts(
    openbao: OpenBaoServer, approle: tuple[str, str, str]
):
    transit_key, role_id, secret_id = approle
    store = VaultTransitKeyStore(
        openbao.addr, role_id=role_id, secret_id=Secret(secret_id), transit_key=transit_key
    )

    ciphertext = await store.encrypt(KEY)

    assert (await store.decrypt(ciphertext)).reveal() == KEY.reveal()
    assert secret_id not in repr(store)


async def test_an_approle_may_only_use_its_own_key(
    openbao: OpenBaoServer, approle: tuple[str, str, str]
):
    _, role_id, secret_id = approle
    store = VaultTransitKeyStore(
        openbao.addr, role_id=role_id, secret_id=Secret(secret_id), transit_key="someone-else"
    )

    with pytest.raises(KeyStoreUnavailable, match="refused the credentials"):
        await store.encrypt(KEY)


async def test_a_wrong_approle_secret_id_is_refused_without_being_shown(
    openbao: OpenBaoServer, approle: tuple[str, str, str]
):
    transit_key, role_id, _ = approle
    wrong = secrets.token_hex(16)
    store = VaultTransitKeyStore(
        openbao.addr, role_id=role_id, secret_id=Secret(wrong), transit_key=transit_key
    )

    with pytest.raises(KeyStoreUnavailable, match="refused the AppRole login") as caught:
        await store.check()

    assert_says_nothing_secret(caught.value, wrong)
