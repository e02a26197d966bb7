"""The product app with proposed hot-path changes applied from outside, so the benchmark can
measure a proposal before its owner changes the product (never used by the product).

``BENCH_VARIANT`` is a comma-separated list of:

- ``quiet-access-log``: the per-request access log line is not emitted (logger at WARNING),
  measuring what one log record per request through Litestar's queue-listener thread costs.
- ``direct-access-log``: the access log line is written by a plain stream handler on the
  event loop's thread instead of through Litestar's queue-listener thread.
- ``token-cache``: a verified service token is remembered for ``BENCH_TOKEN_TTL_S`` seconds
  (default 5), removing one database round trip from every gateway request; a revoked token
  would then keep working for at most that long.

- ``pool-20``: both PostgreSQL pools of ``open_database`` hold up to 20 connections instead
  of 10 (the baseline keeps 10).

Run with ``uvicorn --factory --app-dir bench variant_app:create_app``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from litestar import Litestar

from domain.use_cases.accounts import Accounts
from entrypoints.http.app import create_app as create_product_app

ENV_VARIANT = "BENCH_VARIANT"
ENV_TTL = "BENCH_TOKEN_TTL_S"


def _cache_service_tokens(ttl_s: float) -> None:
    original = Accounts.service
    cache: dict[str, tuple[float, Any]] = {}

    async def service(self: Accounts, token: str) -> Any:
        now = time.monotonic()
        hit = cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await original(self, token)
        cache[token] = (now + ttl_s, principal)
        return principal

    Accounts.service = service  # type: ignore[method-assign]


def create_app() -> Litestar:
    variants = {v.strip() for v in os.environ.get(ENV_VARIANT, "").split(",") if v.strip()}
    if "token-cache" in variants:
        _cache_service_tokens(float(os.environ.get(ENV_TTL, "5")))
    if "pool-20" in variants:
        import adapters.sql.database

        kwdefaults = adapters.sql.database.open_database.__kwdefaults__
        assert kwdefaults is not None
        kwdefaults["pool_size"] = 20
    app = create_product_app()
    if "direct-access-log" in variants:

        def direct(_: Litestar) -> None:
            access = logging.getLogger("tierkeeper.http.access")
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            access.addHandler(handler)
            access.propagate = False

        app.on_startup.append(direct)
    if "quiet-access-log" in variants:

        def quiet(_: Litestar) -> None:
            logging.getLogger("tierkeeper.http.access").setLevel(logging.WARNING)

        app.on_startup.append(quiet)
    return app
