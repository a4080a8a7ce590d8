"""The progress helper draws only on a terminal, only after its delay, and erases itself."""

from __future__ import annotations

import io
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.cli.progress import SHOW_AFTER, LazyProgress, due, on_terminal


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal (the bar's escape codes land in it)."""

    def isatty(self) -> bool:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_an_open_terminal_that_is_not_dumb_gets_a_bar():
    assert on_terminal(FakeTerminal(), {"TERM": "xterm"})
    assert not on_terminal(FakeTerminal(), {"TERM": "dumb"})
    assert not on_terminal(io.StringIO(), {})
    assert not on_terminal(None, {})
    closed = FakeTerminal()
    closed.close()
    assert not on_terminal(closed, {})
    assert not on_terminal(object(), {})  # no isatty at all


@given(
    started=st.floats(0, 1e6),
    elapsed=st.floats(0, 100),
    delay=st.floats(0, 10),
    terminal=st.booleans(),
)
def test_a_bar_is_due_exactly_on_a_terminal_once_the_delay_passed(
    started, elapsed, delay, terminal
):
    assert due(terminal, started, started + elapsed, delay) == (
        terminal and (started + elapsed) - started >= delay
    )
    assert not due(False, started, started + elapsed, delay)


def test_quick_work_draws_nothing_on_a_terminal():
    out, clock = FakeTerminal(), Clock()
    with LazyProgress("rows", total=10, stream=out, clock=clock, timer=False) as bar:
        for _ in range(10):
            clock.now += SHOW_AFTER / 20
            bar.advance()
        assert not bar.shown
    assert out.getvalue() == ""


def test_slow_work_shows_the_bar_after_the_delay_and_erases_it(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    out, clock = FakeTerminal(), Clock()
    with LazyProgress("rows sent", total=10, stream=out, clock=clock, timer=False) as bar:
        bar.advance(3)
        assert not bar.shown
        clock.now += SHOW_AFTER
        bar.advance(2)
        assert bar.shown
        assert (bar.completed, bar.total) == (5, 10)
        bar.report(7, 20)
        assert (bar.completed, bar.total) == (7, 20)
    assert not bar.shown
    drawn = out.getvalue()
    assert "rows sent" in drawn and "7/20" in drawn
    assert "\x1b[2K" in drawn[drawn.rindex("7/20") :]  # the last drawing was erased


def test_no_terminal_never_draws_however_long_the_work(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    out, clock = io.StringIO(), Clock()
    with LazyProgress("windows", total=3, stream=out, clock=clock, timer=False) as bar:
        clock.now += 1000
        bar.advance()
        assert not bar.shown
    assert out.getvalue() == ""


def test_the_timer_shows_the_bar_while_the_work_reports_nothing(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    out = FakeTerminal()
    with LazyProgress("inputs", stream=out, delay=0.05) as bar:
        deadline = time.monotonic() + 5
        while not bar.shown and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bar.shown
    assert not bar.shown and "inputs" in out.getvalue()


def test_updates_after_the_end_are_ignored():
    out, clock = FakeTerminal(), Clock()
    bar = LazyProgress("x", stream=out, clock=clock, timer=False)
    with bar:
        pass
    clock.now += 10
    bar.advance()
    assert not bar.shown and out.getvalue() == ""


@pytest.mark.parametrize("delay", [0.0, SHOW_AFTER])
def test_the_bar_starts_no_earlier_than_its_delay(delay, monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    clock = Clock()
    with LazyProgress("x", stream=FakeTerminal(), delay=delay, clock=clock, timer=False) as bar:
        bar.advance()
        assert bar.shown == (delay == 0.0)
