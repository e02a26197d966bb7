"""The generic top-level package names resolve to this repository, not to a namesake."""

from __future__ import annotations

from pathlib import Path

import adapters
import domain
import entrypoints

REPO = Path(__file__).resolve().parents[2]


def test_the_three_packages_are_this_repositorys() -> None:
    for package in (domain, adapters, entrypoints):
        assert package.__file__ is not None
        assert Path(package.__file__).resolve().parent.parent == REPO, package.__name__
