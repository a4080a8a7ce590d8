"""The ``flexstream`` console script: one click group, one module per command family."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """FlexStream: streaming energy flexibility scheduling on Kafka and ClickHouse."""


def _register() -> None:
    """Attach the command modules to the group (imports stay lazy per module)."""
