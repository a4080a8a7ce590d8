"""The scheduling agent: requests in, one schedule per device out, and re-planning on prices.

Thin: decode the request, resolve it against the registry and the belief state
(:mod:`streams.scheduling.problem`), solve off the event loop, produce the answers to
the schedules topic keyed by device sensor. A request is acknowledged only after its
answers are confirmed, so a crash may answer a request twice (recognisable by
the request id) but never not at all.

The scheduling role does not write to ClickHouse: the ingest role stores the
schedules topic as beliefs from the scheduler source
(:mod:`streams.ingest.outputs`), retrying a failing write until it lands, so
a scheduling worker needs no store of its own.

Re-planning: an asset whose ``replan.on-new-prices`` is set is re-planned when
new beliefs arrive for a price sensor of its flex-context that fall within its
horizon. A burst of price beliefs gives one re-plan: the request is sent once
no new price has arrived for the asset's ``replan.debounce``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import faust

from schemas import serde
from schemas.assets import effective_flex_context, price_sensors
from schemas.errors import InputError
from schemas.rejections import Rejection, RejectionCode
from schemas.schedule import Schedule, Status
from schemas.times import US, floor_time, to_us
from streams.context import WorkerContext
from streams.ingest.step import RawMessage, dead_letter
from streams.scheduling import problem as scheduling
from streams.scheduling.inputs import Lookup
from streams.scheduling.recent import RecentAnswers

log = logging.getLogger("flexstream.scheduler")


async def solve(
    ctx: WorkerContext,
    request: dict[str, Any],
    pool: Executor,
    time_limit: float,
    lookup: Lookup | None = None,
) -> list[Schedule]:
    """Answer one decoded request from ``lookup`` (the belief state by default): solve on ``pool``.

    Each schedule names the sensor its state of charge is stored under, for
    the ingest role that stores it. Raises when something fails past the
    checks of the request (the caller answers with status ``error``).
    """
    forecasters: dict[str, list[str]] = {}
    for name, f in sorted(dict(ctx.registry.forecasters).items()):
        forecasters.setdefault(f.sensor, []).append(name)
    prepared, failed = scheduling.prepare_or_fail(
        request,
        ctx.registry.assets,
        ctx.sensors,
        lookup if lookup is not None else ctx.belief_state,
        ctx.clock(),
        forecasters,
    )
    if prepared is None:
        return failed
    loop = asyncio.get_running_loop()
    result, ms = await loop.run_in_executor(pool, scheduling.solve, prepared, "highs", time_limit)
    ctx.metrics.solver_time.observe(ms / 1000)
    answers = scheduling.answer(request, prepared, result, ms, ctx.clock())
    return [replace(a, soc_sensor=prepared.soc_sensors.get(a.sensor)) for a in answers]


async def answer_request(
    ctx: WorkerContext,
    request: dict[str, Any],
    pool: Executor,
    time_limit: float,
    lookup: Lookup | None = None,
) -> list[Schedule]:
    """The answers to one decoded request: schedules, or a status naming what went wrong.

    Never raises: a failure past the request's checks (a defect) is answered
    with status ``error`` and its text.
    """
    try:
        return await solve(ctx, request, pool, time_limit, lookup)
    except Exception as exc:  # noqa: BLE001 - every request gets an answer
        log.exception("scheduling %s failed", request.get("request_id"))
        return scheduling.failure(
            request,
            scheduling.devices_of(request, ctx.registry.assets),
            Status.ERROR,
            f"the scheduler failed: {type(exc).__name__}: {exc}",
            ctx.clock(),
        )


def install(ctx: WorkerContext) -> None:
    """Add the scheduling agent and the re-planning timer to the worker."""
    app = ctx.app
    requests = app.topic(ctx.topic("schedule-requests"))
    schedules = app.topic(ctx.topic("schedules"))
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="solver")
    time_limit = ctx.settings.worker.solver_time_limit
    pending: dict[str, float] = {}  # asset -> monotonic time of the last price belief
    metrics = ctx.metrics
    sites = ctx.site_state
    recent: RecentAnswers[list[Schedule]] = RecentAnswers()

    @app.agent(requests, concurrency=1)
    async def schedule_requests(stream: faust.StreamT) -> None:
        await ctx.ready.wait()
        async for event in stream.events():
            m = event.message
            t = time.perf_counter()  # received: the latency runs from here to confirmed answers
            raw = RawMessage(m.topic, m.partition, m.offset, m.key, event.value)
            try:
                request = serde.decode_as(raw.value, "ScheduleRequest", "a schedule request")
            except InputError as exc:
                await ctx.send_dead_letters(
                    [
                        dead_letter(
                            raw,
                            Rejection(RejectionCode.BAD_REQUEST, str(exc), exc.field),
                            ctx.clock(),
                        )
                    ]
                )
                log.warning("dead letter %s: %s", raw.where, exc)
                continue
            lookup = None
            if sites is not None:
                site = sites.site_of(request["asset"])
                home = sites.partition_of(site)
                if m.partition != home:
                    # Sent before site partitions, or by a client keying otherwise: on to the
                    # worker that holds the site's state.
                    await requests.send(key=site.encode(), value=raw.value, partition=home)
                    log.info("forwarded %s to its site's partition %d", raw.where, home)
                    continue
                await sites.shared_ready.wait()
                lookup = sites.lookup(site)
            rid = request["request_id"]
            answers = recent.get(rid, request["asset"])
            if answers is None:
                answers = await answer_request(ctx, request, pool, time_limit, lookup)
                recent.put(rid, request["asset"], answers)
            else:
                log.info("%s was answered before: the same answers again", rid)
            futs = [await schedules.send(key=a.sensor.encode(), value=a.to_avro()) for a in answers]
            await asyncio.gather(*futs)
            metrics.schedule_requests.inc()
            metrics.schedule_latency.observe(time.perf_counter() - t)
            log.info(
                "answered %s (%s) in %.1f ms: %s",
                request["request_id"],
                request["asset"],
                (time.perf_counter() - t) * 1000,
                ", ".join(sorted({a.status for a in answers})),
            )

    # Which re-planning assets each price sensor concerns; rebuilt when the registry changes,
    # not on every stored batch.
    index: dict[str, set[str]] = {}
    index_stale = [True]
    ctx.registry.add_listener(lambda kind, name, model: index_stale.__setitem__(0, True))

    def replan_index() -> dict[str, set[str]]:
        if index_stale[0]:
            index_stale[0] = False
            index.clear()
            assets = dict(ctx.registry.assets)
            for name, asset in assets.items():
                if not asset.replan.on_new_prices or not asset.flex_model:
                    continue
                try:
                    prices = price_sensors(effective_flex_context(name, assets))
                except InputError:
                    continue
                for sensor in prices:
                    index.setdefault(sensor, set()).add(name)
        return index

    async def on_changes(
        changed: dict[str, tuple[int, int]], mine: Callable[[str], bool] | None = None
    ) -> None:
        concerned = replan_index()
        names = {a for sensor in changed for a in concerned.get(sensor, ())}
        if mine is not None:
            names = {a for a in names if mine(a)}
        if not names:
            return
        now = ctx.clock()
        for name in names:
            asset = ctx.registry.assets.get(name)
            if asset is None:
                continue
            lo = to_us(floor_time(now, asset.replan.resolution))
            hi = lo + asset.replan.duration // US
            spans = [changed[s] for s in changed if name in concerned.get(s, ())]
            if any(end > lo and begin < hi for begin, end in spans):
                pending[name] = time.monotonic()

    if sites is None:
        ctx.belief_change_listeners.append(on_changes)
    else:
        # Every worker holds the shared prices: each re-plans only the sites it is active for.
        async def on_own_changes(changed: dict[str, tuple[int, int]]) -> None:
            await on_changes(changed, lambda name: sites.owns(sites.site_of(name)))

        sites.change_listeners.append(on_own_changes)

    @app.task
    async def replan_loop() -> None:
        """Check for due re-plans every 20 ms; one round at a time, so rounds never overlap."""
        while True:
            await asyncio.sleep(0.02)
            await replan()

    async def replan() -> None:
        if not pending:
            return
        mono = time.monotonic()
        for name in list(pending):
            asset = ctx.registry.assets.get(name)
            if asset is None:
                pending.pop(name, None)
                continue
            if mono - pending[name] < asset.replan.debounce.total_seconds():
                continue
            pending.pop(name, None)
            now = ctx.clock()
            rec = {
                "request_id": f"replan-{name}-{uuid.uuid4().hex[:12]}",
                "asset": name,
                "devices": [],
                "start": floor_time(now, asset.replan.resolution),
                "duration_ms": int(asset.replan.duration.total_seconds() * 1000),
                "resolution_ms": int(asset.replan.resolution.total_seconds() * 1000),
                "flex_model": None,
                "flex_context": None,
                "requested_at": now,
                "origin": "replan",
            }
            value = serde.encode("ScheduleRequest", rec)
            if sites is None:
                await requests.send(key=name.encode(), value=value)
            else:
                site = sites.site_of(name)
                await requests.send(
                    key=site.encode(), value=value, partition=sites.partition_of(site)
                )
            log.info("re-planning %s after new prices", name)
