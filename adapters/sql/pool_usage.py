"""What a connection pool holds right now, as the metrics report it."""

from __future__ import annotations

import attrs


@attrs.frozen
class PoolUsage:
    """One connection pool of this process: connections lent out, idle, and its bound."""

    pool: str
    in_use: int
    idle: int
    max_size: int
