"""Ready-made reporter configs, shipped as YAML files next to this module.

A preset file holds ``name``, ``description``, ``reporter``, a suggested
``resolution``, ``constants`` (default values) and the reporter ``config``, in
which a string that is exactly ``"${constant}"`` is replaced by that
constant's value. Override constants when loading::

    preset = load_preset("tibber", energy_tax=0.1016, vat=0.21)
    reporter = preset.reporter()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from typing import Any

import yaml

from schemas.errors import InputError
from schemas.reporters import ReporterConfig, check_primitive, validate_config
from schemas.times import parse_duration
from streams.reports.reporters.base import Reporter
from streams.reports.reporters.registry import get_reporter_class

_PLACEHOLDER_PREFIX, _PLACEHOLDER_SUFFIX = "${", "}"


@dataclass(frozen=True)
class Preset:
    """A validated preset: its reporter, config and suggested resolution."""

    name: str
    description: str
    reporter_name: str
    config: ReporterConfig
    resolution: timedelta | None
    constants: dict[str, Any] = field(default_factory=dict)

    def reporter(self) -> Reporter:
        """Build the reporter of this preset."""
        return get_reporter_class(self.reporter_name)(self.config)


def list_presets() -> list[str]:
    """Names of the shipped presets, sorted."""
    folder = resources.files(__name__)
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def _substitute(value: Any, constants: dict[str, Any], path: str) -> Any:
    """Replace ``"${name}"`` strings by the constant ``name``, at any depth."""
    if isinstance(value, str):
        if value.startswith(_PLACEHOLDER_PREFIX) and value.endswith(_PLACEHOLDER_SUFFIX):
            key = value[len(_PLACEHOLDER_PREFIX) : -len(_PLACEHOLDER_SUFFIX)]
            if key not in constants:
                raise InputError(f"uses constant {key!r}, which the preset does not define", path)
            return constants[key]
        return value
    if isinstance(value, list):
        return [_substitute(v, constants, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _substitute(v, constants, f"{path}.{k}") for k, v in value.items()}
    return value


def load_preset(name: str, **constants: Any) -> Preset:
    """Load the preset ``name``, with constants overridden by keyword.

    Raises :class:`InputError` for an unknown preset or constant, or a config
    that does not validate (the field is named as in the preset's config).
    """
    if name not in list_presets():
        raise InputError(
            f"unknown preset {name!r}; use one of: {', '.join(list_presets())}", "preset"
        )
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    values = dict(doc.get("constants") or {})
    for key, value in constants.items():
        if key not in values:
            raise InputError(
                f"preset {name!r} has no constant {key!r}; it has "
                f"{', '.join(sorted(values)) or 'none'}",
                key,
            )
        check_primitive(value, key)
        values[key] = value
    config = validate_config(doc["reporter"], _substitute(doc["config"], values, "config"))
    resolution = doc.get("resolution")
    return Preset(
        name=doc.get("name", name),
        description=" ".join(str(doc.get("description", "")).split()),
        reporter_name=doc["reporter"],
        config=config,
        resolution=parse_duration(resolution, "resolution") if resolution else None,
        constants=values,
    )


#: Names of the shipped presets.
PRESETS: tuple[str, ...] = tuple(list_presets())

__all__ = ["PRESETS", "Preset", "list_presets", "load_preset"]
