"""An account mail's one-click link: the code rides in the fragment, never in the query."""

from __future__ import annotations

import pytest

from domain.accounts import AccountMail, AccountMailKind
from domain.ids import TenantId
from domain.secrets import Secret

pytestmark = pytest.mark.unit

LINK = "https://tk.example/reset-password"


def test_a_mail_with_a_code_links_to_the_page_with_the_code_in_the_fragment() -> None:
    mail = AccountMail(AccountMailKind.PASSWORD_RESET, "a@example.com", TenantId("t-1"), LINK,
                       Secret("c0de"))  # fmt: skip
    assert mail.link_with_code().reveal() == LINK + "#code=c0de"
    assert "c0de" not in repr(mail)


def test_a_mail_without_a_code_links_to_the_page_alone() -> None:
    mail = AccountMail(AccountMailKind.PASSWORD_CHANGED, "a@example.com", TenantId("t-1"), LINK)
    assert mail.link_with_code().reveal() == LINK
