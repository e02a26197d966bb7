"""Fixtures shared by every test layer; each lives in ``tests/support`` and is re-exported here."""

import pytest

from tests.support.credentials import keys_never_logged
from tests.support.openbao import openbao
from tests.support.postgres import stop_embedded

__all__ = ["keys_never_logged", "openbao"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_embedded()
