"""Operation modes (S2 power bands) of a storage flex-model, as FlexMeasures 1.0 writes them.

``"operation-modes"`` is a non-empty list of modes; the device's net power must
lie in one of them at every step. Each mode gives a ``consumption-range``
``[min, max]`` (non-negative, consumption) and/or a ``production-range``
``[min, max]`` (non-negative, production). Both together form one band through
zero, so both must then start at 0. A mode becomes a signed band
``(min, max)`` in kW, consumption positive:

- ``{"consumption-range": [a, b]}``: ``(a, b)``;
- ``{"production-range": [a, b]}``: ``(-b, -a)``;
- both, ``[0, c]`` and ``[0, p]``: ``(-p, c)``.

An S2 power range maps by sign: its non-negative part to ``consumption-range``,
its negative part (sign flipped) to ``production-range``. Bare numbers are MW,
as FlexMeasures reads them. A device that is off or runs at 2 to 3 kW::

    [{"consumption-range": ["0 kW", "0 kW"]}, {"consumption-range": ["2 kW", "3 kW"]}]
"""

from __future__ import annotations

import math
from typing import Any

from schemas.errors import InputError
from schemas.flex_series import magnitude

_RANGES = ("consumption-range", "production-range")

_EXAMPLE = '[{"consumption-range": ["0 kW", "0 kW"]}, {"consumption-range": ["2 kW", "3 kW"]}]'


def _range(value: Any, field: str) -> tuple[float, float]:
    """One ``[min, max]`` range in kW, checked as FlexMeasures checks it."""
    if not isinstance(value, list) or len(value) != 2:
        raise InputError('give [min, max] as two quantities, e.g. ["2 kW", "3 kW"]', field)
    lo, hi = (magnitude(v, "kW", f"{field}[{j}]", "MW") for j, v in enumerate(value))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError("give finite powers", field)
    if lo < 0:
        other = "production-range" if field.endswith("consumption-range") else "consumption-range"
        raise InputError(
            f"must be non-negative; to express power in the other direction, move the "
            f"negative part (with its sign flipped) to the mode's {other} (a range spanning "
            "zero becomes both, each starting at 0)",
            field,
        )
    if lo > hi:
        raise InputError(f"the minimum ({lo:g} kW) exceeds the maximum ({hi:g} kW)", field)
    return lo, hi


def parse_operation_modes(value: Any, field: str) -> tuple[tuple[float, float], ...]:
    """Signed power bands ``(min, max)`` in kW (consumption positive), one per mode."""
    if not isinstance(value, list) or not value:
        raise InputError(f"give a non-empty list of modes, e.g. {_EXAMPLE}", field)
    bands = []
    for i, mode in enumerate(value):
        f = f"{field}[{i}]"
        if not isinstance(mode, dict):
            raise InputError(
                'give a mode as an object with "consumption-range" and/or "production-range"', f
            )
        for key in mode:
            if key not in _RANGES:
                raise InputError(
                    "a mode has consumption-range and/or production-range only", f"{f}.{key}"
                )
        if not mode:
            raise InputError("a mode needs a consumption-range and/or a production-range", f)
        cons = (
            _range(mode["consumption-range"], f"{f}.consumption-range")
            if ("consumption-range" in mode)
            else None
        )
        prod = (
            _range(mode["production-range"], f"{f}.production-range")
            if ("production-range" in mode)
            else None
        )
        if cons is not None and prod is not None:
            if cons[0] != 0 or prod[0] != 0:
                raise InputError(
                    "a mode with both ranges is one band through zero, so both must start at 0",
                    f,
                )
            bands.append((-prod[1], cons[1]))
        elif cons is not None:
            bands.append(cons)
        else:
            bands.append((-prod[1], -prod[0]))
    return tuple(bands)
