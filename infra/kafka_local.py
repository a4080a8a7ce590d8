"""Local KRaft Apache Kafka on 127.0.0.1, assembled from Maven Central: one node or a cluster.

The broker's jars are collected once per Kafka version by Maven's dependency
plugin (``infra/kafka/pom.xml``) into ``<dist_dir>/<version>/``; each broker has
its own data folder holding ``server.properties``, the KRaft log directory, the
server log and a ``broker.json`` with its pid and ports. Starting is idempotent:
a broker already running from the same data folder is reused.

:func:`start` runs one node (replication 1). :func:`start_cluster` runs several
nodes, each both broker and KRaft controller (a quorum of all of them), in
folders ``node-1``, ``node-2``, ... of one cluster folder: topics are replicated
to three nodes by default and writes need two in sync (``min.insync.replicas``),
so the cluster keeps serving when one node is lost. A stopped node rejoins when
the cluster is started again.

Readiness is the log line "Kafka Server started" followed by a metadata round
trip from a real client, never an open port.

This module imports nothing of FlexStream's: it is used by the CLI, the tests
and the benchmarks alike.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

#: The Kafka version the project runs on (see README: "Kafka version").
KAFKA_VERSION = "4.1.1"
#: log4j2 version Kafka 4.1.1 itself ships with.
LOG4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"

_HERE = Path(__file__).resolve().parent
_STARTED_LINE = "Kafka Server started"


class BrokerError(RuntimeError):
    """The local broker cannot be fetched, started or reached; the message says what to do."""


@dataclass(frozen=True)
class BrokerInfo:
    """A running local broker."""

    pid: int
    port: int
    controller_port: int
    data_dir: Path
    version: str

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients connect to."""
        return f"127.0.0.1:{self.port}"


def _require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if not path:
        raise BrokerError(f"'{name}' was not found on PATH; {hint}")
    return path


def fetch_jars(dist_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """Collect the broker's jars into ``dist_dir/version`` (once) and return that folder."""
    target = Path(dist_dir) / version
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = _require_tool(
        "mvn", "install Maven (e.g. 'apt-get install maven') or set KAFKA_BOOTSTRAP_SERVERS"
    )
    _require_tool("java", "install a JDK 17+ (e.g. 'apt-get install openjdk-17-jre-headless')")
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(_HERE / "kafka" / "pom.xml"),
        f"-Dkafka.version={version}",
        f"-Dlog4j.version={LOG4J_VERSION}",
        DEPENDENCY_PLUGIN,
        "-DincludeScope=runtime",
        f"-DoutputDirectory={tmp}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    jars = list(tmp.glob("*.jar"))
    if proc.returncode != 0 or not any(j.name.startswith("kafka_2.13-") for j in jars):
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise BrokerError(
            f"fetching Kafka {version} from Maven Central failed (exit {proc.returncode}); "
            f"check that Maven Central is reachable. Maven said:\n{tail}"
        )
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    marker.write_text(json.dumps({"version": version, "jars": len(jars)}))
    return target


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); look at its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def running(data_dir: Path) -> BrokerInfo | None:
    """Return the broker running from ``data_dir``, if any."""
    state = Path(data_dir) / "broker.json"
    if not state.exists():
        return None
    try:
        info = json.loads(state.read_text())
    except (OSError, ValueError):
        return None
    pid = int(info.get("pid", 0))
    if pid <= 0 or not _pid_alive(pid):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"kafka.Kafka" not in cmdline.read_bytes():
        return None
    return BrokerInfo(
        pid=pid,
        port=int(info["port"]),
        controller_port=int(info["controller_port"]),
        data_dir=Path(data_dir),
        version=str(info.get("version", KAFKA_VERSION)),
    )


def _cluster_id() -> str:
    raw = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return raw if not raw.startswith("-") else "A" + raw[1:]


def _server_properties(
    data_dir: Path,
    port: int,
    cport: int,
    node_id: int = 1,
    voters: str | None = None,
    replication: int = 1,
) -> str:
    """A node's configuration; ``voters`` is the controller quorum (this node alone if None)."""
    logs = data_dir / "kraft-logs"
    min_isr = 1 if replication < 3 else 2
    return "\n".join(
        [
            "# Written by flexstream: a KRaft node (broker and controller) on 127.0.0.1.",
            "process.roles=broker,controller",
            f"node.id={node_id}",
            f"controller.quorum.voters={voters or f'{node_id}@127.0.0.1:{cport}'}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={logs}",
            "num.partitions=1",
            f"default.replication.factor={replication}",
            f"min.insync.replicas={min_isr}",
            f"offsets.topic.replication.factor={replication}",
            "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={replication}",
            f"transaction.state.log.min.isr={min_isr}",
            f"share.coordinator.state.topic.replication.factor={replication}",
            f"share.coordinator.state.topic.min.isr={min_isr}",
            "group.initial.rebalance.delay.ms=0",
            "log.cleaner.dedupe.buffer.size=4194304",
            "log.retention.check.interval.ms=60000",
            "auto.create.topics.enable=true",
            "message.max.bytes=8388608",
            "",
        ]
    )


def _java_cmd(jars: Path, data_dir: Path, heap_mb: int) -> list[str]:
    tmp = data_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    return [
        _require_tool("java", "install a JDK 17+ (e.g. 'apt-get install openjdk-17-jre-headless')"),
        f"-Xms{min(256, heap_mb)}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Xshare:auto",
        f"-Djava.io.tmpdir={tmp}",
        f"-Dkafka.logs.dir={data_dir}",
        f"-Dlog4j2.configurationFile={_HERE / 'log4j2.properties'}",
        "-cp",
        f"{jars}/*",
    ]


def _check_ports(ports: list[tuple[int, str]]) -> None:
    for p, what in ports:
        if not _port_free(p):
            raise BrokerError(
                f"the broker's {what} {p} on 127.0.0.1 is in use by another program; stop it, "
                "choose other ports (FLEXSTREAM_KAFKA_PORT, FLEXSTREAM_KAFKA_CONTROLLER_PORT) "
                "or use that cluster with KAFKA_BOOTSTRAP_SERVERS"
            )


@dataclass(frozen=True)
class _Launched:
    proc: subprocess.Popen
    info: BrokerInfo
    log_offset: int


def _launch(
    jars: Path, data_dir: Path, props_text: str, cluster_id: str, info: BrokerInfo, heap_mb: int
) -> _Launched:
    """Write the node's configuration, format its storage once, start it (without waiting)."""
    props = data_dir / "server.properties"
    formatted = (data_dir / "kraft-logs" / "meta.properties").exists()
    props.write_text(props_text)
    base = _java_cmd(jars, data_dir, heap_mb)
    if not formatted:
        fmt = subprocess.run(
            [*base, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)],
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise BrokerError(
                f"formatting the broker's storage in {data_dir} failed:\n"
                f"{(fmt.stdout + fmt.stderr)[-2000:]}"
            )
    log_path = data_dir / "server.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    console = open(data_dir / "console.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [*base, "kafka.Kafka", str(props)],
        stdout=console,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    console.close()
    (data_dir / "broker.json").write_text(
        json.dumps(
            {
                "pid": proc.pid,
                "port": info.port,
                "controller_port": info.controller_port,
                "version": info.version,
            }
        )
    )
    return _Launched(proc, replace(info, pid=proc.pid), offset)


def _wait_started(launched: list[_Launched], timeout: float) -> None:
    """Wait until every launched node logged that it started; stop them all if one fails."""
    deadline = time.monotonic() + timeout
    waiting = list(launched)
    while waiting:
        for node in list(waiting):
            d = node.info.data_dir
            if node.proc.poll() is not None:
                for other in launched:
                    stop(other.info.data_dir)
                raise BrokerError(
                    f"the broker exited with code {node.proc.returncode} while starting; see "
                    f"{d / 'console.log'} and {d / 'server.log'}:\n{_tail(d)}"
                )
            if _log_has_started(d / "server.log", node.log_offset):
                waiting.remove(node)
        if waiting and time.monotonic() > deadline:
            for other in launched:
                stop(other.info.data_dir)
            d = waiting[0].info.data_dir
            raise BrokerError(
                f"the broker did not start within {timeout:.0f} s; see {d / 'server.log'}:\n"
                f"{_tail(d)}"
            )
        time.sleep(0.1)


def start(
    data_dir: Path,
    dist_dir: Path,
    port: int = 9092,
    controller_port: int = 9093,
    version: str = KAFKA_VERSION,
    heap_mb: int = 512,
    timeout: float = 120.0,
) -> BrokerInfo:
    """Start (or reuse) the broker whose data lives in ``data_dir``; wait until it is ready."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    existing = running(data_dir)
    if existing:
        wait_ready(existing.bootstrap, timeout=timeout)
        return existing
    _check_ports([(port, "port"), (controller_port, "controller port")])
    jars = fetch_jars(Path(dist_dir), version)
    info = BrokerInfo(0, port, controller_port, data_dir, version)
    props = _server_properties(data_dir, port, controller_port)
    started = time.monotonic()
    node = _launch(jars, data_dir, props, _cluster_id(), info, heap_mb)
    _wait_started([node], timeout)
    wait_ready(node.info.bootstrap, timeout=max(5.0, timeout - (time.monotonic() - started)))
    return node.info


@dataclass(frozen=True)
class ClusterInfo:
    """The running nodes of a local cluster (all of them, or those still up)."""

    brokers: tuple[BrokerInfo, ...]
    data_dir: Path

    @property
    def bootstrap(self) -> str:
        """The bootstrap addresses clients connect to (every running node)."""
        return ",".join(b.bootstrap for b in self.brokers)


def node_dirs(cluster_dir: Path, nodes: int) -> list[Path]:
    """The data folders of a cluster's ``nodes`` nodes."""
    return [Path(cluster_dir) / f"node-{i}" for i in range(1, nodes + 1)]


def running_cluster(cluster_dir: Path) -> ClusterInfo | None:
    """The nodes of the cluster in ``cluster_dir`` that are running, or None when none is."""
    cluster_dir = Path(cluster_dir)
    state = cluster_dir / "cluster.json"
    if not state.exists():
        return None
    try:
        nodes = int(json.loads(state.read_text())["nodes"])
    except (OSError, ValueError, KeyError):
        return None
    up = tuple(b for d in node_dirs(cluster_dir, nodes) if (b := running(d)) is not None)
    return ClusterInfo(up, cluster_dir) if up else None


def start_cluster(
    cluster_dir: Path,
    dist_dir: Path,
    nodes: int = 3,
    port: int = 9092,
    controller_port: int = 9093,
    ports: list[tuple[int, int]] | None = None,
    version: str = KAFKA_VERSION,
    heap_mb: int = 512,
    timeout: float = 180.0,
) -> ClusterInfo:
    """Start (or complete) a local cluster of ``nodes`` KRaft nodes; wait until all serve.

    Node ``i`` (from 0) listens on ``port + 2i`` and its controller on
    ``controller_port + 2i``, unless ``ports`` gives (port, controller port)
    per node. Replication is three (fewer nodes: all of them), writes need two
    replicas in sync. Nodes already running are kept; stopped ones start again
    with their data. The cluster's size is fixed when it is first formatted.
    """
    if nodes < 1:
        raise BrokerError(f"a cluster needs at least one node, not {nodes}")
    cluster_dir = Path(cluster_dir).resolve()
    cluster_dir.mkdir(parents=True, exist_ok=True)
    state = cluster_dir / "cluster.json"
    if state.exists():
        saved = json.loads(state.read_text())
        if int(saved["nodes"]) != nodes:
            raise BrokerError(
                f"the cluster in {cluster_dir} has {saved['nodes']} nodes, not {nodes}; start it "
                f"with {saved['nodes']}, or delete that folder for a new cluster"
            )
        cluster_id, ports = saved["cluster_id"], [tuple(p) for p in saved["ports"]]
    else:
        cluster_id = _cluster_id()
        ports = ports or [(port + 2 * i, controller_port + 2 * i) for i in range(nodes)]
        if len(ports) != nodes:
            raise BrokerError(f"give {nodes} (port, controller port) pairs, not {len(ports)}")
    voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
    jars = fetch_jars(Path(dist_dir), version)
    launched = []
    for i, (d, (p, c)) in enumerate(zip(node_dirs(cluster_dir, nodes), ports, strict=True)):
        d.mkdir(exist_ok=True)
        if running(d):
            continue
        _check_ports([(p, f"node {i + 1} port"), (c, f"node {i + 1} controller port")])
        props = _server_properties(d, p, c, i + 1, voters, min(3, nodes))
        info = BrokerInfo(0, p, c, d, version)
        launched.append(_launch(jars, d, props, cluster_id, info, heap_mb))
    state.write_text(
        json.dumps({"nodes": nodes, "cluster_id": cluster_id, "ports": [list(p) for p in ports]})
    )
    started = time.monotonic()
    _wait_started(launched, timeout)
    cluster = running_cluster(cluster_dir)
    assert cluster is not None
    left = max(5.0, timeout - (time.monotonic() - started))
    wait_ready(cluster.bootstrap, timeout=left, brokers=nodes)
    return cluster


def stop_cluster(cluster_dir: Path, grace: float = 15.0) -> int:
    """Stop every running node of the cluster in ``cluster_dir``; how many were running."""
    cluster = running_cluster(Path(cluster_dir))
    if cluster is None:
        return 0
    return sum(stop(b.data_dir, grace) for b in cluster.brokers)


def _log_has_started(log_path: Path, offset: int) -> bool:
    if not log_path.exists():
        return False
    with open(log_path, "rb") as f:
        f.seek(offset)
        return _STARTED_LINE.encode() in f.read()


def _tail(data_dir: Path, n: int = 20) -> str:
    out = []
    for name in ("console.log", "server.log"):
        p = data_dir / name
        if p.exists():
            lines = p.read_text(errors="replace").splitlines()[-n:]
            out.extend(lines)
    return "\n".join(out)


def wait_ready(
    bootstrap: str, timeout: float = 30.0, config: dict | None = None, brokers: int = 1
) -> None:
    """Wait for a metadata round trip to ``bootstrap`` that lists ``brokers`` brokers."""
    from confluent_kafka.admin import AdminClient

    conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000}
    conf.update(config or {})
    admin = AdminClient(conf)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if len(md.brokers) >= brokers:
                return
        except Exception as exc:  # noqa: BLE001 - confluent raises KafkaException variants
            last = exc
        time.sleep(0.2)
    raise BrokerError(f"no metadata from Kafka at {bootstrap} within {timeout:.0f} s ({last})")


def stop(data_dir: Path, grace: float = 15.0) -> bool:
    """Stop the broker of ``data_dir`` (SIGTERM, SIGKILL after ``grace`` s); False if none ran."""
    info = running(Path(data_dir))
    if info is None:
        return False
    try:
        os.killpg(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _pid_alive(info.pid):
            break
        _reap(info.pid)
        time.sleep(0.1)
    else:
        try:
            os.killpg(info.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _reap(info.pid)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
