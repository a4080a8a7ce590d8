"""The unit tier does no I/O: starting a process or opening a network socket fails a test.

Files under pytest's ``tmp_path`` and the project's own files may be read and written;
whatever starts a process (a CLI run, a browser, the embedded engine's server) or talks
over the network belongs in ``tests/integration``.
"""

from __future__ import annotations

import socket
import subprocess

import hypothesis_budget  # noqa: F401 - loads the hypothesis profile for every unit test
import pytest


def _refuse(what: str):
    def refuse(*_args, **_kwargs):
        raise AssertionError(f"a unit test {what}; move it to tests/integration")

    return refuse


@pytest.fixture(autouse=True)
def _no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("started a process"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("opened a network connection"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse("opened a network connection"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("bound a network socket"))
