"""HiGHS in a shared process: FlexStream's solves and other HiGHS users live side by side.

HiGHS's thread scheduler is process-wide and sized by the first solve that
starts it, so each case runs in a fresh interpreter (a subprocess): one with
another HiGHS model solved first at default settings, one with FlexStream first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from solvers.highs_backend import OPTIONS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

#: A plain highspy model (max x + y, x + y <= 5) at the given ``threads`` (None: default).
PLAIN = textwrap.dedent(
    """
    import highspy

    def plain(threads=None):
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        if threads is not None:
            h.setOptionValue("threads", threads)
        h.addVar(0.0, 10.0)
        h.addVar(0.0, 10.0)
        h.changeColCost(0, -1.0)
        h.changeColCost(1, -1.0)
        h.addRow(-highspy.kHighsInf, 5.0, 2, [0, 1], [1.0, 1.0])
        h.run()
        return str(h.getModelStatus()).rsplit(".", 1)[-1]

    def flexstream():
        from solvers import schedule
        from solvers.examples import battery_problem, ev_fleet_problem

        return [
            schedule(battery_problem(96)).status.value,
            schedule(ev_fleet_problem(2, 96)).status.value,
        ]
    """
)


def run(body: str) -> dict:
    """Run ``PLAIN`` plus ``body`` in a fresh interpreter; return what it printed as JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PLAIN + textwrap.dedent(body)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_no_process_wide_thread_option():
    assert "threads" not in OPTIONS


def test_solves_after_another_highs_model_at_default_threads():
    got = run(
        """
        import json
        first = plain()
        print(json.dumps({"first": first, "ours": flexstream()}))
        """
    )
    assert got == {"first": "kOptimal", "ours": ["optimal", "optimal"]}


@pytest.mark.parametrize("threads", [1, 2])
def test_solves_after_another_highs_model_with_its_own_threads(threads):
    got = run(
        f"""
        import json
        first = plain({threads})
        print(json.dumps({{"first": first, "ours": flexstream()}}))
        """
    )
    assert got == {"first": "kOptimal", "ours": ["optimal", "optimal"]}


def test_leaves_other_users_threading_as_a_default_user_would():
    # Whatever the machine's default thread count, a later user asking for any count
    # fares exactly as it does after a default HiGHS user: FlexStream pins nothing.
    counts = [1, 2, os.cpu_count() or 1]
    after_default = run(
        f"""
        import json
        plain()
        print(json.dumps({{str(k): plain(k) for k in {counts}}}))
        """
    )
    after_ours = run(
        f"""
        import json
        assert flexstream() == ["optimal", "optimal"]
        print(json.dumps({{str(k): plain(k) for k in {counts}}}))
        """
    )
    assert after_ours == after_default
    assert after_ours[str(os.cpu_count() or 1)] == "kOptimal"
