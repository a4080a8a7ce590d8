"""Every worker setting is documented in the README's settings table."""

from __future__ import annotations

import re
from pathlib import Path

from connectors.settings import WorkerSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_worker_setting_has_a_row_in_the_readme():
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `FLEXSTREAM_")]
    documented = set()
    for row in rows:
        names = re.findall(r"`(FLEXSTREAM_WORKER_[A-Z_]+|_[A-Z_]+)`", row.split("|")[1])
        first = names[0] if names else ""
        for name in names:
            # "`FLEXSTREAM_WORKER_STATE_PAST` / `_FUTURE`" documents STATE_FUTURE too.
            documented.add(name if name.startswith("FLEXSTREAM") else _sibling(first, name))
    settings = {f"FLEXSTREAM_WORKER_{n.upper()}" for n in WorkerSettings.model_fields}
    assert settings - documented == set()


def _sibling(first: str, suffix: str) -> str:
    """``FLEXSTREAM_WORKER_SQL_MAX_RESULT_ROWS`` and ``_BYTES`` -> ``..._RESULT_BYTES``."""
    head = first.rsplit("_", suffix.count("_"))[0]
    if suffix.startswith("_STATE") or head + suffix == first:
        return "FLEXSTREAM_WORKER" + suffix
    return head + suffix
