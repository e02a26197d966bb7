"""Fixtures shared by every test layer; each lives in ``tests/support`` and is re-exported here."""

from tests.support.credentials import keys_never_logged
from tests.support.openbao import openbao

__all__ = ["keys_never_logged", "openbao"]
