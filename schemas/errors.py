"""One exception root for FlexStream, with a subclass per layer.

Validation errors are also ``ValueError`` so callers that only know the
built-ins still catch them. Messages name the field as the user wrote it and
say what to do.
"""

from __future__ import annotations


class FlexStreamError(Exception):
    """Root of every error FlexStream raises on purpose."""


class InputError(FlexStreamError, ValueError):
    """User input (a file, a message, a flag) is invalid.

    ``field`` is the name as the user wrote it (e.g. ``soc-max`` or
    ``values[3]``); the message says what to do about it.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class SolverError(FlexStreamError):
    """The optimisation layer could not produce a result."""


class ConnectorError(FlexStreamError):
    """Kafka, ClickHouse or a file/feed connector failed."""


class InfraError(FlexStreamError):
    """The local infrastructure (broker, data folder) cannot be used as asked."""
