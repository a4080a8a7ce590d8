"""``flexstream add schedule`` and ``flexstream show schedules``: schedules on Kafka.

``add schedule`` sends a schedule request to the running worker's scheduling
agent and prints the request id; with ``--wait`` it prints the answers. Exit
codes: 0 every schedule optimal or relaxed; 2 infeasible, invalid or error
(and bad input); 3 no answer within ``--timeout`` (or the solver's own time
limit or an unknown outcome).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from schemas.times import UNREADABLE, floor_time, parse_aware

if TYPE_CHECKING:
    from schemas.schedule import Schedule

EXIT_OK = 0
EXIT_FAILED = 2
EXIT_TIMEOUT = 3


def _client():  # noqa: ANN202 - lazy imports keep `--help` fast
    from connectors.sdk import FlexStreamClient
    from connectors.settings import Settings
    from streams import runtime

    s = Settings()
    return FlexStreamClient(runtime.bootstrap(s, start=False), settings=s)


def parse_start(value: str, resolution: timedelta, now: datetime | None = None) -> datetime:
    """An aware ISO 8601 datetime, or ``now``: the current time floored to ``resolution``."""
    if value.strip().lower() == "now":
        return floor_time(now or datetime.now(UTC), resolution)
    return parse_aware(value, "--start", unreadable=UNREADABLE + ", or 'now'")


def exit_code(schedules: list[Schedule]) -> int:
    """0 when every schedule is usable, 2 for a failed one, 3 for an unproven one."""
    if all(s.status.usable for s in schedules):
        return EXIT_OK
    if any(s.status.failed for s in schedules):
        return EXIT_FAILED
    return EXIT_TIMEOUT


def _console():  # noqa: ANN202
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def print_schedule(schedule: Schedule, console=None) -> None:  # noqa: ANN001
    """A table of one device's schedule (time, power, SOC) and a summary line."""
    from rich.table import Table

    console = console or _console()
    s = schedule
    table = Table(
        "time",
        f"power ({s.unit})",
        f"SOC ({s.soc_unit})",
        title=f"{s.sensor} ({s.asset}, request {s.request_id})",
    )
    for i, (t, v) in enumerate(zip(s.timestamps, s.values, strict=True)):
        soc = s.state_of_charge[i] if i < len(s.state_of_charge) else None
        table.add_row(t.isoformat(), _fmt(v), _fmt(soc))
    if s.values and len(s.state_of_charge) > len(s.values):
        table.add_row(s.end.isoformat(), "", _fmt(s.state_of_charge[-1]))
    if s.values:
        console.print(table)
    cost = "n/a" if s.costs_total is None else f"{s.costs_total:.2f} {s.currency}".strip()
    console.print(
        f"{s.sensor}: status {s.status}, total cost {cost}, {len(s.breaches)} breaches"
        + (f" - {s.message}" if s.message else "")
    )


def _emit(schedules: list[Schedule], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps([s.to_json() for s in schedules], indent=2))
        return
    console = _console()
    for s in schedules:
        print_schedule(s, console)


@click.command("schedule")
@click.option("--asset", required=True, help="Registered asset name.")
@click.option("--start", required=True, help="Aware ISO 8601 datetime, or 'now' (floored).")
@click.option("--duration", required=True, help="ISO 8601 duration, e.g. PT12H or P1D.")
@click.option("--resolution", default="PT15M", show_default=True, help="ISO 8601 duration.")
@click.option("--device", "devices", multiple=True, help="Device sensor (repeat); default: all.")
@click.option("--wait", is_flag=True, help="Wait for the schedules and print them.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait with --wait.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def add_schedule(
    asset: str,
    start: str,
    duration: str,
    resolution: str,
    devices: tuple[str, ...],
    wait: bool,
    timeout: float,
    fmt: str,
) -> None:
    """Request a schedule of ASSET; print the request id, or with --wait the schedules."""
    from connectors.sdk import ScheduleTimeout
    from schemas.times import parse_duration

    res = parse_duration(resolution, "--resolution", positive=True)
    dur = parse_duration(duration, "--duration", positive=True)
    t0 = parse_start(start, res)
    with _client() as client:
        rid = client.trigger_schedule(asset, t0, dur, res, devices=devices)
        if not wait:
            click.echo(json.dumps({"request_id": rid}) if fmt == "json" else rid)
            return
        if fmt == "table":
            click.echo(rid)
        try:
            schedules = client.get_schedule(rid, timeout=timeout)
        except ScheduleTimeout as exc:
            if exc.partial:
                _emit(exc.partial, fmt)
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_TIMEOUT)
    _emit(schedules, fmt)
    sys.exit(exit_code(schedules))


@click.command("schedules")
@click.option("--sensor", "sensors", multiple=True, required=True, help="Device sensor (repeat).")
@click.option("--follow", is_flag=True, help="Keep printing new schedules until Ctrl-C.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def show_schedules(sensors: tuple[str, ...], follow: bool, fmt: str) -> None:
    """Print the latest schedule of each SENSOR on the topic; with --follow, the new ones too.

    With --follow and --format json, one JSON object per line.
    """
    with _client() as client:
        # Following starts at the topic's end now, so nothing newer than what is
        # read below is missed; a schedule seen both ways is printed once.
        subscription = client.subscribe_schedules(sensors) if follow else None
        found = {s.sensor: s for s in client.read_schedules(sensors)}
        latest = [found[n] for n in sensors if n in found]
        missing = [n for n in sensors if n not in found]
        if not follow:
            if latest:
                _emit(latest, fmt)
            if missing:
                click.echo(f"no schedule on the topic for: {', '.join(missing)}", err=True)
                sys.exit(1)
            return
        assert subscription is not None
        console = _console()
        seen = {(s.sensor, s.request_id, s.belief_time) for s in latest}

        def show(s: Schedule) -> None:
            if fmt == "json":
                click.echo(json.dumps(s.to_json()))
            else:
                print_schedule(s, console)

        try:
            for s in latest:
                show(s)
            with subscription:
                for s in subscription:
                    if (s.sensor, s.request_id, s.belief_time) not in seen:
                        show(s)
        except KeyboardInterrupt:
            pass
