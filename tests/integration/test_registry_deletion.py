"""Deleting sensors and assets: tombstones on the registry, refusals, history kept or purged."""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
import yaml

from schemas import serde
from streams import runtime
from streams.sql import auth
from tests.integration.conftest import batch, wait_for
from tests.integration.test_cli import FLEXSTREAM, run

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 1, tzinfo=UTC)
BELIEFS = "SELECT count() FROM flexstream.beliefs FINAL WHERE sensor = {!r}"
MIRRORED = "SELECT count() FROM flexstream.{} FINAL WHERE name = {!r}"


def _post_purge(port: int, sensor: str, headers: dict[str, str]) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/admin/purge/",
        data=json.dumps({"sensor": sensor}).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_deleted_sensor_and_asset_are_forgotten_and_history_stays_unless_purged(fs, tmp_path):
    sensors = tmp_path / "registered.yaml"  # not the worker's sensors file
    sensors.write_text(
        yaml.safe_dump(
            [
                {"name": "heat", "unit": "kW", "event_resolution": "PT15M"},
                {"name": "spare", "unit": "kW", "event_resolution": "PT15M"},
            ]
        )
    )
    assert run(["add", "sensor", str(sensors)], fs.env).returncode == 0
    boiler = tmp_path / "boiler.yaml"
    boiler.write_text(
        yaml.safe_dump(
            {
                "name": "boiler",
                "flex-model": {
                    "sensor": "heat",
                    "soc-at-start": "5 kWh",
                    "soc-max": "10 kWh",
                    "power-capacity": "5 kW",
                },
            }
        )
    )
    out = run(["add", "asset", str(boiler)], fs.env)
    assert out.returncode == 0, out.stderr
    worker = fs.start_worker()
    fs.publish(
        "readings.meter",
        [("heat", batch("heat", T0, [1.0, 2.0])), ("spare", batch("spare", T0, [3.0, 4.0]))],
    )
    wait_for(lambda: fs.sql(BELIEFS.format("heat")) == [[2]], what="heat beliefs")
    wait_for(lambda: fs.sql(BELIEFS.format("spare")) == [[2]], what="spare beliefs")

    # Still referenced by the asset: refused, naming it.
    out = run(["delete", "sensor", "heat", "--yes"], fs.env)
    assert out.returncode == 2
    assert "referenced by asset 'boiler'; delete or change it first" in out.stderr
    assert run(["delete", "sensor", "ghost", "--yes"], fs.env).returncode == 2

    out = run(["delete", "asset", "boiler", "--yes"], fs.env)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: fs.sql(MIRRORED.format("assets", "boiler")) == [[0]], what="asset unmirrored")

    # Without a terminal and without --yes nothing is deleted.
    asked = subprocess.run(
        [*FLEXSTREAM, "delete", "sensor", "heat"],
        env=fs.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert asked.returncode == 2 and "--yes" in asked.stderr
    # A sensor of the worker's sensors file is not the registry's to delete or purge.
    out = run(["delete", "sensor", "pv", "--purge", "--yes"], fs.env)
    assert out.returncode == 2 and "not registered" in out.stderr

    out = run(["delete", "sensor", "heat", "--yes"], fs.env)
    assert out.returncode == 0, out.stderr
    assert "deleted sensor heat (its beliefs stay" in out.stdout
    shown = json.loads(run(["show", "sensors", "--format", "json"], fs.env).stdout)
    assert "heat" not in {s["name"] for s in shown} and "spare" in {s["name"] for s in shown}
    wait_for(lambda: fs.sql(MIRRORED.format("sensors", "heat")) == [[0]], what="sensor unmirrored")

    # A worker started afterwards does not know it: its reading is dead-lettered.
    runtime.stop_process(worker, timeout=15)
    fs.start_worker()
    late = batch("heat", T0.replace(hour=1), [5.0])
    fs.publish("readings.meter", [("heat", late)])
    dead = fs.consume_all("dead-letters", expect=1, timeout=120)
    letters = [serde.decode(m.value())[1] for m in dead]
    assert [(d["error"], d["value_sha256"]) for d in letters] == [
        ("unknown-sensor", hashlib.sha256(late).hexdigest())
    ]
    assert fs.sql(BELIEFS.format("heat")) == [[2]]  # the history stays
    assert fs.sql(MIRRORED.format("sensors", "heat")) == [[0]]

    # While a worker holds the store, it purges (with the admin token, not the readers').
    readers = {"Authorization": f"Bearer {auth.read_token(fs.data_dir)}"}
    assert _post_purge(fs.web_port, "spare", readers) == 401
    admin = {"Authorization": f"Bearer {auth.read_token(fs.data_dir, auth.ADMIN_TOKEN_FILE)}"}
    assert _post_purge(fs.web_port, "spare", admin) == 409  # still registered
    assert _post_purge(fs.web_port, "spare", {**admin, "Origin": "http://x"}) == 403
    fs.publish("readings.meter", [("spare", batch("spare", T0.replace(hour=2), [6.0]))])
    wait_for(lambda: fs.sql(BELIEFS.format("spare")) == [[3]], what="spare beliefs")
    out = run(["delete", "sensor", "spare", "--purge", "--yes"], fs.env)
    assert out.returncode == 0, out.stderr
    assert "deleted sensor spare and its 3 beliefs" in out.stdout
    assert fs.sql(BELIEFS.format("spare")) == [[0]]
    wait_for(lambda: fs.sql(MIRRORED.format("sensors", "spare")) == [[0]], what="unmirrored")
    assert fs.sql(BELIEFS.format("heat")) == [[2]]

    # Without a worker, --purge on a sensor deleted earlier purges its kept beliefs.
    runtime.stop_process(fs.workers[-1], timeout=15)
    out = run(["delete", "sensor", "heat", "--purge", "--yes"], fs.env)
    assert out.returncode == 0, out.stderr
    assert "sensor heat is not registered; purged its 2 beliefs" in out.stdout
    assert fs.sql(BELIEFS.format("heat")) == [[0]]
