"""Jinja2 rendering for the pages: one environment over the installed templates, autoescaped.

The pages render their own HTML responses, so the router needs no app-level template
configuration and can be mounted by ``create_app`` as it is.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import jinja2

from entrypoints.http.banners import banners_for_page

HTTP_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = HTTP_DIR / "templates"
STATIC_DIR = HTTP_DIR / "static"
STATIC_PATH = "/static"


@functools.cache
def _asset_version(name: str) -> str:
    """A short content hash so browsers fetch a changed asset instead of a cached one."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    return f"{STATIC_PATH}/{name}?v={_asset_version(name)}"


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.globals["notification_banners"] = banners_for_page
    return env


def render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(**context)
