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
    neg = stats.paired({0: 1.0, 1: 1.2}, {0: 2.0, 1: 2.1})
    assert neg.high < 0 and neg.excludes_zero


def test_one_pair_has_no_interval_and_no_pairs_give_none():
    iv = stats.paired({0: 2.0}, {0: 1.0})
    assert (iv.low, iv.high, iv.excludes_zero, iv.text()) == (None, None, False, "+1.0 (1)")
    assert stats.paired({0: 1.0}, {1: 1.0}) is None
