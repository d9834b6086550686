"""The contract's metrics at LA level: pure Polars, LazyFrames in, DataFrames out (one module per family).

* `treatment` — §4: the cube of people, numbers in treatment, unmet need,
  continuity of care, deaths and the mortality ratio, successful completions;
* `recovery` — §9: substantial progress, housing and employment from TOP interviews;
* `hepatitis` — §9: the hepatitis C cascade.

Each returns one row per LA and category with `numerator` and `denominator`
(and what the area roll-up needs besides); `areas` then adds region and
England rows, intervals and comparison, and `disclosure` suppression.
"""

from .hepatitis import hepatitis_c
from .recovery import employment, housing, index_tops, latest_tops, order_tops, progress
from .treatment import (
    GROUP_CATEGORIES,
    IN_TREATMENT_CATEGORIES,
    completions,
    continuity,
    cube,
    death_strata,
    deaths,
    england_rates,
    in_treatment,
    last_representation_window_end,
    last_window_end,
    mortality_ratio,
    select_prevalence,
    unmet_need,
)

__all__ = [
    "GROUP_CATEGORIES", "IN_TREATMENT_CATEGORIES", "completions", "continuity", "cube", "death_strata", "deaths",
    "employment", "england_rates", "hepatitis_c", "housing", "in_treatment", "index_tops", "latest_tops",
    "last_representation_window_end", "last_window_end", "mortality_ratio", "order_tops", "progress",
    "select_prevalence", "unmet_need",
]
