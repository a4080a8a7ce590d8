"""The faust application, built by a factory (no import-time global).

Agents are thin: decode and validate through :func:`streams.ingest.step.ingest`, write
through the sink, produce dead letters. Offsets are acknowledged only after the
batch's beliefs are in ClickHouse and its dead letters are confirmed by Kafka,
so a crash loses nothing; the beliefs table's key absorbs the replay.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import logging
import os
import queue
import ssl
from collections import ChainMap
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
from mode import CrashingSupervisor

from connectors.clickhouse import Store
from connectors.registry import RegistryView
from connectors.settings import Settings
from schemas.beliefs import Sensor
from streams import operations
from streams.beliefs import agent as beliefs_agent
from streams.beliefs import feed as belief_feed
from streams.context import WorkerContext
from streams.forecasting import agent as forecasting_agent
from streams.ingest import agent as ingest_agent
from streams.ingest import outputs as ingest_outputs
from streams.ingest.sink import RegistrySink
from streams.reports import agent as reports_agent
from streams.roles import (
    EVERY_ROLE,
    FOLLOWS_BELIEFS,
    Role,
    StoreAccess,
    check_history_access,
    format_roles,
    parse_roles,
    store_access,
)
from streams.scheduling import agent as scheduling_agent
from streams.sites import agent as sites_agent
from streams.sql import endpoints as sql_endpoints
from streams.worker_file import WORKER_STATE

log = logging.getLogger("flexstream.worker")


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


@dataclass
class WorkerConfig:
    """Everything the app needs, resolved at the entry point."""

    settings: Settings
    bootstrap: str
    sensors: Mapping[str, Sensor]
    clock: Callable[[], datetime] = utc_now
    store_factory: Callable[[], Store] | None = None
    #: The roles (None: those of the settings, ``FLEXSTREAM_WORKER_ROLES``).
    roles: frozenset[Role] | None = None


def _broker_credentials(settings: Settings) -> Any:
    k = settings.kafka
    if k.security_protocol == "PLAINTEXT":
        return None
    ctx = ssl.create_default_context(cafile=str(k.ssl_cafile) if k.ssl_cafile else None)
    if k.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=k.sasl_username,
            password=k.sasl_password.get_secret_value() if k.sasl_password else None,
            mechanism=k.sasl_mechanism or "PLAIN",
            ssl_context=ctx if k.security_protocol == "SASL_SSL" else None,
        )
    return faust.SSLCredentials(ctx)


def _store_url() -> str:
    """RocksDB (through rocksdict) for table state where available, else memory."""
    try:
        import rocksdict  # noqa: F401
    except ImportError:
        return "memory://"
    return "rocksdb://"


def _replication(cfg: WorkerConfig) -> int:
    """Replication of the worker's own topics: 1 on the local broker, else up to 3."""
    if not cfg.settings.kafka.external:
        return 1
    from confluent_kafka.admin import AdminClient

    conf = cfg.settings.kafka.client_config(cfg.bootstrap)
    return max(1, min(3, len(AdminClient(conf).list_topics(timeout=10).brokers)))


#: The worker's features, in order: each is ``install(ctx)``, with the roles that run it
#: (a worker installs a feature when it has any of them).
FEATURES: list[tuple[Callable[[WorkerContext], None], frozenset[Role]]] = [
    (ingest_agent.install, frozenset({Role.INGEST})),
    (ingest_outputs.install, frozenset({Role.INGEST})),
    (beliefs_agent.install, frozenset({Role.SCHEDULE})),
    (sites_agent.install, frozenset({Role.SCHEDULE})),
    (scheduling_agent.install, frozenset({Role.SCHEDULE})),
    (reports_agent.install, frozenset({Role.REPORT})),
    (forecasting_agent.install, frozenset({Role.FORECAST})),
    (belief_feed.install, FOLLOWS_BELIEFS),
    (sql_endpoints.install, frozenset({Role.INGEST})),
    (operations.install, EVERY_ROLE),
]


def features_for(roles: frozenset[Role]) -> list[Callable[[WorkerContext], None]]:
    """The features a worker with ``roles`` installs, in order."""
    return [install for install, needs in FEATURES if needs & roles]


def create_app(cfg: WorkerConfig) -> faust.App:
    """Build the worker's faust app for ``cfg``.

    Raises :class:`~streams.roles.RolesError` for unknown roles, or roles that
    read the history without a store to read it from.
    """
    s = cfg.settings
    roles = cfg.roles or parse_roles(s.worker.roles, "FLEXSTREAM_WORKER_ROLES")
    access = store_access(roles)
    if cfg.store_factory is None:
        check_history_access(roles, s.clickhouse.url is not None)
    k, w = s.kafka, s.worker
    data_dir = s.paths.root
    data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        k.topic("worker"),
        broker=[f"kafka://{h.strip()}" for h in cfg.bootstrap.split(",")],
        broker_credentials=_broker_credentials(s),
        value_serializer="raw",
        key_serializer="raw",
        store=_store_url(),
        topic_disable_leader=True,
        topic_allow_declare=True,  # faust's own changelog topics; ours exist already
        topic_replication_factor=_replication(cfg),
        topic_partitions=w.table_partitions,
        web_enabled=True,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_port=s.worker.web_port,
        datadir=str(data_dir / "faust"),
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=w.commit_interval,
        # An agent that crashes stops the worker (to be restarted by its supervisor)
        # rather than leaving a worker that looks alive but no longer consumes.
        agent_supervisor=CrashingSupervisor,
        # A killed worker's partitions move on after seconds, not faust's default minute.
        broker_session_timeout=w.session_timeout,
        broker_heartbeat_interval=w.heartbeat_interval,
        producer_acks=-1,
        logging_config=None,
    )
    registry = RegistryView(k.client_config(cfg.bootstrap), k.topic("registry"))
    ctx = WorkerContext(
        app=app,
        settings=s,
        bootstrap=cfg.bootstrap,
        registry=registry,
        # Registered sensors take precedence over those of the sensors file.
        sensors=ChainMap(registry.sensors, dict(cfg.sensors)),
        clock=cfg.clock,
        db_executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse"),
        dead_letters=app.topic(k.topic("dead-letters")),
        roles=roles,
    )
    ctx.health.roles = format_roles(roles)
    ctx.health.store = access.value
    ctx.metrics.set_roles(ctx.health.roles)
    mirror: queue.SimpleQueue = queue.SimpleQueue()
    registry.add_listener(lambda kind, name, model: mirror.put((kind, name, model)))

    def open_store() -> Store | None:
        if access is StoreAccess.NONE:
            return None
        if cfg.store_factory:
            return cfg.store_factory()
        return Store.open(
            s.clickhouse.url.get_secret_value() if s.clickhouse.url else None,
            s.clickhouse.database,
            data_dir,
            read_only=access is StoreAccess.READ,
        )

    @app.task
    async def _open() -> None:
        registry.start()
        await asyncio.get_running_loop().run_in_executor(None, registry.wait_caught_up, 60.0)
        store = await ctx.run_db(open_store)
        ctx.store = store
        (data_dir / WORKER_STATE).write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "web_port": w.web_port,
                    "clickhouse_port": w.clickhouse_port if Role.INGEST in roles else 0,
                    "roles": ctx.health.roles,
                    "app": app.conf.id,
                }
            )
        )
        # What start-up made lives as long as the worker: keep it out of the collector's
        # full passes, which the objects of each batch would otherwise trigger again and again.
        gc.freeze()
        ctx.ready.set()
        ctx.health.started = True
        log.info(
            "worker ready: roles %s, store %s, web on 127.0.0.1:%d",
            ",".join(ctx.health.roles),
            access.value,
            s.worker.web_port,
        )

    async def _mirror_registry() -> None:
        """Mirror the sensors and assets into their ClickHouse tables, through a retrying sink.

        A deleted sensor or asset (a tombstone on the registry) leaves its table.
        """
        await ctx.ready.wait()
        assert ctx.store is not None
        sink = RegistrySink(ctx.store, ctx.health)
        sink.add(*cfg.sensors.values())  # the sensors file's, then the registry's changes
        while True:
            while not mirror.empty():
                kind, name, model = mirror.get()
                if model is None:
                    sink.remove(kind, name)
                else:
                    sink.add(model)
            if len(sink):
                await sink.flush(ctx.run_db, first="registry", last="registry")
            await asyncio.sleep(0.5)

    if Role.INGEST in roles:
        app.task(_mirror_registry)
    for install in features_for(roles):
        install(ctx)
    # A worker without faust agents or tables (ingest, forecast) has nothing of faust's own
    # to consume (its batch loops have consumers of their own): no faust consumer joins
    # the worker group, and the loops' flow is never suspended by its rebalances.
    consumes = bool(len(app.agents) or len(app.tables))
    if not consumes:
        app.boot_strategy = app.BootStrategy(app, enable_kafka_consumer=False)

    async def _tables_in_step() -> None:
        await ctx.ready.wait()
        if not consumes:
            app.flow_control.resume()
        elif len(app.tables):
            await app.tables.recovery.completed.wait()
        ctx.tables_recovered.set()

    if ctx.belief_state is None and ctx.site_state is None:
        # Only the belief state's recovery tells the batch loops the tables are in step;
        # without it, the loops wait for faust's recovery of whatever tables there are.
        app.task(_tables_in_step)

    def _close() -> None:
        registry.stop()
        if ctx.store is not None:
            ctx.store.close()
            ctx.store = None
        try:
            state_file = data_dir / WORKER_STATE
            if json.loads(state_file.read_text()).get("pid") == os.getpid():
                state_file.unlink()
        except (OSError, ValueError):
            pass

    # After the worker's event loop has ended (agents stopped), release the data folder.
    atexit.register(_close)

    app.flexstream_context = ctx  # type: ignore[attr-defined]
    return app
