"""How many examples a property test tries: all it asks for in CI, a share at the desk.

``FLEXSTREAM_HYPOTHESIS_PROFILE=ci`` (set by ``.ci/run``) loads the ``ci`` profile,
which runs every example a test asks for; the default ``dev`` profile runs a
quarter of them (at least 20), so the unit tier stays fast. Seeds are random in
both, so desk runs explore other examples each time; tests that fix their
examples (``derandomize=True``) run their full set in both profiles.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
PROFILE = os.environ.get("FLEXSTREAM_HYPOTHESIS_PROFILE", "dev")
settings.load_profile(PROFILE)

#: Share of the asked-for examples that the ``dev`` profile runs.
DEV_SHARE = 0.25


def examples(asked: int) -> int:
    """The number of examples to run for a test that asks for ``asked``."""
    if PROFILE == "ci":
        return asked
    return max(20, round(asked * DEV_SHARE))
