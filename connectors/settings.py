"""Settings, one pydantic-settings class per component.

Each setting has an environment variable, a default and a docstring; secrets
are ``SecretStr`` and print masked. Settings are loaded once at the entry point
(the CLI) and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class PathSettings(BaseSettings):
    """Where FlexStream keeps its data."""

    model_config = SettingsConfigDict(env_prefix="FLEXSTREAM_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Data folder: broker data, the embedded ClickHouse engine, worker state.",
    )
    kafka_dist_dir: Path | None = Field(
        default=None,
        description="Where the broker's jars are collected (default: <data_dir>/kafka-dist).",
    )

    @property
    def root(self) -> Path:
        """The data folder as an absolute path."""
        return self.data_dir.resolve()

    @property
    def dist(self) -> Path:
        """The folder holding one sub-folder of jars per Kafka version."""
        return (self.kafka_dist_dir or self.root / "kafka-dist").resolve()


class KafkaSettings(BaseSettings):
    """The Kafka cluster: the local broker by default, any cluster via KAFKA_BOOTSTRAP_SERVERS."""

    model_config = SettingsConfigDict(extra="ignore")

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias="KAFKA_BOOTSTRAP_SERVERS",
        description="host:port[,host:port]; when set, no local broker is started.",
    )
    security_protocol: str = Field(
        default="PLAINTEXT",
        validation_alias="KAFKA_SECURITY_PROTOCOL",
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    sasl_mechanism: str | None = Field(
        default=None,
        validation_alias="KAFKA_SASL_MECHANISM",
        description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    )
    sasl_username: str | None = Field(default=None, validation_alias="KAFKA_SASL_USERNAME")
    sasl_password: SecretStr | None = Field(default=None, validation_alias="KAFKA_SASL_PASSWORD")
    ssl_cafile: Path | None = Field(
        default=None,
        validation_alias="KAFKA_SSL_CAFILE",
        description="CA bundle to verify the brokers' certificates.",
    )
    topic_prefix: str = Field(
        default="flexstream.",
        validation_alias="FLEXSTREAM_TOPIC_PREFIX",
        description="Prefix of every topic name and of the worker's consumer group.",
    )
    local_port: int = Field(
        default=9092, validation_alias="FLEXSTREAM_KAFKA_PORT", description="Local broker port."
    )
    local_controller_port: int = Field(
        default=9093,
        validation_alias="FLEXSTREAM_KAFKA_CONTROLLER_PORT",
        description="Local broker's KRaft controller port.",
    )
    local_heap_mb: int = Field(
        default=512, validation_alias="FLEXSTREAM_KAFKA_HEAP_MB", description="Local broker heap."
    )
    local_brokers: int = Field(
        default=1,
        ge=1,
        le=9,
        validation_alias="FLEXSTREAM_KAFKA_BROKERS",
        description="Nodes of the local Kafka: 1, or a KRaft cluster (3: replication 3, "
        "two in sync) with node i on FLEXSTREAM_KAFKA_PORT + 2i.",
    )

    @property
    def external(self) -> bool:
        """True when an external cluster is configured."""
        return bool(self.bootstrap_servers)

    def topic(self, name: str) -> str:
        """Full name of the project topic ``name`` (e.g. ``readings.meter``)."""
        return f"{self.topic_prefix}{name}"

    def consumer_group(self, name: str) -> str:
        """The worker's consumer group for ``name`` (``readings``, ``reports``)."""
        return f"{self.topic('worker')}.{name}"

    def client_config(self, bootstrap: str) -> dict[str, str]:
        """confluent-kafka (librdkafka) configuration for ``bootstrap`` with security settings."""
        conf = {"bootstrap.servers": bootstrap, "security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_cafile:
            conf["ssl.ca.location"] = str(self.ssl_cafile)
        return conf


class ClickHouseSettings(BaseSettings):
    """The history store: the embedded engine by default, any server via CLICKHOUSE_URL."""

    model_config = SettingsConfigDict(extra="ignore")

    url: SecretStr | None = Field(
        default=None,
        validation_alias="CLICKHOUSE_URL",
        description="http(s)://user:password@host:port; unset: the embedded engine.",
    )
    database: str = Field(
        default="flexstream",
        validation_alias="CLICKHOUSE_DATABASE",
        description="Database holding the project's tables.",
    )


class WorkerSettings(BaseSettings):
    """The streaming worker."""

    model_config = SettingsConfigDict(env_prefix="FLEXSTREAM_WORKER_", extra="ignore")

    batch_max: int = Field(default=2000, description="Messages per ClickHouse write at most.")
    batch_within: float = Field(
        default=0.05,
        description="Seconds to wait to fill a batch (under load batches fill sooner; this "
        "bounds the latency a reading adds when the stream is quiet).",
    )
    commit_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between commits of the offsets of faust's own streams (schedule "
        "requests); readings and report results commit after every stored batch.",
    )
    session_timeout: float = Field(
        default=10.0,
        ge=6,
        description="Seconds after which Kafka moves a silent worker's partitions to the "
        "others (a killed worker's work resumes elsewhere after this).",
    )
    heartbeat_interval: float = Field(
        default=2.0,
        gt=0,
        description="Seconds between heartbeats to the consumer group (well under "
        "session_timeout).",
    )
    table_partitions: int = Field(
        default=3,
        ge=1,
        description="Partitions of the topics the worker creates for itself (changelogs of "
        "tables not tied to the readings topics).",
    )
    web_port: int = Field(
        default=6066, description="Port of the worker's web endpoint (127.0.0.1) for SQL."
    )
    clickhouse_port: int = Field(
        default=8124,
        ge=0,
        le=65535,
        description="Port of the worker's read-only ClickHouse HTTP interface (127.0.0.1), "
        "for clickhouse-connect, Grafana and other ClickHouse clients; 0 turns it off.",
    )
    sql_threads: int = Field(
        default=2,
        description="Analysts' queries that may run at once, each on a read-only client and "
        "thread of its own, apart from the worker's writes.",
    )
    sql_time_limit: float = Field(
        default=30.0, description="Seconds one analyst query may run; the engine stops it after."
    )
    sql_max_result_rows: int = Field(
        default=1_000_000, description="Rows one analyst query may return; more is an error."
    )
    sql_max_result_bytes: int = Field(
        default=500_000_000,
        description="Bytes (uncompressed, in memory) one analyst query may return; more is an "
        "error.",
    )
    sql_max_threads: int = Field(
        default=2,
        description="Engine threads one analyst query may use (0: the engine's default, every "
        "core).",
    )
    max_batch_values: int = Field(default=50_000, description="Values per message at most.")
    dead_letter_max_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Original bytes a dead letter keeps at most; above, the first bytes, the "
        "size and the SHA-256 (must stay well under the broker's message size limit).",
    )
    max_belief_time_ahead: timedelta = Field(
        default=timedelta(minutes=5),
        description="How far a belief time may lie after the worker's clock (ISO 8601 or s).",
    )
    state_past: timedelta = Field(
        default=timedelta(days=7), description="How far back the belief state keeps events."
    )
    state_future: timedelta = Field(
        default=timedelta(days=7), description="How far ahead the belief state keeps events."
    )
    solver_time_limit: float = Field(
        default=20.0, description="Seconds the solver may spend on one schedule request."
    )
    sensors_file: Path | None = Field(
        default=None, description="YAML/JSON file of sensors to register at start."
    )
    site_partitions: int = Field(
        default=0,
        ge=0,
        description="Scale-out of the schedule role: 0 keeps one scheduling worker (the belief "
        "state keyed by sensor, schedule-requests in one partition); P >= 1 keys requests and "
        "the belief state by site, over P partitions of schedule-requests and beliefs-by-site, "
        "so up to P scheduling workers share the sites. Partitions are only ever added: "
        "every worker and client of a deployment uses the same value.",
    )
    shared_sensor_sites: int = Field(
        default=10,
        ge=1,
        description="With site_partitions: a sensor referenced by more than this many sites "
        "(besides the sensors of flex-context price fields) is shared: held once by every "
        "scheduling worker instead of once per site.",
    )
    roles: str = Field(
        default="ingest,schedule,report,forecast",
        description="The worker's share of the work, a comma-separated list of ingest "
        "(readings and every other write into ClickHouse), schedule (requests and the belief "
        "state), report (streaming reports) and forecast (forecasters); checked when the "
        "worker starts (flexstream worker --roles).",
    )


class Settings(BaseSettings):
    """All settings, loaded once at the entry point."""

    paths: PathSettings = Field(default_factory=PathSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
