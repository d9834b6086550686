"""Context measures beside the metrics (`report --workforce FILE --funding FILE`).

* **Caseload per worker**: adults whose index episode is still open at the end of the
  period's last day (no discharge, or one after it) ÷ the LA's treatment workforce in
  full-time equivalents (`--workforce`: `la_code,workers`), beside the national drug
  strategy's ambition of 40.
* **Funding per person in treatment**: the LA's funding for the financial year that holds
  the period's last day (`--funding`: `la_code,year,amount`, `year` like `2023-24`) ÷
  adults in treatment in the period (in-treatment's `all`).

Disclosure: both figures give back their people count (workers and amount are published).
Adults in treatment are already published, so funding per person is hidden exactly where
that count is. The open caseload is a new count, within adults in treatment: it is hidden
when it is from 1 to 4, and whenever the LA's adults in treatment are hidden (a published
subset would bound the hidden count from below).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from . import contract as c
from .errors import InputError
from .io import read_side_table, side_row_error as _fail

CASELOAD_AMBITION = 40  # adults per worker: the 2021 drug strategy's ambition for treatment caseloads


def financial_year(day: date) -> str:
    """The financial year (1 April – 31 March) holding `day`, written like 2023-24.

    >>> financial_year(date(2024, 3, 31)), financial_year(date(2024, 4, 1))
    ('2023-24', '2024-25')
    """
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def _check(path: Path, frame: pl.DataFrame, numbers: dict[str, str], key: tuple[str, ...]) -> pl.DataFrame:
    """Cast the number columns and check every row; InputError naming file, row, column, value and rule."""
    from .geography import lookup

    known = set(lookup()["la_code"])
    seen: dict[tuple, int] = {}
    for n, r in enumerate(frame.iter_rows(named=True), start=1):
        code = r["la_code"]
        if code is None or not pl.Series([code]).str.contains(c.LA_CODE_PATTERN).item():
            raise _fail(path, n, "la_code", code, "must be an upper-tier LA code (E06/E08/E09/E10 + 6 digits)")
        if code not in known:
            raise _fail(path, n, "la_code", code, "unknown LA code (not in the shipped ONS lookup)")
        if "year" in r and not _is_year(r["year"]):
            raise _fail(path, n, "year", r["year"], "must be a financial year like 2023-24")
        for column, rule in numbers.items():
            try:
                value = float(r[column])
            except (TypeError, ValueError):
                value = None
            if value is None or value != value or (value <= 0 if rule == "positive" else value < 0):
                raise _fail(path, n, column, r[column],
                            "must be a number above 0" if rule == "positive" else "must be a number, 0 or more")
        k = tuple(r[col] for col in key)
        if k in seen:
            raise _fail(path, n, key[-1], r[key[-1]], f"repeats row {seen[k]} ({', '.join(map(str, k))})")
        seen[k] = n
    return frame.with_columns(pl.col(col).cast(pl.Float64) for col in numbers)


def _is_year(text: str | None) -> bool:
    if not text or len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit():
        return False
    return int(text[5:]) == (int(text[:4]) + 1) % 100


def _read(path: Path, what: str, columns: tuple[str, ...]) -> pl.DataFrame:
    frame = read_side_table(path, what, {}, columns, infer_schema=False, comment_prefix="#")
    if frame.is_empty():
        raise InputError(f"{path}: empty input (no data rows)")
    return frame.select(columns)


def load_workforce(path: Path) -> pl.DataFrame:
    """la_code, workers (full-time equivalents, above 0): one row per LA."""
    return _check(path, _read(path, "workforce", ("la_code", "workers")), {"workers": "positive"}, ("la_code",))


def load_funding(path: Path) -> pl.DataFrame:
    """la_code, year (2023-24), amount (0 or more): one row per LA and year."""
    return _check(path, _read(path, "funding", ("la_code", "year", "amount")), {"amount": "non-negative"},
                  ("la_code", "year"))


def build(people: pl.LazyFrame, end: date, in_treatment: pl.DataFrame, workforce: pl.DataFrame | None,
          funding: pl.DataFrame | None, suppress: bool = True) -> tuple[pl.DataFrame, list[str]]:
    """The context rows (SCHEMA) for the LAs `in_treatment` shows, and warnings.

    `in_treatment`: the published in-treatment rows of the period (after disclosure control and
    `--la`); an LA's `all` row gives its adults in treatment and whether that count is hidden.
    """
    adults = {r["area_code"]: r for r in in_treatment.filter((pl.col("area_type") == "la")
                                                               & (pl.col("category") == "all")).iter_rows(named=True)}
    open_at_end = dict(
        people.filter(pl.col("adult") & (pl.col("discharge_date").is_null() | (pl.col("discharge_date") > end)))
        .group_by("la_code").len().collect().iter_rows()
    )
    rows, warnings = [], []
    if workforce is not None:
        for code, workers in workforce.filter(pl.col("la_code").is_in(list(adults))).sort("la_code").iter_rows():
            count = open_at_end.get(code, 0)
            hidden = suppress and (adults[code]["suppressed"] or 1 <= count <= 4)
            rows.append({"la_code": code, "area_name": adults[code]["area_name"], "measure": "caseload_per_worker",
                         "value": None if hidden else count / workers, "adults": None if hidden else count,
                         "workers": workers, "amount": None, "year": None, "ambition": CASELOAD_AMBITION,
                         "suppressed": hidden})
    if funding is not None:
        year = financial_year(end)
        this_year = funding.filter((pl.col("year") == year) & pl.col("la_code").is_in(list(adults)))
        missing = sorted((set(funding["la_code"]) & set(adults)) - set(this_year["la_code"]))
        if missing:
            warnings.append(f"funding: no amount for {year} (the financial year holding {end.isoformat()}) for "
                            f"{', '.join(missing)}: no funding per person for them")
        for code, _, amount in this_year.sort("la_code").iter_rows():
            count, hidden = adults[code]["numerator"], bool(adults[code]["suppressed"])
            rows.append({"la_code": code, "area_name": adults[code]["area_name"], "measure": "funding_per_person",
                         "value": None if hidden or not count else amount / count,
                         "adults": None if hidden else count, "workers": None, "amount": amount, "year": year,
                         "ambition": None, "suppressed": hidden})
    return pl.DataFrame(rows, schema=SCHEMA), warnings


SCHEMA = {"la_code": pl.String, "area_name": pl.String, "measure": pl.String, "value": pl.Float64,
          "adults": pl.Int64, "workers": pl.Float64, "amount": pl.Float64, "year": pl.String, "ambition": pl.Int64,
          "suppressed": pl.Boolean}
