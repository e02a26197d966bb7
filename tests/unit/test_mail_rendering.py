"""How a notification leaves, word for word: the mail's text and HTML (subject, body, the
button, the pasted code, the footer), its message id, and the webhook's JSON body and
Standard Webhooks signature."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from domain.errors import ValidationError
from domain.ids import TenantId
from domain.notification_delivery import (
    ACCOUNT_FOOTER,
    NOTICE_FOOTER,
    absolute_link,
    mail_footer,
    new_webhook_secret,
    render_mail,
    webhook_headers,
    webhook_payload,
)
from domain.notifications import (
    Message,
    NotificationFacts,
    NotificationId,
    NotificationKind,
    StoredNotification,
)
from domain.secrets import Secret

pytestmark = pytest.mark.unit

NOTICE = Message("Cap <reached>", "Body & more", "/usage", "See usage")
SETTINGS = "https://app.example.com/settings/notifications"
BUTTON = (
    "display:inline-block;padding:.5em 1em;background:#1d4ed8;color:#fff;"
    'text-decoration:none;border-radius:4px"'
)


def test_a_notice_mail_reads_body_link_and_the_settings_footer_word_for_word() -> None:
    mail = render_mail(
        NOTICE, NotificationId("n-7"), "agent@mail.example", "c@d.example",
        "https://app.example.com/usage?a=1&b=2", SETTINGS,
    )  # fmt: skip
    assert mail.message_id == "<n-7@mail.example>"
    assert (mail.sender, mail.recipient) == ("agent@mail.example", "c@d.example")
    assert mail.subject == "[tierkeeper] Cap <reached>"
    assert mail.text == (
        "Body & more\n\nSee usage: https://app.example.com/usage?a=1&b=2\n\n"
        "-- \ntierkeeper: the team behind your agent. You get this mail because mail notices "
        f"are on in your notification settings: {SETTINGS}\n"
    )
    assert mail.html == (
        '<!doctype html><html><body style="font-family:sans-serif;max-width:36em">'
        '<h1 style="font-size:1.3em">Cap &lt;reached&gt;</h1>'
        "<p>Body &amp; more</p>"
        '<p><a href="https://app.example.com/usage?a=1&amp;b=2" style="' + BUTTON + ">"
        "See usage</a></p>"
        '<hr><p style="color:#555;font-size:.9em">tierkeeper: the team behind your agent. '
        "You get this mail because mail notices are on in your notification settings: "
        f'<a href="{SETTINGS}">{SETTINGS}</a></p></body></html>'
    )


def test_account_mail_shows_the_code_to_paste_and_cannot_be_turned_off() -> None:
    message = Message("Reset <your> password", "Someone asked.", "", "Choose a password")
    link = "https://app.example.com/reset#code=abc&123"
    mail = render_mail(message, NotificationId("n-8"), "agent@mail.example", "c@d.example", link)
    paste = "If the page does not fill in your code, paste it there: abc&123"
    assert mail.text == (
        f"Someone asked.\n\nChoose a password: {link}\n\n{paste}\n\n"
        "-- \ntierkeeper: the team behind your agent. This mail is about your account itself "
        "(its password, address or sign-in), so it cannot be turned off.\n"
    )
    assert mail.html.endswith(
        '<p><a href="https://app.example.com/reset#code=abc&amp;123" style="' + BUTTON + ">"
        "Choose a password</a></p>"
        "<p>If the page does not fill in your code, paste it there: abc&amp;123</p>"
        '<hr><p style="color:#555;font-size:.9em">tierkeeper: the team behind your agent. '
        "This mail is about your account itself (its password, address or sign-in), so it "
        "cannot be turned off.</p></body></html>"
    )
    assert '<h1 style="font-size:1.3em">Reset &lt;your&gt; password</h1>' in mail.html


def test_a_sender_with_an_empty_domain_gets_a_localhost_message_id() -> None:
    mail = render_mail(NOTICE, NotificationId("n-9"), "agent@", "c@d.example", "/x", SETTINGS)
    assert mail.message_id == "<n-9@localhost>"


def test_a_settings_link_is_escaped_in_the_html_footer() -> None:
    link = 'https://app.example.com/s?a=1&b="2"'
    mail = render_mail(NOTICE, NotificationId("n-1"), "a@b.example", "c@d.example", "/x", link)
    escaped = "https://app.example.com/s?a=1&amp;b=&quot;2&quot;"
    assert f'<a href="{escaped}">{escaped}</a></p></body></html>' in mail.html
    assert mail.text.endswith(f"{NOTICE_FOOTER} {link}\n")


def test_the_footer_says_why_the_mail_came() -> None:
    assert mail_footer(None) == ACCOUNT_FOOTER
    assert mail_footer("/s") == f"{NOTICE_FOOTER} /s"


def test_a_mails_repr_shows_its_id_and_subject_but_not_its_text() -> None:
    message = Message("Title", "secret-ish body", "/x", "Go")
    mail = render_mail(message, NotificationId("n-2"), "a@b.example", "c@d.example", "/x")
    assert repr(mail) == "OutgoingMail(message_id='<n-2@b.example>', subject='[tierkeeper] Title')"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("/usage", "https://app.example.com/usage"),
        ("", "https://app.example.com/"),
        ("http://elsewhere.example/x", "http://elsewhere.example/x"),
        ("https://elsewhere.example/y", "https://elsewhere.example/y"),
    ],
)
def test_a_link_becomes_absolute_on_the_public_url_unless_it_already_is(
    link: str, expected: str
) -> None:
    assert absolute_link("https://app.example.com/", link) == expected


def _note(facts: NotificationFacts) -> StoredNotification:
    return StoredNotification(NotificationId("n-3"), facts, datetime(2026, 3, 15, 9, tzinfo=UTC))


def test_the_webhook_body_of_a_threshold_carries_its_facts_in_sorted_compact_json() -> None:
    facts = NotificationFacts(
        TenantId("t-1"), NotificationKind.MESSAGES, window_key="2026-03-15", percent=80,
        used=40, limit=50,
    )  # fmt: skip
    message = Message("80% used", "You used 40 of 50.", "/usage", "See usage")
    sent = datetime(2026, 3, 15, 10, tzinfo=UTC)
    body = webhook_payload(_note(facts), message, "https://app.example.com/usage", sent)
    assert body == (
        b'{"data":{"body":"You used 40 of 50.","created_at":"2026-03-15T09:00:00+00:00",'
        b'"id":"n-3","kind":"messages_80","limit":50,"link":"https://app.example.com/usage",'
        b'"percent":80,"tenant_id":"t-1","title":"80% used","used":40,'
        b'"window":"2026-03-15"},"timestamp":"2026-03-15T10:00:00+00:00",'
        b'"type":"notification.messages_80"}'
    )


def test_the_webhook_body_of_another_kind_has_no_threshold_fields() -> None:
    facts = NotificationFacts(TenantId("t-1"), NotificationKind.KEY_INVALIDATED, provider="x")
    message = Message("Key", "Refused.", "/k", "Fix")
    sent = datetime(2026, 3, 15, 10, tzinfo=UTC)
    document = json.loads(webhook_payload(_note(facts), message, "/k", sent))
    assert document["type"] == "notification.key_invalidated"
    assert set(document["data"]) == {
        "id", "tenant_id", "kind", "title", "body", "link", "created_at",
    }  # fmt: skip


def test_the_signature_equals_the_standard_webhooks_librarys_own() -> None:
    secret = new_webhook_secret(bytes(range(24)))
    body = b'{"a":1}'
    headers = webhook_headers(secret, NotificationId("msg_2"), 1_773_565_200, body)
    expected = Webhook(secret.reveal()).sign(
        "msg_2", datetime.fromtimestamp(1_773_565_200, UTC), body.decode()
    )
    assert headers == {
        "webhook-id": "msg_2",
        "webhook-timestamp": "1773565200",
        "webhook-signature": expected,
        "content-type": "application/json",
    }


def test_a_webhook_secret_is_whsec_and_base64_of_at_least_24_bytes() -> None:
    random = bytes(range(24))
    secret = new_webhook_secret(random)
    assert secret.reveal() == "whsec_" + base64.b64encode(random).decode()
    with pytest.raises(ValueError, match=r"^a webhook secret needs at least 24 random bytes$"):
        new_webhook_secret(bytes(23))


def test_signing_with_a_secret_not_in_whsec_form_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        webhook_headers(Secret("abc"), NotificationId("m"), 1, b"{}")
    assert caught.value.field == "webhook_secret"
    assert str(caught.value) == "a webhook secret starts with whsec_"


def test_the_message_id_takes_the_domain_after_the_senders_last_at_sign() -> None:
    mail = render_mail(NOTICE, NotificationId("n-4"), '"a@b"@mail.example', "c@d.example", "/x")
    assert mail.message_id == "<n-4@mail.example>"


def test_quotes_in_the_link_cannot_leave_the_buttons_href() -> None:
    link = "https://app.example.com/x?q=\"a\"&r='b'"
    mail = render_mail(NOTICE, NotificationId("n-5"), "a@b.example", "c@d.example", link)
    assert '<a href="https://app.example.com/x?q=&quot;a&quot;&amp;r=&#x27;b&#x27;" ' in mail.html


def test_only_trailing_slashes_of_the_public_url_are_dropped() -> None:
    assert (
        absolute_link("https://app.example.com/X/", "/usage") == "https://app.example.com/X/usage"
    )
