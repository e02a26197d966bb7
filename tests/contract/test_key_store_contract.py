"""The ``KeyStore`` contract: the fake, Fernet and Vault transit (a real OpenBao) behave alike."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator

import attrs
import pytest

from adapters.keystores.fernet import FernetKeyStore
from adapters.keystores.vault import VaultTransitKeyStore
from domain.byok import Ciphertext
from domain.errors import KeyStoreUnavailable
from domain.ports import KeyStore
from domain.secrets import Secret
from tests.fakes import FakeKeyStore
from tests.support.openbao import OpenBaoServer

pytestmark = [pytest.mark.contract, pytest.mark.usefixtures("keys_never_logged")]

ANTHROPIC_KEY = Secret("sk-ant-api03-contractKEY-0123456789abcdefXYZ9Qa")
KEYS = [
    pytest.param(ANTHROPIC_KEY, id="anthropic"),
    pytest.param(Secret("sk-" + "a1B2" * 127), id="512-characters"),
    pytest.param(Secret("AIzaSy-ünïcødé-ключ-鍵"), id="unicode"),
]


@attrs.define
class Harness:
    """A store under test, how to give it a new newest key, and the secrets it was built from
    (which must never show)."""

    store: KeyStore
    rotate: Callable[[], Awaitable[KeyStore]]
    secret_material: tuple[str, ...]


def _fake() -> Harness:
    store = FakeKeyStore()

    async def rotate() -> KeyStore:
        store.version += 1
        return store

    return Harness(store, rotate, ())


def _fernet() -> Harness:
    first = secrets.token_urlsafe(32)

    async def rotate() -> KeyStore:
        return FernetKeyStore([Secret(secrets.token_urlsafe(32)), Secret(first)])

    return Harness(FernetKeyStore([Secret(first)]), rotate, (first,))


def _vault(server: OpenBaoServer) -> Harness:
    store = VaultTransitKeyStore(
        server.addr,
        token=Secret(server.root_token),
        transit_key=f"contract-{secrets.token_hex(6)}",
    )

    async def rotate() -> KeyStore:
        await store.rotate_key()
        return store

    return Harness(store, rotate, (server.root_token,))


@pytest.fixture(
    params=[
        "fake",
        "fernet",
        pytest.param("vault", marks=pytest.mark.integration),
    ]
)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "fake":
        yield _fake()
    elif request.param == "fernet":
        yield _fernet()
    else:
        yield _vault(request.getfixturevalue("openbao"))


def _tampered(ciphertext: Ciphertext) -> Ciphertext:
    middle = len(ciphertext.token) // 2
    flipped = "B" if ciphertext.token[middle] == "A" else "A"
    token = ciphertext.token[:middle] + flipped + ciphertext.token[middle + 1 :]
    return attrs.evolve(ciphertext, token=token)


@pytest.mark.parametrize("key", KEYS)
async def test_a_key_encrypted_then_decrypted_is_the_same_key(harness: Harness, key: Secret):
    ciphertext = await harness.store.encrypt(key)

    assert (await harness.store.decrypt(ciphertext)).reveal() == key.reveal()


async def test_a_ciphertext_names_its_store_and_a_positive_key_version(harness: Harness):
    ciphertext = await harness.store.encrypt(ANTHROPIC_KEY)

    assert ciphertext.store == harness.store.name
    assert isinstance(ciphertext.key_version, int)
    assert ciphertext.key_version > 0


async def test_the_stored_token_does_not_contain_the_key(harness: Harness):
    ciphertext = await harness.store.encrypt(ANTHROPIC_KEY)

    assert ANTHROPIC_KEY.reveal() not in ciphertext.token
    assert ANTHROPIC_KEY.reveal()[-12:] not in repr(ciphertext)


async def test_a_fresh_ciphertext_is_current(harness: Harness):
    ciphertext = await harness.store.encrypt(ANTHROPIC_KEY)

    assert await harness.store.is_current(ciphertext) is True


async def test_after_rotation_an_old_ciphertext_is_stale_but_still_decrypts(harness: Harness):
    old = await harness.store.encrypt(ANTHROPIC_KEY)

    rotated = await harness.rotate()

    assert await rotated.is_current(old) is False
    assert (await rotated.decrypt(old)).reveal() == ANTHROPIC_KEY.reveal()


async def test_after_rotation_new_ciphertexts_carry_a_new_key_version(harness: Harness):
    old = await harness.store.encrypt(ANTHROPIC_KEY)

    rotated = await harness.rotate()
    new = await rotated.encrypt(ANTHROPIC_KEY)

    assert new.key_version != old.key_version
    assert await rotated.is_current(new) is True


async def test_rewrap_puts_an_old_ciphertext_under_the_newest_key_with_the_same_plaintext(
    harness: Harness,
):
    old = await harness.store.encrypt(ANTHROPIC_KEY)
    rotated = await harness.rotate()

    rewrapped = await rotated.rewrap(old)

    assert rewrapped.store == rotated.name
    assert rewrapped.key_version != old.key_version
    assert await rotated.is_current(rewrapped) is True
    assert (await rotated.decrypt(rewrapped)).reveal() == ANTHROPIC_KEY.reveal()


async def test_a_tampered_token_is_refused_as_unavailable_without_the_key_in_the_message(
    harness: Harness,
):
    ciphertext = await harness.store.encrypt(ANTHROPIC_KEY)

    with pytest.raises(KeyStoreUnavailable) as caught:
        await harness.store.decrypt(_tampered(ciphertext))

    assert caught.value.code == "key_store_unavailable"
    assert ANTHROPIC_KEY.reveal() not in str(caught.value)
    assert all(s not in str(caught.value) for s in harness.secret_material)


async def test_a_ciphertext_of_another_store_is_refused_and_not_current(harness: Harness):
    foreign = Ciphertext("elsewhere", 1, "opaque-token")

    assert await harness.store.is_current(foreign) is False
    with pytest.raises(KeyStoreUnavailable, match="elsewhere"):
        await harness.store.decrypt(foreign)
    with pytest.raises(KeyStoreUnavailable, match="elsewhere"):
        await harness.store.rewrap(foreign)


async def test_check_passes_when_the_store_answers(harness: Harness):
    assert await harness.store.check() is None


async def test_the_store_repr_shows_none_of_its_secrets(harness: Harness):
    await harness.store.encrypt(ANTHROPIC_KEY)

    shown = repr(harness.store) + str(harness.store)
    assert all(s not in shown for s in harness.secret_material)
    assert ANTHROPIC_KEY.reveal() not in shown
