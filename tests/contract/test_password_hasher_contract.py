"""The ``PasswordHasher`` contract: the fake and the argon2 adapter (alone and behind the
bound that production puts around it) verify the password a hash was made from and nothing
else, salt every hash, keep the password out of the hash, and answer False, never an error,
for a stored hash they cannot read."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.security.bounded import BoundedPasswordHasher
from adapters.security.passwords import Argon2PasswordHasher
from domain.secrets import Secret
from tests.fakes import FakePasswordHasher

pytestmark = pytest.mark.contract

PASSWORD = Secret("correct horse battery staple")


@pytest.fixture(params=("fake", "argon2", "bounded-argon2"))
def hasher(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return FakePasswordHasher()
    # the lowest cost argon2 allows: the contract is about behaviour, not strength
    argon2 = Argon2PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    return argon2 if request.param == "argon2" else BoundedPasswordHasher(argon2)


async def test_the_password_a_hash_was_made_from_verifies(hasher: Any) -> None:
    for password in (PASSWORD, Secret("ünïcødé pässwörd ✓"), Secret("x" * 200)):
        assert await hasher.verify(await hasher.hash(password), password) is True


async def test_any_other_password_does_not(hasher: Any) -> None:
    stored = await hasher.hash(PASSWORD)
    for other in ("correct horse battery stapl", "Correct horse battery staple", "", " "):
        assert await hasher.verify(stored, Secret(other)) is False
    assert await hasher.verify(await hasher.hash(Secret("")), PASSWORD) is False


async def test_every_hash_is_salted_and_holds_no_password(hasher: Any) -> None:
    first, second = await hasher.hash(PASSWORD), await hasher.hash(PASSWORD)
    assert first != second
    for stored in (first, second):
        assert PASSWORD.reveal() not in stored
        assert PASSWORD.reveal()[::-1] not in stored
        assert await hasher.verify(stored, PASSWORD) is True


async def test_a_hash_it_cannot_read_verifies_nothing(hasher: Any) -> None:
    for stored in ("", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$broken", "fake$$"):
        assert await hasher.verify(stored, PASSWORD) is False
        assert await hasher.verify(stored, Secret("")) is False
