"""The asyncio client: the blocking client's calls in threads, schedules as an async stream."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

from connectors.landing import Landing
from connectors.sdk.client import FlexStreamClient
from connectors.sdk.receipts import Receipt
from connectors.sdk.records import Schedule
from connectors.settings import Settings


class ScheduleStream:
    """An async iterator of schedules fed by a consumer thread.

    Cancelling the task that awaits it, ``aclose()``, or leaving ``async with``
    stops the thread, which closes its consumer. ``async with`` (or
    :meth:`started`) waits until the consumer is positioned.
    """

    _END = object()

    def __init__(
        self,
        client: FlexStreamClient,
        sensors: Iterable[str] | None,
        from_beginning: bool,
        timeout: float | None,
    ) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._positioned = asyncio.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(client, sensors, from_beginning, timeout), daemon=True
        )
        self._thread.start()

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed
            self._stop.set()

    def _run(self, client: FlexStreamClient, sensors: Any, begin: bool, timeout: Any) -> None:
        try:
            sub = client.subscribe_schedules(sensors, from_beginning=begin, timeout=timeout)
            sub.stop = self._stop
            self._loop.call_soon_threadsafe(self._positioned.set)
            with sub:
                for s in sub:
                    self._put(s)
        except Exception as exc:  # noqa: BLE001 - re-raised in the reader's task
            self._put(exc)
        finally:
            self._put(self._END)
            try:
                self._loop.call_soon_threadsafe(self._positioned.set)
            except RuntimeError:  # the loop is closed
                pass

    async def started(self) -> None:
        """Wait until the consumer is positioned (or failed)."""
        get = asyncio.ensure_future(self._positioned.wait())
        await asyncio.wait([get], timeout=30)
        get.cancel()

    def __aiter__(self) -> ScheduleStream:
        return self

    async def __anext__(self) -> Schedule:
        try:
            item = await self._queue.get()
        except asyncio.CancelledError:  # the reader was cancelled: stop the thread too
            self._stop.set()
            raise
        if item is self._END:
            self._stop.set()
            raise StopAsyncIteration
        if isinstance(item, Exception):
            raise item
        return item

    async def aclose(self) -> None:
        """Stop the consumer thread and wait until its consumer is closed."""
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 10)

    async def __aenter__(self) -> ScheduleStream:
        await self.started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once the consumer thread has ended."""
        return not self._thread.is_alive()


class AsyncFlexStreamClient:
    """The asyncio flavour: the same API, awaitable; blocking calls run in threads.

    Cancelling an awaited call does not stop its thread early: the blocking call
    ends at its own timeout. :meth:`subscribe_schedules` is cancellable at once.
    """

    def __init__(self, bootstrap_servers: str | None = None, **kwargs: Any) -> None:
        self.sync = FlexStreamClient(bootstrap_servers, **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kw: Any) -> AsyncFlexStreamClient:
        """A client for ``KAFKA_BOOTSTRAP_SERVERS`` with the settings' security and prefix."""
        return cls(settings=settings or Settings(), **kw)

    async def __aenter__(self) -> AsyncFlexStreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Confirm queued readings and close the consumers."""
        await asyncio.to_thread(self.sync.close)

    async def publish_readings(self, *args: Any, **kwargs: Any) -> Receipt:
        """See :meth:`FlexStreamClient.publish_readings`."""
        return await asyncio.to_thread(self.sync.publish_readings, *args, **kwargs)

    async def publish_reading(self, *args: Any, **kwargs: Any) -> Receipt:
        """See :meth:`FlexStreamClient.publish_reading`."""
        return await asyncio.to_thread(self.sync.publish_reading, *args, **kwargs)

    async def wait_landed(
        self, receipts: Receipt | Iterable[Receipt], *, timeout: float = 60.0, every: float = 0.5
    ) -> Landing:
        """See :meth:`FlexStreamClient.wait_landed` (raises ``NotLanded`` on timeout)."""
        return await asyncio.to_thread(
            self.sync.wait_landed, receipts, timeout=timeout, every=every
        )

    async def flush(self, timeout: float = 60.0) -> int:
        """See :meth:`FlexStreamClient.flush`."""
        return await asyncio.to_thread(self.sync.flush, timeout)

    async def trigger_schedule(self, *args: Any, **kwargs: Any) -> str:
        """See :meth:`FlexStreamClient.trigger_schedule`."""
        return await asyncio.to_thread(self.sync.trigger_schedule, *args, **kwargs)

    async def get_schedule(self, request_id: str, **kwargs: Any) -> list[Schedule]:
        """See :meth:`FlexStreamClient.get_schedule`."""
        return await asyncio.to_thread(self.sync.get_schedule, request_id, **kwargs)

    async def trigger_and_get_schedule(self, *args: Any, **kwargs: Any) -> list[Schedule]:
        """See :meth:`FlexStreamClient.trigger_and_get_schedule`."""
        return await asyncio.to_thread(self.sync.trigger_and_get_schedule, *args, **kwargs)

    def subscribe_schedules(
        self,
        sensors: Iterable[str] | None = None,
        *,
        from_beginning: bool = False,
        timeout: float | None = None,
    ) -> ScheduleStream:
        """An async iterator of schedules (``async with`` it, or ``await stream.aclose()``)."""
        return ScheduleStream(self.sync, sensors, from_beginning, timeout)
