"""Progress bars for long command-line work: on a terminal only, transient, and late.

A command wraps its work in :class:`LazyProgress` and reports what it did
(:meth:`LazyProgress.advance`, :meth:`LazyProgress.update`, or
:meth:`LazyProgress.report` as a ``(done, total)`` callback for code that
knows nothing of the display). The bar appears:

- only when the stream (standard error by default) is a terminal, so logs,
  pipes and captured output never see control codes;
- only once the work has lasted :data:`SHOW_AFTER` seconds, so quick work
  draws nothing; a timer shows it even while the work reports nothing;
- transiently: it is erased when the work ends, leaving the command's own
  output as it would be without it.

:func:`on_terminal` and :func:`due` hold the decision, apart from drawing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

#: Seconds of work before a bar is shown.
SHOW_AFTER = 1.0


def on_terminal(stream: IO[str] | None, environ: dict[str, str] | None = None) -> bool:
    """Tell whether a progress bar may be drawn on ``stream``: an open terminal, not a dumb one."""
    env = os.environ if environ is None else environ
    if stream is None or env.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def due(terminal: bool, started: float, now: float, delay: float = SHOW_AFTER) -> bool:
    """Tell whether a bar should show now: on a terminal, and the work began ``delay`` s ago."""
    return terminal and now - started >= delay


class LazyProgress:
    """One progress bar (see the module docstring); a context manager.

    ``total`` None draws a bar without an end (a pulse) until a total is known.
    ``stream`` defaults to standard error at entry; ``clock`` and ``timer``
    (start the bar from a background timer even without updates) serve tests.
    """

    def __init__(
        self,
        description: str,
        total: float | None = None,
        *,
        stream: IO[str] | None = None,
        delay: float = SHOW_AFTER,
        clock: Callable[[], float] = time.monotonic,
        timer: bool = True,
    ) -> None:
        self.description = description
        self.total = total
        self.completed = 0.0
        self._stream = stream
        self._delay = delay
        self._clock = clock
        self._use_timer = timer
        self._started = 0.0
        self._terminal = False
        self._closed = True
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._bar: Any = None  # rich.progress.Progress, once shown
        self._task: Any = None

    @property
    def shown(self) -> bool:
        """Whether the bar is on screen now."""
        return self._bar is not None

    def __enter__(self) -> LazyProgress:
        """Start timing; the bar appears later, if at all."""
        if self._stream is None:
            self._stream = sys.stderr
        self._terminal = on_terminal(self._stream)
        self._started = self._clock()
        self._closed = False
        if self._terminal and self._use_timer:
            self._timer = threading.Timer(self._delay, self._refresh)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Erase the bar (if shown) and stop the timer."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

    def advance(self, amount: float = 1) -> None:
        """Count ``amount`` more units done."""
        self.update(completed=self.completed + amount)

    def update(
        self,
        *,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
    ) -> None:
        """Set what is done, the total and the description (each optional)."""
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if description is not None:
            self.description = description
        self._refresh()

    def report(self, done: float, total: float | None = None) -> None:
        """``(done, total)`` callback for work that reports its own counts."""
        self.update(completed=done, total=total)

    def _refresh(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._bar is None:
                if not due(self._terminal, self._started, self._clock(), self._delay):
                    return
                self._show()
            self._bar.update(
                self._task,
                completed=self.completed,
                total=self.total,
                description=self.description,
            )

    def _show(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self._stream),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._bar.add_task(
            self.description, total=self.total, completed=self.completed
        )
        self._bar.start()
