"""A single-node KRaft Apache Kafka broker on 127.0.0.1, assembled from Maven Central.

The broker's jars are collected once per Kafka version by Maven's dependency
plugin (``infra/kafka/pom.xml``) into ``<dist_dir>/<version>/``; each broker has
its own data folder holding ``server.properties``, the KRaft log directory, the
server log and a ``broker.json`` with its pid and ports. Starting is idempotent:
a broker already running from the same data folder is reused.

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
from dataclasses import dataclass
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


def _server_properties(data_dir: Path, port: int, cport: int) -> str:
    logs = data_dir / "kraft-logs"
    return "\n".join(
        [
            "# Written by flexstream: single-node KRaft broker on 127.0.0.1.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{cport}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={logs}",
            "num.partitions=1",
            "default.replication.factor=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
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
    for p, what in ((port, "port"), (controller_port, "controller port")):
        if not _port_free(p):
            raise BrokerError(
                f"the broker's {what} {p} on 127.0.0.1 is in use by another program; stop it, "
                "choose other ports (FLEXSTREAM_KAFKA_PORT, FLEXSTREAM_KAFKA_CONTROLLER_PORT) "
                "or use that cluster with KAFKA_BOOTSTRAP_SERVERS"
            )
    jars = fetch_jars(Path(dist_dir), version)
    props = data_dir / "server.properties"
    formatted = (data_dir / "kraft-logs" / "meta.properties").exists()
    props.write_text(_server_properties(data_dir, port, controller_port))
    base = _java_cmd(jars, data_dir, heap_mb)
    if not formatted:
        fmt = subprocess.run(
            [*base, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props)],
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
    info = BrokerInfo(proc.pid, port, controller_port, data_dir, version)
    (data_dir / "broker.json").write_text(
        json.dumps(
            {"pid": proc.pid, "port": port, "controller_port": controller_port, "version": version}
        )
    )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BrokerError(
                f"the broker exited with code {proc.returncode} while starting; see "
                f"{data_dir / 'console.log'} and {log_path}:\n{_tail(data_dir)}"
            )
        if _log_has_started(log_path, offset):
            break
        if time.monotonic() > deadline:
            stop(data_dir)
            raise BrokerError(
                f"the broker did not start within {timeout:.0f} s; see {log_path}:\n"
                f"{_tail(data_dir)}"
            )
        time.sleep(0.1)
    wait_ready(info.bootstrap, timeout=max(5.0, deadline - time.monotonic()))
    return info


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


def wait_ready(bootstrap: str, timeout: float = 30.0, config: dict | None = None) -> None:
    """Wait for a metadata round trip to ``bootstrap`` to succeed."""
    from confluent_kafka.admin import AdminClient

    conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000}
    conf.update(config or {})
    admin = AdminClient(conf)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if md.brokers:
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
