"""One read at a time per key, shared by every caller that asks while it runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

import attrs

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@attrs.define
class SingleFlight(Generic[K, V]):
    """Callers asking for a key while a read of it is under way await that read's answer
    (or its failure) instead of starting their own. Nothing is kept: once the read ends,
    the next caller reads again. A caller cancelled while waiting leaves the read running
    for the others."""

    _reads: dict[K, asyncio.Task[V]] = attrs.field(factory=dict, init=False)

    async def run(self, key: K, read: Callable[[], Coroutine[Any, Any, V]]) -> V:
        task = self._reads.get(key)
        if task is None:
            task = self._reads[key] = asyncio.create_task(read())
            task.add_done_callback(lambda _: self._reads.pop(key))
        return await asyncio.shield(task)
