"""Who may use the worker's SQL endpoint: a token in the data folder, no browser.

The worker writes a fresh random token into its data folder at start
(``sql-token``, readable by its owner only); ``flexstream sql`` reads it there
and sends it as ``Authorization: Bearer <token>``. So only someone who can read
the data folder can query through the worker. Browsers add an ``Origin``
header to cross-origin requests and can send text/plain bodies without asking
first: any ``Origin`` is refused, and only ``application/json`` bodies are taken.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

TOKEN_FILE = "sql-token"


def new_token(data_dir: Path) -> str:
    """Write a new random token to ``data_dir`` (mode 0600) and return it."""
    token = secrets.token_urlsafe(32)
    path = Path(data_dir) / TOKEN_FILE
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    os.replace(tmp, path)
    return token


def read_token(data_dir: Path) -> str | None:
    """The token of the worker of ``data_dir``, or None when there is none."""
    try:
        return (Path(data_dir) / TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None


def refusal(headers: Mapping[str, str], token: str) -> tuple[int, str] | None:
    """Why a request with ``headers`` is refused (HTTP status, reason), or None."""
    h = {k.lower(): v for k, v in headers.items()}
    if "origin" in h:
        return 403, "cross-origin requests are refused; query with 'flexstream sql'"
    scheme, _, sent = h.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
        return 401, (
            f"send the worker's token (the file {TOKEN_FILE} in its data folder) as "
            "'Authorization: Bearer <token>'; 'flexstream sql' does so"
        )
    if h.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return 415, "send the query as application/json"
    return None
