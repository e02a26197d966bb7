"""Secret values: the key travels inside a box whose repr and str never show it."""

from __future__ import annotations

import attrs

REDACTED = "**********"


@attrs.frozen(repr=False)
class Secret:
    """A secret string. Only ``reveal()`` gives the plaintext, at the one place that needs it."""

    _value: str = attrs.field(alias="value")

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __len__(self) -> int:
        return len(self._value)

    def __getstate__(self) -> None:
        raise TypeError("a Secret is never pickled")
