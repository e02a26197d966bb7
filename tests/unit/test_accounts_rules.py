"""The account input rules at their edges: emails, passwords and service names."""

from __future__ import annotations

import pytest

from domain.errors import ValidationError
from domain.secrets import Secret
from domain.use_cases.accounts import (
    MAX_EMAIL_LENGTH,
    check_password,
    check_service_name,
    normalise_email,
)

LONGEST_EMAIL = "x" * (MAX_EMAIL_LENGTH - len("@example.com")) + "@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "@example.com",
        "ada@",
        "ada@bob@example.com",
        "ada@.com",
        "ada@example.",
        "ada@localhost",
        "ada@...",
        "ada@exa mple.com",
        "ada@example.com\x00",
        "y" + LONGEST_EMAIL,
    ],
)
def test_a_malformed_email_is_refused_naming_the_field(email: str) -> None:
    with pytest.raises(ValidationError) as raised:
        normalise_email(email)
    assert (raised.value.field, raised.value.detail) == (
        "email",
        "email is not a valid email address",
    )


def test_an_email_of_the_maximum_length_is_accepted() -> None:
    assert len(LONGEST_EMAIL) == MAX_EMAIL_LENGTH
    assert normalise_email(LONGEST_EMAIL) == LONGEST_EMAIL


def test_an_email_with_a_subdomain_keeps_every_dot() -> None:
    assert normalise_email("Ada.L@Mail.Example.co.uk") == "ada.l@mail.example.co.uk"


@pytest.mark.parametrize(
    ("length", "detail"),
    [
        (9, "password must be at least 10 characters"),
        (1025, "password must be at most 1024 characters"),
    ],
)
def test_a_password_out_of_bounds_is_refused_saying_the_bound(length: int, detail: str) -> None:
    with pytest.raises(ValidationError) as raised:
        check_password(Secret("p" * length))
    assert (raised.value.field, raised.value.detail) == ("password", detail)


@pytest.mark.parametrize("length", [10, 1024])
def test_a_password_at_either_bound_is_accepted(length: int) -> None:
    check_password(Secret("p" * length))


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [(" gateway ", "gateway"), ("Gateway-EU_1.prod", "Gateway-EU_1.prod"), ("g" * 64, "g" * 64)],
)
def test_a_plain_service_name_of_up_to_64_characters_is_accepted_trimmed(
    name: str, cleaned: str
) -> None:
    assert check_service_name(name) == cleaned


def test_a_bad_service_name_says_what_is_allowed() -> None:
    with pytest.raises(ValidationError) as raised:
        check_service_name("g" * 65)
    assert (raised.value.field, raised.value.detail) == (
        "service",
        "service name must be 1-64 letters, digits, '-', '_' or '.'",
    )
