"""Worker roles: which share of the work one worker takes (pure).

A worker runs any non-empty set of the four roles (``flexstream worker --roles``,
``FLEXSTREAM_WORKER_ROLES``; all four by default):

- ``ingest``: the readings into ClickHouse (with their dead letters), and every
  other write to ClickHouse: schedules, report results and forecast scores come
  from their topics, the registry's mirror tables from the registry. Only this
  role writes to the history; it also serves ``/sql/`` and the ClickHouse interface.
- ``schedule``: schedule requests, the belief state they read, re-planning.
- ``report``: streaming report windows (their inputs read from ClickHouse).
- ``forecast``: forecasters trained on and scored against the history in ClickHouse.

A worker without a role installs none of its agents, tables or consumers, so
it joins none of that role's consumer groups and the workers with the role get
all of its partitions. :func:`store_access` says what a set of roles needs of
ClickHouse; :func:`feed_group` names the readings consumer of a worker that
needs the stream of beliefs but does not ingest them.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from schemas.errors import InputError


class Role(StrEnum):
    """One share of the worker's work."""

    INGEST = "ingest"
    SCHEDULE = "schedule"
    REPORT = "report"
    FORECAST = "forecast"


#: Every role, in the order they are listed and documented.
ALL_ROLES: tuple[Role, ...] = tuple(Role)
#: Every role, as a set (the default).
EVERY_ROLE: frozenset[Role] = frozenset(ALL_ROLES)

#: Roles that read the history in ClickHouse (report inputs, forecasters' training and scoring).
READS_HISTORY: frozenset[Role] = frozenset({Role.REPORT, Role.FORECAST})

#: Roles whose agents follow the stream of validated beliefs (the belief hooks).
FOLLOWS_BELIEFS: frozenset[Role] = frozenset({Role.SCHEDULE, Role.REPORT, Role.FORECAST})


class RolesError(InputError):
    """A role list that names no role, or a role that does not exist."""


def valid_names() -> str:
    """The valid role names, comma-separated, for messages."""
    return ", ".join(r.value for r in ALL_ROLES)


def parse_roles(value: str | Iterable[str], field: str = "--roles") -> frozenset[Role]:
    """The roles named in ``value`` ("ingest,schedule" or a list of names).

    Names are case-insensitive and may be padded with spaces; repeats are
    harmless. An unknown name or an empty list raises :class:`RolesError`
    naming ``field`` and listing the valid names.
    """
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = [p.strip().lower() for p in parts if p.strip()]
    unknown = [n for n in names if n not in Role._value2member_map_]
    if unknown:
        raise RolesError(
            f"unknown role(s) {', '.join(repr(n) for n in unknown)}; "
            f"give a comma-separated list of {valid_names()}",
            field,
        )
    if not names:
        raise RolesError(f"names no role; give one or more of {valid_names()}", field)
    return frozenset(Role(n) for n in names)


def format_roles(roles: Iterable[Role]) -> list[str]:
    """The roles' names in their documented order."""
    have = set(roles)
    return [r.value for r in ALL_ROLES if r in have]


class StoreAccess(StrEnum):
    """What a worker opens of ClickHouse."""

    #: The store, schema created where missing, written by the ingest role.
    WRITE = "write"
    #: A server's tables, only read (no schema changes, no writes).
    READ = "read"
    #: Nothing: no ClickHouse client at all.
    NONE = "none"


def store_access(roles: Iterable[Role]) -> StoreAccess:
    """What the worker with ``roles`` opens of ClickHouse."""
    have = set(roles)
    if Role.INGEST in have:
        return StoreAccess.WRITE
    if have & READS_HISTORY:
        return StoreAccess.READ
    return StoreAccess.NONE


def check_history_access(roles: Iterable[Role], clickhouse_url_set: bool) -> None:
    """Refuse roles that read the history without ingest when no ClickHouse server is set.

    The embedded engine belongs to one process (the ingest worker's): a
    report or forecast worker without ``ingest`` reads the history from a
    ClickHouse server, named by ``CLICKHOUSE_URL``.
    """
    have = set(roles)
    if store_access(have) is not StoreAccess.READ or clickhouse_url_set:
        return
    readers = format_roles(have & READS_HISTORY)
    raise RolesError(
        f"the {' and '.join(readers)} role(s) read the history in ClickHouse, and "
        "without the ingest role this worker has no store of its own: set CLICKHOUSE_URL to "
        "the ClickHouse server the ingest workers write to, or add ingest to --roles",
        "--roles",
    )


def feed_group(roles: Iterable[Role]) -> str | None:
    """The readings consumer group (a suffix of the worker group) feeding a non-ingest worker.

    A worker that ingests hands the beliefs it stored to its features; one that
    does not but has roles following the beliefs reads the readings (and the
    report results) itself, in a group named after its roles, so workers with
    the same roles share the partitions and workers with other roles each see
    every belief. None: no feed needed.
    """
    have = set(roles)
    if Role.INGEST in have or not have & FOLLOWS_BELIEFS:
        return None
    return "feed." + "+".join(format_roles(have))
