"""At most a few password hashes run at once and the excess is shed; the rules that keep
``next`` on this site and refuse cross-site browser requests."""

from __future__ import annotations

import asyncio

import pytest

from adapters.security.bounded import BoundedPasswordHasher
from domain.errors import Overloaded
from domain.secrets import Secret
from entrypoints.http.auth import safe_next
from entrypoints.http.origin_guard import cross_site_reason, has_body, media_type, origin_allowed

PUBLIC = "https://app.tierkeeper.example"


class SlowHasher:
    """Counts how many hashes run at the same time; each waits until released."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.release = asyncio.Event()

    async def hash(self, password: Secret) -> str:
        self.running += 1
        self.most = max(self.most, self.running)
        await self.release.wait()
        self.running -= 1
        return "h"

    async def verify(self, password_hash: str, password: Secret) -> bool:
        await self.hash(password)
        return True


async def test_only_max_running_hashes_run_and_the_excess_beyond_the_queue_is_shed() -> None:
    inner = SlowHasher()
    bounded = BoundedPasswordHasher(inner, max_running=2, max_waiting=3)
    tasks = [asyncio.create_task(bounded.hash(Secret("p"))) for _ in range(8)]
    await asyncio.sleep(0.01)
    shed = [t for t in tasks if t.done()]
    assert len(shed) == 3
    assert all(isinstance(t.exception(), Overloaded) for t in shed)
    assert shed[0].exception().retry_after_s == 1  # type: ignore[union-attr]
    assert inner.running == 2
    inner.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results.count("h") == 5
    assert inner.most == 2


async def test_places_free_up_after_the_hashes_finish() -> None:
    inner = SlowHasher()
    inner.release.set()
    bounded = BoundedPasswordHasher(inner, max_running=1, max_waiting=0)
    for _ in range(5):
        assert await bounded.verify("h", Secret("p"))


@pytest.mark.parametrize(
    "target",
    ["/settings", "/settings/ai-provider?tab=1", "/a/b#c", "/"],
)
def test_paths_of_this_site_are_kept(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "/\t/evil.example/", "/\n/evil.example", "/\\evil.example",
     "\\\\evil.example", "https://evil.example/", "evil.example", "/ok\\..\\x", "",
     None, "/\x00", "/\x7f", "javascript:alert(1)", "/" + "a" * 3000, "/ /evil.example",
     "/\u00a0/evil.example", "/\u3000/evil.example"],
)  # fmt: skip
def test_anything_that_could_leave_the_site_falls_back(target: str | None) -> None:
    assert safe_next(target, "/home") == "/home"


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [("https://app.tierkeeper.example", None, True),
     ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
     ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
     ("https://evil.example", "127.0.0.1:8000", False),
     ("null", "127.0.0.1:8000", False),
     ("file://", None, False)],
)  # fmt: skip
def test_an_origin_is_allowed_only_when_it_names_this_site(
    origin: str, host: str | None, allowed: bool
) -> None:
    assert origin_allowed(origin, host, PUBLIC) is allowed


@pytest.mark.parametrize(
    ("headers", "refused"),
    [({}, False),
     ({"sec-fetch-site": "same-origin"}, False),
     ({"sec-fetch-site": "none"}, False),
     ({"sec-fetch-site": "cross-site"}, True),
     ({"sec-fetch-site": "same-site"}, True),
     ({"origin": "https://evil.example", "host": "127.0.0.1:8000"}, True),
     ({"origin": "http://127.0.0.1:8000", "host": "127.0.0.1:8000"}, False),
     ({"sec-fetch-site": "same-origin", "origin": "https://evil.example"}, True)],
)  # fmt: skip
def test_browser_headers_decide_whether_a_request_is_cross_site(
    headers: dict[str, str], refused: bool
) -> None:
    assert (cross_site_reason(headers, PUBLIC) is not None) is refused


def test_the_media_type_ignores_parameters_and_case() -> None:
    assert media_type({"content-type": "Application/JSON; charset=utf-8"}) == "application/json"
    assert media_type({}) == ""
    assert has_body({"content-length": "2"}) and not has_body({"content-length": "0"})
    assert has_body({"transfer-encoding": "chunked"}) and not has_body({})
