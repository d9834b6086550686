"""Property tests (hypothesis) on small generated extracts, against contract §1, §3, §4 and §6.

The strategy `extracts()` builds valid extracts: 0–60 episodes of up to 30
people over 2–5 real LAs in three regions, prison releases (often followed by
an episode of the same client), and prevalence estimates (one or two years,
with or without a range), with dates around a fixed period end 2023-09-30.
`with_invalid_rows()` adds rows that break one input rule each. The library's
`run()` is called directly (one pass over the extract per call).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta

import polars as pl
import pytest
from conftest import write_extract
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from cdp_metrics import contract as c
from cdp_metrics.errors import InputError
from cdp_metrics.geography import lookup
from cdp_metrics.pipeline import Extract, RunOptions, run

END = date(2023, 9, 30)
ENGLAND = c.ENGLAND_CODE
REGION_OF = {
    "E08000033": "E12000003",  # Calderdale, Yorkshire and The Humber
    "E08000034": "E12000003",  # Kirklees
    "E08000035": "E12000003",  # Leeds
    "E08000003": "E12000002",  # Manchester, North West
    "E08000012": "E12000002",  # Liverpool
    "E06000052": "E12000009",  # Cornwall, South West
}
LA_CODES = tuple(REGION_OF)
# Metric commands (report runs them all over one read of the extract).
COMMANDS = ("in-treatment", "unmet-need", "continuity", "deaths", "completions")
PROPORTIONS = ("continuity", "deaths", "completions")
COUNT_DENOMINATOR = {"continuity", "deaths", "completions"}  # denominators that are counts of people/releases

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
PROPS = settings(max_examples=40, deadline=None, print_blob=True, suppress_health_check=_SLOW_OK)
FEW = settings(max_examples=30, deadline=None, print_blob=True, suppress_health_check=_SLOW_OK)


def _day(offset: int) -> str:
    return (END + timedelta(days=offset)).isoformat()


# Period edges, so that ties and boundary days come up often.
EDGE_OFFSETS = (-366, -365, -364, -363, -21, -1, 0, 1)
OFFSETS = st.one_of(st.integers(-380, 20), st.integers(-900, 150), st.sampled_from(EDGE_OFFSETS))
# deaths and successful discharges weighted up, so that every metric's numerator is often non-zero
REASONS = (*c.DISCHARGE_REASONS, c.DIED, c.DIED, c.DIED, *c.SUCCESSFUL_DISCHARGES, "completed_drug_free")
OCU = set(c.OPIATES) | {c.CRACK}


@st.composite
def extracts(draw, min_episodes: int = 0) -> dict:
    """A valid extract: {'las', 'episodes', 'releases', 'prevalence'} (rows as text dicts)."""
    las = draw(st.lists(st.sampled_from(LA_CODES), min_size=2, max_size=5, unique=True))
    n_people = draw(st.integers(1, 30))  # no episodes at all: the override below
    episodes: list[dict] = []
    ids = draw(st.permutations(range(1000)))  # unique episode ids, in no particular text order
    clients = [f"C{draw(st.integers(0, 10**6)):07d}-{i}" for i in range(n_people)]
    for client in clients:
        home = draw(st.sampled_from(las))
        base_age = draw(st.one_of(st.integers(14, 80), st.sampled_from([17, 18, 29, 30, 49, 50, 64, 65])))
        sex = draw(st.sampled_from(c.SEXES))
        for _ in range(draw(st.integers(1, 3))):
            if len(episodes) >= 60:
                break
            triage = draw(OFFSETS)
            subs = draw(st.lists(st.sampled_from(c.SUBSTANCES), min_size=1, max_size=3, unique=True))
            discharge, reason = "", ""
            if draw(st.integers(0, 4)) >= 2:
                discharge = _day(triage + draw(st.one_of(st.integers(0, 300), st.integers(0, 700), st.just(0))))
                reason = draw(st.sampled_from(REASONS))
                if reason == "completed_occasional_user" and OCU & set(subs):
                    reason = "completed_drug_free"
            episodes.append({
                "episode_id": f"EP{ids[len(episodes)]}",
                "client_id": client,
                "la_code": draw(st.sampled_from([home, home, *las])),
                "sex": sex,
                "age": str(max(0, min(120, base_age + draw(st.integers(-1, 1))))),
                "substance_1": subs[0],
                "substance_2": subs[1] if len(subs) > 1 else "",
                "substance_3": subs[2] if len(subs) > 2 else "",
                "referral_date": draw(st.sampled_from(["", _day(triage - 7)])),
                "triage_date": _day(triage),
                "discharge_date": discharge,
                "discharge_reason": reason,
            })
    if not min_episodes and draw(st.integers(0, 14)) == 0:
        episodes = []  # sometimes an extract with no episode at all (an error: empty input)

    releases = []
    triage_of = defaultdict(list)
    for e in episodes:
        triage_of[e["client_id"]].append(date.fromisoformat(e["triage_date"]))
    for i in range(draw(st.integers(1, 20))):
        known = sorted(triage_of)
        if known and draw(st.integers(0, 3)):
            client = draw(st.sampled_from(known))
            # often released just before one of the client's triages: 0–30 days (window is 21), mostly in the period
            triages = [t for t in triage_of[client] if date(2022, 10, 20) <= t <= END] or triage_of[client]
            when = draw(st.sampled_from(triages)) - timedelta(days=draw(st.integers(0, 30)))
        else:
            client = f"R{i}"
            when = END + timedelta(days=draw(st.one_of(st.integers(-364, 0), OFFSETS)))
        releases.append({
            "release_id": f"RL{i:03d}",
            "client_id": client,
            "la_code": draw(st.sampled_from(las)),
            "sex": draw(st.sampled_from(c.SEXES)),
            "age": str(draw(st.integers(16, 75))),
            "release_date": when.isoformat(),
            "exclusion": draw(st.sampled_from(["", "", "", *c.EXCLUSIONS])),
        })

    prevalence = []
    for la in las:
        for category in c.PREVALENCE_CATEGORIES:
            if not draw(st.integers(0, 3)):
                continue  # this LA has no estimate in this category
            for year in draw(st.lists(st.sampled_from(["2017-18", "2018-19", "2019-20"]), min_size=1,
                                      max_size=2, unique=True)):
                estimate = draw(st.one_of(st.integers(1, 40).map(float),
                                          st.floats(0.5, 40, allow_nan=False).map(lambda x: round(x, 2))))
                lower = upper = ""
                if draw(st.booleans()):
                    lower = str(round(estimate * draw(st.floats(0.5, 1.0)), 3) or estimate)
                    upper = str(round(estimate * draw(st.floats(1.0, 1.6)), 3))
                    if float(lower) > estimate:
                        lower = str(estimate)
                    if float(upper) < estimate:
                        upper = str(estimate)
                prevalence.append({"la_code": la, "category": category, "year": year, "estimate": str(estimate),
                                   "lower": lower, "upper": upper})
    if not prevalence:
        prevalence.append({"la_code": las[0], "category": "ocu", "year": "2019-20", "estimate": "10.0",
                           "lower": "", "upper": ""})
    return {"las": las, "episodes": episodes, "releases": releases, "prevalence": prevalence}


def _bad_episode(kind: str, template: dict, new_id: str) -> dict:
    """A copy of a valid episode (same client) with one rule broken."""
    row = dict(template, episode_id=new_id)
    triage = date.fromisoformat(row["triage_date"])
    if kind == "sex":
        row["sex"] = "Q"
    elif kind == "la":
        row["la_code"] = "W06000001"
    elif kind == "date":
        row["triage_date"] = "2023-02-30"
    elif kind == "slash date":
        row["triage_date"] = triage.strftime("%d/%m/%Y")
    elif kind == "age high":
        row["age"] = "121"
    elif kind == "age fraction":
        row["age"] = "34.5"
    elif kind == "age text":
        row["age"] = "abc"
    elif kind == "order":
        row["discharge_date"], row["discharge_reason"] = (triage - timedelta(days=1)).isoformat(), "dropped_out"
    elif kind == "reason only":
        row["discharge_date"], row["discharge_reason"] = "", "dropped_out"
    elif kind == "date only":
        row["discharge_date"], row["discharge_reason"] = (triage + timedelta(days=3)).isoformat(), ""
    elif kind == "occasional":
        row["substance_1"] = "heroin"
        row["discharge_date"], row["discharge_reason"] = (triage + timedelta(days=3)).isoformat(), \
            "completed_occasional_user"
    elif kind == "null client":
        row["client_id"] = ""
    elif kind == "substance":
        row["substance_2"] = "glue"
    elif kind == "reason code":
        row["discharge_date"], row["discharge_reason"] = (triage + timedelta(days=3)).isoformat(), "finished"
    else:
        raise ValueError(kind)
    return row


BAD_EPISODE_KINDS = ("sex", "la", "date", "slash date", "age high", "age fraction", "age text", "order",
                     "reason only", "date only", "occasional", "null client", "substance", "reason code")


@st.composite
def with_invalid_rows(draw) -> tuple[dict, dict, dict]:
    """(valid extract, the same extract with invalid rows mixed in, numbers of invalid rows per table)."""
    spec = draw(extracts(min_episodes=1))
    assume(spec["episodes"])
    episodes = list(spec["episodes"])
    releases = list(spec["releases"])
    n_bad = draw(st.integers(0, 8))
    for i in range(n_bad):
        kind = draw(st.sampled_from(BAD_EPISODE_KINDS))
        bad = _bad_episode(kind, draw(st.sampled_from(spec["episodes"])), f"BAD{i}")
        episodes.insert(draw(st.integers(0, len(episodes))), bad)
    # repeated ids go last, so the first occurrence (the valid row) is the one kept
    n_dup = draw(st.integers(0, 3))
    for _ in range(n_dup):
        original = draw(st.sampled_from(spec["episodes"]))
        episodes.append(dict(original, client_id=original["client_id"] + "x", la_code=LA_CODES[0]))
    n_bad_releases = draw(st.integers(0, 3))
    for i in range(n_bad_releases):
        bad = dict(draw(st.sampled_from(spec["releases"])), release_id=f"BADRL{i}")
        bad[draw(st.sampled_from(["exclusion", "release_date", "sex", "age"]))] = "nonsense"
        releases.insert(draw(st.integers(0, len(releases))), bad)
    dirty = dict(spec, episodes=episodes, releases=releases)
    return spec, dirty, {"episodes": n_bad + n_dup, "prison_releases": n_bad_releases}


# -- running ----------------------------------------------------------------------------------------


def write(tmp_path_factory, spec: dict, shuffle_seed: int | None = None):
    tables = {k: list(spec[k]) for k in ("episodes", "releases", "prevalence")}
    if shuffle_seed is not None:
        rnd = random.Random(shuffle_seed)
        for rows in tables.values():
            rnd.shuffle(rows)
    return write_extract(tmp_path_factory.mktemp("ex"), tables["episodes"], tables["releases"],
                         tables["prevalence"])


def compute(folder, command: str = "report", **options) -> dict[str, pl.DataFrame]:
    """{metric: rows} for one command over the extract in `folder`."""
    opts = RunOptions(data=folder, period_end=END, **{"suppress": False, **options})
    return {r.metric: r.rows for r in run(command, opts)}


def compute_or_none(folder, spec, **options):
    """As `compute`, but an extract without episodes must fail as empty input (contract §6: exit 1)."""
    if not spec["episodes"]:
        with pytest.raises(InputError, match="empty input"):
            compute(folder, **options)
        return None
    return compute(folder, **options)


def same(left: pl.DataFrame, right: pl.DataFrame, label: str) -> None:
    """Identical frames (exact floats), naming the metric on failure."""
    try:
        assert_frame_equal(left, right, check_exact=True)
    except AssertionError as exc:
        raise AssertionError(f"{label}: {exc}") from None


def la_rows(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter(pl.col("area_type") == "la")


# -- properties -------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=extracts(min_episodes=1))
def test_generated_extracts_are_valid(tmp_path_factory, spec):
    """The generator's own check: its extracts raise no input error at all."""
    folder = write(tmp_path_factory, spec)
    extract = Extract(RunOptions(data=folder, period_end=END))
    for table in (c.EPISODES, c.RELEASES, c.PREVALENCE):
        validated = extract.table(table)
        assert validated.errors.is_empty(), validated.errors.to_dicts()[:3]


@PROPS
@given(spec=extracts())
def test_proportions_bounds_rollups_and_intervals(tmp_path_factory, spec):
    """Per command: 0 <= num <= den; region and England sum their LAs; every interval holds its value."""
    folder = write(tmp_path_factory, spec)
    if not spec["episodes"]:
        for command in COMMANDS:
            with pytest.raises(InputError, match="empty input"):
                compute(folder, command)
        return
    results = {}
    for command in COMMANDS:
        results.update(compute(folder, command))
    assert set(results) == set(c.METRICS[:6])  # the v1 metrics: these extracts have no TOPs or hcv_* columns
    geo = dict(lookup().select("la_code", "region_code").iter_rows())

    for metric, rows in results.items():
        assert rows.columns == list(c.ROW_FIELDS)
        assert not rows["suppressed"].any()
        # one row per area and category
        assert rows.select("area_code", "category").is_duplicated().sum() == 0, metric

        if metric in PROPORTIONS:
            assert (rows["numerator"] >= 0).all() and (rows["numerator"] <= rows["denominator"]).all(), metric
            assert (rows["denominator"] > 0).all()
        if metric == "in_treatment":
            assert (rows["numerator"] > 0).all() and rows["denominator"].is_null().all()
            assert (rows["value"] == rows["numerator"]).all()
        if metric == "mortality_ratio":
            assert (rows["numerator"] >= 0).all() and (rows["denominator"] > 0).all()

        # every non-null interval contains its value
        for r in rows.iter_rows(named=True):
            assert (r["ci_lower"] is None) == (r["ci_upper"] is None), (metric, r)
            if r["ci_lower"] is not None:
                assert r["ci_lower"] - 1e-9 <= r["value"] <= r["ci_upper"] + 1e-9, (metric, r)
            if r["ci_lower"] is None or r["area_type"] == "england":
                assert r["comparison"] is None, (metric, r)
            elif metric != "in_treatment":
                assert r["comparison"] in ("better", "similar", "worse"), (metric, r)

        # region and England rows sum their LA rows (by category)
        las = la_rows(rows)
        for category in rows["category"].unique():
            in_cat = las.filter(pl.col("category") == category)
            groups = {ENGLAND: in_cat}
            for region in {geo[la] for la in in_cat["area_code"]}:
                groups[region] = in_cat.filter(pl.col("area_code").is_in([k for k, v in geo.items() if v == region]))
            area_codes = set(rows.filter(pl.col("category") == category, pl.col("area_type") != "la")["area_code"])
            assert area_codes == set(groups), (metric, category, area_codes, set(groups))
            for area, members in groups.items():
                total = rows.filter(pl.col("area_code") == area, pl.col("category") == category).row(0, named=True)
                assert total["numerator"] == members["numerator"].sum(), (metric, category, area)
                if metric == "in_treatment":
                    assert total["denominator"] is None
                elif metric in ("mortality_ratio", "unmet_need"):
                    assert total["denominator"] == pytest.approx(members["denominator"].sum(), rel=1e-9), (
                        metric, category, area)
                else:
                    assert total["denominator"] == members["denominator"].sum(), (metric, category, area)

    # unmet need: only LAs with an estimate in the category have a row
    prevalence = {(p["la_code"], p["category"]) for p in spec["prevalence"]}
    unmet = la_rows(results["unmet_need"])
    assert set(unmet.select("area_code", "category").iter_rows()) == prevalence
    # The mortality ratio's England expected deaths are England's observed deaths (rates from the extract).
    england = results["mortality_ratio"].filter(pl.col("area_type") == "england")
    if england.height:
        e = england.row(0, named=True)
        assert e["denominator"] == pytest.approx(e["numerator"], rel=1e-9)
        deaths_all = results["deaths"].filter(pl.col("area_type") == "england", pl.col("category") == "all")
        assert e["numerator"] == deaths_all["numerator"].item()


@FEW
@given(spec=extracts(), seed=st.integers(0, 2**32 - 1))
def test_row_order_never_matters(tmp_path_factory, spec, seed):
    """Shuffling every input table's rows gives identical output, float for float."""
    before = compute_or_none(write(tmp_path_factory, spec), spec)
    after = compute_or_none(write(tmp_path_factory, spec, shuffle_seed=seed), spec)
    if before is None:
        return
    assert before.keys() == after.keys()
    for metric in before:
        same(before[metric], after[metric], metric)


@FEW
@given(spec=extracts(), pick=st.integers(0, 4))
def test_one_la_gives_the_same_rows(tmp_path_factory, spec, pick):
    """`las=(LA,)` keeps exactly that LA's rows, its region's and England's, unchanged (expected deaths too)."""
    folder = write(tmp_path_factory, spec)
    la = spec["las"][pick % len(spec["las"])]
    everything = compute_or_none(folder, spec)
    if everything is None:
        return
    one = compute(folder, las=(la,))
    for metric, rows in everything.items():
        wanted = rows.filter(
            ((pl.col("area_type") == "la") & (pl.col("area_code") == la))
            | ((pl.col("area_type") == "region") & (pl.col("area_code") == REGION_OF[la]))
            | (pl.col("area_type") == "england")
        )
        same(one[metric], wanted, f"{metric} --la {la}")


@FEW
@given(spec=extracts())
def test_suppression(tmp_path_factory, spec):
    """Default suppression: no count from 1 to 4 is shown, every row with one is suppressed (other rows
    may be, to protect them: `test_disclosure`), suppressed rows hide every derived figure, and rows
    not suppressed are exactly the unsuppressed rows."""
    folder = write(tmp_path_factory, spec)
    plain = compute_or_none(folder, spec)
    if plain is None:
        return
    shown = compute(folder, suppress=True)
    for metric, rows in shown.items():
        assert rows.select("area_code", "category").equals(plain[metric].select("area_code", "category")), metric
        assert not rows["numerator"].is_between(1, 4).any(), metric
        if metric in COUNT_DENOMINATOR:
            assert not rows["denominator"].is_between(1, 4).any(), metric
        for r, p in zip(rows.iter_rows(named=True), plain[metric].iter_rows(named=True)):
            small = 1 <= p["numerator"] <= 4 or (
                metric in COUNT_DENOMINATOR and 1 <= p["denominator"] <= 4)
            assert r["suppressed"] or not small, (metric, r, p)
            if r["suppressed"]:  # a count may still show (a 0 over a hidden denominator): never its rate
                for field in ("value", "ci_lower", "ci_upper", "comparison"):
                    assert r[field] is None, (metric, field, r)
                assert r["numerator"] is None or (metric in COUNT_DENOMINATOR and r["denominator"] is None), r
            else:
                assert r == p, (metric, {k: (r[k], p[k]) for k in r if r[k] != p[k]}, r)


@FEW
@given(case=with_invalid_rows())
def test_rows_read_are_used_or_rejected(tmp_path_factory, case):
    """Rows read = used + rejected; every injected invalid row is rejected and only those; and
    rejected rows are left out of every metric (same figures as the extract without them)."""
    clean, dirty, n_bad = case
    folder = write(tmp_path_factory, dirty)
    extract = Extract(RunOptions(data=folder, period_end=END))
    for table, spec_key in ((c.EPISODES, "episodes"), (c.RELEASES, "releases"), (c.PREVALENCE, "prevalence")):
        t = extract.table(table)
        assert t.rows_read == len(dirty[spec_key])  # no row dropped or invented by the reader
        assert t.rows_read == t.frame.height + t.rows_rejected
        assert t.frame.height == len(clean[spec_key])
        assert t.rows_rejected == n_bad.get(table.name, 0)
        assert t.rejected.height == t.rows_rejected
        assert t.errors["row"].n_unique() == t.rows_rejected  # each rejected row has a reported reason
        assert sorted(t.frame["_row"].to_list() + t.rejected["_row"].to_list()) == list(range(1, t.rows_read + 1))
    expected = compute(write(tmp_path_factory, clean))
    dirty_rows = compute(folder)
    assert dirty_rows.keys() == expected.keys()
    for metric, rows in expected.items():
        same(dirty_rows[metric], rows, metric)
