"""Bjontegaard deltas between two rate-distortion curves (VCEG-M33).

Each curve is fitted with a polynomial, distortion as a function of log-rate for
BD-PSNR and log-rate as a function of distortion for BD-rate, and the fits are
integrated over the range both curves cover. The polynomial is cubic, as in
VCEG-M33 and the usual ``bjontegaard`` implementations; a curve with fewer than
four points gets degree ``points - 1`` (a line through two points, a parabola
through three). Points with a non-finite value or a rate that is not positive
are left out. The result is NaN, not an error, when a curve has fewer than two
points left or the two curves do not overlap.
"""

from __future__ import annotations

import numpy as np

_MIN_POINTS = 2
_MAX_DEGREE = 3


def _curve(rate, dist) -> tuple[np.ndarray, np.ndarray] | None:
    """(log-rate, distortion) of the usable points, or None when too few remain."""
    rate, dist = np.asarray(rate, np.float64), np.asarray(dist, np.float64)
    if rate.shape != dist.shape or rate.ndim != 1:
        raise ValueError(f"rate and distortion must be 1-D of one length, got {rate.shape} and {dist.shape}")
    keep = np.isfinite(rate) & np.isfinite(dist) & (rate > 0)
    if keep.sum() < _MIN_POINTS:
        return None
    return np.log(rate[keep]), dist[keep]


def _mean_gap(x_a, y_a, x_b, y_b) -> float:
    """Mean of fit_b(x) - fit_a(x) over the x range both curves cover (NaN if none)."""
    lo, hi = max(x_a.min(), x_b.min()), min(x_a.max(), x_b.max())
    if not hi > lo:
        return float("nan")
    areas = []
    for x, y in ((x_a, y_a), (x_b, y_b)):
        fit = np.polynomial.Polynomial.fit(x, y, min(_MAX_DEGREE, len(x) - 1))
        integral = fit.integ()
        areas.append(integral(hi) - integral(lo))
    return float((areas[1] - areas[0]) / (hi - lo))


def bd_psnr(rate_a, dist_a, rate_b, dist_b) -> float:
    """Bjontegaard delta of distortion: mean quality gain of curve b over curve a.

    Parameters
    ----------
    rate_a, dist_a : array_like
        Reference curve: rates (any positive unit, e.g. bits per pixel) and
        distortion values (e.g. PSNR in dB), one per point.
    rate_b, dist_b : array_like
        Tested curve, same units.

    Returns
    -------
    float
        Mean ``dist_b - dist_a`` at equal rate over the common log-rate range
        (dB for PSNR; positive: b is better). NaN when the rate ranges do not
        overlap or a curve has fewer than two usable points.
    """
    a, b = _curve(rate_a, dist_a), _curve(rate_b, dist_b)
    if a is None or b is None:
        return float("nan")
    return _mean_gap(a[0], a[1], b[0], b[1])


def bd_rate(rate_a, dist_a, rate_b, dist_b) -> float:
    """Bjontegaard delta of rate: mean rate change of curve b against curve a.

    Parameters
    ----------
    rate_a, dist_a : array_like
        Reference curve: rates and distortion values (higher = better, e.g.
        PSNR or SSIM), one per point.
    rate_b, dist_b : array_like
        Tested curve, same units.

    Returns
    -------
    float
        Percent rate difference at equal distortion over the common distortion
        range; negative: b needs fewer bits. NaN when the distortion ranges do not
        overlap or a curve has fewer than two usable points.
    """
    a, b = _curve(rate_a, dist_a), _curve(rate_b, dist_b)
    if a is None or b is None:
        return float("nan")
    return float(np.expm1(_mean_gap(a[1], a[0], b[1], b[0])) * 100)
