"""The pages over the app's test client: pricing for visitors, forms that post to the
server (CSRF-checked, all field errors at once, no secret echoed), HTML error pages,
compression and caching of static assets."""

from __future__ import annotations

import re
from typing import Any

from litestar.testing import AsyncTestClient

from domain.catalog import Catalog
from entrypoints.http.pages.common import VISITOR_CSRF_COOKIE
from tests.http.conftest import PASSWORD

HTML = {"accept": "text/html,application/xhtml+xml"}


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the form carries no CSRF token"
    return found.group(1)


async def visitor_form(client: AsyncTestClient[Any], path: str) -> str:
    page = await client.get(path, headers=HTML)
    assert page.status_code == 200
    assert client.cookies.get(VISITOR_CSRF_COOKIE)
    return form_token(page.text)


async def test_visitors_see_every_tier_with_a_sign_up_that_keeps_it(
    client: AsyncTestClient[Any], catalog: Catalog
) -> None:
    page = await client.get("/", headers=HTML)
    assert page.status_code == 200
    for tier in catalog.tiers:
        assert tier.name in page.text
        assert f'href="/signup?tier={tier.id}"' in page.text
    opus = next(m for t in catalog.tiers for m in t.selectable_models if m != t.primary_model)
    weight = catalog.find_model(opus)
    assert weight is not None
    assert f"{weight.budget_weight.normalize():f}× faster" in page.text
    signup = await client.get("/signup?tier=premium", headers=HTML)
    assert 'name="tier" value="premium"' in signup.text
    unknown = await client.get("/signup?tier=gold", headers=HTML)
    assert 'name="tier"' not in unknown.text


async def test_sign_up_shows_every_field_error_at_once_and_never_echoes_the_password(
    client: AsyncTestClient[Any],
) -> None:
    token = await visitor_form(client, "/signup")
    answer = await client.post(
        "/signup",
        data={"email": "not-an-email", "password": "short-pw1", "csrf_token": token},
        headers=HTML,
    )
    assert answer.status_code == 422
    assert 'id="email-error" hidden' not in answer.text
    assert "Enter your email address, like name@example.com." in answer.text
    assert "Choose a password of at least 10 characters." in answer.text
    assert "Please fix the 2 fields marked below." in answer.text
    assert "short-pw1" not in answer.text
    assert 'value="not-an-email"' in answer.text


async def test_sign_up_by_form_sets_the_session_and_goes_to_the_chosen_plan(
    client: AsyncTestClient[Any],
) -> None:
    token = await visitor_form(client, "/signup?tier=byok")
    answer = await client.post(
        "/signup",
        data={
            "email": "form-signup@example.com",
            "password": PASSWORD,
            "tier": "byok",
            "timezone": "Europe/Berlin",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/onboarding?done=signed-up&tier=byok"
    assert PASSWORD not in answer.headers["location"]
    plans = await client.get("/onboarding?done=signed-up&tier=byok", headers=HTML)
    assert plans.status_code == 200
    assert 'class="card chosen"' in plans.text or "card chosen" in plans.text
    assert "Your account is ready" in plans.text


async def test_without_a_script_the_customer_picks_the_time_zone_their_day_resets_in(
    client: AsyncTestClient[Any],
) -> None:
    """The browser's zone comes from a script; without one the form's own choice counts,
    the page offers current Area/City zones only, and a zone from neither is UTC."""
    page = await client.get("/signup", headers=HTML)
    assert '<option value="America/Sao_Paulo">America/Sao Paulo</option>' in page.text
    assert '<option value="UTC" selected>' in page.text
    assert 'value="US/Eastern"' not in page.text
    cases = [
        ({"timezone_choice": "Asia/Tokyo"}, "Asia/Tokyo"),
        ({"timezone": "Europe/Berlin", "timezone_choice": "Asia/Tokyo"}, "Europe/Berlin"),
        ({"timezone_choice": "Mars/Olympus_Mons"}, "UTC"),
        ({}, "UTC"),
    ]
    for number, (zone_fields, expected) in enumerate(cases):
        client.cookies.clear()
        token = await visitor_form(client, "/signup")
        answer = await client.post(
            "/signup",
            data={"email": f"zone{number}@example.com", "password": PASSWORD,
                  "csrf_token": token, **zone_fields},
            follow_redirects=False,
        )  # fmt: skip
        assert answer.status_code == 303, zone_fields
        assert (await client.get("/api/v1/tenant")).json()["timezone"] == expected, zone_fields


async def test_a_sign_up_form_without_its_token_or_from_another_site_is_refused(
    client: AsyncTestClient[Any],
) -> None:
    data = {"email": "csrf@example.com", "password": PASSWORD}
    no_token = await client.post("/signup", data=data, follow_redirects=False)
    assert no_token.status_code == 403
    token = await visitor_form(client, "/login")
    cross = await client.post(
        "/login",
        data={**data, "csrf_token": token},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        follow_redirects=False,
    )
    assert cross.status_code == 403
    assert "set-cookie" not in cross.headers or "tierkeeper_session" not in str(
        cross.headers.get_list("set-cookie")
    )


async def test_log_in_by_form_follows_only_a_path_of_this_site(
    client: AsyncTestClient[Any],
) -> None:
    await client.post(
        "/api/v1/auth/signup", json={"email": "next@example.com", "password": PASSWORD}
    )
    client.cookies.clear()
    for target, expected in [
        ("/settings", "/settings"),
        ("/\t/evil.example/", "/"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ]:
        client.cookies.clear()
        token = await visitor_form(client, "/login")
        answer = await client.post(
            "/login",
            data={
                "email": "next@example.com",
                "password": PASSWORD,
                "next": target,
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == expected, target


async def test_a_wrong_password_re_renders_the_form_with_words_for_people(
    client: AsyncTestClient[Any],
) -> None:
    token = await visitor_form(client, "/login")
    answer = await client.post(
        "/login",
        data={"email": "nobody@example.com", "password": "wrong password!", "csrf_token": token},
    )
    assert answer.status_code == 401
    assert "do not match an account" in answer.text
    assert "wrong password!" not in answer.text


async def test_a_mistyped_address_shows_a_page_to_browsers_and_json_to_the_api(
    client: AsyncTestClient[Any],
) -> None:
    page = await client.get("/setings", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    api = await client.get("/api/v1/nothing-here", headers=HTML)
    assert api.status_code == 404
    assert api.json()["code"] == "not_found"
    plain = await client.get("/setings")
    assert plain.json()["code"] == "not_found"


async def test_static_assets_are_cached_for_a_year_and_compressed(
    client: AsyncTestClient[Any],
) -> None:
    page = await client.get("/", headers=HTML)
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', page.text)
    assert css
    answer = await client.get(css.group(1), headers={"accept-encoding": "br"})
    assert answer.status_code == 200
    assert "max-age=31536000" in answer.headers["cache-control"]
    assert "immutable" in answer.headers["cache-control"]
    assert answer.headers["content-encoding"] == "br"
    gzip = await client.get(css.group(1), headers={"accept-encoding": "gzip"})
    assert gzip.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in page.headers, "HTML pages with forms are not compressed"
    icon = await client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
