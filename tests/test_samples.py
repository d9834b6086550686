"""The synthetic extract generator: determinism, the data contract, realism."""

from __future__ import annotations

import hashlib
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
TABLE_NAMES = (c.EPISODES.name, c.RELEASES.name, c.PREVALENCE.name, c.REVIEWS.name)
V1_EPISODE_COLUMNS = [name for name in c.EPISODES.column_names if name not in c.HCV_COLUMNS]
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "samples"
# `make sample` (Makefile): the arguments the bundled sample is generated with.
MAKE_SAMPLE = dict(people=30_000, seed=2023, end=date(2024, 3, 31), years=5, la_codes=[
    "E08000033", "E08000035", "E08000034", "E08000032", "E08000039", "E06000010",
    "E08000003", "E08000012", "E06000052", "E09000033", "E08000025", "E10000016",
])
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


@pytest.fixture(scope="module")
def reviews(extract) -> pl.DataFrame:
    return pl.read_csv(extract / "reviews.csv", infer_schema=False)


def _typed_episodes(episodes: pl.DataFrame) -> pl.DataFrame:
    dates = ("referral_date", "triage_date", "discharge_date", "hcv_offered", "hcv_tested", "hcv_treatment_started")
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


def test_columns_follow_the_contract(episodes, releases, prevalence, reviews):
    assert tuple(episodes.columns) == c.EPISODES.column_names
    assert tuple(episodes.columns[-4:]) == c.HCV_COLUMNS  # appended after the v1 columns
    assert tuple(releases.columns) == c.RELEASES.column_names
    assert tuple(prevalence.columns) == c.PREVALENCE.column_names
    assert tuple(reviews.columns) == c.REVIEWS.column_names


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
    for col in ("referral_date", "triage_date", "discharge_date", "hcv_offered", "hcv_tested", "hcv_treatment_started"):
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


def test_ids_are_pseudonymous(episodes, releases, reviews):
    assert episodes["episode_id"].str.contains(r"^EP\d{7}$").all()
    assert episodes["client_id"].str.contains(r"^C[0-9A-F]{8}$").all()
    assert releases["release_id"].str.contains(r"^RL\d{7}$").all()
    assert reviews["review_id"].str.contains(r"^TP\d{7}$").all()
    ids = set(episodes["episode_id"]) | set(releases["release_id"]) | set(reviews["review_id"])
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
    for table in (c.EPISODES, c.RELEASES, c.PREVALENCE, c.REVIEWS):
        pq = pl.read_parquet(tmp_path / "pq" / f"{table.name}.parquet")
        csv = pl.read_csv(tmp_path / "csv" / f"{table.name}.csv", schema=pq.schema)
        assert tuple(pq.columns) == table.column_names
        assert pq.equals(csv, null_equal=True), table.name
        for col in table.columns:
            if col.kind == "date":
                assert pq.schema[col.name] == pl.Date, col.name
            elif col.kind in ("age", "days"):
                assert pq.schema[col.name].is_integer(), col.name
            elif col.kind == "number":
                assert pq.schema[col.name] == pl.Float64, col.name
            else:
                assert pq.schema[col.name] == pl.String, col.name


# ------------------------------------------------- v1 columns untouched by §9

# sha256 (first 16 hex digits) of the v1 columns as the generator wrote them before section 9
# (git 292c9a0): the hepatitis C and TOP draws come from generators of their own, drawn last.
V1_HASHES = {
    # generate(people=3_000, seed=7, la_codes=LAS): the `extract` fixture
    "fixture": {"episodes": "94572ad3ad9b50d7", "prison_releases": "e4a19e2aedf9c3b4",
                "prevalence": "f01abb29d5ab0807"},
    # `make sample`: the bundled sample
    "bundled": {"episodes": "d7ef7c1c196db080", "prison_releases": "17f00dbb80b5926f",
                "prevalence": "c3f5a64973ffb6b7"},
}


def _v1_hashes(folder: Path) -> dict[str, str]:
    out = {}
    for table in (c.EPISODES, c.RELEASES, c.PREVALENCE):
        frame = pl.read_csv(folder / f"{table.name}.csv", infer_schema=False)  # text in, text out: the same bytes
        v1 = [name for name in table.column_names if name not in c.HCV_COLUMNS]
        out[table.name] = hashlib.sha256(frame.select(v1).write_csv().encode()).hexdigest()[:16]
    return out


def test_v1_columns_are_unchanged_by_the_section_9_draws(extract):
    assert _v1_hashes(extract) == V1_HASHES["fixture"]


def test_bundled_sample_is_what_make_sample_writes(tmp_path):
    counts = generate(tmp_path, **MAKE_SAMPLE)
    assert set(counts) == set(TABLE_NAMES)
    for name in TABLE_NAMES:
        assert (tmp_path / f"{name}.csv").read_bytes() == (SAMPLE / f"{name}.csv").read_bytes(), \
            f"data/samples/{name}.csv is stale: run `make sample`"
    assert _v1_hashes(SAMPLE) == V1_HASHES["bundled"]


# ------------------------------------------------------------- §9 input rules


def _bundled() -> tuple[pl.DataFrame, pl.DataFrame]:
    return (pl.read_csv(SAMPLE / "episodes.csv", infer_schema=False),
            pl.read_csv(SAMPLE / "reviews.csv", infer_schema=False))


def _typed_reviews(reviews: pl.DataFrame) -> pl.DataFrame:
    return reviews.with_columns(
        pl.col("review_date").str.to_date("%Y-%m-%d"),
        *(pl.col(name).cast(pl.Int64) for name in (*c.DAYS_COLUMNS, *c.WORK_COLUMNS)),
    )


def _joined(episodes: pl.DataFrame, reviews: pl.DataFrame) -> pl.DataFrame:
    """Reviews (typed) with their episode's columns (typed, prefixed `ep_` where the names clash)."""
    eps = _flags(_typed_episodes(episodes)).rename({"client_id": "ep_client_id"})
    return _typed_reviews(reviews).join(eps, on="episode_id", how="left")


def _check_review_rules(episodes: pl.DataFrame, reviews: pl.DataFrame, end: date = END) -> None:
    r = reviews
    assert r.height > 0
    for col in c.REVIEWS.columns:
        if not col.nullable:
            assert r[col.name].null_count() == 0, col.name
    assert r["review_id"].is_unique().all()
    assert set(r["stage"].unique()) == set(c.STAGES)
    assert set(r["housing"].drop_nulls().unique()) == set(c.HOUSING)
    assert r["review_date"].str.contains(ISO.pattern).all()
    for name in (*c.DAYS_COLUMNS, *c.WORK_COLUMNS):
        values = r[name].drop_nulls()
        assert values.len() > 0, name
        assert values.str.contains(r"^\d+$").all(), name  # whole numbers, written as such
        assert values.cast(pl.Int64).is_between(0, 28).all(), name

    j = _joined(episodes, r)
    assert j["triage_date"].null_count() == 0  # every episode_id is an episode
    assert (j["client_id"] == j["ep_client_id"]).all()
    assert (j["review_date"] >= j["triage_date"]).all()
    assert j["review_date"].max() <= end
    # Days of use only in the columns of the episode's own substances.
    for name in c.DAYS_COLUMNS:
        codes = [s for s, col in c.TOP_DAYS.items() if col == name]
        own = pl.any_horizontal(pl.col(f"substance_{i}").is_in(codes).fill_null(False) for i in (1, 2, 3))
        assert j.filter(~own & pl.col(name).is_not_null()).height == 0, name
        assert j.filter(own)[name].null_count() < 0.1 * j.filter(own).height, name  # a few nulls only


def _check_hcv_rules(episodes: pl.DataFrame, end: date = END) -> None:
    t = _typed_episodes(episodes)
    assert set(t["hcv_result"].drop_nulls().unique()) == set(c.HCV_RESULTS)
    offered, tested = pl.col("hcv_offered"), pl.col("hcv_tested")
    treated, result = pl.col("hcv_treatment_started"), pl.col("hcv_result")
    assert t.filter(tested.is_not_null() & offered.is_null()).height == 0  # no test without an offer
    assert t.filter(result.is_not_null() & tested.is_null()).height == 0  # no result without a test
    assert t.filter(treated.is_not_null() & (result != "positive").fill_null(True)).height == 0
    assert t.filter(tested < offered).height == 0
    assert t.filter(treated < tested).height == 0
    for name in ("hcv_offered", "hcv_tested", "hcv_treatment_started"):
        assert t[name].max() <= end, name


def test_reviews_obey_every_section_9_rule(episodes, reviews):
    _check_review_rules(episodes, reviews)


def test_hepatitis_c_columns_obey_every_section_9_rule(episodes):
    _check_hcv_rules(episodes)


def test_bundled_sample_obeys_every_section_9_rule():
    episodes, reviews = _bundled()
    _check_review_rules(episodes, reviews)
    _check_hcv_rules(episodes)


@pytest.mark.parametrize("seed, years, end", [(1, 1, date(2020, 2, 29)), (2, 10, date(2023, 12, 31)),
                                              (3, 2, date(2024, 8, 31))])
def test_section_9_rules_hold_for_other_arguments(tmp_path, seed, years, end):
    generate(tmp_path, people=2_000, seed=seed, la_codes=LAS[:3], end=end, years=years)
    episodes = pl.read_csv(tmp_path / "episodes.csv", infer_schema=False)
    _check_review_rules(episodes, pl.read_csv(tmp_path / "reviews.csv", infer_schema=False), end)
    _check_hcv_rules(episodes, end)


# ------------------------------------------------------------------ §9 realism


def _first_start(j: pl.DataFrame) -> pl.DataFrame:
    return j.filter(pl.col("stage") == "start").sort("review_date", "review_id").group_by("episode_id").first()


def _latest_later(j: pl.DataFrame) -> pl.DataFrame:
    return j.filter(pl.col("stage") != "start").sort("review_date", "review_id").group_by("episode_id").last()


def test_tops_per_episode_and_their_timing(episodes, reviews):
    j = _joined(episodes, reviews)
    eps = _typed_episodes(episodes)
    assert 1.3 <= reviews.height / episodes.height <= 1.8  # about one and a half TOPs per episode
    starts = j.filter(pl.col("stage") == "start")
    assert 0.84 <= starts["episode_id"].n_unique() / episodes.height <= 0.91
    closed = eps.filter(pl.col("discharge_date").is_not_null())
    exits = j.filter((pl.col("stage") == "exit") & pl.col("discharge_date").is_not_null())
    assert 0.52 <= exits["episode_id"].n_unique() / closed.height <= 0.68
    # start TOPs at or shortly after triage, most on the day
    after = (starts["review_date"] - starts["triage_date"]).dt.total_days()
    assert after.max() <= 60 and (after == 0).mean() > 0.5
    # six-monthly reviews while open: 6, 12, 18 ... months after triage, a fortnight either side
    rev = j.filter(pl.col("stage") == "review").with_columns(
        k=((pl.col("review_date") - pl.col("triage_date")).dt.total_days() / 182.6).round().cast(pl.Int64)
    ).with_columns(due=pl.col("triage_date").dt.offset_by(pl.format("{}mo", 6 * pl.col("k"))))
    assert rev.height > 0 and rev["k"].min() >= 1
    off = (rev["review_date"] - rev["due"]).dt.total_days().abs()
    clipped = rev["review_date"] == rev["discharge_date"].fill_null(END)
    assert ((off <= 14) | clipped).all()
    assert (rev["review_date"] <= rev["discharge_date"].fill_null(END)).all()
    # exit TOPs at discharge, a few days either side
    gap = (exits["review_date"] - exits["discharge_date"]).dt.total_days()
    assert gap.is_between(-14, 10).all() and (gap == 0).mean() > 0.7
    # the code paths of §9: several start TOPs, ties on a date, an exit TOP on an open episode
    assert (starts.group_by("episode_id").len()["len"] > 1).sum() > 10
    assert (j.group_by("episode_id", "review_date").len()["len"] > 1).sum() > 10
    assert j.filter((pl.col("stage") == "exit") & pl.col("discharge_date").is_null()).height > 0
    # completers have an exit TOP more often than drop-outs
    has_exit = closed.with_columns(exit=pl.col("episode_id").is_in(exits["episode_id"].implode()))
    success = has_exit.filter(pl.col("discharge_reason").is_in(list(c.SUCCESSFUL_DISCHARGES)))["exit"].mean()
    assert success > has_exit.filter(pl.col("discharge_reason") == "dropped_out")["exit"].mean() + 0.2


def test_days_of_use_start_high_and_completers_improve_most(episodes, reviews):
    j = _joined(episodes, reviews).filter(pl.col("age") >= c.ADULT_AGE)
    j = j.with_columns(main=pl.col("substance_1").replace_strict(c.TOP_DAYS, default=None))
    start = _first_start(j)
    opiates = start.filter(pl.col("main") == "days_opiates")["days_opiates"].drop_nulls()
    alcohol = start.filter(pl.col("main") == "days_alcohol")["days_alcohol"].drop_nulls()
    assert (opiates >= 20).mean() >= 0.6 and opiates.mean() >= 17
    assert (alcohol >= 15).mean() >= 0.7 and alcohol.mean() >= 15

    latest = _latest_later(j)
    pairs = pl.concat(
        start.filter(pl.col("main") == name).select("episode_id", "discharge_reason", s=pl.col(name))
        .join(latest.select("episode_id", l=pl.col(name)), on="episode_id")
        for name in c.DAYS_COLUMNS
    ).drop_nulls(["s", "l"])
    shares = pairs.group_by(
        pl.when(pl.col("discharge_reason").is_in(list(c.SUCCESSFUL_DISCHARGES))).then(pl.lit("completed"))
        .when(pl.col("discharge_reason") == "dropped_out").then(pl.lit("dropped_out"))
        .otherwise(pl.lit("other")).alias("who")
    ).agg(
        n=pl.len(),
        abstinent=(pl.col("l") == 0).mean(),
        improved=((pl.col("l") == 0) | (pl.col("s") - pl.col("l") >= 7)).mean(),
        a_little=((pl.col("s") - pl.col("l")).is_between(1, 6) & (pl.col("l") > 0)).mean(),
        worse=(pl.col("l") > pl.col("s")).mean(),
    )
    by = {row["who"]: row for row in shares.iter_rows(named=True)}
    done, dropped = by["completed"], by["dropped_out"]
    assert done["n"] > 100 and dropped["n"] > 100
    assert done["improved"] >= 0.65 and dropped["improved"] <= 0.5
    assert done["improved"] - dropped["improved"] >= 0.3
    assert done["abstinent"] > 2 * dropped["abstinent"] > 0
    assert dropped["worse"] >= 0.1 and done["worse"] < dropped["worse"]
    assert dropped["a_little"] >= 0.1


def test_housing_and_work_shares(episodes, reviews):
    j = _joined(episodes, reviews).filter(pl.col("age") >= c.ADULT_AGE)
    start = _first_start(j)
    assert 0.005 <= start["housing"].null_count() / start.height <= 0.06
    h = start.filter(pl.col("housing").is_not_null())
    share = {k: (h["housing"] == k).mean() for k in c.HOUSING}
    assert 0.74 <= share["none"] <= 0.86
    assert 0.08 <= share["at_risk"] <= 0.17
    assert 0.04 <= share["acute"] <= 0.10
    acute = h.group_by("opiate").agg((pl.col("housing") == "acute").mean().alias("acute"))
    acute = dict(zip(acute["opiate"], acute["acute"]))
    assert acute[True] > 1.5 * acute[False]
    latest = _latest_later(j).filter(pl.col("housing").is_not_null())
    assert (latest["housing"] == "acute").mean() < share["acute"]
    assert (latest["housing"] == "none").mean() > share["none"] - 0.03

    def working(frame, name):
        values = frame[name].drop_nulls()
        return (values >= 1).mean()

    for name, (low, high) in {"paid_work_days": (0.12, 0.28), "volunteer_days": (0.02, 0.07),
                              "education_days": (0.02, 0.08)}.items():
        assert low <= working(start, name) <= high, name
        assert 0.005 <= start[name].null_count() / start.height <= 0.06, name
        assert (start[name].drop_nulls() == 0).mean() > 0.7, name
    opiate, others = start.filter("opiate"), start.filter(~pl.col("opiate"))
    assert working(opiate, "paid_work_days") < working(others, "paid_work_days")  # fewer among opiate clients


def test_hepatitis_c_cascade_shares(episodes):
    t = _flags(_typed_episodes(episodes)).filter(pl.col("age") >= c.ADULT_AGE)

    def share(frame, num, den=None):
        den_frame = frame if den is None else frame.filter(den)
        return den_frame.filter(num).height / den_frame.height

    offered, tested = pl.col("hcv_offered").is_not_null(), pl.col("hcv_tested").is_not_null()
    positive, treated = pl.col("hcv_result") == "positive", pl.col("hcv_treatment_started").is_not_null()
    opiate, others = t.filter("opiate"), t.filter(~pl.col("opiate"))
    assert 0.80 <= share(t, offered) <= 0.95
    assert share(opiate, offered) > share(others, offered)
    assert 0.70 <= share(t, tested, offered) <= 0.85
    assert 0.10 <= share(opiate, positive, tested) <= 0.20
    assert 0.005 <= share(others, positive, tested) <= 0.03
    assert 0.55 <= share(t, treated, positive) <= 0.80
    assert 0.005 <= share(t, pl.col("hcv_result").is_null(), tested) <= 0.08  # a few results awaited
    days = (t["hcv_offered"] - t["triage_date"]).dt.total_days().drop_nulls()
    assert 0.02 <= (days < 0).mean() <= 0.15  # an offer may precede triage by a few days
    assert days.min() >= -7 and (days <= 28).mean() >= 0.75  # most within the first weeks
