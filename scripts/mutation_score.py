"""Print mutmut's outcome per module and the overall mutation score of the last run.

Score = killed ÷ every mutant checked (killed, survived, timeout, suspicious, no tests).
Run after `mutmut run` in the repository root (``make mutation`` does both).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict


def main() -> int:
    listing = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    per_module: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in listing.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        module = name.split(".x")[0].rsplit(".x_", 1)[0]
        per_module[module][status] += 1
    total: Counter[str] = Counter()
    for module in sorted(per_module):
        counts = per_module[module]
        total.update(counts)
        print(f"{module:45} {_score(counts)}  {dict(counts)}")
    print(f"{'TOTAL':45} {_score(total)}  {dict(total)}")
    return 0


def _score(counts: Counter[str]) -> str:
    checked = sum(v for k, v in counts.items() if k not in ("not checked", "skipped"))
    return f"{100 * counts['killed'] / checked:5.1f}%" if checked else "  n/a"


if __name__ == "__main__":
    raise SystemExit(main())
