"""Paired differences over seeds and their t interval, against cases computed by hand."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from bench import stats


def test_t_interval_of_a_textbook_case_computed_by_hand():
    # differences 1..5: mean 3, sd = sqrt(2.5), se = sqrt(0.5); t(0.975, 4) = 2.776445 (tables)
    iv = stats.mean_interval([1, 2, 3, 4, 5])
    half = 2.776445 * math.sqrt(0.5)
    assert (iv.mean, iv.n) == (3, 5)
    assert iv.low == pytest.approx(3 - half, abs=1e-5) and iv.high == pytest.approx(3 + half,
                                                                                   abs=1e-5)
    assert iv.text() == "+3.0 [+1.0, +5.0] (5)" and iv.excludes_zero


def test_paired_interval_is_scipys_paired_t_interval_on_the_common_seeds():
    a = {0: 58.1, 1: 57.6, 2: 58.9, 3: 57.0, 9: 99.0}  # seed 9 has no partner: left out
    b = {0: 45.4, 1: 46.0, 2: 44.8, 3: 45.9, 4: 10.0}
    iv = stats.paired(a, b)
    ref = scipy_stats.ttest_rel([58.1, 57.6, 58.9, 57.0],
                                [45.4, 46.0, 44.8, 45.9]).confidence_interval(0.95)
    assert iv.n == 4
    assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high))


def test_an_interval_that_straddles_zero_does_not_exclude_it():
    iv = stats.paired({0: 1.0, 1: -1.0, 2: 0.5}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert iv.low < 0 < iv.high and not iv.excludes_zero
    neg = stats.paired({0: 1.0, 1: 1.2, 2: 1.1}, {0: 2.0, 1: 2.1, 2: 2.2})
    assert neg.high < 0 and neg.excludes_zero


def test_fewer_than_three_pairs_cannot_judge_and_no_pairs_give_none():
    # two equal differences: a t interval would be [-0.7, -0.7], a certainty 2 seeds cannot give
    iv = stats.paired({0: 1.0, 1: 2.0}, {0: 1.7, 1: 2.7})
    assert (iv.low, iv.high, iv.excludes_zero) == (None, None, False)
    assert iv.text() == "-0.7 (n=2, cannot judge)"
    assert stats.paired({0: 1.0}, {1: 1.0}) is None


def test_welch_interval_is_scipys_welch_interval():
    a, b = [50.0, 52.0, 49.0, 51.5], [47.0, 44.0, 48.5, 45.0, 46.0]
    iv = stats.welch(b, a)
    ref = scipy_stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high))
    assert stats.welch([1.0, 2.0], a).low is None  # n = 2 on one side


def test_detectable_difference_has_ninety_percent_power_by_simulation():
    import numpy as np

    iv = stats.mean_interval([0.0, 1.0, -1.0, 0.5, -0.5])  # sd as the true sigma below
    mdd = stats.detectable(iv)
    sigma = iv.se * math.sqrt(iv.n)
    rng = np.random.default_rng(0)
    draws = rng.normal(mdd, sigma, size=(20000, iv.n))
    t = draws.mean(1) / (draws.std(1, ddof=1) / math.sqrt(iv.n))
    found = np.mean(np.abs(t) > scipy_stats.t.ppf(0.975, iv.n - 1))
    assert found == pytest.approx(0.9, abs=0.01)
    # a larger difference would be found more often: the MDD is the smallest such
    assert stats.detectable(stats.mean_interval([0.0, 2.0, -2.0, 1.0, -1.0])) > mdd
