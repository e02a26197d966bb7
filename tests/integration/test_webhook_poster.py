"""The webhook adapter against a real receiver on 127.0.0.1: it posts the body and headers as
given, treats non-2xx as a failed attempt, follows no redirect, and by default refuses hosts
that are not public addresses (a customer's URL must not reach the server's own network)."""

from __future__ import annotations

import pytest

from adapters.notify.webhooks import HttpxWebhookPoster, is_public_address
from domain.notifications import DeliveryFailed
from tests.support.recording_server import Recorder, recording_server

pytestmark = pytest.mark.integration

HEADERS = {"webhook-id": "msg_1", "webhook-timestamp": "1", "webhook-signature": "v1,x"}


async def test_a_2xx_answer_is_a_delivery_and_the_request_is_sent_as_given() -> None:
    with recording_server() as receiver:
        await HttpxWebhookPoster(allow_private=True).post(receiver.url + "/h", b"{}", HEADERS)
        (request,) = receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/h", b"{}")
    assert request.headers["webhook-id"] == "msg_1"


@pytest.mark.parametrize("status", [302, 404, 500, 503])
async def test_any_other_answer_fails_the_attempt(status: int) -> None:
    receiver: Recorder
    with recording_server() as receiver:
        receiver.status = status
        with pytest.raises(DeliveryFailed, match=f"answered {status}"):
            await HttpxWebhookPoster(allow_private=True).post(receiver.url, b"{}", HEADERS)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/hook",
        "http://[::1]/hook",
    ],
)
async def test_private_and_local_addresses_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(DeliveryFailed, match="not a public address"):
        await HttpxWebhookPoster().post(url, b"{}", HEADERS)


def test_public_addresses_are_recognised() -> None:
    assert is_public_address("93.184.216.34") is True
    assert is_public_address("192.168.1.1") is False
    assert is_public_address("224.0.0.1") is False
