"""Reading user documents (YAML or JSON) into pydantic models, with errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from schemas.errors import InputError

M = TypeVar("M", bound=BaseModel)


def load_document(path: str | Path) -> Any:
    """Load a YAML or JSON file (JSON is YAML, but JSON errors read better)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror}", str(p)) from None
    try:
        if p.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{p} is not valid {p.suffix.lstrip('.') or 'YAML'}: {exc}") from None


def field_path(loc: tuple[Any, ...]) -> str:
    """``("sensors", 2, "unit")`` -> ``sensors[2].unit``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def input_error(exc: ValidationError, prefix: str = "") -> InputError:
    """Turn a pydantic error into an InputError naming the first offending field."""
    first = exc.errors()[0]
    loc = tuple(first.get("loc", ()))
    name = field_path(((prefix,) if prefix else ()) + loc) or prefix or None
    msg = first.get("msg", "invalid")
    more = len(exc.errors()) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InputError(msg, name)


def parse_model(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate ``data`` as ``model``; errors name the field as the user wrote it."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc, prefix) from None
