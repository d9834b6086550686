"""The cdp-metrics report written as straightforward pandas (benchmark comparison, not part of the package).

    python bench/pandas_metrics.py --data DIR [--out FILE] [--period-end YYYY-MM-DD]

Same work as bench/duckdb_metrics.py: read episodes / prison_releases /
prevalence and, when present, reviews (CSV or Parquet), reject rows that break
the contract's input rules (§1, §9), build people and index episodes (§3) and
every metric of §4 and §9 for each LA, region and England, with values, 95%
intervals (Wilson, prevalence range, Byar) and the comparison with England; no
disclosure control. progress, housing and employment need the reviews table,
hepatitis_c the hcv_* episode columns; without them those metrics are left out.

Written from the contract text alone, as an independent cross-check of cdp-metrics.

Output: JSON {"tool", "period", "rejected", "seconds", "rows": [...]}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

OPIATES = ["heroin", "methadone", "buprenorphine", "other_opiate"]
OTHER_DRUGS = ["cocaine", "cannabis", "amphetamine", "benzodiazepine", "ecstasy", "ketamine", "nps", "other_drug"]
SUBSTANCES = [*OPIATES, "crack", *OTHER_DRUGS, "alcohol"]
SUCCESSFUL = ["completed_drug_free", "completed_alcohol_free", "completed_occasional_user"]
REASONS = [*SUCCESSFUL, "client_died", "transferred_community", "transferred_custody", "dropped_out",
           "withdrawn_by_provider", "declined_onward_referral", "other"]
SEXES = ["M", "F", "X", "U"]
EXCLUSIONS = ["transferred_prison", "deported", "died", "hospital"]
PREVALENCE_CATEGORIES = ["ocu", "opiate_only", "crack_only", "opiate_and_crack", "alcohol"]
GROUPS = ["opiate", "non_opiate_only", "non_opiate_and_alcohol", "alcohol_only"]
SUBS = ["substance_1", "substance_2", "substance_3"]
FLAGS = ["opiate", "crack", "alcohol", "other_drug"]
GEOGRAPHY = Path(__file__).resolve().parents[1] / "src" / "cdp_metrics" / "data" / "geography.csv"
Z = 1.959964
LA_PATTERN = r"E(06|08|09|10)[0-9]{6}"
# §9
STAGES = ["start", "review", "exit"]
HOUSING = ["none", "at_risk", "acute"]
HCV = ["hcv_offered", "hcv_tested", "hcv_result", "hcv_treatment_started"]
TOP_SUBSTANCES = ["days_opiates", "days_crack", "days_cocaine", "days_amphetamine", "days_cannabis", "days_alcohol"]
WORK_DAYS = ["paid_work_days", "volunteer_days", "education_days"]
TOP_COLUMN = {"heroin": "days_opiates", "methadone": "days_opiates", "buprenorphine": "days_opiates",
              "other_opiate": "days_opiates", "crack": "days_crack", "cocaine": "days_cocaine",
              "amphetamine": "days_amphetamine", "cannabis": "days_cannabis", "alcohol": "days_alcohol"}
HIGHER, LOWER, NO_POLARITY = "higher", "lower", "none"
POLARITY = {"unmet_need": LOWER, "continuity": HIGHER, "deaths": LOWER, "mortality_ratio": LOWER,
            "completions": HIGHER, "progress": HIGHER, "employment": HIGHER,
            ("housing", "acute"): LOWER, ("housing", "no_problem"): HIGHER,
            "hepatitis_c": HIGHER, ("hepatitis_c", "positive"): NO_POLARITY}
PROPORTIONS = ["continuity", "deaths", "completions", "progress", "housing", "employment", "hepatitis_c"]

COLUMNS = {
    "episodes": ["episode_id", "client_id", "la_code", "sex", "age", "substance_1", "substance_2", "substance_3",
                 "referral_date", "triage_date", "discharge_date", "discharge_reason"],
    "prison_releases": ["release_id", "client_id", "la_code", "sex", "age", "release_date", "exclusion"],
    "prevalence": ["la_code", "category", "year", "estimate", "lower", "upper"],
    "reviews": ["review_id", "client_id", "episode_id", "review_date", "stage", *TOP_SUBSTANCES, "housing",
                *WORK_DAYS],
}
OPTIONAL = {"substance_2", "substance_3", "referral_date", "lower", "upper", *TOP_SUBSTANCES, "housing", *WORK_DAYS,
            *HCV}
DATES = {"referral_date", "triage_date", "discharge_date", "release_date", "review_date",
         "hcv_offered", "hcv_tested", "hcv_treatment_started"}


def find(data: Path, table: str, required: bool = True) -> Path | None:
    for ext in (".csv", ".parquet", ".pq"):
        if (data / f"{table}{ext}").is_file():
            return data / f"{table}{ext}"
    if required:
        sys.exit(f"{data}: no {table}.csv or {table}.parquet")
    return None


def read(data: Path, table: str, path: Path | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """The contract columns, typed; and a boolean Series, true for rows that break a type or null rule.

    Episodes also get the optional hcv_* columns (§9) when the file has any of them.
    """
    path = path or find(data, table)
    wanted = COLUMNS[table]
    if path.suffix == ".csv":
        header = pd.read_csv(path, nrows=0).columns
        if table == "episodes" and any(c in header for c in HCV):
            wanted = wanted + HCV
        df = pd.read_csv(path, usecols=[c for c in wanted if c in header], dtype=str,
                         keep_default_na=False, na_values=[""])
    else:
        names = pq.ParquetFile(path).schema_arrow.names
        if table == "episodes" and any(c in names for c in HCV):
            wanted = wanted + HCV
        df = pd.read_parquet(path, columns=[c for c in wanted if c in names])
    missing = [c for c in wanted if c not in df.columns and c not in OPTIONAL]
    if missing:
        sys.exit(f"{path.name}: missing required column {', '.join(missing)}")
    for c in wanted:
        if c not in df.columns:
            df[c] = pd.Series(pd.NA, index=df.index, dtype="str")
    bad = pd.Series(False, index=df.index)
    for c in wanted:
        col = df[c]
        if pd.api.types.is_string_dtype(col) or col.dtype == object:
            if c in DATES and col.dtype == object and len(col.dropna()) and not isinstance(col.dropna().iloc[0], str):
                df[c] = pd.to_datetime(col)  # datetime.date objects from Parquet
                continue
            col = col.replace("", None)  # values taken as written: ' M' is not the code M
            df[c] = col
            if c in DATES:
                parsed = pd.to_datetime(col, format="%Y-%m-%d", errors="coerce")
                bad |= col.notna() & (parsed.isna() | ~col.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fillna(False))
                df[c] = parsed
        elif c in DATES:
            df[c] = pd.to_datetime(col)
    return df, bad


def bad_code(col: pd.Series, codes: list[str]) -> pd.Series:
    return col.notna() & ~col.isin(codes)


def bad_whole(value: pd.Series, top: int, keep: dict | None = None) -> pd.Series:
    """Not a whole number from 0 to `top` (text: digits, optionally followed by `.0`); the numbers go to keep[name]."""
    if pd.api.types.is_string_dtype(value):
        shape = value.str.fullmatch(r"[0-9]+(\.0*)?").fillna(False).astype(bool)
        num = value.where(shape).astype("float64")  # faster than pd.to_numeric once the shape is known
    else:
        num = pd.to_numeric(value, errors="coerce")
    if keep is not None:
        keep[value.name] = num
    ok = num.between(0, top) & (num == np.floor(num))
    return value.notna() & ~ok.fillna(False).astype(bool)


def bad_age(age: pd.Series) -> pd.Series:
    return bad_whole(age, 120)


def bad_la(la: pd.Series) -> pd.Series:
    return la.notna() & ~la.str.fullmatch(LA_PATTERN).fillna(False).astype(bool)


def load(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, int]]:
    rejected = {}
    ep, bad = read(data, "episodes")
    for c in ("episode_id", "client_id", "la_code", "sex", "age", "substance_1", "triage_date"):
        bad |= ep[c].isna()
    bad |= bad_la(ep["la_code"]) | bad_code(ep["sex"], SEXES) | bad_age(ep["age"])
    for c in SUBS:
        bad |= bad_code(ep[c], SUBSTANCES)
    bad |= bad_code(ep["discharge_reason"], REASONS)
    bad |= ep["episode_id"].notna() & ep["episode_id"].duplicated()
    bad |= (ep["discharge_date"] < ep["triage_date"]).fillna(False)
    bad |= ep["discharge_reason"].isna() != ep["discharge_date"].isna()
    bad |= (ep["discharge_reason"] == "completed_occasional_user").fillna(False) & ep[SUBS].isin(
        [*OPIATES, "crack"]).any(axis=1)
    if "hcv_offered" in ep:  # §9 hepatitis C rules: the whole episode row goes
        offered, tested, result, treated = (ep[c] for c in HCV)
        bad |= bad_code(result, ["positive", "negative"])
        bad |= tested.notna() & offered.isna()
        bad |= result.notna() & tested.isna()
        bad |= treated.notna() & (result != "positive").fillna(True).astype(bool)
        bad |= (tested < offered).fillna(False).astype(bool)
        bad |= (treated < tested).fillna(False).astype(bool)
    rejected["episodes"] = int(bad.sum())
    ep = ep[~bad].copy()
    ep["age"] = pd.to_numeric(ep["age"]).astype(int)

    rel, bad = read(data, "prison_releases")
    for c in ("release_id", "client_id", "la_code", "sex", "age", "release_date"):
        bad |= rel[c].isna()
    bad |= bad_la(rel["la_code"]) | bad_code(rel["sex"], SEXES) | bad_age(rel["age"])
    bad |= bad_code(rel["exclusion"], EXCLUSIONS)
    bad |= rel["release_id"].notna() & rel["release_id"].duplicated()
    rejected["prison_releases"] = int(bad.sum())
    rel = rel[~bad].copy()

    prev, bad = read(data, "prevalence")
    for c in ("la_code", "category", "year", "estimate"):
        bad |= prev[c].isna()
    bad |= bad_la(prev["la_code"]) | bad_code(prev["category"], PREVALENCE_CATEGORIES)
    bad |= prev["year"].notna() & ~prev["year"].astype("str").str.fullmatch(r"[0-9]{4}-[0-9]{2}").fillna(False)
    for c in ("estimate", "lower", "upper"):
        num = pd.to_numeric(prev[c], errors="coerce")
        bad |= prev[c].notna() & ~(np.isfinite(num) & (num >= 0)).fillna(False).astype(bool)  # "n/a" too
        prev[c] = num
    bad |= prev.duplicated(["la_code", "category", "year"]) & prev[["la_code", "category", "year"]].notna().all(axis=1)
    rejected["prevalence"] = int(bad.sum())
    prev = prev[~bad].copy()

    rev = None
    if (path := find(data, "reviews", required=False)) is not None:
        rev, bad = read(data, "reviews", path)
        numbers: dict[str, pd.Series] = {}
        for c in ("review_id", "client_id", "episode_id", "review_date", "stage"):
            bad |= rev[c].isna()
        bad |= bad_code(rev["stage"], STAGES) | bad_code(rev["housing"], HOUSING)
        for c in (*TOP_SUBSTANCES, *WORK_DAYS):
            bad |= bad_whole(rev[c], 28, numbers)
        bad |= rev["review_id"].notna() & rev["review_id"].duplicated()
        # the episode: a valid row (valid episode ids are unique), same client, triaged on or before the review
        episode = rev[["episode_id"]].merge(ep[["episode_id", "client_id", "triage_date"]], on="episode_id",
                                            how="left").set_index(rev.index)
        bad |= episode["client_id"].isna()
        bad |= (rev["client_id"] != episode["client_id"]).fillna(True).astype(bool)
        bad |= (rev["review_date"] < episode["triage_date"]).fillna(False).astype(bool)
        rejected["reviews"] = int(bad.sum())
        rev = rev[~bad].copy()
        for c in (*TOP_SUBSTANCES, *WORK_DAYS):
            rev[c] = numbers[c][~bad]
    return ep, rel, prev, rev, rejected


def period_of(ep: pd.DataFrame, rel: pd.DataFrame, rev: pd.DataFrame | None, period_end: str | None,
              months: int = 12):
    if period_end is None:  # the latest date found in the extract (every date column of every valid row)
        dates = [c for c in ("referral_date", "triage_date", "discharge_date", "hcv_offered", "hcv_tested",
                             "hcv_treatment_started") if c in ep]
        latest = max(ep[dates].max().max(), rel["release_date"].max(),
                     *([rev["review_date"].max()] if rev is not None and len(rev) else []))
        end = latest if latest.is_month_end else latest - pd.offsets.MonthEnd(1)
    else:
        end = pd.Timestamp(period_end)
    start = end - pd.DateOffset(months=months) + pd.Timedelta(days=1)
    return start.normalize(), end.normalize()


def people_in_treatment(ep: pd.DataFrame, start, end) -> pd.DataFrame:
    """One row per person: index episode (latest triage_date, then greatest episode_id) and flag union."""
    inp = ep[(ep["triage_date"] <= end) & (ep["discharge_date"].isna() | (ep["discharge_date"] >= start))].copy()
    subs = inp[SUBS]
    inp["opiate"] = subs.isin(OPIATES).any(axis=1)
    inp["crack"] = subs.isin(["crack"]).any(axis=1)
    inp["alcohol"] = subs.isin(["alcohol"]).any(axis=1)
    inp["other_drug"] = subs.isin(["crack", *OTHER_DRUGS]).any(axis=1)
    inp = inp.sort_values(["client_id", "triage_date", "episode_id"])
    own = ["episode_id", *SUBS, *[c for c in HCV if c in inp]]  # the index episode's own, for §9
    index = inp.drop_duplicates("client_id", keep="last").set_index("client_id")[
        ["la_code", "sex", "age", "discharge_date", "discharge_reason", *own]]
    people = index.join(inp.groupby("client_id")[FLAGS].any())
    people["adult"] = people["age"] >= 18
    people["substance_group"] = np.select(
        [people["opiate"], people["other_drug"] & people["alcohol"], people["other_drug"]],
        ["opiate", "non_opiate_and_alcohol", "non_opiate_only"], "alcohol_only")
    people["ocu_group"] = np.select(
        [people["opiate"] & people["crack"], people["opiate"], people["crack"]],
        ["opiate_and_crack", "opiate_only", "crack_only"], None)
    return people.reset_index()


def by_group(adults: pd.DataFrame, flag: str, metric: str) -> pd.DataFrame:
    """Per LA, for `all` and each substance group: people with `flag` over people."""
    everyone = adults.groupby("la_code")[flag].agg(["sum", "size"]).reset_index().assign(category="all")
    groups = (adults.groupby(["la_code", "substance_group"])[flag].agg(["sum", "size"]).reset_index()
              .rename(columns={"substance_group": "category"}))
    out = pd.concat([everyone, groups], ignore_index=True)
    return out.rename(columns={"sum": "numerator", "size": "denominator"}).assign(metric=metric)


def latest(tops: pd.DataFrame, first: bool = False) -> pd.DataFrame:
    """One TOP per person (column _p): the latest by review_date then review_id (the earliest, by both, if `first`)."""
    ordered = tops.sort_values(["_p", "review_date", "review_id"])
    return ordered.drop_duplicates("_p", keep="first" if first else "last").set_index("_p")


def spread(top: pd.DataFrame, column: str, n: int) -> np.ndarray:
    """`column` of one-TOP-per-person `top` as an array over the n people (NaN / None where they have none)."""
    values = top[column]
    if pd.api.types.is_numeric_dtype(values):
        out = np.full(n, np.nan)
        out[top.index.to_numpy()] = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        out = np.full(n, None, dtype=object)
        out[top.index.to_numpy()] = values.astype(object).where(values.notna(), None).to_numpy()
    return out


def top_outcomes(adults: pd.DataFrame, rev: pd.DataFrame, start, end, reduction_days: int) -> pd.DataFrame:
    """Per adult (index episode): completed / improving (§9 progress) and the latest TOP's housing and work days."""
    a = adults.reset_index(drop=True)
    n = len(a)
    pos = pd.Index(a["episode_id"]).get_indexer(rev["episode_id"])  # the adult whose index episode it is, or -1
    mine = rev[pos >= 0].assign(_p=pos[pos >= 0])
    in_period = mine[mine["review_date"].between(start, end)]
    first = latest(mine[mine["stage"] == "start"], first=True)           # start TOP, values null or not
    start_date = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    start_date[first.index.to_numpy()] = first["review_date"].to_numpy(dtype="datetime64[ns]")
    after = in_period["review_date"].to_numpy(dtype="datetime64[ns]") > start_date[in_period["_p"].to_numpy()]
    review = latest(in_period[in_period["stage"].isin(["review", "exit"]).to_numpy() & after])
    last_top = latest(in_period)                                          # latest TOP in the period
    completion_top = latest(mine[mine["review_date"] <= end])            # latest TOP on or before the end, any date

    out = pd.DataFrame({"la_code": a["la_code"], "substance_group": a["substance_group"]})
    successful = (a["discharge_reason"].isin(SUCCESSFUL) & (a["discharge_date"] <= end)).to_numpy()
    out["completed"] = successful & (spread(completion_top, "housing", n) != "acute")

    open_at_end = (a["discharge_date"].isna() | (a["discharge_date"] > end)).to_numpy()
    has_both = np.zeros(n, dtype=bool)
    has_both[first.index.intersection(review.index).to_numpy()] = True
    top_of = {s: a[s].map(TOP_COLUMN).to_numpy(dtype=object) for s in SUBS}  # the index episode's own substances
    any_pair, all_ok = np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
    for column in TOP_SUBSTANCES:
        cites = np.logical_or.reduce([top_of[s] == column for s in SUBS])
        s0, s1 = spread(first, column, n), spread(review, column, n)
        pair = cites & ~np.isnan(s0) & ~np.isnan(s1)
        with np.errstate(invalid="ignore"):
            ok = (s1 == 0) | (s0 - s1 >= reduction_days)
        any_pair |= pair
        all_ok &= ~pair | ok
    out["improving"] = open_at_end & has_both & any_pair & all_ok
    for column in ("housing", *WORK_DAYS):
        out[f"latest_{column}"] = spread(last_top, column, n)
    return out


def la_rows(ep, rel, prev, people, start, end, representation_months: int = 6, rev: pd.DataFrame | None = None,
            reduction_days: int = 7) -> pd.DataFrame:
    adults = people[people["adult"]].copy()
    frames = []

    # numbers in treatment
    counts = by_group(adults.assign(one=True), "one", "in_treatment")
    counts["numerator"], counts["denominator"] = counts["denominator"], np.nan
    young = people[~people["adult"]].groupby("la_code").size().rename("numerator").reset_index()
    frames += [counts, young.assign(category="young_people", metric="in_treatment", denominator=np.nan)]

    # unmet need
    latest = prev[prev["year"] == prev.groupby(["la_code", "category"])["year"].transform("max")]
    in_category = pd.DataFrame({
        "la_code": adults["la_code"],
        "ocu": adults["ocu_group"].notna(),
        "opiate_only": adults["ocu_group"] == "opiate_only",
        "crack_only": adults["ocu_group"] == "crack_only",
        "opiate_and_crack": adults["ocu_group"] == "opiate_and_crack",
        "alcohol": adults["substance_group"].isin(["alcohol_only", "non_opiate_and_alcohol"]),
    })
    numerators = in_category.groupby("la_code").sum().reset_index().melt(
        id_vars="la_code", var_name="category", value_name="numerator")
    unmet = latest.merge(numerators, on=["la_code", "category"], how="left")
    unmet["numerator"] = unmet["numerator"].fillna(0)
    unmet = unmet.rename(columns={"estimate": "denominator"})
    unmet["has_range"] = unmet["lower"].notna() & unmet["upper"].notna()
    frames.append(unmet[["la_code", "category", "numerator", "denominator", "lower", "upper", "has_range"]]
                  .assign(metric="unmet_need"))

    # continuity of care
    eligible = rel[rel["release_date"].between(start, end) & rel["exclusion"].isna()].copy()
    pairs = eligible[["release_id", "client_id", "release_date"]].merge(
        ep[["client_id", "triage_date"]], on="client_id")
    window = (pairs["triage_date"] >= pairs["release_date"]) & (
        pairs["triage_date"] <= pairs["release_date"] + pd.Timedelta(days=21))
    eligible["engaged"] = eligible["release_id"].isin(pairs.loc[window, "release_id"])
    frames.append(eligible.groupby("la_code")["engaged"].agg(["sum", "size"]).reset_index()
                  .rename(columns={"sum": "numerator", "size": "denominator"})
                  .assign(category="all", metric="continuity"))

    # deaths in treatment
    adults["died"] = (adults["discharge_reason"] == "client_died") & (adults["discharge_date"] <= end)
    frames.append(by_group(adults, "died", "deaths"))

    # mortality ratio (indirect standardisation by sex × age band, England rates)
    adults["age_band"] = pd.cut(adults["age"], [17, 29, 39, 49, 64, 200],
                                labels=["18-29", "30-39", "40-49", "50-64", "65+"])
    strata = adults.groupby(["la_code", "sex", "age_band"], observed=True)["died"].agg(
        deaths="sum", people="size").reset_index()
    rates = strata.groupby(["sex", "age_band"], observed=True)[["deaths", "people"]].sum()
    rates = (rates["deaths"] / rates["people"]).rename("rate").reset_index()
    strata = strata.merge(rates, on=["sex", "age_band"], how="left")
    strata["expected"] = strata["people"] * strata["rate"]
    frames.append(strata.groupby("la_code")[["deaths", "expected"]].sum().reset_index()
                  .rename(columns={"deaths": "numerator", "expected": "denominator"})
                  .assign(category="all", metric="mortality_ratio"))

    # successful completions without re-presentation
    adults["success"] = adults["discharge_reason"].isin(SUCCESSFUL) & (adults["discharge_date"] <= end)
    if representation_months > 0:
        candidates = adults.loc[adults["success"], ["client_id", "discharge_date"]].merge(
            ep[["client_id", "triage_date"]], on="client_id")
        returned = candidates.loc[
            (candidates["triage_date"] > candidates["discharge_date"])
            & (candidates["triage_date"] <= candidates["discharge_date"] + pd.DateOffset(months=representation_months)),
            "client_id"]
        adults["success"] &= ~adults["client_id"].isin(returned)
    frames.append(by_group(adults, "success", "completions"))

    if rev is not None:  # §9 TOP measures
        t = top_outcomes(adults, rev, start, end, reduction_days)
        t["progress"] = t["completed"] | t["improving"]
        frames.append(by_group(t, "progress", "progress"))
        for metric, category, column, hit in (
                ("housing", "acute", "latest_housing", lambda v: v == "acute"),
                ("housing", "no_problem", "latest_housing", lambda v: v == "none"),
                ("employment", "paid_work", "latest_paid_work_days", lambda v: v >= 1),
                ("employment", "voluntary_work", "latest_volunteer_days", lambda v: v >= 1),
                ("employment", "education", "latest_education_days", lambda v: v >= 1)):
            known = t[t[column].notna()]
            frames.append(known.assign(hit=hit(known[column]).astype(bool)).groupby("la_code")["hit"]
                          .agg(numerator="sum", denominator="size").reset_index()
                          .assign(metric=metric, category=category))
    if "hcv_offered" in adults:  # §9 hepatitis C cascade, index episode, each step on or before the end
        offered = (adults["hcv_offered"] <= end).fillna(False).astype(bool)
        tested = (adults["hcv_tested"] <= end).fillna(False).astype(bool)
        positive = tested & (adults["hcv_result"] == "positive").fillna(False).astype(bool)
        treated = positive & (adults["hcv_treatment_started"] <= end).fillna(False).astype(bool)
        steps = pd.DataFrame({"la_code": adults["la_code"], "adults": True, "offered": offered, "tested": tested,
                              "positive": positive, "treatment_started": treated})
        sums = steps.groupby("la_code").sum()
        for category, among in (("offered", "adults"), ("tested", "offered"), ("positive", "tested"),
                                ("treatment_started", "positive")):
            frames.append(pd.DataFrame({"la_code": sums.index, "numerator": sums[category].to_numpy(),
                                        "denominator": sums[among].to_numpy()})
                          .assign(metric="hepatitis_c", category=category))

    out = pd.concat(frames, ignore_index=True)
    for c in ("lower", "upper"):
        if c not in out:
            out[c] = np.nan
    return out[["metric", "la_code", "category", "numerator", "denominator", "lower", "upper", "has_range"]]


def rollup(la: pd.DataFrame) -> pd.DataFrame:
    geo = pd.read_csv(GEOGRAPHY, dtype=str)[["la_code", "region_code"]]
    la = la.merge(geo, on="la_code", how="left")
    la["numerator"] = la["numerator"].astype(float)
    la["denominator"] = la["denominator"].astype(float)
    la["has_range"] = la["has_range"].astype("boolean")
    aggs = {"numerator": ("numerator", "sum"), "denominator": ("denominator", lambda s: s.sum(min_count=1)),
            "lower": ("lower", lambda s: s.sum(min_count=1)), "upper": ("upper", lambda s: s.sum(min_count=1)),
            "has_range": ("has_range", "all")}
    regions = la[la["region_code"].notna()].groupby(["metric", "category", "region_code"]).agg(**aggs).reset_index()
    regions["area_code"], regions["area_type"] = regions["region_code"], "region"
    england = la.groupby(["metric", "category"]).agg(**aggs).reset_index()
    england["area_code"], england["area_type"], england["region_code"] = "E92000001", "england", None
    las = la.rename(columns={"la_code": "area_code"}).assign(area_type="la")
    return pd.concat([las, regions, england], ignore_index=True)


def wilson(o, n, z=Z):
    o, n = np.asarray(o, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(z * z + 4 * o * (1 - o / n))
        lo = np.where(o == 0, 0.0, (2 * o + z * z - z * root) / (2 * (n + z * z)))
        hi = np.where(o == n, 1.0, (2 * o + z * z + z * root) / (2 * (n + z * z)))
    return lo, hi


def byar(o, e, z=Z):
    o, e = np.asarray(o, float), np.asarray(e, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = 1 - 1 / (9 * o) - z / (3 * np.sqrt(o))
        lo = np.where((o == 0) | (base <= 0), 0.0, o * base**3 / e)
        hi = (o + 1) * (1 - 1 / (9 * (o + 1)) + z / (3 * np.sqrt(o + 1))) ** 3 / e
    return lo, hi


def finish(areas: pd.DataFrame) -> pd.DataFrame:
    count = areas["metric"] == "in_treatment"
    keep = np.where(count, areas["numerator"] > 0, areas["denominator"] > 0)
    a = areas[keep].copy()
    num, den, m = a["numerator"].to_numpy(), a["denominator"].to_numpy(), a["metric"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(m == "in_treatment", num, np.where(m == "unmet_need", 100 * (1 - num / den), 100 * num / den))
    lo, hi = np.full(len(a), np.nan), np.full(len(a), np.nan)
    prop = np.isin(m, PROPORTIONS)
    w_lo, w_hi = wilson(num, den)
    lo[prop], hi[prop] = 100 * w_lo[prop], 100 * w_hi[prop]
    ratio = m == "mortality_ratio"
    b_lo, b_hi = byar(num, den)
    lo[ratio], hi[ratio] = 100 * b_lo[ratio], 100 * b_hi[ratio]
    unmet = m == "unmet_need"
    lower, upper = a["lower"].to_numpy(float), a["upper"].to_numpy(float)
    has_range = a["has_range"].fillna(False).to_numpy(bool) & (lower > 0) & (upper > 0)
    u_lo, u_hi = wilson(den - num, den)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_lo, r_hi = 100 * (1 - num / lower), 100 * (1 - num / upper)
    ok = unmet & ~(num > den)
    lo[ok] = np.where(has_range, r_lo, 100 * u_lo)[ok]
    hi[ok] = np.where(has_range, r_hi, 100 * u_hi)[ok]
    a["value"], a["ci_lower"], a["ci_upper"] = value, lo, hi
    a.loc[count[keep].to_numpy(), "denominator"] = np.nan
    a["comparison"] = compare(a)
    cols = ["metric", "area_code", "area_type", "region_code", "category", "numerator", "denominator", "value",
            "ci_lower", "ci_upper", "comparison"]
    return a[cols].sort_values(["metric", "category", "area_type", "area_code"])


def compare(a: pd.DataFrame) -> list:
    """better/worse (higher/lower without polarity)/similar: England's value strictly outside the area's interval."""
    england = a[a["area_type"] == "england"].set_index(["metric", "category"])["value"].to_dict()
    out = []
    for metric, category, area_type, lo, hi in a[["metric", "category", "area_type", "ci_lower", "ci_upper"]].itertuples(
            index=False):
        polarity = POLARITY.get((metric, category), POLARITY.get(metric))
        ref = england.get((metric, category))
        if area_type == "england" or polarity is None or ref is None or pd.isna(lo) or pd.isna(hi):
            out.append(None)
        elif ref < lo:  # the area is above England
            out.append({HIGHER: "better", LOWER: "worse", NO_POLARITY: "higher"}[polarity])
        elif ref > hi:
            out.append({HIGHER: "worse", LOWER: "better", NO_POLARITY: "lower"}[polarity])
        else:
            out.append("similar")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", default="-", help="JSON output file ('-' = stdout)")
    parser.add_argument("--period-end", default=None)
    parser.add_argument("--reduction-days", type=int, default=7,
                        help="§9 progress: days of use fewer than at start that count as a substantial reduction")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    ep, rel, prev, rev, rejected = load(args.data)
    for table, n in rejected.items():
        if n:
            print(f"{table}: {n:,} rows rejected (contract §1/§9 input rules)", file=sys.stderr)
    if rev is None:
        print("no reviews table: progress, housing and employment left out", file=sys.stderr)
    if "hcv_offered" not in ep:
        print("no hcv_* columns on episodes: hepatitis_c left out", file=sys.stderr)
    start, end = period_of(ep, rel, rev, args.period_end)
    people = people_in_treatment(ep, start, end)
    results = finish(rollup(la_rows(ep, rel, prev, people, start, end, rev=rev, reduction_days=args.reduction_days)))
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in results.astype(object).where(results.notna(), None).to_dict("records")]
    doc = {"tool": "pandas", "period": {"start": start.date().isoformat(), "end": end.date().isoformat()},
           "rejected": rejected, "seconds": time.perf_counter() - started, "rows": rows}
    if args.out == "-":
        json.dump(doc, sys.stdout, default=str)
    else:
        with open(args.out, "w") as fh:
            json.dump(doc, fh, default=str)


if __name__ == "__main__":
    main()
