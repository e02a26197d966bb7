"""The web pages of the app: ``pages_router`` (pages, their forms, the static assets) and
``page_error_handlers`` (HTML error pages for browsers).

``create_app`` mounts the router beside the JSON API. Every form posts to the server, so
the pages work with JavaScript off; the scripts only make them smoother.
"""

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from entrypoints.http.pages.controllers import PagesController
from entrypoints.http.pages.errors import FaviconController, page_error_handlers
from entrypoints.http.pages.forms import FormsController
from entrypoints.http.pages.rendering import STATIC_DIR, STATIC_PATH

STATIC_MAX_AGE_S = 365 * 24 * 3600
"""Pages link every asset with its content hash (``?v=…``): a changed file gets a new URL,
so a browser may keep what it fetched for a year."""

pages_router = Router(
    path="/",
    route_handlers=[
        PagesController,
        FormsController,
        FaviconController,
        create_static_files_router(
            path=STATIC_PATH,
            directories=[STATIC_DIR],
            include_in_schema=False,
            name="static",
            cache_control=CacheControlHeader(max_age=STATIC_MAX_AGE_S, public=True, immutable=True),
        ),
    ],
)

__all__ = ["page_error_handlers", "pages_router"]
