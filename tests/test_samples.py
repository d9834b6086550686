"""The synthetic extract generator: determinism, the data contract, realism."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from cdp_metrics import contract as c
from cdp_metrics import samples
from cdp_metrics.samples import generate

LAS = [
    "E08000033",  # Calderdale
    "E08000035",  # Leeds
    "E06000052",  # Cornwall
    "E09000033",  # Westminster
    "E08000025",  # Birmingham
    "E10000016",  # Kent
    "E06000001",  # Hartlepool
    "E08000003",  # Manchester
]
PEOPLE = 3_000
END = date(2024, 3, 31)
PERIOD_START = date(2023, 4, 1)
TABLE_NAMES = (c.EPISODES.name, c.RELEASES.name, c.PREVALENCE.name)
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("extract")
    counts = generate(out, people=PEOPLE, seed=7, la_codes=LAS)
    assert set(counts) == set(TABLE_NAMES)
    return out


@pytest.fixture(scope="module")
def episodes(extract) -> pl.DataFrame:
    return pl.read_csv(extract / "episodes.csv", infer_schema=False)


@pytest.fixture(scope="module")
def releases(extract) -> pl.DataFrame:
    return pl.read_csv(extract / "prison_releases.csv", infer_schema=False)


@pytest.fixture(scope="module")
def prevalence(extract) -> pl.DataFrame:
    return pl.read_csv(extract / "prevalence.csv", infer_schema=False)


def _typed_episodes(episodes: pl.DataFrame) -> pl.DataFrame:
    dates = ("referral_date", "triage_date", "discharge_date")
    return episodes.with_columns(pl.col("age").cast(pl.Int64), *(pl.col(d).str.to_date("%Y-%m-%d") for d in dates))


def _cites(codes) -> pl.Expr:
    return pl.any_horizontal(pl.col(f"substance_{i}").is_in(list(codes)).fill_null(False) for i in (1, 2, 3))


def _flags(df: pl.DataFrame) -> pl.DataFrame:
    other = [s for s in c.SUBSTANCES if s not in c.OPIATES and s != c.ALCOHOL]
    return df.with_columns(
        opiate=_cites(c.OPIATES),
        crack=_cites([c.CRACK]),
        alcohol=_cites([c.ALCOHOL]),
        other_drug=_cites(other),
    )


# ------------------------------------------------------------------ determinism


def _file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_same_bytes_other_seed_differs(tmp_path, fmt):
    a = generate(tmp_path / "a", people=1_500, seed=3, fmt=fmt, la_codes=LAS)
    b = generate(tmp_path / "b", people=1_500, seed=3, fmt=fmt, la_codes=LAS)
    generate(tmp_path / "c", people=1_500, seed=4, fmt=fmt, la_codes=LAS)
    files = _file_bytes(tmp_path / "a")
    assert sorted(files) == sorted(f"{t}.{fmt}" for t in TABLE_NAMES)
    assert a == b
    assert files == _file_bytes(tmp_path / "b")
    other_files = _file_bytes(tmp_path / "c")
    for name in files:
        assert files[name] != other_files[name], name


def test_creates_missing_folder_and_returns_row_counts(tmp_path):
    out = tmp_path / "new" / "nested"
    counts = generate(out, people=200, la_codes=LAS[:2])
    assert out.is_dir()
    for name in TABLE_NAMES:
        assert counts[name] == pl.read_csv(out / f"{name}.csv").height
    assert counts[c.PREVALENCE.name] == 2 * 2 * len(c.PREVALENCE_CATEGORIES)


def test_default_las_come_from_the_geography_lookup(tmp_path, monkeypatch):
    geography = tmp_path / "geography.csv"
    pl.DataFrame(
        {
            "la_code": ["E06000001", "E08000025", "E09000033"],
            "la_name": ["Hartlepool", "Birmingham", "Westminster"],
            "region_code": ["E12000001", "E12000005", "E12000007"],
            "region_name": ["North East", "West Midlands", "London"],
        }
    ).write_csv(geography)
    monkeypatch.setattr(samples, "GEOGRAPHY_CSV", geography)
    generate(tmp_path / "out", people=2_000)
    eps = pl.read_csv(tmp_path / "out" / "episodes.csv", infer_schema=False)
    prev = pl.read_csv(tmp_path / "out" / "prevalence.csv", infer_schema=False)
    assert set(eps["la_code"]) == {"E06000001", "E08000025", "E09000033"}
    assert set(prev["la_code"]) == {"E06000001", "E08000025", "E09000033"}


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, people=10, fmt="xlsx", la_codes=LAS)
    with pytest.raises(ValueError):
        generate(tmp_path, people=10, la_codes=["W06000001"])


# --------------------------------------------------------------------- contract


def test_columns_follow_the_contract(episodes, releases, prevalence):
    assert tuple(episodes.columns) == c.EPISODES.column_names
    assert tuple(releases.columns) == c.RELEASES.column_names
    assert tuple(prevalence.columns) == c.PREVALENCE.column_names


def test_episodes_obey_every_contract_rule(episodes):
    df = episodes
    assert df.height > PEOPLE
    assert df["episode_id"].null_count() == 0
    assert df["episode_id"].is_unique().all()
    for name in ("client_id", "la_code", "sex", "age", "substance_1", "triage_date"):
        assert df[name].null_count() == 0, name
    assert df["la_code"].str.contains(c.LA_CODE_PATTERN).all()
    assert set(df["la_code"].unique()) <= set(LAS)
    assert set(df["sex"].unique()) <= set(c.SEXES)
    for col in ("substance_1", "substance_2", "substance_3"):
        assert set(df[col].drop_nulls().unique()) <= set(c.SUBSTANCES), col
    assert set(df["discharge_reason"].drop_nulls().unique()) <= set(c.DISCHARGE_REASONS)
    assert df["age"].str.contains(r"^\d+$").all()
    for col in ("referral_date", "triage_date", "discharge_date"):
        assert df[col].drop_nulls().str.contains(ISO.pattern).all(), col

    t = _typed_episodes(df)
    assert t["age"].min() >= 0 and t["age"].max() <= 120
    assert (t["discharge_date"].is_null() == t["discharge_reason"].is_null()).all()
    closed = t.filter(pl.col("discharge_date").is_not_null())
    assert (closed["discharge_date"] >= closed["triage_date"]).all()
    referred = t.filter(pl.col("referral_date").is_not_null())
    assert (referred["referral_date"] <= referred["triage_date"]).all()
    assert t["triage_date"].max() == END
    assert t["discharge_date"].max() <= END
    # No substance named twice on one episode.
    subs = t.select(pl.concat_list("substance_1", "substance_2", "substance_3").list.drop_nulls().alias("s"))
    assert (subs["s"].list.len() == subs["s"].list.unique().list.len()).all()
    # Never an occasional-user completion on an episode citing an opiate or crack.
    f = _flags(t)
    bad = f.filter((pl.col("discharge_reason") == "completed_occasional_user") & (pl.col("opiate") | pl.col("crack")))
    assert bad.height == 0
    # Alcohol-free completions only for episodes citing alcohol.
    assert f.filter((pl.col("discharge_reason") == "completed_alcohol_free") & ~pl.col("alcohol")).height == 0


def test_ids_are_pseudonymous(episodes, releases):
    assert episodes["episode_id"].str.contains(r"^EP\d{7}$").all()
    assert episodes["client_id"].str.contains(r"^C[0-9A-F]{8}$").all()
    assert releases["release_id"].str.contains(r"^RL\d{7}$").all()
    ids = set(episodes["episode_id"]) | set(releases["release_id"])
    clients = set(episodes["client_id"]) | set(releases["client_id"])
    assert not ids & clients
    # Client ids are not handed out in episode (or any sorted) order.
    first_clients = episodes["client_id"].unique(maintain_order=True).head(50).to_list()
    assert first_clients != sorted(first_clients)


def test_one_sex_per_person_and_ages_consistent(episodes):
    t = _typed_episodes(episodes)
    per = t.group_by("client_id").agg(
        pl.col("sex").n_unique().alias("sexes"),
        # age at triage - years since the first triage stays within a year
        ((pl.col("age") - (pl.col("triage_date") - pl.col("triage_date").min()).dt.total_days() / 365.25))
        .pipe(lambda e: e.max() - e.min())
        .alias("drift"),
    )
    assert per["sexes"].max() == 1
    assert per["drift"].max() <= 1.01


def test_releases_obey_the_contract(releases, episodes):
    r = releases
    assert r["release_id"].is_unique().all()
    for name in ("release_id", "client_id", "la_code", "sex", "age", "release_date"):
        assert r[name].null_count() == 0, name
    assert set(r["la_code"].unique()) <= set(LAS)
    assert set(r["sex"].unique()) <= set(c.SEXES)
    assert set(r["exclusion"].drop_nulls().unique()) <= set(c.EXCLUSIONS)
    assert r["release_date"].str.contains(ISO.pattern).all()
    ages = r["age"].cast(pl.Int64)
    assert ages.min() >= c.ADULT_AGE and ages.max() <= 120
    assert r["release_date"].str.to_date().max() <= END


def test_prevalence_obeys_the_contract(prevalence):
    p = prevalence.with_columns(pl.col("estimate", "lower", "upper").cast(pl.Float64))
    assert set(p["category"].unique()) == set(c.PREVALENCE_CATEGORIES)
    assert set(p["la_code"].unique()) == set(LAS)
    assert p["year"].str.contains(r"^\d{4}-\d{2}$").all()
    assert p.select("la_code", "category", "year").is_unique().all()
    per = p.group_by("la_code", "category").agg(pl.col("year").n_unique())
    assert (per["year"] == 2).all()
    assert p["estimate"].null_count() == 0 and (p["estimate"] > 0).all()
    assert prevalence["estimate"].str.contains(r"^\d+\.\d$").all()  # one decimal place
    ranged = p.filter(pl.col("lower").is_not_null())
    assert (ranged["lower"] <= ranged["estimate"]).all() and (ranged["estimate"] <= ranged["upper"]).all()
    assert (ranged["lower"] >= 0.75 * ranged["estimate"]).all() and (ranged["upper"] <= 1.25 * ranged["estimate"]).all()
    assert (p["lower"].is_null() == p["upper"].is_null()).all()
    # Some LA has no range, most do.
    no_range = p.filter(pl.col("lower").is_null())["la_code"].unique()
    assert 1 <= no_range.len() < len(LAS)


def test_ocu_is_the_sum_of_its_parts(prevalence):
    tenths = prevalence.with_columns((pl.col("estimate").cast(pl.Float64) * 10).round().cast(pl.Int64).alias("t"))
    wide = tenths.pivot(on="category", index=["la_code", "year"], values="t").filter(pl.col("year") != "2018-19")
    assert wide.height == 2 * len(LAS)
    assert (wide["ocu"] == wide["opiate_only"] + wide["crack_only"] + wide["opiate_and_crack"]).all()


# ---------------------------------------------------------------------- realism


def test_repeat_open_and_moving_people(episodes):
    t = _typed_episodes(episodes)
    per = t.group_by("client_id").agg(pl.len().alias("n"), pl.col("la_code").n_unique().alias("las"))
    repeat = (per["n"] >= 2).mean()
    assert 0.2 <= repeat <= 0.4
    assert 1.15 <= t.height / per.height <= 1.7
    assert per.filter(pl.col("las") >= 2).height > 0
    assert (per["las"] >= 2).mean() < 0.1
    open_share = t["discharge_date"].is_null().mean()
    assert 0.25 <= open_share <= 0.42
    assert 0.01 <= t["referral_date"].is_null().mean() <= 0.2
    # Episodes spread over the three years.
    by_year = t.group_by(pl.col("triage_date").dt.year()).len()
    assert by_year.height == 4  # Apr 2021 .. Mar 2024
    assert t["triage_date"].min() >= date(2021, 4, 1)


def test_people_and_substance_mix(episodes):
    f = _flags(_typed_episodes(episodes))
    first = f.sort("triage_date", "episode_id").group_by("client_id").first()
    young = (first["age"] < c.ADULT_AGE).mean()
    assert 0.03 <= young <= 0.1
    yp = f.filter(pl.col("age") < c.ADULT_AGE)
    assert yp["substance_1"].is_in(["cannabis", "alcohol"]).mean() > 0.7
    adults = f.filter(pl.col("age") >= c.ADULT_AGE)
    assert adults["age"].max() <= 85
    assert 35 <= adults["age"].mean() <= 48
    assert 0.55 <= (f["sex"] == "M").mean() <= 0.75
    assert set(f["sex"].unique()) == set(c.SEXES)
    group = (
        adults.select(
            pl.when("opiate")
            .then(pl.lit("opiate"))
            .when(pl.col("other_drug") & pl.col("alcohol"))
            .then(pl.lit("non_opiate_and_alcohol"))
            .when("other_drug")
            .then(pl.lit("non_opiate_only"))
            .otherwise(pl.lit("alcohol_only"))
            .alias("g")
        )["g"]
        .value_counts(normalize=True)
    )
    share = dict(zip(group["g"], group["proportion"]))
    assert 0.38 <= share["opiate"] <= 0.58
    assert 0.12 <= share["non_opiate_only"] <= 0.26
    assert 0.05 <= share["non_opiate_and_alcohol"] <= 0.16
    assert 0.18 <= share["alcohol_only"] <= 0.32
    crack = f.filter("crack")
    assert crack["opiate"].mean() > 0.7  # crack mostly alongside opiates


def test_discharges(episodes):
    f = _flags(_typed_episodes(episodes))
    reasons = set(f["discharge_reason"].drop_nulls())
    assert reasons == set(c.DISCHARGE_REASONS)
    adult_opiate = f.filter((pl.col("age") >= c.ADULT_AGE) & pl.col("opiate"))
    died = (adult_opiate["discharge_reason"] == c.DIED).mean()
    assert 0.005 <= died <= 0.03
    others = f.filter(~pl.col("opiate"))
    assert (others["discharge_reason"] == c.DIED).mean() < died
    closed = f.filter(pl.col("discharge_reason").is_not_null())
    successful = closed["discharge_reason"].is_in(list(c.SUCCESSFUL_DISCHARGES)).mean()
    assert 0.25 <= successful <= 0.6  # of discharges, as NDTMS exits
    # Nobody has an episode after dying.
    t = f.sort("client_id", "triage_date")
    after_death = t.with_columns(
        dead=(pl.col("discharge_reason") == c.DIED).cast(pl.Int32).cum_sum().shift(1, fill_value=0).over("client_id")
    )
    assert after_death.filter(pl.col("dead") > 0).height == 0
    # Some re-present within six months of a successful discharge.
    nxt = t.with_columns(next_triage=pl.col("triage_date").shift(-1).over("client_id"))
    quick = nxt.filter(
        pl.col("discharge_reason").is_in(list(c.SUCCESSFUL_DISCHARGES))
        & ((pl.col("next_triage") - pl.col("discharge_date")).dt.total_days() <= 183)
    )
    assert quick.height > 0


def test_releases_are_realistic(releases, episodes):
    r = releases.with_columns(pl.col("release_date").str.to_date(), pl.col("age").cast(pl.Int64))
    e = _typed_episodes(episodes)
    people = e["client_id"].n_unique()
    release_people = r["client_id"].n_unique()
    assert 0.03 <= release_people / people <= 0.05
    linked = r.filter(pl.col("client_id").is_in(e["client_id"].implode()))["client_id"].n_unique()
    assert 0.35 <= linked / release_people <= 0.65
    assert (r.group_by("client_id").len()["len"] > 1).any()
    excluded = r["exclusion"].is_not_null().mean()
    assert 0.02 <= excluded <= 0.15

    joined = r.join(e.select("client_id", "triage_date"), on="client_id", how="left").with_columns(
        days=(pl.col("triage_date") - pl.col("release_date")).dt.total_days()
    )
    per_release = joined.group_by("release_id").agg(
        linked=pl.col("triage_date").is_not_null().any(),
        engaged=pl.col("days").is_between(0, 21).any(),
        late=pl.col("days").is_between(22, 60).any(),
    )
    assert per_release["engaged"].sum() > 0
    assert per_release.filter(pl.col("linked") & ~pl.col("engaged")).height > 0
    assert per_release.filter(~pl.col("linked")).height > 0
    assert per_release.filter(pl.col("late") & ~pl.col("engaged")).height > 0

    # Sex matches the person's episodes; age is consistent with their episode ages.
    ep_people = e.group_by("client_id").agg(
        pl.col("sex").first().alias("ep_sex"),
        (pl.col("age") - pl.col("triage_date").dt.epoch("d") / 365.25).mean().alias("birth"),
    )
    both = r.join(ep_people, on="client_id", how="inner").with_columns(
        (pl.col("age") - pl.col("release_date").dt.epoch("d") / 365.25 - pl.col("birth")).abs().alias("diff")
    )
    assert both.height > 0
    assert (both["sex"] == both["ep_sex"]).all()
    assert both["diff"].max() <= 1.01


def test_unmet_need_is_realistic(episodes, prevalence):
    f = _flags(_typed_episodes(episodes))
    in_period = f.filter(
        (pl.col("triage_date") <= END)
        & (pl.col("discharge_date").is_null() | (pl.col("discharge_date") >= PERIOD_START))
    )
    people = (
        in_period.sort("triage_date", "episode_id")
        .group_by("client_id")
        .agg(pl.col("age").last(), pl.col("opiate").any(), pl.col("crack").any(), pl.col("alcohol").any())
        .filter(pl.col("age") >= c.ADULT_AGE)
    )
    num = {
        "ocu": (people["opiate"] | people["crack"]).sum(),
        "alcohol": (people["alcohol"] & ~people["opiate"]).sum(),
    }
    latest = (
        prevalence.with_columns(pl.col("estimate").cast(pl.Float64))
        .sort("year")
        .group_by("la_code", "category")
        .last()
        .group_by("category")
        .agg(pl.col("estimate").sum())
    )
    den = dict(zip(latest["category"], latest["estimate"]))
    assert 35 <= 100 * (1 - num["ocu"] / den["ocu"]) <= 65
    assert 70 <= 100 * (1 - num["alcohol"] / den["alcohol"]) <= 90


def test_people_spread_unequally_over_las(episodes):
    counts = episodes["la_code"].value_counts()
    share = dict(zip(counts["la_code"], counts["count"]))
    assert set(share) == set(LAS)
    assert share["E08000025"] > 2 * share["E06000001"]  # Birmingham > Hartlepool
    assert share["E10000016"] > share["E09000033"]  # Kent > Westminster


# ------------------------------------------------------------------- parquet


def test_parquet_round_trip_matches_csv(tmp_path):
    generate(tmp_path / "csv", people=1_000, seed=11, fmt="csv", la_codes=LAS)
    generate(tmp_path / "pq", people=1_000, seed=11, fmt="parquet", la_codes=LAS)
    for table in (c.EPISODES, c.RELEASES, c.PREVALENCE):
        pq = pl.read_parquet(tmp_path / "pq" / f"{table.name}.parquet")
        csv = pl.read_csv(tmp_path / "csv" / f"{table.name}.csv", schema=pq.schema)
        assert tuple(pq.columns) == table.column_names
        assert pq.equals(csv, null_equal=True), table.name
        for col in table.columns:
            if col.kind == "date":
                assert pq.schema[col.name] == pl.Date, col.name
            elif col.kind == "age":
                assert pq.schema[col.name].is_integer(), col.name
            elif col.kind == "number":
                assert pq.schema[col.name] == pl.Float64, col.name
            else:
                assert pq.schema[col.name] == pl.String, col.name
