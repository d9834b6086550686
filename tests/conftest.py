"""Shared fixtures: build small contract-shaped extracts on disk and run the CLI on them."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdp_metrics.cli import app
from cdp_metrics.contract import EPISODES, HCV_COLUMNS, PREVALENCE, RELEASES, REVIEWS

CALDERDALE = "E08000033"
LEEDS = "E08000035"
KIRKLEES = "E08000034"
YORKSHIRE = "E12000003"
MANCHESTER = "E08000003"
NORTH_WEST = "E12000002"
ENGLAND = "E92000001"

_ids = itertools.count(1)


def episode(client_id: str, triage_date: str, **fields) -> dict:
    """One episode row (contract columns as text); unspecified fields get plain defaults."""
    row = {
        "episode_id": fields.pop("episode_id", f"EP{next(_ids):07d}"),
        "client_id": client_id,
        "la_code": CALDERDALE,
        "sex": "M",
        "age": "35",
        "substance_1": "heroin",
        "substance_2": "",
        "substance_3": "",
        "referral_date": "",
        "triage_date": triage_date,
        "discharge_date": "",
        "discharge_reason": "",
    }
    row.update({k: "" if v is None else str(v) for k, v in fields.items()})
    return row


def release(client_id: str, release_date: str, **fields) -> dict:
    row = {
        "release_id": fields.pop("release_id", f"RL{next(_ids):07d}"),
        "client_id": client_id,
        "la_code": CALDERDALE,
        "sex": "M",
        "age": "35",
        "release_date": release_date,
        "exclusion": "",
    }
    row.update({k: "" if v is None else str(v) for k, v in fields.items()})
    return row


def estimate(la_code: str, category: str, value, year: str = "2019-20", lower=None, upper=None) -> dict:
    return {
        "la_code": la_code,
        "category": category,
        "year": year,
        "estimate": str(value),
        "lower": "" if lower is None else str(lower),
        "upper": "" if upper is None else str(upper),
    }


def write_table(path: Path, columns: tuple[str, ...], rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def review(episode_row: dict, review_date: str, stage: str = "review", **fields) -> dict:
    """One TOP interview of an episode (contract §9 columns as text); unset fields are null."""
    row = {name: "" for name in REVIEWS.column_names}
    row.update(review_id=fields.pop("review_id", f"RV{next(_ids):07d}"), client_id=episode_row["client_id"],
               episode_id=episode_row["episode_id"], review_date=review_date, stage=stage)
    row.update({k: "" if v is None else str(v) for k, v in fields.items()})
    return row


V1_EPISODE_COLUMNS = tuple(name for name in EPISODES.column_names if name not in HCV_COLUMNS)


def write_extract(folder: Path, episodes=(), releases=None, prevalence=None, reviews=None) -> Path:
    """Write episodes.csv (and prison_releases.csv / prevalence.csv / reviews.csv when given) into `folder`.

    Episodes get the hepatitis C columns only when a row sets one of them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    episodes = list(episodes)
    hcv = any(name in row for row in episodes for name in HCV_COLUMNS)
    columns = EPISODES.column_names if hcv else V1_EPISODE_COLUMNS
    write_table(folder / "episodes.csv", columns, [{k: row.get(k, "") for k in columns} for row in episodes])
    if reviews is not None:
        write_table(folder / "reviews.csv", REVIEWS.column_names, list(reviews))
    if releases is not None:
        write_table(folder / "prison_releases.csv", RELEASES.column_names, list(releases))
    if prevalence is not None:
        write_table(folder / "prevalence.csv", PREVALENCE.column_names, list(prevalence))
    return folder


class Run:
    def __init__(self, result):
        self.exit_code = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.exception = result.exception

    @property
    def json(self):
        return json.loads(self.stdout)


def cli(*args: str, env: dict | None = None) -> Run:
    """Run cdp-metrics in-process; stdout and stderr kept apart."""
    result = CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=True)
    return Run(result)


def rows_of(run: Run, metric: str | None = None) -> list[dict]:
    """The rows of a JSON result (of `metric` when the command returns several)."""
    assert run.exit_code == 0, f"exit {run.exit_code}: {run.stderr}{run.exception!r}"
    doc = run.json
    if "results" in doc:
        doc = next(r for r in doc["results"] if r["metric"] == metric)
    return doc["rows"]


def row(rows: list[dict], area_code: str, category: str = "all") -> dict:
    """The one row for an area and category."""
    found = [r for r in rows if r["area_code"] == area_code and r["category"] == category]
    assert len(found) == 1, f"{len(found)} rows for {area_code}/{category}"
    return found[0]


@pytest.fixture
def extract_dir(tmp_path: Path) -> Path:
    return tmp_path / "extract"
