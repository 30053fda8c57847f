"""imgclf.stats against SciPy: the summary of a set of runs and the paired difference of two methods."""

import math

import numpy as np
import pytest
from imgclf import stats
from scipy import stats as st

pytestmark = pytest.mark.portable  # no TensorFlow here: runs under every Keras backend

RUNS = [0.9712, 0.9650, 0.9731, 0.9688, 0.9701]


def test_summary_is_the_sample_sd_and_the_t_interval_of_the_mean():
    s = stats.summarize(RUNS)
    a = np.asarray(RUNS)
    assert s.n == 5 and s.mean == pytest.approx(a.mean())
    assert s.sd == pytest.approx(a.std(ddof=1))  # the sample sd: ddof = 0 is 11 % smaller for n = 5
    lo, hi = st.t.interval(0.95, len(a) - 1, loc=a.mean(), scale=st.sem(a))
    assert (s.lo, s.hi) == (pytest.approx(lo), pytest.approx(hi))


def test_one_run_has_no_spread_and_missing_runs_are_refused():
    s = stats.summarize([0.97])
    assert s.n == 1 and s.mean == 0.97 and math.isnan(s.sd) and math.isnan(s.lo)
    assert s.text() == "0.9700 (n=1)"
    with pytest.raises(ValueError):
        stats.summarize([0.97, float("nan")])
    with pytest.raises(ValueError):
        stats.summarize([])


def test_summary_text_and_numbers():
    s = stats.summarize([0.96, 0.98])
    assert str(s) == s.text() == "0.9700 ± 0.0141 (n=2)"
    d = s.as_dict()
    assert d["mean"] == pytest.approx(0.97) and d["n"] == 2 and len(d["ci95"]) == 2


@pytest.mark.parametrize("b_shift", [0.0, 0.004, 0.02, -0.02])
def test_paired_difference_matches_scipy_ttest_rel(b_shift):
    rng = np.random.default_rng(1)
    a = 0.95 + 0.01 * rng.standard_normal(6)
    b = a - b_shift + 0.005 * rng.standard_normal(6)
    p = stats.paired(a, b, ("A", "B"))
    ref = st.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert p.diff.mean == pytest.approx(np.mean(a - b))
    assert (p.diff.lo, p.diff.hi) == (pytest.approx(ci.low), pytest.approx(ci.high))
    # the verdict is the test's: "tie" exactly when p >= 0.05
    expected = "tie" if ref.pvalue >= 0.05 else ("beats" if ref.statistic > 0 else "below")
    assert p.verdict() == expected


def test_paired_verdicts_and_direction():
    a, b = [0.97, 0.972, 0.968], [0.95, 0.953, 0.949]
    assert stats.paired(a, b).verdict() == "beats"
    assert stats.paired(b, a).verdict() == "below"
    assert stats.paired(b, a).verdict(higher_is_better=False) == "beats"  # a loss: lower is better
    assert stats.paired([0.97, 0.96, 0.98], [0.95, 0.955, 0.97]).verdict() == "tie"
    assert stats.paired([0.99], [0.5]).verdict() == "tie"  # one pair is not a difference
    with pytest.raises(ValueError, match="same seeds"):
        stats.paired([0.9, 0.8], [0.9])


def test_float32_dust_is_no_difference():
    acc = np.array([0.24, 0.26, 0.25])
    assert stats.paired(acc.astype(np.float32).astype(float) - 5e-9, acc).verdict() == "tie"
