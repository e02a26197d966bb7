"""The Fernet key store's own rules: fixed key derivation, stable key versions (no I/O)."""

from __future__ import annotations

import pickle

import pytest
from cryptography.fernet import Fernet

from adapters.keystores.fernet import FernetKeyStore, derive_fernet_key, key_version_of
from domain.errors import ValidationError
from domain.secrets import Secret

pytestmark = pytest.mark.unit

SECRET = Secret("correct horse battery staple")


def test_the_hkdf_salt_and_info_are_pinned_so_stored_keys_stay_readable():
    """Changing the derivation would make every stored key unreadable; this pins it."""
    assert derive_fernet_key(SECRET) == b"MYOHugvvBQ76lSu6b8JYm7xR0IPqs3LC_DZbWrQhloc="
    assert key_version_of(SECRET) == 1779598280


async def test_a_token_decrypts_with_the_derived_key_alone():
    ciphertext = await FernetKeyStore([SECRET]).encrypt(Secret("sk-ant-api03-x"))

    assert Fernet(derive_fernet_key(SECRET)).decrypt(ciphertext.token.encode()) == b"sk-ant-api03-x"


async def test_a_secret_keeps_its_key_version_when_a_newer_one_is_prepended():
    before = FernetKeyStore([SECRET])
    after = FernetKeyStore([Secret("a newer platform secret"), SECRET])
    ciphertext = await before.encrypt(Secret("sk-ant-api03-x"))

    assert ciphertext.key_version == before.current_version != after.current_version
    assert (await after.decrypt(ciphertext)).reveal() == "sk-ant-api03-x"
    assert not await after.is_current(ciphertext)
    rewrapped = await after.rewrap(ciphertext)
    assert rewrapped.key_version == after.current_version


def test_key_versions_are_positive_and_fit_a_signed_32_bit_column():
    versions = {key_version_of(Secret(f"secret-{n}")) for n in range(200)}

    assert len(versions) == 200
    assert all(0 < version < 2**31 for version in versions)


def test_a_store_without_any_secret_is_refused_naming_the_variable():
    with pytest.raises(ValidationError) as caught:
        FernetKeyStore([])

    assert caught.value.field == "TIERKEEPER_SECRET_KEY"


def test_the_store_shows_its_versions_and_is_never_pickled():
    store = FernetKeyStore([SECRET])

    assert repr(store) == "FernetKeyStore(versions=[1779598280])"
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(store)
