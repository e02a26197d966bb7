"""The web pages of the app: ``pages_router`` (page controllers and the static assets).

``create_app`` mounts it beside the JSON API. The pages' scripts call that API with the
session cookie and the CSRF header named in ``entrypoints.http.auth``.
"""

from litestar import Router
from litestar.static_files import create_static_files_router

from entrypoints.http.pages.account_pages import AccountPagesController
from entrypoints.http.pages.controllers import PagesController
from entrypoints.http.pages.rendering import STATIC_DIR, STATIC_PATH

pages_router = Router(
    path="/",
    route_handlers=[
        PagesController,
        AccountPagesController,
        create_static_files_router(
            path=STATIC_PATH,
            directories=[STATIC_DIR],
            include_in_schema=False,
            name="static",
        ),
    ],
)

__all__ = ["pages_router"]
