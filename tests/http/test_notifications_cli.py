"""``tierkeeper notifications deliver`` and ``tierkeeper tenants welcome`` on the embedded
default: with no SMTP server configured, mail lands as ``.eml`` files under ``var/mail``."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
from pathlib import Path

import pytest

from adapters.sql.database import upgrade
from domain.ids import TenantId
from domain.secrets import Secret
from entrypoints.bootstrap import build_services
from entrypoints.cli import main
from entrypoints.settings import Settings
from tests.http.conftest import TEST_PASSWORD_HASHER

pytestmark = pytest.mark.http


@pytest.fixture
def fresh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("TIERKEEPER_"):
            monkeypatch.delenv(name)
    env = {"TIERKEEPER_VAR_DIR": str(tmp_path / "var")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def signed_up(env: dict[str, str]) -> TenantId:
    settings = Settings.from_environ(env)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)

    async def run() -> TenantId:
        services = await build_services(settings, password_hasher=TEST_PASSWORD_HASHER)
        try:
            done = await services.accounts.signup("eml@example.com", Secret("a long password"))
            return done.tenant.id
        finally:
            await services.close()

    return asyncio.run(run())


def test_activation_by_the_operator_welcomes_and_deliver_writes_it_as_an_eml_file(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tenant_id = signed_up(fresh_env)
    assert main(["tenants", "set-tier", tenant_id, "starter", "--status", "active"]) == 0
    assert main(["tenants", "welcome", tenant_id]) == 0
    welcome = capsys.readouterr().out.strip().splitlines()[-1]
    assert welcome.startswith("Welcome to your agent on the Starter plan.")

    assert main(["notifications", "deliver"]) == 0
    out = capsys.readouterr().out
    assert "sent 2, skipped 1 (channel off)" in out, "the welcome and the signup's verification"
    mails = {
        path: email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in (tmp_path / "var" / "mail").glob("*.eml")
    }
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in mails)
    subjects = sorted(str(m["Subject"]) for m in mails.values())
    assert subjects == [
        "[tierkeeper] Confirm your email address",
        "[tierkeeper] Welcome to the Starter plan",
    ]
    ((path, mail),) = [(p, m) for p, m in mails.items() if "Welcome" in str(m["Subject"])]
    assert mail["To"] == "eml@example.com"
    assert mail["From"] == "tierkeeper@localhost"
    assert mail["Subject"] == "[tierkeeper] Welcome to the Starter plan"
    assert welcome in mail.get_body(preferencelist=("plain",)).get_content()
    assert path.stem == mail["Message-ID"].strip("<>").split("@")[0]

    assert main(["notifications", "deliver"]) == 0
    assert "sent 0, skipped 0" in capsys.readouterr().out, "nothing is sent twice"
    assert len(list((tmp_path / "var" / "mail").glob("*.eml"))) == 2


def test_welcome_of_an_unknown_tenant_is_an_error(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    signed_up(fresh_env)
    assert main(["tenants", "welcome", "t_nobody"]) == 2
    assert "unknown" in capsys.readouterr().err
