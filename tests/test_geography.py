"""The shipped upper-tier local authority -> region lookup (src/cdp_metrics/data/geography.csv).

Expected values come from the ONS April 2025 lookups named in src/cdp_metrics/data/SOURCES.md
(LAD25_CTYUA25_UK_LU_v2 and LAD25_RGN25_EN_LU_v2).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

GEOGRAPHY_CSV = Path(__file__).parents[1] / "src/cdp_metrics/data/geography.csv"

HEADER = ["la_code", "la_name", "region_code", "region_name"]
LA_CODE = re.compile(r"^E(06|08|09|10)[0-9]{6}$")

REGIONS = {
    "E12000001": "North East",
    "E12000002": "North West",
    "E12000003": "Yorkshire and The Humber",
    "E12000004": "East Midlands",
    "E12000005": "West Midlands",
    "E12000006": "East of England",
    "E12000007": "London",
    "E12000008": "South East",
    "E12000009": "South West",
}


def _read() -> tuple[list[str], list[dict[str, str]]]:
    with GEOGRAPHY_CSV.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return _read()[1]


@pytest.fixture(scope="module")
def by_code(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["la_code"]: r for r in rows}


def test_header_is_exact():
    assert _read()[0] == HEADER


def test_file_is_utf8_without_bom():
    raw = GEOGRAPHY_CSV.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    raw.decode("utf-8")


def test_row_count_is_153(rows):
    assert len(rows) == 153


def test_count_by_authority_type(rows):
    # 63 unitary authorities, 36 metropolitan districts, 33 London boroughs (incl. City of London),
    # 21 counties.
    assert Counter(r["la_code"][:3] for r in rows) == {"E06": 63, "E08": 36, "E09": 33, "E10": 21}


def test_codes_are_unique(rows):
    codes = [r["la_code"] for r in rows]
    assert len(codes) == len(set(codes))


def test_names_are_unique(rows):
    names = [r["la_name"] for r in rows]
    assert len(names) == len(set(names))


def test_every_code_is_an_upper_tier_la_code(rows):
    bad = [r["la_code"] for r in rows if not LA_CODE.match(r["la_code"])]
    assert bad == []


def test_rows_sorted_by_code(rows):
    codes = [r["la_code"] for r in rows]
    assert codes == sorted(codes)


def test_no_blank_or_padded_fields(rows):
    for r in rows:
        for field in HEADER:
            assert r[field] and r[field] == r[field].strip(), (r, field)


def test_exactly_the_nine_regions_with_ons_names(rows):
    pairs = {(r["region_code"], r["region_name"]) for r in rows}
    assert pairs == set(REGIONS.items())


@pytest.mark.parametrize(
    ("code", "name", "region_code", "region_name"),
    [
        ("E08000033", "Calderdale", "E12000003", "Yorkshire and The Humber"),
        ("E06000052", "Cornwall", "E12000009", "South West"),
        ("E10000016", "Kent", "E12000008", "South East"),
        ("E08000025", "Birmingham", "E12000005", "West Midlands"),
        ("E09000033", "Westminster", "E12000007", "London"),
        ("E06000063", "Cumberland", "E12000002", "North West"),
        ("E06000064", "Westmorland and Furness", "E12000002", "North West"),
        ("E06000065", "North Yorkshire", "E12000003", "Yorkshire and The Humber"),
        ("E06000066", "Somerset", "E12000009", "South West"),
        ("E09000001", "City of London", "E12000007", "London"),
        ("E06000053", "Isles of Scilly", "E12000009", "South West"),
        ("E06000010", "Kingston upon Hull, City of", "E12000003", "Yorkshire and The Humber"),
        ("E08000013", "St. Helens", "E12000002", "North West"),
        ("E10000017", "Lancashire", "E12000002", "North West"),
    ],
)
def test_known_rows_match_the_ons_lookup(by_code, code, name, region_code, region_name):
    assert by_code[code] == {
        "la_code": code,
        "la_name": name,
        "region_code": region_code,
        "region_name": region_name,
    }


def test_regional_totals(rows):
    # Per-region counts of the 153 rows in the April 2025 ONS lookups.
    assert Counter(r["region_code"] for r in rows) == {
        "E12000001": 12,
        "E12000002": 24,
        "E12000003": 15,
        "E12000004": 10,
        "E12000005": 14,
        "E12000006": 11,
        "E12000007": 33,
        "E12000008": 19,
        "E12000009": 15,
    }


@pytest.mark.parametrize(
    "superseded",
    ["E10000006", "E10000023", "E10000027"],  # Cumbria, North Yorkshire, Somerset counties (to April 2023)
)
def test_counties_abolished_in_2023_are_absent(by_code, superseded):
    assert superseded not in by_code


def test_barnsley_and_sheffield_carry_their_april_2025_codes(by_code):
    # The Barnsley and Sheffield (Boundary Change) Order 2024 took effect on 1 April 2025; ONS
    # replaced E08000016 (Barnsley) and E08000019 (Sheffield) with E08000038 and E08000039.
    assert "E08000016" not in by_code
    assert "E08000019" not in by_code
    assert by_code["E08000038"]["la_name"] == "Barnsley"
    assert by_code["E08000039"]["la_name"] == "Sheffield"
    assert by_code["E08000038"]["region_code"] == "E12000003"
    assert by_code["E08000039"]["region_code"] == "E12000003"
