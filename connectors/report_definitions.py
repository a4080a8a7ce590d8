"""Report definitions on their compacted topic, and a global view of them.

Writers publish a ``ReportDefinition`` keyed by the report name; compaction
keeps the latest per name, and a tombstone removes a report. The view is the
registry's (:class:`connectors.registry.RegistryView`: every partition from the
beginning, no consumer group, caught up, then following), decoding report
definitions instead of sensors and assets.

Report definitions have a topic of their own rather than a third kind on the
registry topic: adding a symbol to the registry's Avro enum would break
readers that do not know it.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.kafka import ConfirmingProducer
from connectors.registry import RegistryView
from schemas import serde
from schemas.errors import InputError
from schemas.report_definition import ReportDefinition

log = logging.getLogger("flexstream.reports")

TOPIC = "report-definitions"


def publish(
    producer: ConfirmingProducer, topic: str, items: list[ReportDefinition], flush: bool = True
) -> int:
    """Publish report definitions; returns the number confirmed."""
    for d in items:
        producer.send(topic, serde.encode("ReportDefinition", d.to_record()), key=d.name)
    return producer.flush() if flush else 0


def tombstone(producer: ConfirmingProducer, topic: str, name: str) -> int:
    """Delete a report: a message keyed by its name with no value; returns 1 when confirmed."""
    producer.send(topic, None, key=name)
    return producer.flush()


def decode_definition(value: bytes) -> ReportDefinition:
    """Decode a report-definitions message; raises InputError if invalid."""
    name, rec = serde.decode(value)
    if name != "ReportDefinition":
        raise InputError(f"a {name} is not a report definition", "value")
    return ReportDefinition.from_record(rec)


class ReportDefinitionView(RegistryView):
    """Every report definition of the topic, kept up to date in a background thread.

    ``reports`` maps a name to its definition; listeners get ``("report", name,
    definition_or_None)`` after each change.
    """

    def __init__(self, conf: dict[str, Any], topic: str) -> None:
        super().__init__(conf, topic)
        self._conf["group.id"] = "flexstream-report-definitions-view"  # never used to commit
        self.reports: dict[str, ReportDefinition] = {}

    def _apply(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        if value is None:
            name = key.decode() if key else ""
            if self.reports.pop(name, None) is not None:
                log.info("report %s deleted", name)
                self._tell("report", name, None)
            return
        try:
            defn = decode_definition(value)
        except (InputError, ValueError, KeyError) as exc:
            self.rejected.append((partition, offset, str(exc)))
            log.warning(
                "report definition %s[%d]@%d rejected: %s", self.topic, partition, offset, exc
            )
            return
        self.reports[defn.name] = defn
        self._tell("report", defn.name, defn)


def read_definitions(
    conf: dict[str, Any], topic: str, timeout: float = 30.0
) -> ReportDefinitionView:
    """Read every report definition once and return the caught-up view (stopped)."""
    return ReportDefinitionView.read_once(conf, topic, timeout)
