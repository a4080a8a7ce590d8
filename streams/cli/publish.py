"""``flexstream publish``: readings from a CSV, checked, sent, and followed to where they land."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import click

from schemas.errors import InputError

#: Exit code when some published messages were dead-lettered.
EXIT_DEAD_LETTERED = 3
#: Exit code when the worker did not handle every message within the timeout.
EXIT_NOT_LANDED = 4


def parse_belief_time(value: str, now: datetime | None = None) -> datetime:
    """An aware ISO 8601 datetime, or ``now`` (the time of publishing)."""
    if value.strip().lower() == "now":
        return now or datetime.now(UTC)
    from schemas.times import parse_aware

    return parse_aware(
        value,
        "--belief-time",
        unreadable="cannot read {value!r} as a datetime; write ISO 8601 such as "
        "2026-04-01T12:00+02:00, or 'now'",
    )


def landing_lines(landing) -> list[str]:  # noqa: ANN001 - connectors.landing.Landing
    """What became of the published messages, with the dead letters' reasons."""
    lines = [
        f"landed: {landing.stored} messages stored, {landing.dead_lettered} dead-lettered"
        + (f", {landing.pending} not handled yet" if landing.pending else "")
    ]
    for d in landing.dead_letters:
        item = f" item {d.item}" if d.item is not None else ""
        lines.append(f"  {d.where}{item}: {d.error} ({d.field or '-'}): {d.reason}")
    return lines


@click.command()
@click.option(
    "--topic",
    type=click.Choice(["meter", "price"]),
    required=True,
    help="Readings topic to publish to.",
)
@click.option("--sensor", help="Sensor name, when the CSV has no 'sensor' column.")
@click.option("--source", default="csv", show_default=True, help="Source, when the CSV has none.")
@click.option("--unit", help="Unit of the values, when the CSV has no 'unit' column.")
@click.option(
    "--resolution",
    help="Event resolution (ISO 8601, e.g. PT15M; PT0M: instantaneous) for single readings.",
)
@click.option(
    "--belief-time",
    help="Belief time (ISO 8601 with offset, or 'now') of rows without belief_time or "
    "belief_horizon. Default: now, the time of publishing.",
)
@click.option(
    "--belief-horizon",
    help="Belief horizon (ISO 8601 duration before the event end, e.g. PT0M for "
    "measurements, P1D) of rows without belief_time or belief_horizon, instead of --belief-time.",
)
@click.option(
    "--datetime-column",
    default="event_start",
    show_default=True,
    help="The CSV's column of event starts.",
)
@click.option(
    "--value-column",
    default="event_value",
    show_default=True,
    help="The CSV's column of values.",
)
@click.option(
    "--belief-time-column",
    help="The CSV's column of belief times. Default: belief_time, when the CSV has it.",
)
@click.option(
    "--timezone",
    help="IANA time zone (e.g. Europe/Amsterdam) to read times without a UTC offset in; "
    "without it such times are an error.",
)
@click.option(
    "--delimiter",
    default=",",
    show_default=True,
    help="The character between values (e.g. ';', or 'tab').",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Send without checking sensors, units and resolutions against the registry.",
)
@click.option(
    "--wait-landed",
    is_flag=True,
    help="Wait until the worker stored or dead-lettered every message; exit 3 if some "
    "were dead-lettered, 4 if not all were handled in time.",
)
@click.option(
    "--timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds --wait-landed waits.",
)
@click.argument("file", type=click.File("r"), default="-")
def publish(
    topic: str,
    sensor: str | None,
    source: str,
    unit: str | None,
    resolution: str | None,
    belief_time: str | None,
    belief_horizon: str | None,
    datetime_column: str,
    value_column: str,
    belief_time_column: str | None,
    timezone: str | None,
    delimiter: str,
    no_check: bool,
    wait_landed: bool,
    timeout: float,
    file,  # noqa: ANN001
) -> None:
    """Publish readings from a CSV FILE (or stdin) and wait for the broker's confirmation.

    Every row needs an event_start and a number as event_value (an empty value is an
    error: remove the row to leave the event out); --datetime-column and
    --value-column name other columns for them. Times need a UTC offset, or
    --timezone to read them as local times. Rows without belief_time or
    belief_horizon are believed at the time of publishing, unless --belief-time or
    --belief-horizon says otherwise. Sensors, units and resolutions are checked
    against the registry and the worker's sensors file first (--no-check skips
    this). A file with an error sends nothing.
    """
    from connectors.files import ColumnMap, read_csv
    from connectors.kafka import ConfirmingProducer
    from connectors.settings import Settings
    from schemas import serde
    from schemas.beliefs import publishing_belief_time
    from schemas.times import parse_duration
    from streams import runtime
    from streams.cli.progress import LazyProgress

    s = Settings()
    res = parse_duration(resolution, "--resolution") if resolution is not None else None
    if res is not None and res < timedelta(0):
        raise InputError(
            f"{resolution!r} is negative; give the duration of each event, e.g. PT15M "
            "(PT0M for instantaneous values such as a state of charge)",
            "--resolution",
        )
    if belief_time is not None and belief_horizon is not None:
        raise InputError("give --belief-time or --belief-horizon, not both", "--belief-horizon")
    horizon = parse_duration(belief_horizon, "--belief-horizon") if belief_horizon else None
    given = parse_belief_time(belief_time) if belief_time is not None else None
    believed = publishing_belief_time(given, horizon, lambda: datetime.now(UTC))
    readings = read_csv(
        file,
        sensor=sensor,
        default_source=source,
        resolution=res,
        unit=unit,
        belief_time=believed,
        belief_horizon=horizon,
        columns=ColumnMap(datetime_column, value_column, belief_time_column),
        timezone=timezone,
        delimiter=delimiter,
    )
    bs = runtime.bootstrap(s, start=False)
    conf = s.kafka.client_config(bs)
    if not no_check:
        _check(s, conf, readings)
    full = s.kafka.topic(f"readings.{topic}")
    if wait_landed:
        from connectors.landing import end_offsets

        dead_start = end_offsets(conf, s.kafka.topic("dead-letters"))
    producer = ConfirmingProducer(conf, keep_positions=wait_landed)
    beliefs = sum(r.count for r in readings)
    with LazyProgress(f"sending to {full} (readings)", total=beliefs) as bar:
        for r in readings:
            producer.send(full, serde.encode(r.schema, r.record), key=r.key)
            bar.advance(r.count)
        bar.update(description="confirmed (messages)", completed=0, total=len(readings))
        delivered = producer.flush(progress=bar.report)
    click.echo(f"published {beliefs} readings in {delivered} messages to {full}")
    if not wait_landed:
        return
    from connectors.landing import wait_landed as follow

    with LazyProgress("landed (messages)", total=delivered) as bar:
        landing = follow(
            conf,
            s.kafka.consumer_group("readings"),
            s.kafka.topic("dead-letters"),
            dead_start,
            producer.positions,
            timeout,
            progress=bar.report,
        )
    for line in landing_lines(landing):
        click.echo(line)
    if landing.dead_lettered:
        sys.exit(EXIT_DEAD_LETTERED)
    if landing.pending:
        click.echo(
            f"error: the worker did not handle {landing.pending} messages within {timeout:.0f} s; "
            "is it running?",
            err=True,
        )
        sys.exit(EXIT_NOT_LANDED)


def _check(s, conf: dict, readings: list) -> None:  # noqa: ANN001 - Settings
    """Check ``readings`` against the registry and the worker's sensors file."""
    from connectors.reading_check import check_readings
    from connectors.registry import known_sensors

    check_readings(readings, known_sensors(conf, s.kafka.topic("registry"), s.worker.sensors_file))
