"""Who runs a command: the operator's login name, as the audit trail records it."""

from __future__ import annotations

import getpass

from domain.audit import OPERATOR, Actor, AuditSource


def operator() -> Actor:
    """The command line's actor: the login name of the operator (``operator`` when the
    system cannot tell)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        return OPERATOR
    return Actor(AuditSource.CLI, name or OPERATOR.name)
