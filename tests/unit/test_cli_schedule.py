"""The `flexstream schedule` contract: JSON on stdout, exit codes, messages on stderr."""

import json

import pytest
from click.testing import CliRunner

from streams.cli.schedule import schedule

START = "2024-05-01T00:00+00:00"
FM = [
    {
        "sensor": "bat",
        "soc-at-start": "10 kWh",
        "soc-max": "40 kWh",
        "power-capacity": "10 kW",
        "soc-targets": [{"datetime": "2024-05-01T04:00+00:00", "value": "30 kWh"}],
    },
    {"sensor": "wash", "power": "5 kW", "duration": "PT1H"},
]
CTX = {
    "consumption-price": [
        {"start": START, "duration": "PT2H", "value": "50 EUR/MWh"},
        {"start": "2024-05-01T02:00+00:00", "duration": "PT2H", "value": "150 EUR/MWh"},
    ]
}


def write(tmp_path, fm, ctx):
    a, b = tmp_path / "fm.json", tmp_path / "fc.json"
    a.write_text(json.dumps(fm))
    b.write_text(json.dumps(ctx))
    return [
        "--flex-model",
        str(a),
        "--flex-context",
        str(b),
        "--start",
        START,
        "--duration",
        "PT4H",
        "--resolution",
        "PT1H",
    ]


def invoke(args):
    return CliRunner().invoke(schedule, args)


def test_optimal_schedule_json(tmp_path):
    res = invoke(write(tmp_path, FM, CTX) + ["--unit", "MW"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "optimal" and out["unit"] == "MW" and out["resolution"] == "PT1H"
    assert [s["sensor"] for s in out["schedules"]] == ["bat", "wash"]
    bat = out["schedules"][0]
    assert len(bat["values"]) == 4 and len(bat["state-of-charge"]) == 5
    assert bat["state-of-charge"][-1] == pytest.approx(0.03)  # MWh
    assert "state-of-charge" not in out["schedules"][1]
    assert out["costs"]["currency"] == "EUR" and out["breaches"] == []
    assert out["costs"]["total"] == pytest.approx(20 * 0.05 + 5 * 0.05)


def test_infeasible_exit_code_and_named_conflict(tmp_path):
    fm = [dict(FM[0], **{"power-capacity": "1 kW"})]
    res = invoke(write(tmp_path, fm, dict(CTX, **{"relax-constraints": False})))
    assert res.exit_code == 2
    out = json.loads(res.stdout)
    assert out["status"] == "infeasible" and out["schedules"] == []
    assert out["breaches"][0]["constraint"] == "soc-targets"
    assert "soc-targets" in res.stderr


def test_relaxed_exit_zero_with_breaches(tmp_path):
    fm = [dict(FM[0], **{"power-capacity": "1 kW"})]
    res = invoke(write(tmp_path, fm, dict(CTX, **{"relax-constraints": True})))
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert out["status"] == "relaxed"
    (b,) = out["breaches"]
    assert b["constraint"] == "soc-targets" and b["amount"] == pytest.approx(16.0)
    assert b["cost"] == pytest.approx(16000.0)


def test_bad_input_names_field_on_stderr(tmp_path):
    res = invoke(write(tmp_path, [dict(FM[0], **{"soc-max": "40 kW"})], CTX))
    assert res.exit_code == 2
    assert "flex-model[0].soc-max" in res.stderr
    assert json.loads(res.stdout)["status"] == "invalid"


def test_unreadable_file(tmp_path):
    args = write(tmp_path, FM, CTX)
    args[1] = str(tmp_path / "missing.json")
    res = invoke(args)
    assert res.exit_code == 2 and "--flex-model" in res.stderr
