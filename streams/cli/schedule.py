"""``flexstream schedule``: one schedule from flex-model and flex-context files.

Offline and pure: reads two JSON files, schedules with ``solvers.schedule`` and
prints one JSON object (``ScheduleResult.to_json``) on stdout. Exit codes:
0 optimal or relaxed; 2 infeasible, unbounded or bad input (message on stderr
too); 3 time limit or unknown solver outcome.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from schemas.errors import FlexStreamError, InputError
from schemas.schedule import Status

EXIT_OK = 0
EXIT_INFEASIBLE = 2
EXIT_UNPROVEN = 3


def _load(path: str, option: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path!r}: {exc.strerror}", option) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path!r} is not valid JSON ({exc.msg} at line {exc.lineno})", option
        ) from None


def _fail(message: str, unit: str, start: str, resolution: str) -> None:
    click.echo(
        json.dumps(
            {
                "status": str(Status.INVALID),
                "start": start,
                "resolution": resolution,
                "unit": unit,
                "schedules": [],
                "costs": {"total": None, "currency": None},
                "breaches": [],
                "message": message,
            }
        )
    )
    click.echo(message, err=True)
    sys.exit(EXIT_INFEASIBLE)


@click.command("schedule")
@click.option(
    "--flex-model", "flex_model", required=True, help="JSON file: one flex-model or a list."
)
@click.option("--flex-context", "flex_context", required=True, help="JSON file: the flex-context.")
@click.option(
    "--start", required=True, help="Aware ISO 8601 datetime, e.g. 2024-05-01T00:00+02:00."
)
@click.option("--duration", required=True, help="ISO 8601 duration, e.g. P2D.")
@click.option("--resolution", required=True, help="ISO 8601 duration, e.g. PT15M.")
@click.option("--unit", type=click.Choice(["kW", "MW"]), default="kW", show_default=True)
@click.option("--solver", default="highs", show_default=True, help="highs or pyomo:NAME.")
@click.option("--time-limit", type=float, default=None, help="Seconds for the whole solve.")
def schedule(
    flex_model: str,
    flex_context: str,
    start: str,
    duration: str,
    resolution: str,
    unit: str,
    solver: str,
    time_limit: float | None,
) -> None:
    """Schedule the devices of one site and print the schedule as JSON."""
    from schemas.flex_request import parse_site_problem
    from solvers import schedule as run_schedule

    try:
        problem = parse_site_problem(
            _load(flex_model, "--flex-model"),
            _load(flex_context, "--flex-context"),
            start,
            duration,
            resolution,
        )
        result = run_schedule(problem, solver=solver, time_limit=time_limit)
    except InputError as exc:
        _fail(f"bad input: {exc}", unit, start, resolution)
        return
    except FlexStreamError as exc:
        _fail(f"error: {exc}", unit, start, resolution)
        return
    click.echo(json.dumps(result.to_json(unit)))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.ok:
        sys.exit(EXIT_OK)
    click.echo(result.message, err=True)
    if result.status in (Status.INFEASIBLE, Status.UNBOUNDED):
        sys.exit(EXIT_INFEASIBLE)
    sys.exit(EXIT_UNPROVEN)
