"""Who may use the worker's endpoints: tokens in the data folder, no browser.

The worker writes fresh random tokens into its data folder at start, readable
by its owner only: ``sql-token`` for reading (``flexstream sql``, ClickHouse
clients) and ``admin-token`` for the operators' few writes (``flexstream
delete sensor --purge``). The CLI reads them there and sends them as
``Authorization: Bearer <token>``. So only someone who can read the data folder
can use the worker's endpoints, and a reader's token never writes. Browsers add an ``Origin``
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
ADMIN_TOKEN_FILE = "admin-token"


def new_token(data_dir: Path, name: str = TOKEN_FILE) -> str:
    """Write a new random token to the file ``name`` in ``data_dir`` (mode 0600); return it."""
    token = secrets.token_urlsafe(32)
    path = Path(data_dir) / name
    tmp = path.with_name(f".{name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    os.replace(tmp, path)
    return token


def read_token(data_dir: Path, name: str = TOKEN_FILE) -> str | None:
    """The token (file ``name``) of the worker of ``data_dir``, or None when there is none."""
    try:
        return (Path(data_dir) / name).read_text().strip() or None
    except OSError:
        return None


def refusal(
    headers: Mapping[str, str], token: str, name: str = TOKEN_FILE
) -> tuple[int, str] | None:
    """Why a request with ``headers`` is refused (HTTP status, reason), or None.

    ``token`` is the one expected, from the data folder's file ``name``.
    """
    h = {k.lower(): v for k, v in headers.items()}
    if "origin" in h:
        return 403, "cross-origin requests are refused; use the flexstream commands"
    scheme, _, sent = h.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
        return 401, (
            f"send the worker's token (the file {name} in its data folder) as "
            "'Authorization: Bearer <token>'; the flexstream commands do so"
        )
    if h.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return 415, "send the query as application/json"
    return None
