"""What the worker tells ``/health/`` and ``/ready``: is it started, and is anything failing.

Components report ``failing(name, error)`` while they retry (a store write, a
dead letter Kafka does not confirm) and ``ok(name)`` once it works again. The
worker is ready when it has started and nothing is failing; a stalled consumer
is therefore visible from outside instead of looking alive.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Problem:
    """A component that is failing: since when (monotonic and wall clock) and why."""

    since: float
    since_wall: float
    error: str
    count: int = 1


@dataclass
class Health:
    """Started flag and current problems of one worker."""

    started: bool = False
    problems: dict[str, Problem] = field(default_factory=dict)
    #: The worker's roles (``flexstream worker --roles``), in their documented order.
    roles: list[str] = field(default_factory=list)
    #: What the worker opened of ClickHouse: ``write``, ``read`` or ``none``.
    store: str = "write"
    #: With site partitions: a callable naming the site partitions this worker is active for.
    site_partitions: Callable[[], list[int]] | None = None

    def failing(self, name: str, error: str) -> None:
        """Record that ``name`` failed (again) with ``error``."""
        p = self.problems.get(name)
        if p is None:
            self.problems[name] = Problem(time.monotonic(), time.time(), error[:2000])
        else:
            p.error = error[:2000]
            p.count += 1

    def ok(self, name: str) -> None:
        """Record that ``name`` works."""
        self.problems.pop(name, None)

    @property
    def ready(self) -> bool:
        """Started and nothing failing."""
        return self.started and not self.problems

    def report(self) -> dict:
        """A JSON-able summary."""
        now = time.monotonic()
        return {
            "ready": self.ready,
            "started": self.started,
            "roles": list(self.roles),
            "store": self.store,
            **({"site_partitions": self.site_partitions()} if self.site_partitions else {}),
            "problems": {
                name: {
                    "error": p.error,
                    "failures": p.count,
                    "failing_for_s": round(now - p.since, 3),
                    "since_unix": p.since_wall,
                }
                for name, p in self.problems.items()
            },
        }
