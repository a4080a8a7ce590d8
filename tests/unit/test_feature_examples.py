"""The shared feature cases (``solvers.feature_examples``) solve to their hand-derived outcomes.

The benchmark against FlexMeasures reuses these builders; this keeps them the
same problems as the unit tests they restate.
"""

from __future__ import annotations

import numpy as np
import pytest

from solvers import Status, schedule
from solvers.feature_examples import HAND_DERIVED, FeatureCase, seeded_peak_site


@pytest.mark.parametrize("case", HAND_DERIVED, ids=lambda c: c.name)
def test_each_case_solves_to_its_hand_derived_outcome(case: FeatureCase) -> None:
    result = schedule(case.build())
    assert result.status is Status(case.status), result.message
    if case.total is not None:
        assert result.costs.total == pytest.approx(case.total, abs=1e-6)


def test_a_seeded_site_is_the_same_for_the_same_seed_and_uses_every_feature() -> None:
    a, b = seeded_peak_site(4, n=96), seeded_peak_site(4, n=96)
    np.testing.assert_array_equal(a.inflexible_power, b.inflexible_power)
    assert a.devices[0].soc_at_start == b.devices[0].soc_at_start
    result = schedule(a)
    assert result.status is Status.RELAXED, result.message
    costs = result.costs
    assert costs.breaches > 0 and costs.peak_consumption > 0
    assert set(costs.commitments) == {"day-ahead"}
