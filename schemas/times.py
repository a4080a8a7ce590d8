"""Time helpers: microseconds since the epoch, aware datetimes, ISO 8601 durations, timezones.

Inside FlexStream every time is timezone-aware (UTC where it is stored). These
are the one place where times are read from text or objects users give, turned
into microseconds and back, and where durations are read and written as
ISO 8601. Errors are :class:`~schemas.errors.InputError` naming the field or
option as the user wrote it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import isodate

from schemas.errors import InputError

#: 1970-01-01 UTC, the origin of every ``*_us`` time.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: One microsecond: the resolution of Python datetimes and of the history's times.
US = timedelta(microseconds=1)

#: What the CLI's options say about an unreadable or naive datetime.
UNREADABLE = "cannot read {value!r} as a datetime; write ISO 8601 such as 2026-04-01T00:00+02:00"
NAIVE = "{value!r} has no UTC offset; add one, e.g. Z or +02:00"


def zone(name: str, field: str) -> ZoneInfo:
    """The IANA timezone ``name``, or an :class:`InputError` naming ``field``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InputError(
            f"{name!r} is not a known timezone; give an IANA name such as Europe/Amsterdam or UTC",
            field,
        ) from None


def to_us(t: datetime) -> int:
    """Microseconds from 1970-01-01 UTC to the aware datetime ``t``."""
    return (t - EPOCH) // US


def from_us(us: int) -> datetime:
    """The aware UTC datetime ``us`` microseconds after 1970-01-01 UTC."""
    return EPOCH + timedelta(microseconds=int(us))


def floor_time(t: datetime, step: timedelta) -> datetime:
    """``t`` floored to a whole number of ``step`` since 1970-01-01 UTC (``t`` keeps its zone)."""
    return t - (t - EPOCH) % step


def format_utc(t: datetime, timespec: str = "auto") -> str:
    """``t`` in UTC as ISO 8601 with a ``Z`` (``2026-04-01T00:00:00Z``)."""
    return t.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def engine_time(t: datetime) -> str:
    """``t`` (aware) as the engine reads a ``DateTime64(6, 'UTC')`` parameter."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def from_engine_time(text: str) -> datetime:
    """A ``DateTime64(6, 'UTC')`` value as the engine writes it (no offset) as aware UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def aware(
    value: Any,
    field: str,
    *,
    utc: bool = True,
    naive: str = "{iso} has no UTC offset; pass an aware datetime, e.g. datetime(..., tzinfo=UTC)",
) -> datetime:
    """``value``, a datetime with a UTC offset; in UTC unless ``utc`` is false.

    ``naive`` is the message for a datetime without an offset; it may name the
    value as ``{value!r}`` or ``{iso}`` (its ISO 8601 text).
    """
    if not isinstance(value, datetime):
        raise InputError(f"expected a datetime, got {type(value).__name__}", field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(naive.format(value=value, iso=value.isoformat()), field)
    return value.astimezone(UTC) if utc else value


def parse_aware(
    value: Any,
    field: str,
    *,
    utc: bool = False,
    unreadable: str = UNREADABLE,
    naive: str = NAIVE,
) -> datetime:
    """Read an ISO 8601 datetime with a UTC offset (``Z`` or ``+02:00``); a datetime passes.

    Surrounding blanks are ignored. The result keeps its offset, or is in UTC
    with ``utc``. ``unreadable`` and ``naive`` are the messages for text that is
    no datetime and for a datetime without an offset; both may name the value
    as ``{value!r}``.
    """
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(unreadable.format(value=value), field) from None
    else:
        raise InputError(f"expected an ISO 8601 datetime string, got {value!r}", field)
    if t.tzinfo is None or t.utcoffset() is None:
        raise InputError(naive.format(value=value), field)
    return t.astimezone(UTC) if utc else t


def parse_duration(value: Any, field: str, positive: bool = False) -> timedelta:
    """Parse an ISO 8601 duration (``PT15M``, ``PT1H``, ``P1D``) or pass a timedelta through.

    Months and years are refused (they have no fixed length); with ``positive``,
    so are zero and negative durations. Errors name ``field``.
    """
    td: Any = value
    if not isinstance(value, timedelta):
        try:
            td = isodate.parse_duration(str(value).strip()) if isinstance(value, str) else None
        except (isodate.ISO8601Error, ValueError):
            td = None
        if td is None:
            raise InputError(
                f"cannot read {value!r} as a duration; write ISO 8601 such as 'PT15M', "
                "'PT1H' or 'P1D'",
                field,
            )
        if not isinstance(td, timedelta):
            raise InputError(
                f"{value!r} uses months or years, which have no fixed length; "
                "use days or hours (P1D, PT15M)",
                field,
            )
    if positive and td <= timedelta(0):
        raise InputError(f"the duration must be positive, got {value!r}", field)
    return td


def format_duration(d: timedelta, zero: str = "PT0S") -> str:
    """``d`` as ISO 8601 in days, hours, minutes and seconds (``P1DT2H``, ``PT1.5S``).

    Never in months or years, so :func:`parse_duration` reads every result back.
    ``zero`` is the text of a zero duration (``PT0S``, ``PT0M`` or ``P0D``).
    """
    if d < timedelta(0):
        return "-" + format_duration(-d, zero)
    if not d:
        return zero
    seconds, us = divmod(d.seconds * 1_000_000 + d.microseconds, 1_000_000)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    sec = f"{s}.{us:06d}".rstrip("0") + "S" if us else f"{s}S" if s else ""
    time = (f"{h}H" if h else "") + (f"{m}M" if m else "") + sec
    return (f"P{d.days}D" if d.days else "P") + (f"T{time}" if time else "")
