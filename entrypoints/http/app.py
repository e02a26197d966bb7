"""The Litestar application factory.

``create_app(services=None, settings=None)``: given services (tests, an embedding process),
the app uses them and leaves closing them to the caller; otherwise its lifespan builds them
with ``bootstrap.build_services(settings)`` (settings from the environment by default) and
closes them on shutdown. Nothing is built at import time.
"""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from entrypoints.bootstrap import Services
from entrypoints.http.auth import SESSION_COOKIE, provide_services
from entrypoints.http.controllers.auth import AccountController, AuthController
from entrypoints.http.controllers.billing import BillingController, BillingWebhookController
from entrypoints.http.controllers.byok import LlmConfigController
from entrypoints.http.controllers.catalog import CatalogController
from entrypoints.http.controllers.gateway import GatewayController
from entrypoints.http.controllers.health import HealthController
from entrypoints.http.controllers.llm_proxy import LlmProxyController
from entrypoints.http.controllers.metrics import MetricsController
from entrypoints.http.controllers.notifications import NotificationsController
from entrypoints.http.controllers.tenant import TenantController
from entrypoints.http.controllers.usage_history import UsageHistoryController
from entrypoints.http.delivery_task import deliver_in_background
from entrypoints.http.errors import EXCEPTION_HANDLERS
from entrypoints.http.metrics import Metrics
from entrypoints.http.notification_pages import NotificationPagesController, load_banners
from entrypoints.http.origin_guard import origin_guard_middleware
from entrypoints.http.proxy_fast_path import proxy_fast_path
from entrypoints.http.request_log import request_log_middleware
from entrypoints.http.schema_page import ServerRenderedDocs
from entrypoints.http.sweeper import sweeping
from entrypoints.settings import Settings

API_VERSION = "1.0.0"
PAGES_MODULE = "entrypoints.http.pages"


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="tierkeeper",
        version=API_VERSION,
        description="Control plane for per-tenant OpenClaw gateways: tiers, metering, BYOK "
        "keys, billing, configs.",
        path="/schema",
        render_plugins=[ServerRenderedDocs(), JsonRenderPlugin()],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="A customer token (signup/login) or a service token (CLI "
                    "`tierkeeper tokens create`).",
                ),
                "session": SecurityScheme(
                    type="apiKey",
                    name=SESSION_COOKIE,
                    security_scheme_in="cookie",
                    description="The web pages' HTTP-only session cookie; unsafe requests also "
                    "need the X-CSRF-Token header.",
                ),
            }
        ),
    )


def _pages() -> list[ControllerRouterHandler]:
    """The web pages' router, when that package is installed alongside the API."""
    if importlib.util.find_spec(PAGES_MODULE) is None:
        return []
    module = importlib.import_module(PAGES_MODULE)
    router: Router | None = getattr(module, "pages_router", None)
    return [router] if router is not None else []


def _page_error_handlers() -> dict[Any, Any]:
    """HTML error pages for browsers, when the pages package is installed."""
    if importlib.util.find_spec(PAGES_MODULE) is None:
        return {}
    module = importlib.import_module(PAGES_MODULE)
    handlers: dict[Any, Any] = module.page_error_handlers()
    return handlers


def compression_config() -> CompressionConfig:
    """Brotli (gzip for clients without it) for static assets and API bodies of 500 bytes
    or more. HTML pages opt out (``skip_compression``): they carry CSRF tokens next to text
    a visitor typed, which compression would let an attacker guess (BREACH)."""
    return CompressionConfig(
        backend="brotli", brotli_gzip_fallback=True, exclude_opt_key="skip_compression"
    )


def logging_config() -> LoggingConfig:
    """Records go to stderr, formatted on the thread that made them, and a loop turn's
    records are written together (``LoopTurnStreamHandler``). Litestar's default hands each
    record to a queue-listener thread and, on Python 3.11, formats it twice, and writes once per
    record; both showed in the request benchmarks (docs/benchmarks.md has the figures)."""
    return LoggingConfig(
        handlers={
            "console": {
                "class": "entrypoints.http.log_handler.LoopTurnStreamHandler",
                "level": "DEBUG",
                "formatter": "standard",
            }
        },
        root={"level": "INFO", "handlers": ["console"]},
        loggers={"litestar": {"level": "INFO", "handlers": ["console"], "propagate": False}},
    )


ServicesBuilder = Callable[[Settings], Awaitable[Services]]


def keep_startup_out_of_collections() -> None:
    """What the process built to start (modules, the app, its services) lives as long as
    the process: moved to the collector's permanent generation, a full collection scans
    only what requests made. Measured at 64 proxied connections: 11 full collections of
    about 94 ms in 10 s, each stopping every request in the process, before this."""
    gc.collect()
    gc.freeze()


def create_app(
    services: Services | None = None,
    settings: Settings | None = None,
    *,
    build: ServicesBuilder | None = None,
) -> Litestar:
    """``build`` replaces ``bootstrap.build_services`` in the lifespan (a test that must
    build its services on the app's own event loop)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            metrics.watch_pools(services.ports.database_pools)
            yield
            return
        from entrypoints.bootstrap import build_services

        builder = build or build_services
        built = await builder(settings or Settings.from_environ())
        app.state.services = built
        app.state.services_built_here = True
        metrics.watch_pools(built.ports.database_pools)
        keep_startup_out_of_collections()
        try:
            async with sweeping(built):
                yield
        finally:
            await built.close()

    metrics = Metrics.create()
    handlers: list[Any] = [
        HealthController,
        AuthController,
        AccountController,
        CatalogController,
        TenantController,
        LlmConfigController,
        BillingController,
        BillingWebhookController,
        GatewayController,
        NotificationsController,
        NotificationPagesController,
        LlmProxyController,
        MetricsController,
        UsageHistoryController,
        *_pages(),
    ]
    app = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan, deliver_in_background],
        before_request=load_banners,
        dependencies={"services": Provide(provide_services)},
        exception_handlers={**EXCEPTION_HANDLERS, **_page_error_handlers()},
        compression_config=compression_config(),
        openapi_config=openapi_config(),
        logging_config=logging_config(),
        debug=False,
        state=State({"metrics": metrics}),
    )
    # the LLM proxy's calls bypass Litestar; the guard and the request log stay outermost, so
    # those calls, unknown paths and wrong methods are logged too (route middleware would
    # only see requests that matched a route)
    app.asgi_handler = proxy_fast_path(app.asgi_handler)
    app.asgi_handler = origin_guard_middleware(app.asgi_handler)
    app.asgi_handler = request_log_middleware(app.asgi_handler, metrics)
    return app
