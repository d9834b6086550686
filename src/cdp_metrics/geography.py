"""English upper-tier local authorities and their ONS regions (shipped lookup; see data/SOURCES.md)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import polars as pl

from .contract import LA_CODE_PATTERN
from .errors import UsageError

SCHEMA = {"la_code": pl.String, "la_name": pl.String, "region_code": pl.String, "region_name": pl.String}


def _read(name: str) -> pl.DataFrame:
    with resources.files("cdp_metrics").joinpath(f"data/{name}").open("rb") as fh:
        return pl.read_csv(fh, schema_overrides=SCHEMA).select(list(SCHEMA))


@cache
def current() -> pl.DataFrame:
    """la_code, la_name, region_code, region_name for every current upper-tier LA (April 2025)."""
    return _read("geography.csv")


@cache
def lookup() -> pl.DataFrame:
    """Current LAs plus superseded codes still found in older extracts (Barnsley, Sheffield before 2025)."""
    return pl.concat([current(), _read("geography_previous.csv")])


def check_la_codes(codes: list[str], also_known: set[str] | frozenset[str] = frozenset()) -> None:
    """UsageError (exit 2) naming any code that is malformed or neither in the lookup nor in the data."""
    import re

    known = set(lookup()["la_code"]) | set(also_known)
    for code in codes:
        if not re.match(LA_CODE_PATTERN, code):
            raise UsageError(f"--la {code}: not an upper-tier LA code (E06/E08/E09/E10 + 6 digits)")
        if code not in known:
            raise UsageError(f"--la {code}: unknown LA code (not in the shipped ONS lookup nor in the data)")
