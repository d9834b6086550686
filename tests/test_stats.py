"""Tests for cdp_metrics.stats against published values.

Published source used for the worked values (expected numbers are copied from it, never
computed here):

  PHEindicatormethods, vignette "Introduction to PHEindicatormethods", rendered output
  of the CRAN build, file inst/doc/Introduction_to_PHEindicatormethods.html
  (GitHub mirror r-hub2/some-psychogenic-africanporcupine-PHEindicatormethods,
  commit 9ba410965ea092796b11ebb9b8a71db6f09be697). Its code chunks print
  ``phe_proportion`` (Wilson score, wilson_lower/wilson_upper) and ``phe_rate`` (Byar's
  method, byars_lower/byars_upper divided by the population, for numerators >= 10) on
  eight areas, at 95% and at 99.8%.

Tolerances are one unit in the last decimal place R printed for each column: half a
unit for R's rounding of the printed value, and the rest for our critical values
(Z95 = 1.959964, Z998 = 3.090232, rounded to 6 dp; R uses qnorm, 1.959963985 and
3.090232306).
"""

from __future__ import annotations

import math

import polars as pl
import pytest

from cdp_metrics.stats import (
    Z95,
    Z998,
    byar,
    byar_exprs,
    compare,
    compare_expr,
    wilson,
    wilson_exprs,
    z_for,
)

# --------------------------------------------------------------------------------------
# Published worked values
# --------------------------------------------------------------------------------------

# Source: PHEindicatormethods vignette output (see module docstring),
#   chunk "default proportion":      phe_proportion(df, obs, pop)            (95%)
#   chunk "specify confidence level": phe_proportion(df, obs, pop, confidence = 99.8)
# Columns: obs, pop, 95% lowercl, 95% uppercl, 99.8% lowercl, 99.8% uppercl
# (proportions "of 1", printed to 7 decimal places).
PHE_PROPORTION = [
    (27, 106, 0.1813642, 0.3452262, 0.1481031, 0.4018735),
    (22, 113, 0.1322333, 0.2772229, 0.1054176, 0.3315448),
    (80, 150, 0.4536625, 0.6113395, 0.4092696, 0.6534069),
    (53, 193, 0.2165053, 0.3415146, 0.1877465, 0.3827289),
    (37, 159, 0.1738037, 0.3042162, 0.1461350, 0.3495622),
    (84, 122, 0.6016542, 0.7638851, 0.5493185, 0.8003596),
    (89, 101, 0.8037295, 0.9307128, 0.7476217, 0.9488987),
    (85, 196, 0.3662266, 0.5036703, 0.3298917, 0.5436182),
]
PROPORTION_ABS = 1e-7  # one unit in the 7th decimal place printed

# Source: the same vignette, chunk "default rate": phe_rate(df, obs, pop)
# (95%, rate per 100000, method "Byars" on every row), printed to 2 decimal places.
# Columns: obs, pop, lowercl, uppercl (per 100,000).
PHE_RATE_95_PER_100000 = [
    (27, 106, 16782.04, 37061.41),
    (22, 113, 12196.90, 29477.68),
    (80, 150, 42288.58, 66378.77),
    (53, 193, 20568.85, 35920.56),
    (37, 159, 16382.37, 32076.16),
    (84, 122, 54917.70, 85245.02),
    (89, 101, 70764.64, 108438.96),
    (85, 196, 34639.24, 53625.01),
]
RATE_95_ABS = 0.01  # one unit in the 2nd decimal place printed, per 100,000

# Source: the same vignette, chunk "specify multiplier for rate and confidence level":
# phe_rate(df, obs, pop, confidence = 99.8, multiplier = 100), method "Byars".
# Columns: obs, pop, lowercl, uppercl (per 100). R printed lowercl to 6 dp and uppercl
# to 5 dp; Z998's rounding to 6 dp (vs R's qnorm(0.999) = 3.090232306) moves these
# limits by up to about 4e-6 on this scale, so both columns are checked to one unit in
# the 5th decimal place.
PHE_RATE_998_PER_100 = [
    (27, 106, 12.926737, 44.59202),
    (22, 113, 9.074329, 36.05431),
    (80, 150, 36.773690, 74.46881),
    (53, 193, 17.249087, 41.24758),
    (37, 159, 13.193195, 37.70884),
    (84, 122, 47.933814, 95.39407),
    (89, 101, 62.029689, 120.99575),
    (85, 196, 30.260955, 59.97329),
]
RATE_998_ABS = 1e-5

# Source: the same vignette, chunk "default proportion - grouped" / "default rate -
# grouped" (tibble output, 3 significant figures; rates printed as whole numbers).
# Columns: year total obs, total pop, Wilson 95% lower, upper, Byar 95% rate lower,
# upper per 100,000.
PHE_GROUPED = [
    (182, 562, 0.286, 0.364, 27850, 37446),
    (295, 578, 0.470, 0.551, 45379, 57207),
]


@pytest.mark.parametrize(("obs", "pop", "lo95", "up95", "lo998", "up998"), PHE_PROPORTION)
def test_wilson_matches_phe_proportion_95(obs, pop, lo95, up95, lo998, up998):
    lower, upper = wilson(obs, pop)  # default z is Z95
    assert lower == pytest.approx(lo95, abs=PROPORTION_ABS)
    assert upper == pytest.approx(up95, abs=PROPORTION_ABS)


@pytest.mark.parametrize(("obs", "pop", "lo95", "up95", "lo998", "up998"), PHE_PROPORTION)
def test_wilson_matches_phe_proportion_998(obs, pop, lo95, up95, lo998, up998):
    lower, upper = wilson(obs, pop, z_for(99.8))
    assert lower == pytest.approx(lo998, abs=PROPORTION_ABS)
    assert upper == pytest.approx(up998, abs=PROPORTION_ABS)


@pytest.mark.parametrize(("obs", "pop", "lower", "upper"), PHE_RATE_95_PER_100000)
def test_byar_matches_phe_rate_95(obs, pop, lower, upper):
    # phe_rate: byars_lower(obs)/pop*100000; byar() returns the ratio before the multiplier.
    lo, up = byar(obs, pop, Z95)
    assert lo * 100_000 == pytest.approx(lower, abs=RATE_95_ABS)
    assert up * 100_000 == pytest.approx(upper, abs=RATE_95_ABS)


@pytest.mark.parametrize(("obs", "pop", "lower", "upper"), PHE_RATE_998_PER_100)
def test_byar_matches_phe_rate_998(obs, pop, lower, upper):
    lo, up = byar(obs, pop, z_for(99.8))
    assert lo * 100 == pytest.approx(lower, abs=RATE_998_ABS)
    assert up * 100 == pytest.approx(upper, abs=RATE_998_ABS)


@pytest.mark.parametrize(("obs", "pop", "w_lo", "w_up", "r_lo", "r_up"), PHE_GROUPED)
def test_grouped_totals_match_published_rounding(obs, pop, w_lo, w_up, r_lo, r_up):
    lower, upper = wilson(obs, pop)
    assert lower == pytest.approx(w_lo, abs=0.001)
    assert upper == pytest.approx(w_up, abs=0.001)
    lo, up = byar(obs, pop)
    assert lo * 100_000 == pytest.approx(r_lo, abs=1)
    assert up * 100_000 == pytest.approx(r_up, abs=1)


# --------------------------------------------------------------------------------------
# Critical values
# --------------------------------------------------------------------------------------


def test_z_for_supported_levels():
    assert z_for(95) == Z95 == 1.959964
    assert z_for(95.0) == Z95
    assert z_for(99.8) == Z998 == 3.090232


@pytest.mark.parametrize("level", [90, 99, 0.95, 0.998, 100, 0, -95, True])
def test_z_for_rejects_other_levels(level):
    with pytest.raises(ValueError):
        z_for(level)


# --------------------------------------------------------------------------------------
# Wilson: hand-checkable edge cases and validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("z", [Z95, Z998])
@pytest.mark.parametrize("n", [1, 20, 100, 2.5])
def test_wilson_zero_numerator_lower_is_exactly_zero(n, z):
    lower, upper = wilson(0, n, z)
    assert lower == 0.0
    # Upper for O = 0 reduces to z²/(n + z²).
    assert upper == pytest.approx(z * z / (n + z * z), rel=1e-12)


@pytest.mark.parametrize("z", [Z95, Z998])
@pytest.mark.parametrize("n", [1, 20, 100, 2.5])
def test_wilson_full_numerator_upper_is_exactly_one(n, z):
    lower, upper = wilson(n, n, z)
    assert upper == 1.0
    # Lower for O = n reduces to n/(n + z²).
    assert lower == pytest.approx(n / (n + z * z), rel=1e-12)


def test_wilson_is_symmetric_about_one_half():
    # Interval for O of n mirrors the interval for (n - O) of n.
    lower, upper = wilson(27, 106)
    mirror_lower, mirror_upper = wilson(106 - 27, 106)
    assert lower == pytest.approx(1 - mirror_upper, abs=1e-15)
    assert upper == pytest.approx(1 - mirror_lower, abs=1e-15)
    half_lower, half_upper = wilson(50, 100)
    assert half_lower + half_upper == pytest.approx(1.0, abs=1e-15)


def test_wilson_accepts_fractional_denominator():
    # PHEindicatormethods' own tests call wilson_lower(0.445, 1); fractional counts
    # (weighted or person-time denominators) must be accepted.
    lower, upper = wilson(0.445, 1)
    assert 0 < lower < 0.445 < upper < 1
    lower, upper = wilson(12, 37.25)
    assert 0 < lower < 12 / 37.25 < upper < 1


def test_wilson_wider_at_998_than_at_95():
    lo95, up95 = wilson(27, 106, Z95)
    lo998, up998 = wilson(27, 106, Z998)
    assert lo998 < lo95 < 27 / 106 < up95 < up998


@pytest.mark.parametrize(
    ("numerator", "denominator"),
    [
        (1, 0),  # denominator zero
        (0, 0),
        (1, -5),  # denominator negative
        (-1, 10),  # numerator negative
        (11, 10),  # numerator above denominator
        (10.5, 10),
        (math.nan, 10),
        (1, math.inf),
    ],
)
def test_wilson_rejects_invalid_inputs(numerator, denominator):
    with pytest.raises(ValueError):
        wilson(numerator, denominator)


@pytest.mark.parametrize("z", [0, -1.96, math.nan])
def test_wilson_rejects_invalid_z(z):
    with pytest.raises(ValueError):
        wilson(1, 10, z)


# --------------------------------------------------------------------------------------
# Byar: hand-checkable edge cases and validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("z", [Z95, Z998])
def test_byar_zero_observed(z):
    lower, upper = byar(0, 2.0, z)
    assert lower == 0.0
    # Upper for O = 0: 1·(1 - 1/9 + z/3)³ / E.
    assert upper == pytest.approx((1 - 1 / 9 + z / 3) ** 3 / 2.0, rel=1e-12)


def test_byar_scales_inversely_with_expected():
    lo1, up1 = byar(40, 1.0)
    lo2, up2 = byar(40, 32.0)
    assert lo2 == pytest.approx(lo1 / 32, rel=1e-12)
    assert up2 == pytest.approx(up1 / 32, rel=1e-12)


def test_byar_interval_brackets_ratio():
    lower, upper = byar(53, 41.5)
    assert lower < 53 / 41.5 < upper


def test_byar_lower_never_negative_for_tiny_counts():
    # At 99.8% the bracket 1 - 1/9 - z/3 is negative for O = 1; the limit is floored at 0.
    lower, upper = byar(1, 1.0, Z998)
    assert lower == 0.0
    assert upper > 1


@pytest.mark.parametrize(
    ("observed", "expected"),
    [(1, 0), (0, 0), (1, -2), (-1, 5), (math.nan, 5), (5, math.nan)],
)
def test_byar_rejects_invalid_inputs(observed, expected):
    with pytest.raises(ValueError):
        byar(observed, expected)


# --------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("benchmark", "lower", "upper", "polarity", "expected"),
    [
        # higher is better
        (0.40, 0.45, 0.55, "high", "better"),  # benchmark below the interval
        (0.60, 0.45, 0.55, "high", "worse"),  # benchmark above the interval
        (0.50, 0.45, 0.55, "high", "similar"),  # benchmark inside
        (0.45, 0.45, 0.55, "high", "similar"),  # equal to lower limit
        (0.55, 0.45, 0.55, "high", "similar"),  # equal to upper limit
        # lower is better
        (0.60, 0.45, 0.55, "low", "better"),  # benchmark above the interval
        (0.40, 0.45, 0.55, "low", "worse"),  # benchmark below the interval
        (0.50, 0.45, 0.55, "low", "similar"),
        (0.45, 0.45, 0.55, "low", "similar"),
        (0.55, 0.45, 0.55, "low", "similar"),
        # integers are fine
        (1, 2, 3, "high", "better"),
    ],
)
def test_compare_branches(benchmark, lower, upper, polarity, expected):
    assert compare(benchmark, lower, upper, polarity) == expected


@pytest.mark.parametrize("polarity", ["high", "low"])
@pytest.mark.parametrize(
    ("benchmark", "lower", "upper"),
    [
        (None, 0.45, 0.55),
        (0.5, None, 0.55),
        (0.5, 0.45, None),
        (None, None, None),
        (math.nan, 0.45, 0.55),
    ],
)
def test_compare_missing_input_gives_none(benchmark, lower, upper, polarity):
    assert compare(benchmark, lower, upper, polarity) is None


@pytest.mark.parametrize("polarity", ["up", "HIGH", "", None])
def test_compare_rejects_unknown_polarity(polarity):
    with pytest.raises(ValueError):
        compare(0.5, 0.4, 0.6, polarity)
    with pytest.raises(ValueError):
        compare_expr(pl.col("b"), pl.col("lo"), pl.col("up"), polarity)


# --------------------------------------------------------------------------------------
# Expression twins agree with the scalar functions
# --------------------------------------------------------------------------------------


def _scalar_or_none(func, *args):
    try:
        return func(*args)
    except ValueError:
        return (None, None)


def _assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            assert g is not None
            assert g == pytest.approx(w, rel=1e-12, abs=1e-15)


WILSON_ROWS = {
    # the published rows, plus edge cases
    "num": [r[0] for r in PHE_PROPORTION] + [0, 20, 0.445, 12, None, 5, 5, 5, -1, 11, 3],
    "den": [r[1] for r in PHE_PROPORTION] + [20, 20, 1, 37.25, 10, None, 0, -4, 10, 10, 3],
}


@pytest.mark.parametrize("z", [Z95, Z998])
def test_wilson_exprs_match_scalar(z):
    df = pl.DataFrame(WILSON_ROWS, schema={"num": pl.Float64, "den": pl.Float64})
    lower, upper = wilson_exprs(pl.col("num"), pl.col("den"), z)
    out = df.lazy().select(lower.alias("lower"), upper.alias("upper")).collect()
    assert out.schema == {"lower": pl.Float64, "upper": pl.Float64}

    want = [
        (None, None) if (x is None or n is None) else _scalar_or_none(wilson, x, n, z)
        for x, n in zip(WILSON_ROWS["num"], WILSON_ROWS["den"])
    ]
    _assert_same(out["lower"].to_list(), [w[0] for w in want])
    _assert_same(out["upper"].to_list(), [w[1] for w in want])

    # The exact edge values survive vectorisation.
    rows = out.to_dicts()
    zero_row = len(PHE_PROPORTION)  # 0 of 20
    assert rows[zero_row]["lower"] == 0.0
    assert rows[zero_row + 1]["upper"] == 1.0  # 20 of 20
    # nulls, zero and negative denominators, invalid numerators → null
    for i in range(zero_row + 4, zero_row + 10):
        assert rows[i] == {"lower": None, "upper": None}


def test_wilson_exprs_accept_integer_columns():
    df = pl.DataFrame({"num": [27, 0, None], "den": [106, 0, 5]}, schema={"num": pl.Int64, "den": pl.Int64})
    lower, upper = wilson_exprs(pl.col("num"), pl.col("den"), Z95)
    out = df.select(lower.alias("lo"), upper.alias("up"))
    assert out["lo"][0] == pytest.approx(0.1813642, abs=PROPORTION_ABS)  # published, above
    assert out["up"][0] == pytest.approx(0.3452262, abs=PROPORTION_ABS)
    assert out["lo"][1] is None and out["up"][1] is None
    assert out["lo"][2] is None and out["up"][2] is None


BYAR_ROWS = {
    "obs": [r[0] for r in PHE_RATE_95_PER_100000] + [0, 0, 1, 12.5, None, 5, 5, 5, -1],
    "exp": [r[1] for r in PHE_RATE_95_PER_100000] + [2.0, 0.5, 1.0, 9.75, 10, None, 0, -3, 10],
}


@pytest.mark.parametrize("z", [Z95, Z998])
def test_byar_exprs_match_scalar(z):
    df = pl.DataFrame(BYAR_ROWS, schema={"obs": pl.Float64, "exp": pl.Float64})
    lower, upper = byar_exprs(pl.col("obs"), pl.col("exp"), z)
    out = df.lazy().select(lower.alias("lower"), upper.alias("upper")).collect()
    assert out.schema == {"lower": pl.Float64, "upper": pl.Float64}

    want = [
        (None, None) if (o is None or e is None) else _scalar_or_none(byar, o, e, z)
        for o, e in zip(BYAR_ROWS["obs"], BYAR_ROWS["exp"])
    ]
    _assert_same(out["lower"].to_list(), [w[0] for w in want])
    _assert_same(out["upper"].to_list(), [w[1] for w in want])

    rows = out.to_dicts()
    first_edge = len(PHE_RATE_95_PER_100000)
    assert rows[first_edge]["lower"] == 0.0  # O = 0
    assert rows[first_edge + 1]["lower"] == 0.0
    for i in range(first_edge + 4, first_edge + 9):  # null obs/exp, exp <= 0, obs < 0
        assert rows[i] == {"lower": None, "upper": None}


def test_byar_exprs_reproduce_published_rates():
    df = pl.DataFrame(
        {"obs": [r[0] for r in PHE_RATE_95_PER_100000], "pop": [r[1] for r in PHE_RATE_95_PER_100000]}
    )
    lower, upper = byar_exprs(pl.col("obs"), pl.col("pop"), Z95)
    out = df.select((lower * 100_000).alias("lo"), (upper * 100_000).alias("up"))
    for (_, _, lo, up), got_lo, got_up in zip(PHE_RATE_95_PER_100000, out["lo"], out["up"]):
        assert got_lo == pytest.approx(lo, abs=RATE_95_ABS)
        assert got_up == pytest.approx(up, abs=RATE_95_ABS)


COMPARE_ROWS = {
    "b": [0.40, 0.60, 0.50, 0.45, 0.55, None, 0.5, 0.5, math.nan, 1.0],
    "lo": [0.45, 0.45, 0.45, 0.45, 0.45, 0.45, None, 0.45, 0.45, 2.0],
    "up": [0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.55, None, 0.55, 3.0],
}


@pytest.mark.parametrize("polarity", ["high", "low"])
def test_compare_expr_matches_scalar(polarity):
    df = pl.DataFrame(COMPARE_ROWS, schema={"b": pl.Float64, "lo": pl.Float64, "up": pl.Float64})
    expr = compare_expr(pl.col("b"), pl.col("lo"), pl.col("up"), polarity)
    out = df.lazy().select(expr.alias("sig")).collect()
    assert out.schema == {"sig": pl.String}
    want = [compare(b, lo, up, polarity) for b, lo, up in zip(*COMPARE_ROWS.values())]
    assert out["sig"].to_list() == want
    # and the expected pattern, spelled out
    better_worse = ["better", "worse"] if polarity == "high" else ["worse", "better"]
    assert want == [*better_worse, "similar", "similar", "similar", None, None, None, None, better_worse[0]]


def test_twins_compose_in_one_lazy_query():
    df = pl.LazyFrame(
        {"num": [27, 89, 0], "den": [106, 101, 10], "bench": [0.5, 0.5, None]},
        schema={"num": pl.Int64, "den": pl.Float64, "bench": pl.Float64},
    )
    lower, upper = wilson_exprs(pl.col("num"), pl.col("den"), Z95)
    out = (
        df.with_columns(lower.alias("lo"), upper.alias("up"))
        .with_columns(compare_expr(pl.col("bench"), pl.col("lo"), pl.col("up"), "high").alias("sig"))
        .collect()
    )
    # 27/106: interval 0.181-0.345 (published) lies below 0.5 → worse; 89/101: 0.804-0.931
    # lies above → better; no benchmark → null.
    assert out["sig"].to_list() == ["worse", "better", None]
