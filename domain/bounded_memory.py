"""In-process memories that are only an optimisation, held to a hard bound."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(memory: dict[K, V], key: K, value: V, limit: int) -> None:
    """Keep ``value`` under ``key``; a memory already holding ``limit`` entries is emptied
    first. Emptying it all at once needs no bookkeeping per entry, and the next reads
    refill what is still in use."""
    if len(memory) >= limit:
        memory.clear()
    memory[key] = value
