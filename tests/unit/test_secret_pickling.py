"""A Secret never leaves the process by pickling, and says so."""

from __future__ import annotations

import pickle

import pytest

from domain.secrets import Secret


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_a_secret_is_refused_saying_why(protocol: int) -> None:
    with pytest.raises(TypeError) as raised:
        pickle.dumps(Secret("sk-never-on-disk"), protocol=protocol)
    assert str(raised.value) == "a Secret is never pickled"
    assert "sk-never-on-disk" not in repr(raised.value)
