"""`flexstream publish` against the real broker and worker: believed now, checked, followed."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import wait_for
from tests.integration.test_cli import FLEXSTREAM, run

pytestmark = pytest.mark.integration


def _tomorrow_prices(hours: int = 24) -> str:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    lines = ["event_start,event_value"]
    lines += [f"{(day + timedelta(hours=h)).isoformat()},{40 + h}" for h in range(hours)]
    return "\n".join(lines) + "\n"


def test_future_prices_without_belief_time_are_believed_now_and_land(fs, tmp_path):
    csv = tmp_path / "day-ahead.csv"
    csv.write_text(_tomorrow_prices())
    fs.start_worker()
    out = run(
        ["publish", "--topic", "price", "--sensor", "price", "--source", "epex", str(csv)],
        fs.env,
    )
    assert out.returncode == 0, out.stderr
    query = "SELECT count() FROM flexstream.beliefs FINAL WHERE sensor = 'price'"
    wait_for(lambda: fs.sql(query)[0][0] == 24, what="24 prices in ClickHouse")
    # Believed at publishing: before every event, so the horizons are positive.
    rows = fs.sql(
        "SELECT min(event_start) > max(belief_time) FROM flexstream.beliefs FINAL "
        "WHERE sensor = 'price'"
    )
    assert rows[0][0] in (1, True)


def test_an_unknown_sensor_is_refused_before_anything_is_sent(fs, tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text(
        "sensor,event_start,event_value\n"
        "load,2026-02-01T00:00:00Z,1\n"
        "load,2026-02-01T00:15:00Z,2\n"
        "heat-pump,2026-02-01T00:00:00Z,3\n"
        "heat-pump,2026-02-01T00:15:00Z,4\n"
    )
    out = run(["publish", "--topic", "meter", str(csv)], fs.env)
    assert out.returncode == 2
    assert "'heat-pump' (row 3) is not registered" in out.stderr
    assert "Traceback" not in out.stderr
    assert fs.end_offsets("readings.meter") == 0
    wrong_res = tmp_path / "res.csv"
    wrong_res.write_text(_tomorrow_prices(4))
    out = run(["publish", "--topic", "price", "--sensor", "load", str(wrong_res)], fs.env)
    assert out.returncode == 2
    assert "PT1H apart" in out.stderr and "PT15M" in out.stderr
    assert fs.end_offsets("readings.price") == 0
    sent = run(["publish", "--topic", "meter", "--no-check", str(csv)], fs.env)
    assert sent.returncode == 0, sent.stderr
    assert fs.end_offsets("readings.meter") == 2


def test_wait_landed_counts_stored_and_dead_lettered_and_show_lists_them(fs, tmp_path):
    csv = tmp_path / "mixed.csv"
    csv.write_text(
        "sensor,event_start,event_value,belief_time\n"
        "load,2026-02-01T00:00:00Z,1,\n"
        "load,2026-02-01T00:15:00Z,2,\n"
        "pv,2026-02-01T00:00:00Z,-1,2099-01-01T00:00:00Z\n"
        "pv,2026-02-01T00:15:00Z,-2,2099-01-01T00:00:00Z\n"
    )
    fs.start_worker()
    out = run(["publish", "--topic", "meter", "--wait-landed", "--timeout", "90", str(csv)], fs.env)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "landed: 1 messages stored, 1 dead-lettered" in out.stdout
    assert "belief-in-future (belief_time)" in out.stdout
    assert fs.sql("SELECT count() FROM flexstream.beliefs FINAL")[0][0] == 2

    good = tmp_path / "good.csv"
    good.write_text("event_start,event_value\n2026-02-01T01:00:00Z,5\n2026-02-01T01:15:00Z,6\n")
    out = run(
        ["publish", "--topic", "meter", "--sensor", "load", "--wait-landed", str(good)], fs.env
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "landed: 1 messages stored, 0 dead-lettered" in out.stdout

    shown = run(["show", "dead-letters"], fs.env)
    assert shown.returncode == 0, shown.stderr
    assert "belief-in-future" in shown.stdout and "pv" in shown.stdout
    assert fs.topic("readings.meter") + "[" in shown.stdout
    assert "no dead letters" in run(["show", "dead-letters", "--sensor", "load"], fs.env).stdout
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert "no dead letters" in run(["show", "dead-letters", "--since", later], fs.env).stdout
    assert "belief-in-future" in run(["show", "dead-letters", "--since", "P1D"], fs.env).stdout


def _on_terminal(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run flexstream with standard output and error on a pseudo-terminal: (exit code, output)."""
    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(
        [*FLEXSTREAM, *args],
        env={**env, "TERM": "xterm", "COLUMNS": "100"},
        stdin=subprocess.DEVNULL,
        stdout=child_fd,
        stderr=child_fd,
    )
    os.close(child_fd)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(main_fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(main_fd)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def test_waiting_for_landing_shows_a_progress_bar_on_a_terminal_only(fs, tmp_path):
    csv = tmp_path / "prices.csv"
    csv.write_text(_tomorrow_prices(4))
    # No worker runs: nothing lands, and the wait lasts its whole --timeout.
    args = ["publish", "--topic", "price", "--sensor", "price", "--no-check", "--wait-landed",
            "--timeout", "3", str(csv)]  # fmt: skip
    code, shown = _on_terminal(args, fs.env)
    assert code == 4, shown
    assert "landed (messages)" in shown and "0/1" in shown, shown
    bar_at = shown.index("landed (messages)")
    assert "\x1b[2K" in shown[bar_at:], "the bar was not erased"  # transient
    assert "landed: 0 messages stored, 0 dead-lettered, 1 not handled yet" in shown
    piped = run(args, fs.env)
    assert piped.returncode == 4
    assert "landed (messages)" not in piped.stderr and "\x1b[" not in piped.stderr
    assert "\x1b[" not in piped.stdout and "not handled yet" in piped.stdout
