"""Fingertips downloads as published benchmarks (`--benchmarks data.csv`, `--benchmarks-map FILE`).

A CSV downloaded from OHID's Fingertips (the site's "data.csv", or the API's
`all_data/csv/by_indicator_id` that fingertips_py and fingertipsR read) has one
row per indicator, area, sex, age, category and time period, under the header
the site writes (ukhsa-collaboration/fingertips-open,
PholioVisualisationWS/Export/FileBuilder/Writers/CsvBuilderIndicatorDataHeaderWriter.cs):

    Indicator ID, Indicator Name, Parent Code, Parent Name, Area Code, Area Name, Area Type, Sex, Age,
    Category Type, Category, Time period, Value, Lower CI 95.0 limit, Upper CI 95.0 limit,
    Lower CI 99.8 limit, Upper CI 99.8 limit, Count, Denominator, Value note, Recent Trend,
    Compared to England value or percentiles, Compared to <parent> value or percentiles,
    Time period Sortable, New data, Compared to goal[, Time period range]

Such a file is recognised by its header. Which indicator is which metric and
category comes from a TOML map (`[fingertips.90244]` with `metric` and
`category`); the rows become rows of the benchmarks table (`benchmarks.SCHEMA`)
with the Fingertips time period kept beside them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from . import contract as c
from .errors import InputError
from .io import read_side_table, side_row_error as _fail

# Columns whose presence says "a Fingertips file" (every Fingertips export has them, our own format none).
SIGNATURE = ("Indicator ID", "Area Code", "Area Type", "Time period", "Value")
DEFAULT_MAP = "data/fingertips_map.toml"
CI_COLUMNS = {95.0: ("Lower CI 95.0 limit", "Upper CI 95.0 limit"),
              99.8: ("Lower CI 99.8 limit", "Upper CI 99.8 limit")}
NUMBERS = ("Value", "Count", "Denominator", *CI_COLUMNS[95.0], *CI_COLUMNS[99.8])
PERIOD_RULE = "a Fingertips time period: 2022/23, 2023, 2022/23 Q2, 2023 Q2, 2019/20 - 21/22 or 2020 - 22"


class Indicator(BaseModel):
    """What one Fingertips indicator is in cdp-metrics' terms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    category: str
    # percent: Value is already a percentage (0-100; the mortality ratio on the 100 scale), as in our JSON;
    # proportion: Value is 0-1 and is multiplied by 100; count: Value is a number of people (in_treatment).
    unit: Literal["percent", "proportion", "count"] = "percent"

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value not in c.METRICS:
            raise ValueError(f"metric {value!r}: must be one of {', '.join(c.METRICS)}")
        return value

    @model_validator(mode="after")
    def _category_and_unit(self) -> Indicator:
        from .report import CATEGORIES

        if self.category not in CATEGORIES[self.metric]:
            raise ValueError(f"category {self.category!r}: {self.metric} has {', '.join(CATEGORIES[self.metric])}")
        if (self.unit == "count") != (self.metric == "in_treatment"):
            raise ValueError(f"unit {self.unit!r}: in_treatment is a count (unit = \"count\"); every other metric "
                             "is a percentage (unit = \"percent\" or \"proportion\")")
        return self


class FingertipsMap(BaseModel):
    """`[fingertips.<Indicator ID>]` tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fingertips: dict[str, Indicator] = {}

    @field_validator("fingertips")
    @classmethod
    def _ids(cls, value: dict[str, Indicator]) -> dict[str, Indicator]:
        bad = [key for key in value if not key.isdigit()]
        if bad:
            raise ValueError(f"fingertips.{bad[0]}: an indicator id is a whole number, e.g. [fingertips.90244]")
        return value


def load_map(path: Path | None) -> FingertipsMap:
    """The map at `path`, or the one shipped with the package; UsageError (exit 2) when it is not valid."""
    from .mapping import load_toml_model

    if path is None:
        from importlib import resources

        with resources.as_file(resources.files("cdp_metrics").joinpath(DEFAULT_MAP)) as shipped:
            return load_toml_model(shipped, FingertipsMap, "benchmarks map", ("fingertips",))
    return load_toml_model(path, FingertipsMap, "benchmarks map", ("fingertips",))


def is_fingertips(header: list[str]) -> bool:
    return set(SIGNATURE) <= set(header)


def period_of(label: str, span: str | None = None) -> tuple[date, int] | None:
    """(last day, length in months) of a Fingertips time period, or None when it is not one.

    Financial years end on 31 March, calendar years on 31 December; `2022/23 Q2` is the financial
    year's second quarter (July–September 2022). `span` is the file's "Time period range" (`1y`,
    `3y`, `1q`, `1m`), which gives the length when present.

    >>> period_of("2022/23")
    (datetime.date(2023, 3, 31), 12)
    >>> period_of("2023/24 Q2")
    (datetime.date(2023, 9, 30), 3)
    >>> period_of("2019/20 - 21/22")
    (datetime.date(2022, 3, 31), 36)
    """
    label = (label or "").strip()
    found = None
    if m := re.fullmatch(r"(\d{4})/(\d{2})", label):
        start = int(m[1])
        if int(m[2]) == (start + 1) % 100:
            found = date(start + 1, 3, 31), 12
    elif m := re.fullmatch(r"(\d{4})", label):
        found = date(int(m[1]), 12, 31), 12
    elif m := re.fullmatch(r"(\d{4})/(\d{2}) Q([1-4])", label):
        start, quarter = int(m[1]), int(m[3])
        if int(m[2]) == (start + 1) % 100:
            found = ((date(start, 6, 30), date(start, 9, 30), date(start, 12, 31), date(start + 1, 3, 31))[quarter - 1],
                     3)
    elif m := re.fullmatch(r"(\d{4}) Q([1-4])", label):
        year, quarter = int(m[1]), int(m[2])
        found = (date(year, 3, 31), date(year, 6, 30), date(year, 9, 30), date(year, 12, 31))[quarter - 1], 3
    elif m := re.fullmatch(r"(\d{4})/(\d{2}) - (\d{2})/(\d{2})", label):
        first, last = int(m[1]), int(m[1]) // 100 * 100 + int(m[3])
        if last > first and int(m[4]) == (last + 1) % 100:
            found = date(last + 1, 3, 31), 12 * (last - first + 1)
    elif m := re.fullmatch(r"(\d{4}) - (\d{2})", label):
        first, last = int(m[1]), int(m[1]) // 100 * 100 + int(m[2])
        if last > first:
            found = date(last, 12, 31), 12 * (last - first + 1)
    if found is not None and span and (s := re.fullmatch(r"(\d+)([ymq])", span.strip())):
        found = found[0], int(s[1]) * {"y": 12, "q": 3, "m": 1}[s[2]]
    return found


def _area_type(value: str | None) -> str | None:
    """england or region for Fingertips' area types ("England"; "Region", "Regions (statistical)", ...)."""
    text = (value or "").strip().lower()
    if text == "england":
        return "england"
    if text.startswith("region") or text.startswith("government office region"):
        return "region"
    return None


# An ONS area code (E06… unitary authorities, E08… metropolitan districts, E10… counties, E54… ICBs, …): a row
# of a sub-national area type, as in a download for "Counties & UAs", which also holds England and the regions
ONS_CODE = re.compile(r"[EWSNK]\d{8}")


def load(path: Path, map_path: Path | None, confidence: float,
         warn: Callable[[str], None] | None = None) -> pl.DataFrame:
    """The file's rows as benchmark rows (`benchmarks.SCHEMA` + period_label, months, indicator_id).

    InputError (exit 1) naming file, row, column, value and rule for the first bad row. Rows of other
    area types with an ONS area code (a county's, an LA's: the LAs' figures come from the extract) are
    left out, and `warn` says how many, of which types.
    """
    from .geography import lookup

    mapping = load_map(map_path).fingertips
    frame = read_side_table(path, "benchmarks", {}, SIGNATURE, infer_schema=False)
    if frame.is_empty():
        raise InputError(f"{path}: empty input (no data rows)")
    regions = set(lookup()["region_code"])
    lower, upper = CI_COLUMNS[confidence]
    out = []
    seen: dict[tuple, int] = {}
    skipped: dict[str, int] = {}  # area type -> rows left out
    for n, r in enumerate(frame.iter_rows(named=True), start=1):
        indicator = (r["Indicator ID"] or "").strip()
        spec = mapping.get(indicator)
        if spec is None:
            where = f"--benchmarks-map {map_path}" if map_path else "a --benchmarks-map FILE (the shipped map has none)"
            raise _fail(path, n, "Indicator ID", indicator,
                        f"no mapping for this indicator: add [fingertips.{indicator or 'ID'}] with metric and "
                        f"category to {where}")
        kind = _area_type(r["Area Type"])
        code = (r["Area Code"] or "").strip()
        if kind is None and ONS_CODE.fullmatch(code) and code[:3] not in ("E92", "E12"):
            area_type = (r["Area Type"] or "").strip() or "no area type"
            skipped[area_type] = skipped.get(area_type, 0) + 1
            continue
        if kind is None:
            raise _fail(path, n, "Area Type", r["Area Type"],
                        "must be England or a region (Fingertips area type England, Region or Regions (statistical)), "
                        "or another area type with an ONS area code (such rows are left out)")
        if (kind == "england" and code != c.ENGLAND_CODE) or (kind == "region" and code not in regions):
            raise _fail(path, n, "Area Code", r["Area Code"],
                        f"an {kind} row needs " + ("E92000001" if kind == "england" else "an ONS region code (E12…)"))
        for column, whole in (("Sex", ("Persons", "")), ("Category", ("",))):
            if column in r and (r[column] or "").strip() not in whole:
                raise _fail(path, n, column, r[column],
                            "a breakdown row (keep only Persons rows with no Category: they are the whole-area figure)")
        period = period_of(r["Time period"], r.get("Time period range"))
        if period is None:
            raise _fail(path, n, "Time period", r["Time period"], f"must be {PERIOD_RULE}")
        numbers = {}
        for column in NUMBERS:
            text = (r.get(column) or "").strip()
            try:
                numbers[column] = float(text) if text else None
            except ValueError:
                raise _fail(path, n, column, r[column], "must be a number (or empty)") from None
        if numbers["Value"] is None and numbers["Count"] is None:
            raise _fail(path, n, "Value", r["Value"], "a row needs a Value or a Count")
        key = (code, spec.metric, spec.category, *period)
        if key in seen:
            raise _fail(path, n, "Time period", r["Time period"],
                        f"repeats row {seen[key]} ({code}, {spec.metric} {spec.category}, the same time period)")
        seen[key] = n
        scale = 100.0 if spec.unit == "proportion" else 1.0

        def scaled(column: str) -> float | None:
            return None if numbers[column] is None else numbers[column] * scale

        numerator = numbers["Count"]
        if numerator is None and spec.unit == "count":
            numerator = numbers["Value"]
        out.append({
            "area_code": code, "area_type": kind, "metric": spec.metric, "category": spec.category,
            "period_end": period[0], "numerator": numerator, "denominator": numbers["Denominator"],
            "value": scaled("Value"), "ci_lower": scaled(lower), "ci_upper": scaled(upper),
            "period_label": r["Time period"].strip(), "months": period[1], "indicator_id": indicator,
        })
    if skipped and warn is not None:
        total = sum(skipped.values())
        types = ", ".join(f"{n:,} {t}" for t, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])))
        warn(f"{path}: {total:,} {'row' if total == 1 else 'rows'} of other area types left out ({types}): "
             "published benchmarks are England's and the regions' figures; the LAs' come from the extract")
    if not out:
        raise InputError(f"{path}: no England or region rows (Fingertips area type England, Region or "
                         "Regions (statistical))")
    return pl.DataFrame(out, schema=SCHEMA)


SCHEMA = {"area_code": pl.String, "area_type": pl.String, "metric": pl.String, "category": pl.String,
          "period_end": pl.Date, "numerator": pl.Float64, "denominator": pl.Float64, "value": pl.Float64,
          "ci_lower": pl.Float64, "ci_upper": pl.Float64, "period_label": pl.String, "months": pl.Int32,
          "indicator_id": pl.String}
