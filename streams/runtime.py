"""Wiring at the entry point: settings, the Kafka cluster to use, the worker process.

The local broker is started only when no external cluster is configured
(``KAFKA_BOOTSTRAP_SERVERS``); its data lives in ``<data_dir>/kafka``. With
``FLEXSTREAM_KAFKA_BROKERS`` (or ``flexstream up --brokers``) above one, a local
cluster of that many nodes runs instead, in ``<data_dir>/kafka-cluster``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from connectors.kafka import ensure_topics, site_topic_partitions
from connectors.settings import Settings
from infra import kafka_local
from schemas.errors import InfraError
from streams.worker_file import worker_state


def broker_dir(settings: Settings) -> Path:
    """Where the local broker keeps its data."""
    return settings.paths.root / "kafka"


def cluster_dir(settings: Settings) -> Path:
    """Where the local cluster's nodes keep their data."""
    return settings.paths.root / "kafka-cluster"


def bootstrap(settings: Settings, start: bool = False) -> str:
    """The bootstrap address: the external cluster, else the local cluster or broker.

    A local cluster that runs is used whatever ``FLEXSTREAM_KAFKA_BROKERS`` says
    (it was started with ``flexstream up --brokers N``); else the local broker.
    Started if asked and none runs.
    """
    if settings.kafka.external:
        return str(settings.kafka.bootstrap_servers)
    info = kafka_local.running_cluster(cluster_dir(settings)) or kafka_local.running(
        broker_dir(settings)
    )
    if info:
        return info.bootstrap
    if not start:
        raise InfraError(
            "no Kafka broker is running; start one with 'flexstream up' or set "
            "KAFKA_BOOTSTRAP_SERVERS to use a cluster"
        )
    return up(settings)


def up(settings: Settings) -> str:
    """Start (or reuse) the local broker unless a cluster is configured; create the topics."""
    k = settings.kafka
    if k.external:
        bs = str(k.bootstrap_servers)
        try:
            kafka_local.wait_ready(bs, timeout=30, config=k.client_config(bs))
        except kafka_local.BrokerError as exc:
            raise InfraError(
                f"{exc}; check KAFKA_BOOTSTRAP_SERVERS and security settings"
            ) from None
        replication = 3
    else:
        local = dict(
            port=k.local_port, controller_port=k.local_controller_port, heap_mb=k.local_heap_mb
        )
        try:
            if k.local_brokers > 1:
                bs = kafka_local.start_cluster(
                    cluster_dir(settings), settings.paths.dist, nodes=k.local_brokers, **local
                ).bootstrap
            else:
                bs = kafka_local.start(broker_dir(settings), settings.paths.dist, **local).bootstrap
        except kafka_local.BrokerError as exc:
            raise InfraError(str(exc)) from None
        replication = 3 if k.local_brokers > 1 else 1
    ensure_topics(
        k.client_config(bs),
        k.topic_prefix,
        replication_factor=_replication(bs, replication, k),
        partitions=site_topic_partitions(settings.worker.site_partitions),
    )
    return bs


def _replication(bootstrap: str, wanted: int, k: Any) -> int:
    from confluent_kafka.admin import AdminClient

    brokers = len(AdminClient(k.client_config(bootstrap)).list_topics(timeout=10).brokers)
    return max(1, min(wanted, brokers))


def down(settings: Settings) -> bool:
    """Stop the local broker and the local cluster's nodes; False when none ran."""
    nodes = kafka_local.stop_cluster(cluster_dir(settings))
    return kafka_local.stop(broker_dir(settings)) or nodes > 0


def spawn_worker(
    env: dict[str, str], log_path: Path, extra_args: list[str] | None = None
) -> subprocess.Popen:
    """Start ``flexstream worker`` as a child with ``env``; its output goes to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", *(extra_args or [])],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    return proc


def wait_worker_ready(data_dir: Path, proc: subprocess.Popen | None, timeout: float = 60) -> int:
    """Wait until the worker of ``data_dir`` answers on its web port; return the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise InfraError(f"the worker exited with code {proc.returncode} while starting")
        state = worker_state(data_dir)
        if state:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{state['web_port']}/health/", timeout=2
                ) as resp:
                    if json.loads(resp.read()).get("started"):
                        return int(state["web_port"])
            except (urllib.error.URLError, OSError, ValueError):
                pass
        time.sleep(0.2)
    raise InfraError(f"the worker did not become ready within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> int:
    """SIGTERM a child (its process group), SIGKILL after ``timeout``; return its exit code."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return int(proc.returncode)
