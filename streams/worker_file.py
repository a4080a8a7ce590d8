"""The running worker's file in the data folder: its pid and web port.

The worker writes ``worker.json`` once its store is open and removes it when it
stops. Commands read it to learn whether a worker owns the data folder (the
embedded engine admits one process) and where its web port is. This module
stays free of faust and the store, so commands that only look here start fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: File name of the worker's pid and web port in the data folder.
WORKER_STATE = "worker.json"


def worker_state(data_dir: Path) -> dict[str, Any] | None:
    """The running worker of ``data_dir`` (pid, web port), or None."""
    path = Path(data_dir) / WORKER_STATE
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, ProcessLookupError):
        return None
    return info
