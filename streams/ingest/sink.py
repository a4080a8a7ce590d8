"""Sinks: buffer what a batch produced, write it in one go, retry until it lands.

A sink's ``flush`` returns only when the data is stored (or, for parts the
store keeps refusing while it answers otherwise, when those parts are handed
back to be dead-lettered); the agent acknowledges the batch's offsets after
that, so a crash between the write and the commit replays the batch, and the
table's key makes the replay harmless.

Failures are told apart by isolating them: after a few failed attempts of the
whole buffer, its parts are written one by one. A part that fails while the
store answers a probe is refused for a reason retrying cannot fix (it goes back
to the caller with the engine's error); if the store does not answer, nothing
is judged and the whole buffer is retried with backoff. While writes fail, the
sink's :class:`~streams.health.Health` reports it, so ``/ready`` says not ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from connectors.clickhouse import Store
from connectors.registry import kind_of
from schemas.beliefs import BeliefColumns
from streams.health import Health

log = logging.getLogger("flexstream.sink")

RunDb = Callable[..., Awaitable[Any]]


class Sink:
    """Base class: ``add`` to the buffer, ``write`` the buffer, ``flush`` with retries."""

    max_backoff = 30.0
    first_backoff = 0.5
    #: Failed attempts of the whole buffer before its parts are written one by one.
    attempts_before_isolating = 3

    def __init__(self, health: Health | None = None, name: str = "store") -> None:
        self.written = 0
        self.health = health or Health()
        self.name = name

    def add(self, *items: Any) -> None:
        """Add items to the buffer."""
        raise NotImplementedError

    def write(self) -> int:
        """Write the buffer (blocking; called in the store's thread); return rows written."""
        raise NotImplementedError

    def isolate(self) -> list[tuple[Hashable, str]] | None:
        """Write the buffer part by part (blocking).

        Returns the parts the store refused, with its error, or None when the
        store itself does not answer (then nothing is judged). The default has
        no parts: it tries the whole buffer once more.
        """
        self.write()
        return []

    def clear(self) -> None:
        """Drop the buffer after a successful write."""
        raise NotImplementedError

    async def flush(
        self, run: RunDb, first: str = "", last: str = ""
    ) -> list[tuple[Hashable, str]]:
        """Write the buffer, retrying with backoff until it lands.

        Returns the parts refused for good (tag, error); empty when all landed.
        """
        delay = self.first_backoff
        attempts = 0
        while True:
            try:
                n = await run(self.write)
            except Exception as exc:  # noqa: BLE001 - any store failure is retried
                attempts += 1
                self.health.failing(self.name, f"writing {first}..{last} failed: {exc}")
                log.error("writing %s..%s failed (%s); attempt %d", first, last, exc, attempts)
                if attempts >= self.attempts_before_isolating:
                    try:
                        refused = await run(self.isolate)
                    except Exception as exc2:  # noqa: BLE001 - judged like a failed write
                        log.error("writing %s..%s part by part failed (%s)", first, last, exc2)
                        refused = None
                    if refused is not None:
                        for tag, error in refused:
                            log.error("the store refuses %s of %s..%s: %s", tag, first, last, error)
                        self.clear()
                        self.health.ok(self.name)
                        return refused
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            self.clear()
            self.written += n
            self.health.ok(self.name)
            return []


class RegistrySink(Sink):
    """Registered sensors, assets and forecasters into their tables, the newest per name.

    A deleted entry (:meth:`remove`) leaves its table; a later definition of the
    same name, buffered before the write, wins over the deletion.
    """

    #: Mirror table of each kind.
    TABLES = {"sensor": "sensors", "asset": "assets", "forecaster": "forecasters"}

    def __init__(self, store: Store, health: Health | None = None) -> None:
        super().__init__(health, "registry")
        self.store = store
        self._buffered: dict[str, dict[str, Any]] = {kind: {} for kind in self.TABLES}

    def add(self, *models: Any) -> None:
        """Buffer definitions (a later one replaces an earlier of its kind and name)."""
        for m in models:
            self._buffered[kind_of(m)][m.name] = m

    def remove(self, kind: str, name: str) -> None:
        """Buffer the deletion of entry ``name`` of ``kind`` ("sensor", "asset", "forecaster")."""
        if kind in self._buffered:
            self._buffered[kind][name] = None

    def __len__(self) -> int:
        return sum(len(b) for b in self._buffered.values())

    def write(self) -> int:
        """Remove the deleted, then upsert the buffered definitions."""
        for kind, buffered in self._buffered.items():
            gone = [n for n, m in buffered.items() if m is None]
            if gone:
                self.store.forget(self.TABLES[kind], gone)
        for kind, buffered in self._buffered.items():
            models = [m for m in buffered.values() if m is not None]
            if models:
                getattr(self.store, f"upsert_{self.TABLES[kind]}")(models)
        return len(self)

    def clear(self) -> None:
        """Forget the written definitions."""
        self._buffered = {kind: {} for kind in self.TABLES}


class PartsSink(Sink):
    """Tagged parts (e.g. one per message) written in one insert; a refused part traced by its tag.

    Subclasses say how parts are inserted (:meth:`insert`); :meth:`isolate`
    writes them one by one, and a part that fails while the store answers a
    probe is refused with the engine's error.
    """

    def __init__(self, store: Store, health: Health | None = None, name: str = "store") -> None:
        super().__init__(health, name)
        self.store = store
        self._parts: list[tuple[Hashable, Any]] = []

    def insert(self, parts: list[tuple[Hashable, Any]]) -> int:
        """Insert ``parts`` in one go (blocking); return rows written."""
        raise NotImplementedError

    def after_write(self) -> None:
        """Write what goes with the parts (blocking; after every write of them)."""

    def write(self) -> int:
        """Insert the buffered parts (one insert) and what goes with them."""
        n = self.insert(self._parts) if self._parts else 0
        self.after_write()
        return n

    def isolate(self) -> list[tuple[Hashable, str]] | None:
        """Write part by part; parts refused while the store answers are returned."""
        refused: list[tuple[Hashable, str]] = []
        for part in self._parts:
            try:
                self.written += self.insert([part])
            except Exception as exc:  # noqa: BLE001 - judged below
                if not self.store.ping():
                    return None
                refused.append((part[0], f"{type(exc).__name__}: {exc}"))
        self.after_write()
        return refused

    def clear(self) -> None:
        """Forget the written buffer."""
        self._parts = []


class BeliefSink(PartsSink):
    """Beliefs into the ``beliefs`` table, newly seen sources into ``sources``.

    Each ``add`` is one part (tagged, e.g. with the index of the message it
    came from), so a part the store refuses can be traced to its message.
    ``name`` is what :class:`~streams.health.Health` calls the sink's writes.
    """

    def __init__(self, store: Store, health: Health | None = None, name: str = "beliefs") -> None:
        super().__init__(store, health, name)
        self._sources: set[str] = set()
        self._known_sources: set[str] = set()

    def add(  # type: ignore[override]
        self, beliefs: BeliefColumns, sources: set[str] | None = None, tag: Hashable = None
    ) -> None:
        """Buffer validated beliefs and their sources as one part."""
        if len(beliefs):
            self._parts.append((tag, beliefs))
        self._sources |= (sources or set()) - self._known_sources

    def add_parts(self, parts: Iterable[tuple[Hashable, BeliefColumns]], sources: set[str]) -> None:
        """Buffer tagged parts at once (as ``add`` with each), with all their sources."""
        self._parts.extend(p for p in parts if len(p[1]))
        self._sources |= sources - self._known_sources

    def insert(self, parts: list[tuple[Hashable, Any]]) -> int:
        """Insert the beliefs of ``parts`` (one insert)."""
        cols = BeliefColumns.concat([c for _, c in parts])
        return self.store.insert_beliefs(cols.to_arrow()) if len(cols) else 0

    def after_write(self) -> None:
        """Record newly seen sources."""
        if self._sources:
            self.store.add_sources(sorted(self._sources))

    def clear(self) -> None:
        """Forget the written buffer."""
        self._known_sources |= self._sources
        self._sources = set()
        self._parts = []


class ScoreSink(PartsSink):
    """Rows of forecasters' scoring rounds into ``forecast_scores``, a part per round."""

    def __init__(
        self, store: Store, columns: list[str], health: Health | None = None, name: str = "scores"
    ) -> None:
        super().__init__(store, health, name)
        self.columns = columns

    def add(self, rows: list[list[Any]], tag: Hashable = None) -> None:  # type: ignore[override]
        """Buffer one round's rows as one part."""
        if rows:
            self._parts.append((tag, rows))

    def insert(self, parts: list[tuple[Hashable, Any]]) -> int:
        """Insert the rows of ``parts`` (one insert)."""
        rows = [row for _, part in parts for row in part]
        self.store.insert_forecast_scores(rows, self.columns)
        return len(rows)
