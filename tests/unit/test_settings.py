"""Kafka settings from the environment: SASL, masked secrets, client config, topic prefix."""

from __future__ import annotations

import pytest

from connectors.settings import KafkaSettings

_VARS = [
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
    "FLEXSTREAM_TOPIC_PREFIX",
]
SECRET = "s3cr3t-Pa55"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_a_local_plaintext_broker():
    s = KafkaSettings()
    assert s.bootstrap_servers is None and not s.external
    assert s.client_config("localhost:9092") == {
        "bootstrap.servers": "localhost:9092",
        "security.protocol": "PLAINTEXT",
    }
    assert s.topic("readings.meter") == "flexstream.readings.meter"


def test_external_cluster_with_sasl_from_env(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "b1:9093,b2:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("KAFKA_SSL_CAFILE", "/etc/ca.pem")
    s = KafkaSettings()
    assert s.external
    assert s.client_config(s.bootstrap_servers) == {
        "bootstrap.servers": "b1:9093,b2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": SECRET,
        "ssl.ca.location": "/etc/ca.pem",
    }


def test_password_is_masked_when_printed(monkeypatch):
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    s = KafkaSettings()
    for text in (repr(s), str(s), s.model_dump_json(), str(s.model_dump())):
        assert SECRET not in text
    assert "**********" in s.model_dump_json()
    assert s.sasl_password.get_secret_value() == SECRET


def test_only_the_sasl_settings_that_are_set_appear(monkeypatch):
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    conf = KafkaSettings().client_config("h:1")
    assert conf["sasl.mechanism"] == "PLAIN"
    assert not {"sasl.username", "sasl.password", "ssl.ca.location"} & set(conf)


def test_topic_prefix_from_env(monkeypatch):
    monkeypatch.setenv("FLEXSTREAM_TOPIC_PREFIX", "test-42.")
    s = KafkaSettings()
    assert s.topic("dead-letters") == "test-42.dead-letters"
    monkeypatch.setenv("FLEXSTREAM_TOPIC_PREFIX", "")
    assert KafkaSettings().topic("registry") == "registry"
