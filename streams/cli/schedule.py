"""``flexstream schedule``: one schedule from flex-model and flex-context files.

Offline and pure: reads two JSON files, schedules with ``solvers.schedule`` and
prints one JSON object (``ScheduleResult.to_json``) on stdout. With
``--portfolio FILE`` (a VPP document, ``schemas.portfolio``) it schedules every
site toward the portfolio's market with ``solvers.portfolio.schedule_portfolio``
and prints ``PortfolioResult.to_json``: one object per site, as for one site,
plus the market terms. Exit codes:
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
@click.option("--flex-model", "flex_model", help="JSON file: one flex-model or a list.")
@click.option("--flex-context", "flex_context", help="JSON file: the flex-context.")
@click.option(
    "--portfolio",
    help="JSON file: a portfolio (VPP) of sites and its market, instead of --flex-model and "
    "--flex-context; start, duration and resolution may come from the file.",
)
@click.option("--start", help="Aware ISO 8601 datetime, e.g. 2024-05-01T00:00+02:00.")
@click.option("--duration", help="ISO 8601 duration, e.g. P2D.")
@click.option("--resolution", help="ISO 8601 duration, e.g. PT15M.")
@click.option("--unit", type=click.Choice(["kW", "MW"]), default="kW", show_default=True)
@click.option("--solver", default="highs", show_default=True, help="highs or pyomo:NAME.")
@click.option("--time-limit", type=float, default=None, help="Seconds for the whole solve.")
@click.option(
    "--method",
    type=click.Choice(["auto", "joint", "decomposed"]),
    default="auto",
    show_default=True,
    help="With --portfolio: one joint program, or groups of sites with a proven gap "
    "(auto: decomposed from 400 sites).",
)
@click.option(
    "--gap",
    type=float,
    default=None,
    help="With --portfolio: relative gap within which a decomposed schedule counts as optimal "
    "(default 1e-4).",
)
def schedule(
    flex_model: str | None,
    flex_context: str | None,
    portfolio: str | None,
    start: str | None,
    duration: str | None,
    resolution: str | None,
    unit: str,
    solver: str,
    time_limit: float | None,
    method: str,
    gap: float | None,
) -> None:
    """Schedule the devices of one site (or the sites of a portfolio) and print JSON."""
    from schemas.flex_request import parse_site_problem
    from solvers import schedule as run_schedule

    if portfolio is not None:
        if flex_model is not None or flex_context is not None:
            _fail(
                "bad input: --portfolio: give either --portfolio or --flex-model and "
                "--flex-context, not both",
                unit, start or "", resolution or "",
            )  # fmt: skip
        window = {"start": start, "duration": duration, "resolution": resolution}
        _schedule_portfolio(portfolio, window, unit, solver, time_limit, method, gap)
        return
    for option, value in (
        ("--flex-model", flex_model), ("--flex-context", flex_context), ("--start", start),
        ("--duration", duration), ("--resolution", resolution),
    ):  # fmt: skip
        if value is None:
            _fail(
                f"bad input: {option}: missing; give it (or a --portfolio file)",
                unit, start or "", resolution or "",
            )  # fmt: skip
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
    _finish(result, result.to_json(unit))


def _finish(result: Any, document: dict[str, Any]) -> None:
    """Print the JSON, the notes and the message; exit with the status's code."""
    click.echo(json.dumps(document))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.ok:
        sys.exit(EXIT_OK)
    click.echo(result.message, err=True)
    if result.status in (Status.INFEASIBLE, Status.UNBOUNDED):
        sys.exit(EXIT_INFEASIBLE)
    sys.exit(EXIT_UNPROVEN)


def _schedule_portfolio(
    path: str,
    window: dict[str, str | None],
    unit: str,
    solver: str,
    time_limit: float | None,
    method: str,
    gap: float | None,
) -> None:
    """``schedule --portfolio``: every site of a portfolio toward its market."""
    from schemas.portfolio import parse_portfolio
    from solvers.portfolio import schedule_portfolio

    document: Any = None
    try:
        document = _load(path, "--portfolio")
        problem = parse_portfolio(document, **window)
        result = schedule_portfolio(
            problem, solver=solver, time_limit=time_limit, method=method, gap=gap
        )
    except FlexStreamError as exc:
        given = document if isinstance(document, dict) else {}
        what = "bad input" if isinstance(exc, InputError) else "error"
        _fail(
            f"{what}: {exc}",
            unit,
            str(window["start"] or given.get("start", "")),
            str(window["resolution"] or given.get("resolution", "")),
        )
        return
    _finish(result, result.to_json(unit))
