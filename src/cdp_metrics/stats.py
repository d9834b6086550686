"""Statistical methods: confidence intervals and significance against a benchmark.

Modelled on OHID's R package PHEindicatormethods (``wilson_lower``/``wilson_upper``,
``byars_lower``/``byars_upper``) and the OHID Public Health Technical Guidance
("Proportions", "Rates" and "Confidence intervals" pages on Fingertips, formerly the
APHO/PHE "Technical Guide: Confidence Intervals"). Every method is one small function
with its formula and source in the docstring. Results are proportions or ratios, never
multiplied by 100 (or 100,000); callers apply any multiplier.

Methods
-------
``wilson``
    Wilson score interval for a proportion O/n (Wilson 1927; Newcombe 1998; Newcombe &
    Altman 2000). The OHID-preferred method for proportions.
``byar``
    Byar's approximation to the exact Poisson limits of an observed count O, divided by
    an expected count or population E: a ratio such as an indirectly standardised ratio
    (SMR) or a crude rate before its multiplier (Breslow & Day 1987).
``compare``
    "better" / "worse" / "similar" by where a benchmark lies relative to an area's
    confidence interval, given the indicator's polarity (the Fingertips "compared with
    benchmark" convention).

Each scalar function (plain floats, no Polars) has a vectorised Polars-expression
twin (``wilson_exprs``, ``byar_exprs``, ``compare_expr``) for use inside lazy queries
over millions of rows. The twins evaluate the same formulae in the same order as the
scalar functions, with no Python per-row code. Where the scalar function raises
ValueError for an invalid input, the twin gives null for that row instead.

Critical values
---------------
``Z95`` and ``Z998`` are the 97.5th and 99.9th percentiles of the standard normal
distribution, rounded to 6 decimal places (two-sided 95% and 99.8% intervals, the two
levels Fingertips publishes). R's ``qnorm`` gives 1.959963985 and 3.090232306, so these
constants agree with PHEindicatormethods' output to about 1e-7 relative.

References
----------
- Wilson EB. Probable inference, the law of succession, and statistical inference.
  J Am Stat Assoc 1927; 22: 209-212.
- Newcombe RG. Two-sided confidence intervals for the single proportion: comparison of
  seven methods. Stat Med 1998; 17: 857-872.
- Newcombe RG, Altman DG. Proportions and their differences. In Altman DG et al. (eds),
  Statistics with confidence (2nd edn). BMJ Books, 2000: 46-48.
- Breslow NE, Day NE. Statistical methods in cancer research, volume II: the design and
  analysis of cohort studies. IARC, 1987.
- OHID. Public Health Technical Guidance: Basic statistics, "Proportions" and "Rates".
  https://fingertips.phe.org.uk/static-reports/public-health-technical-guidance/
- PHEindicatormethods (R package): R/utils.R (wilson_*, byars_*), R/Rates.R.
  https://github.com/ukhsa-collaboration/PHEindicatormethods
"""

from __future__ import annotations

import math

import polars as pl

__all__ = [
    "Z95",
    "Z998",
    "z_for",
    "wilson",
    "byar",
    "compare",
    "wilson_exprs",
    "byar_exprs",
    "compare_expr",
]

Z95 = 1.959964
"""97.5th percentile of the standard normal distribution: two-sided 95% limits."""

Z998 = 3.090232
"""99.9th percentile of the standard normal distribution: two-sided 99.8% limits."""

_POLARITIES = ("low", "high", "none")


def z_for(confidence: float) -> float:
    """Return the standard normal critical value for a two-sided confidence level.

    Only the two levels used for public-health indicators are supported:
    ``95`` → ``Z95`` (1.959964) and ``99.8`` → ``Z998`` (3.090232).

    Raises ValueError for any other level (including 0.95 and 0.998: give a percentage).
    """
    if isinstance(confidence, bool):
        raise ValueError(f"confidence must be 95 or 99.8, got {confidence!r}")
    if confidence == 95:
        return Z95
    if confidence == 99.8:
        return Z998
    raise ValueError(f"confidence must be 95 or 99.8, got {confidence!r}")


def _check_z(z: float) -> None:
    if not (isinstance(z, (int, float)) and math.isfinite(z) and z > 0):
        raise ValueError(f"z must be a positive finite number, got {z!r}")


def _check_finite(**values: float) -> None:
    for name, value in values.items():
        if value is None or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


# --------------------------------------------------------------------------------------
# Wilson score interval for a proportion
# --------------------------------------------------------------------------------------


def wilson(numerator: float, denominator: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score confidence interval for the proportion ``numerator / denominator``.

    With O the numerator, n the denominator, p = O/n and q = 1 - p::

        lower = (2·O + z² - z·√(z² + 4·O·q)) / (2·(n + z²))
        upper = (2·O + z² + z·√(z² + 4·O·q)) / (2·(n + z²))

    which is the same as (2np + z² ∓ z·√(z² + 4np(1-p))) / (2(n + z²)).

    Source: Wilson (1927); Newcombe & Altman (2000) pp. 46-48; OHID Public Health
    Technical Guidance, "Proportions"; PHEindicatormethods ``wilson_lower`` and
    ``wilson_upper`` (R/utils.R), which evaluate
    ``(2*x + z^2 -/+ z*sqrt(z^2 + 4*x*(1 - x/n))) / 2 / (n + z^2)``.

    The denominator may be fractional (e.g. a weighted or person-time count). The
    interval always lies within [0, 1]; when O = 0 the lower limit is exactly 0 and when
    O = n the upper limit is exactly 1 (the formula gives these values analytically; they
    are set exactly so that floating-point rounding of √(z²) cannot move them).

    Returns ``(lower, upper)`` as proportions (not ×100).

    Raises ValueError if ``denominator <= 0``, ``numerator < 0``,
    ``numerator > denominator``, any input is not finite, or ``z <= 0``.
    """
    _check_finite(numerator=numerator, denominator=denominator)
    _check_z(z)
    if denominator <= 0:
        raise ValueError(f"denominator must be greater than zero, got {denominator!r}")
    if numerator < 0:
        raise ValueError(f"numerator must be greater than or equal to zero, got {numerator!r}")
    if numerator > denominator:
        raise ValueError(
            f"numerator ({numerator!r}) must be less than or equal to denominator ({denominator!r})"
        )

    o = float(numerator)
    n = float(denominator)
    z2 = z * z
    root = math.sqrt(z2 + 4.0 * o * (1.0 - o / n))
    scale = 2.0 * (n + z2)
    lower = 0.0 if o == 0 else (2.0 * o + z2 - z * root) / scale
    upper = 1.0 if o == n else (2.0 * o + z2 + z * root) / scale
    return lower, upper


def wilson_exprs(
    numerator: pl.Expr, denominator: pl.Expr, z: float
) -> tuple[pl.Expr, pl.Expr]:
    """Polars-expression twin of :func:`wilson`: ``(lower, upper)`` proportion expressions.

    Same formula, evaluated column-wise (see :func:`wilson` for the formula and sources).
    Both inputs are cast to Float64; the results are Float64.

    A row's limits are null where the denominator is null, NaN or <= 0, or the numerator
    is null or NaN. Rows that :func:`wilson` would reject (numerator < 0 or numerator >
    denominator) are also null rather than raising, so validate numerators upstream if
    such rows must be reported.
    """
    _check_z(z)
    o = numerator.cast(pl.Float64)
    n = denominator.cast(pl.Float64)
    valid = (
        o.is_not_null()
        & n.is_not_null()
        & o.is_not_nan()
        & n.is_not_nan()
        & (n > 0)
        & (o >= 0)
        & (o <= n)
    )
    z2 = z * z
    root = (z2 + 4.0 * o * (1.0 - o / n)).sqrt()
    scale = 2.0 * (n + z2)
    lower = pl.when(valid).then(
        pl.when(o == 0).then(pl.lit(0.0)).otherwise((2.0 * o + z2 - z * root) / scale)
    )
    upper = pl.when(valid).then(
        pl.when(o == n).then(pl.lit(1.0)).otherwise((2.0 * o + z2 + z * root) / scale)
    )
    return lower, upper


# --------------------------------------------------------------------------------------
# Byar's method for a Poisson count, as a ratio to an expected count / population
# --------------------------------------------------------------------------------------


def byar(observed: float, expected: float, z: float = Z95) -> tuple[float, float]:
    """Byar's approximate Poisson confidence interval for the ratio ``observed / expected``.

    With O the observed count and E the expected count (for an indirectly standardised
    ratio) or the population at risk (for a crude rate before its multiplier)::

        lower = O·(1 - 1/(9·O) - z/(3·√O))³ / E
        upper = (O+1)·(1 - 1/(9·(O+1)) + z/(3·√(O+1)))³ / E

    Source: Breslow & Day (1987), vol. II; OHID Public Health Technical Guidance,
    "Rates" (O_lower and O_upper, then divided by the denominator); PHEindicatormethods
    ``byars_lower``/``byars_upper`` (R/utils.R), used by ``phe_rate`` as
    ``byars_lower(x)/n*multiplier`` and by ``calculate_ISRatio`` as
    ``byars_lower(observed)/expected``.

    The lower limit is exactly 0 when O = 0 (the formula is undefined there). For very
    small O at high confidence (e.g. O = 1 at 99.8%) the bracketed term is negative and
    the formula gives a negative count; the lower limit is then set to 0 (a count's lower
    limit cannot be below zero; PHEindicatormethods returns NA there instead). OHID
    guidance prefers the exact χ² method for O < 10; this function always applies
    Byar's approximation.

    Returns ``(lower, upper)`` as ratios (not ×100).

    Raises ValueError if ``expected <= 0``, ``observed < 0``, any input is not finite,
    or ``z <= 0``.
    """
    _check_finite(observed=observed, expected=expected)
    _check_z(z)
    if expected <= 0:
        raise ValueError(f"expected must be greater than zero, got {expected!r}")
    if observed < 0:
        raise ValueError(f"observed must be greater than or equal to zero, got {observed!r}")

    o = float(observed)
    e = float(expected)
    if o == 0:
        lower = 0.0
    else:
        base = 1.0 - 1.0 / (9.0 * o) - z / (3.0 * math.sqrt(o))
        lower = 0.0 if base <= 0 else o * base**3 / e
    o1 = o + 1.0
    upper = o1 * (1.0 - 1.0 / (9.0 * o1) + z / (3.0 * math.sqrt(o1))) ** 3 / e
    return lower, upper


def byar_exprs(observed: pl.Expr, expected: pl.Expr, z: float) -> tuple[pl.Expr, pl.Expr]:
    """Polars-expression twin of :func:`byar`: ``(lower, upper)`` ratio expressions.

    Same formula, evaluated column-wise (see :func:`byar` for the formula and sources).
    Both inputs are cast to Float64; the results are Float64 ratios (not ×100).

    The lower limit is 0 where observed is 0 (and where the bracketed term is <= 0, as in
    :func:`byar`). A row's limits are null where expected is null, NaN or <= 0, or
    observed is null or NaN. Rows that :func:`byar` would reject (observed < 0) are also
    null rather than raising.
    """
    _check_z(z)
    o = observed.cast(pl.Float64)
    e = expected.cast(pl.Float64)
    valid = (
        o.is_not_null()
        & e.is_not_null()
        & o.is_not_nan()
        & e.is_not_nan()
        & (e > 0)
        & (o >= 0)
    )
    base = 1.0 - 1.0 / (9.0 * o) - z / (3.0 * o.sqrt())
    lower = pl.when(valid).then(
        pl.when((o == 0) | (base <= 0)).then(pl.lit(0.0)).otherwise(o * base.pow(3) / e)
    )
    o1 = o + 1.0
    upper = pl.when(valid).then(
        o1 * (1.0 - 1.0 / (9.0 * o1) + z / (3.0 * o1.sqrt())).pow(3) / e
    )
    return lower, upper


# --------------------------------------------------------------------------------------
# Comparison with a benchmark
# --------------------------------------------------------------------------------------


def _check_polarity(polarity: str) -> None:
    if polarity not in _POLARITIES:
        raise ValueError(f"polarity must be 'low', 'high' or 'none', got {polarity!r}")


def _directions(polarity: str) -> tuple[str, str]:
    """The words for a benchmark below the interval and above it."""
    if polarity == "none":  # no better or worse: the area is higher or lower than the benchmark
        return "higher", "lower"
    return ("better", "worse") if polarity == "high" else ("worse", "better")


def compare(
    benchmark: float | None, lower: float | None, upper: float | None, polarity: str
) -> str | None:
    """Compare an area's confidence interval [lower, upper] with a benchmark value.

    The area is significantly different from the benchmark when the benchmark lies
    strictly outside its interval; the polarity says which direction is better:

    - ``polarity="high"`` (higher is better): benchmark < lower → ``"better"``;
      benchmark > upper → ``"worse"``.
    - ``polarity="low"`` (lower is better): benchmark > upper → ``"better"``;
      benchmark < lower → ``"worse"``.
    - ``polarity="none"`` (no direction is better, contract §9): benchmark < lower →
      ``"higher"``; benchmark > upper → ``"lower"``.
    - benchmark inside the interval, or equal to either limit → ``"similar"``.

    Returns None when any of benchmark, lower or upper is None (or NaN).

    Source: the convention of OHID's Fingertips profiles ("better / similar / worse
    compared with benchmark"), where an area differs significantly from the benchmark
    when the benchmark value lies outside the area's confidence interval, and the
    indicator's polarity decides which direction is "better".

    Raises ValueError if polarity is not ``"low"``, ``"high"`` or ``"none"``.
    """
    _check_polarity(polarity)
    values = (benchmark, lower, upper)
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return None
    below, above = _directions(polarity)
    if benchmark < lower:
        return below
    if benchmark > upper:
        return above
    return "similar"


def compare_expr(
    benchmark: pl.Expr, lower: pl.Expr, upper: pl.Expr, polarity: str
) -> pl.Expr:
    """Polars-expression twin of :func:`compare`: a String expression.

    Gives ``"better"``, ``"worse"`` or ``"similar"`` per row by the same rules as
    :func:`compare`, and null where any of benchmark, lower or upper is null or NaN
    (inputs are cast to Float64 first, so NaN is treated as missing exactly as in the
    scalar function, not ordered as Polars would order it).

    Raises ValueError (when building the expression) if polarity is not ``"low"``,
    ``"high"`` or ``"none"``.
    """
    _check_polarity(polarity)
    b = benchmark.cast(pl.Float64)
    lo = lower.cast(pl.Float64)
    up = upper.cast(pl.Float64)
    valid = (
        b.is_not_null()
        & lo.is_not_null()
        & up.is_not_null()
        & b.is_not_nan()
        & lo.is_not_nan()
        & up.is_not_nan()
    )
    below, above = _directions(polarity)
    return (
        pl.when(~valid)
        .then(pl.lit(None, dtype=pl.String))
        .when(b < lo)
        .then(pl.lit(below, dtype=pl.String))
        .when(b > up)
        .then(pl.lit(above, dtype=pl.String))
        .otherwise(pl.lit("similar", dtype=pl.String))
    )
