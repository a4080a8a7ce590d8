"""``flexstream show dead-letters``: the rejected inputs, newest last, with reason and origin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from schemas.errors import InputError


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """An aware ISO 8601 datetime, or an ISO 8601 duration back from now (e.g. P1D)."""
    from schemas.times import parse_aware, parse_duration

    text = value.strip()
    if text.upper().startswith("P"):
        back = parse_duration(text, "--since")
        if back <= timedelta(0):
            raise InputError(f"{value!r} is not a positive duration; write e.g. P1D", "--since")
        return (now or datetime.now(UTC)) - back
    return parse_aware(
        value,
        "--since",
        unreadable="cannot read {value!r}; write an ISO 8601 datetime such as "
        "2026-04-01T00:00Z, or a duration back from now such as P1D or PT6H",
    )


def select(letters: list, since: datetime | None, sensor: str | None, limit: int) -> list:
    """The last ``limit`` dead letters rejected at or after ``since``, of ``sensor``."""
    chosen = [
        d
        for d in letters
        if (since is None or d.rejected_at >= since) and (sensor is None or d.sensor == sensor)
    ]
    chosen.sort(key=lambda d: d.rejected_at)
    return chosen[-limit:] if limit > 0 else chosen


@click.command("dead-letters")
@click.option("--since", help="ISO 8601 datetime, or a duration back from now (P1D, PT6H).")
@click.option("--sensor", help="Only the dead letters of this sensor.")
@click.option("--limit", default=50, show_default=True, help="Show the last N (0: all).")
def show_dead_letters(since: str | None, sensor: str | None, limit: int) -> None:
    """List dead letters: time, reason code, field, origin topic[partition]@offset, message.

    One line each, oldest first, with the sensor before the message.
    """
    from connectors.landing import read_dead_letters
    from connectors.settings import Settings
    from streams import runtime

    start = parse_since(since) if since else None
    s = Settings()
    conf = s.kafka.client_config(runtime.bootstrap(s, start=False))
    letters = read_dead_letters(conf, s.kafka.topic("dead-letters"), since=start)
    chosen = select(letters, start, sensor, limit)
    if not chosen:
        click.echo("no dead letters")
        return
    for d in chosen:
        fld = d.field or "-"
        if d.item is not None:
            fld = f"{fld}[item {d.item}]"
        click.echo(
            f"{d.rejected_at.isoformat(timespec='seconds')}  {d.error}  {fld}  {d.where}  "
            f"{d.sensor or '-'}  {d.reason}"
        )
