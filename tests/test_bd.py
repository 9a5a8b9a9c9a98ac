"""Bjontegaard deltas against known answers."""

import numpy as np
import pytest

from napari_cnnjpeg.eval.bd import bd_psnr, bd_rate

RATES = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
LOG_LINEAR = 30 + 5 * np.log(RATES)  # PSNR linear in log-rate: every fit is exact
CURVED = np.array([26.1, 29.0, 32.4, 35.9, 39.0])  # a measured-looking curve


def _classic(rate_a, dist_a, rate_b, dist_b, rate: bool) -> float:
    """The VCEG-M33 formula as the usual scripts write it (np.polyfit, cubic)."""
    la, lb = np.log(rate_a), np.log(rate_b)
    xa, ya, xb, yb = (dist_a, la, dist_b, lb) if rate else (la, dist_a, lb, dist_b)
    lo, hi = max(xa.min(), xb.min()), min(xa.max(), xb.max())
    ia, ib = np.polyint(np.polyfit(xa, ya, 3)), np.polyint(np.polyfit(xb, yb, 3))
    gap = ((np.polyval(ib, hi) - np.polyval(ib, lo)) - (np.polyval(ia, hi) - np.polyval(ia, lo))) / (hi - lo)
    return (np.exp(gap) - 1) * 100 if rate else gap


def test_rate_scaled_by_known_factor():
    assert bd_rate(RATES, LOG_LINEAR, 0.8 * RATES, LOG_LINEAR) == pytest.approx(-20.0, abs=1e-6)
    assert bd_rate(RATES, LOG_LINEAR, 1.25 * RATES, LOG_LINEAR) == pytest.approx(25.0, abs=1e-6)
    # the same shift seen as quality: 5 dB per unit of log-rate
    assert bd_psnr(RATES, LOG_LINEAR, 0.8 * RATES, LOG_LINEAR) == pytest.approx(-5 * np.log(0.8), abs=1e-9)


def test_psnr_shifted_by_one_db():
    assert bd_psnr(RATES, CURVED, RATES, CURVED + 1.0) == pytest.approx(1.0, abs=1e-9)
    assert bd_psnr(RATES, CURVED + 1.0, RATES, CURVED) == pytest.approx(-1.0, abs=1e-9)


def test_identical_curves_give_zero():
    assert bd_rate(RATES, CURVED, RATES, CURVED) == pytest.approx(0.0, abs=1e-9)
    assert bd_psnr(RATES, CURVED, RATES, CURVED) == pytest.approx(0.0, abs=1e-9)


def test_matches_the_classic_formula():
    rate_b = np.array([0.2, 0.45, 0.8, 1.7, 3.3])
    dist_b = np.array([26.5, 29.8, 32.6, 36.3, 39.2])
    expected_rate = _classic(RATES, CURVED, rate_b, dist_b, rate=True)
    expected_psnr = _classic(RATES, CURVED, rate_b, dist_b, rate=False)
    assert bd_rate(RATES, CURVED, rate_b, dist_b) == pytest.approx(expected_rate, rel=1e-9)
    assert bd_psnr(RATES, CURVED, rate_b, dist_b) == pytest.approx(expected_psnr, rel=1e-9)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_fewer_points_lower_the_degree(n):
    r, d = RATES[:n], LOG_LINEAR[:n]
    assert bd_rate(r, d, 0.8 * r, d) == pytest.approx(-20.0, abs=1e-6)
    assert bd_psnr(r, d, r, d + 1) == pytest.approx(1.0, abs=1e-9)


def test_no_answer_is_nan():
    assert np.isnan(bd_rate(RATES[:1], LOG_LINEAR[:1], RATES, LOG_LINEAR))  # one point
    assert np.isnan(bd_psnr(RATES[:2], LOG_LINEAR[:2], RATES[3:], LOG_LINEAR[3:]))  # rates apart
    assert np.isnan(bd_rate(RATES, LOG_LINEAR, RATES, LOG_LINEAR + 50))  # qualities apart


def test_non_finite_points_are_left_out():
    d = np.append(LOG_LINEAR, np.inf)  # a lossless point
    r = np.append(RATES, 8.0)
    assert bd_rate(r, d, 0.8 * r, d) == pytest.approx(-20.0, abs=1e-6)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        bd_rate(RATES, LOG_LINEAR[:3], RATES, LOG_LINEAR)
