"""The operators' endpoints of the worker: ``/health``, ``/ready`` and ``/metrics``.

``install(ctx)`` adds them (a feature like the agents); what they report is
kept by :mod:`streams.health` and :mod:`streams.metrics`.
"""

from __future__ import annotations

import faust

from streams import metrics
from streams.context import WorkerContext


def install(ctx: WorkerContext) -> None:
    """Add the operators' endpoints to the worker of ``ctx``."""
    app = ctx.app

    @app.page("/health")
    @app.page("/health/")
    class HealthView(faust.web.View):
        """Liveness: started, ready (nothing failing), problems, beliefs written so far."""

        async def get(self, request: faust.web.Request) -> faust.web.Response:
            sink = ctx.readings_sink
            return self.json({**ctx.health.report(), "written": sink.written if sink else 0})

    @app.page("/ready")
    class ReadyView(faust.web.View):
        """Readiness: 200 when started and nothing is failing, else 503 with the problems."""

        async def get(self, request: faust.web.Request) -> faust.web.Response:
            report = ctx.health.report()
            return self.json(report, status=200 if report["ready"] else 503)

    @app.page("/metrics")
    class MetricsView(faust.web.View):
        """Prometheus metrics of this worker, in the text exposition format (0.0.4)."""

        async def get(self, request: faust.web.Request) -> faust.web.Response:
            return self.bytes(
                ctx.metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE}
            )

    _ = (HealthView, ReadyView, MetricsView)
