"""A streaming report as registered: reporter, config, parameters, grace and timeout.

Definitions travel as ``ReportDefinition`` Avro records (``report_definition.avsc``)
on the compacted ``report-definitions`` topic, keyed by report name; the config
and the parameters are carried as JSON in the field names users write, and are
validated again by every reader.

- ``grace``: event time a window waits after its end. A window closes once the
  watermark of every input (the latest event end seen for it) has passed
  ``window end + grace``.
- ``timeout``: processing time. A window that has had no new input for this
  long closes as soon as *one* input's watermark has passed ``window end +
  grace``, so an input that stopped sending does not hold the report back
  forever (its bins are then incomplete and give no values until the input
  comes back, which recomputes the window).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.errors import InputError
from schemas.reporters import (
    ReporterConfig,
    ReportParameters,
    load_parameters,
    validate_config,
)
from schemas.times import parse_duration

#: Source of every belief a report emits: ``flexstream-reporter:<report name>``.
SOURCE_PREFIX = "flexstream-reporter:"

DEFAULT_GRACE = timedelta(minutes=5)
DEFAULT_TIMEOUT = timedelta(minutes=15)


class ReportDefinition(BaseModel):
    """One named report: which reporter runs with which config over which sensors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Report name, unique.")
    reporter: str = Field(description="Reporter name, e.g. AggregatorReporter.")
    config: dict[str, Any] = Field(description="Reporter config as the user wrote it.")
    parameters: ReportParameters
    grace: timedelta = Field(default=DEFAULT_GRACE, description="Event-time grace period.")
    timeout: timedelta = Field(default=DEFAULT_TIMEOUT, description="Processing-time timeout.")

    @field_validator("grace", "timeout", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        d = parse_duration(v, "")
        if d < timedelta(0):
            raise InputError("must not be negative")
        return d

    @property
    def source(self) -> str:
        """Source of the beliefs this report emits."""
        return SOURCE_PREFIX + self.name

    def reporter_config(self) -> ReporterConfig:
        """The validated reporter config."""
        return validate_config(self.reporter, self.config)

    def to_record(self, now: datetime | None = None) -> dict[str, Any]:
        """The Avro record of this definition."""
        return {
            "name": self.name,
            "reporter": self.reporter,
            "config": json.dumps(self.config, sort_keys=True),
            "parameters": self.parameters.model_dump_json(exclude_unset=True),
            "grace_ms": self.grace // timedelta(milliseconds=1),
            "timeout_ms": self.timeout // timedelta(milliseconds=1),
            "updated_at": now or datetime.now(UTC),
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> ReportDefinition:
        """Read and validate a decoded Avro record (raises :class:`InputError`)."""
        defn = build_definition(
            rec["name"],
            rec["reporter"],
            json.loads(rec["config"]),
            load_parameters(json.loads(rec["parameters"])),
            timedelta(milliseconds=rec["grace_ms"]),
            timedelta(milliseconds=rec["timeout_ms"]),
        )
        return defn


def build_definition(
    name: str,
    reporter: str,
    config: dict[str, Any],
    parameters: ReportParameters,
    grace: timedelta | str = DEFAULT_GRACE,
    timeout: timedelta | str = DEFAULT_TIMEOUT,
) -> ReportDefinition:
    """Validate the parts of a report and return its definition.

    The config must validate for the reporter, and no output sensor may also
    be an input (a report would feed itself).
    """
    config = dict(config)
    named = config.pop("reporter", None)
    if named is not None and named != reporter:
        raise InputError(f"the config is for {named!r}, not {reporter!r}", "reporter")
    validate_config(reporter, config)
    inputs = {i.sensor for i in parameters.input}
    for i, out in enumerate(parameters.output):
        if out.sensor in inputs:
            raise InputError(
                f"sensor {out.sensor!r} is both an input and an output; a report cannot "
                "feed itself, write to another sensor",
                f"output[{i}].sensor",
            )
    return ReportDefinition(
        name=name,
        reporter=reporter,
        config=config,
        parameters=parameters,
        grace=grace,
        timeout=timeout,
    )
