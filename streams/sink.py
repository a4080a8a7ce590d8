"""Sinks: buffer what a batch produced, write it in one go, retry until it lands.

A sink's ``flush`` returns only when the data is stored; the agent acknowledges
the batch's offsets after that, so a crash between the write and the commit
replays the batch, and the table's key makes the replay harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from connectors.clickhouse import Store
from schemas.beliefs import BeliefColumns

log = logging.getLogger("flexstream.sink")

RunDb = Callable[..., Awaitable[Any]]


class Sink:
    """Base class: ``add`` to the buffer, ``write`` the buffer, ``flush`` with retries."""

    max_backoff = 30.0

    def __init__(self) -> None:
        self.written = 0

    def add(self, *items: Any) -> None:
        """Add items to the buffer."""
        raise NotImplementedError

    def write(self) -> int:
        """Write the buffer (blocking; called in the store's thread); return rows written."""
        raise NotImplementedError

    def clear(self) -> None:
        """Drop the buffer after a successful write."""
        raise NotImplementedError

    async def flush(self, run: RunDb, first: str = "", last: str = "") -> int:
        """Write the buffer, retrying with backoff until it lands; return rows written."""
        delay = 0.5
        while True:
            try:
                n = await run(self.write)
            except Exception as exc:  # noqa: BLE001 - any store failure is retried
                log.error("writing %s..%s failed (%s); retrying in %.1f s", first, last, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            self.clear()
            self.written += n
            return n


class BeliefSink(Sink):
    """Beliefs into the ``beliefs`` table, newly seen sources into ``sources``."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self._buffer = BeliefColumns()
        self._sources: set[str] = set()
        self._known_sources: set[str] = set()

    def add(self, beliefs: BeliefColumns, sources: set[str] | None = None) -> None:  # type: ignore[override]
        """Buffer validated beliefs and their sources."""
        self._buffer.extend(beliefs)
        self._sources |= (sources or set()) - self._known_sources

    def write(self) -> int:
        """Insert the buffered beliefs (one insert) and any new sources."""
        n = self.store.insert_beliefs(self._buffer.to_arrow()) if len(self._buffer) else 0
        if self._sources:
            self.store.add_sources(sorted(self._sources))
        return n

    def clear(self) -> None:
        """Forget the written buffer."""
        self._known_sources |= self._sources
        self._sources = set()
        self._buffer = BeliefColumns()
