"""The cdp-metrics report written as plain DuckDB SQL (benchmark comparison, not part of the package).

    python bench/duckdb_metrics.py --data DIR [--out FILE] [--period-end YYYY-MM-DD]

Reads episodes / prison_releases / prevalence and, when present, reviews (CSV or
Parquet) from DIR, rejects rows that break the data contract's input rules (§1,
§9), builds people and index episodes (§3) and every metric of §4 for each LA,
region and England: in_treatment, unmet_need, continuity, deaths,
mortality_ratio, completions; and of §9: progress, housing, employment (when
there is a reviews table) and hepatitis_c (when episodes have hcv_* columns).
Values, 95% intervals (Wilson, prevalence range, Byar) and the comparison with
England are computed; no disclosure control (the benchmark leaves it to
cdp-metrics).

Written from the contract text alone, as an independent cross-check of cdp-metrics
(and of bench/pandas_metrics.py, written the same way).

Output: JSON {"tool", "period", "rejected", "seconds", "rows": [...]} with one row per
metric, area and category (numerator, denominator, value, ci_lower, ci_upper, comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb

OPIATES = ("heroin", "methadone", "buprenorphine", "other_opiate")
OTHER_DRUGS = ("cocaine", "cannabis", "amphetamine", "benzodiazepine", "ecstasy", "ketamine", "nps", "other_drug")
SUBSTANCES = (*OPIATES, "crack", *OTHER_DRUGS, "alcohol")
SUCCESSFUL = ("completed_drug_free", "completed_alcohol_free", "completed_occasional_user")
REASONS = (*SUCCESSFUL, "client_died", "transferred_community", "transferred_custody", "dropped_out",
           "withdrawn_by_provider", "declined_onward_referral", "other")
SEXES = ("M", "F", "X", "U")
EXCLUSIONS = ("transferred_prison", "deported", "died", "hospital")
PREVALENCE_CATEGORIES = ("ocu", "opiate_only", "crack_only", "opiate_and_crack", "alcohol")
GEOGRAPHY = Path(__file__).resolve().parents[1] / "src" / "cdp_metrics" / "data" / "geography.csv"
Z = 1.959964
LA_PATTERN = "E(06|08|09|10)[0-9]{6}"
# §9: TOP interviews and the hepatitis C cascade
STAGES = ("start", "review", "exit")
HOUSING = ("none", "at_risk", "acute")
HCV_RESULTS = ("positive", "negative")
HCV = ["hcv_offered", "hcv_tested", "hcv_result", "hcv_treatment_started"]
TOP_SUBSTANCES = ["days_opiates", "days_crack", "days_cocaine", "days_amphetamine", "days_cannabis", "days_alcohol"]
WORK_DAYS = ["paid_work_days", "volunteer_days", "education_days"]
TOP_COLUMN = {**{s: "days_opiates" for s in OPIATES}, "crack": "days_crack", "cocaine": "days_cocaine",
              "amphetamine": "days_amphetamine", "cannabis": "days_cannabis", "alcohol": "days_alcohol"}
# polarity per (metric, category): 'higher' / 'lower' is better, 'none' = no polarity; absent = no comparison
POLARITY = {
    **{("unmet_need", c): "lower" for c in PREVALENCE_CATEGORIES},
    ("continuity", "all"): "higher", ("mortality_ratio", "all"): "lower",
    **{(m, c): p for m, p in (("deaths", "lower"), ("completions", "higher"), ("progress", "higher"))
       for c in ("all", "opiate", "non_opiate_only", "non_opiate_and_alcohol", "alcohol_only")},
    ("housing", "acute"): "lower", ("housing", "no_problem"): "higher",
    **{("employment", c): "higher" for c in ("paid_work", "voluntary_work", "education")},
    ("hepatitis_c", "offered"): "higher", ("hepatitis_c", "tested"): "higher",
    ("hepatitis_c", "positive"): "none", ("hepatitis_c", "treatment_started"): "higher",
}
PROPORTIONS = ("continuity", "deaths", "completions", "progress", "housing", "employment", "hepatitis_c")

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


def sql_list(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def find(data: Path, table: str, required: bool = True) -> Path | None:
    for ext in (".csv", ".parquet", ".pq"):
        if (data / f"{table}{ext}").is_file():
            return data / f"{table}{ext}"
    if required:
        sys.exit(f"{data}: no {table}.csv or {table}.parquet")
    return None


def load_raw(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> dict[str, str]:
    """raw_<table>: the contract columns as read ('' → NULL; values taken as written) plus _row; returns column types.

    Episodes get the optional hcv_* columns (§9) when the file has any of them; the result then has them too.
    """
    if path.suffix == ".csv":
        source = f"(SELECT row_number() OVER () AS _row, * FROM read_csv('{path}', header = true, all_varchar = true))"
    else:
        source = f"(SELECT file_row_number + 1 AS _row, * FROM read_parquet('{path}', file_row_number = true))"
    types = {name: typ for name, typ, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    wanted = COLUMNS[table] + (HCV if table == "episodes" and any(c in types for c in HCV) else [])
    missing = [c for c in wanted if c not in types and c not in OPTIONAL]
    if missing:
        sys.exit(f"{path.name}: missing required column {', '.join(missing)}")
    cols = []
    for c in wanted:
        if c not in types:
            cols.append(f"NULL::VARCHAR AS {c}")
        elif types[c] == "VARCHAR":
            cols.append(f"NULLIF({c}, '') AS {c}")
        else:
            cols.append(c)
    con.execute(f"CREATE TEMP VIEW raw_{table} AS SELECT _row, {', '.join(cols)} FROM {source}")
    return {c: types.get(c, "VARCHAR") for c in wanted}


def as_date(col: str, types: dict[str, str]) -> str:
    if types[col] == "DATE":
        return col
    if types[col] == "VARCHAR":
        return f"CASE WHEN regexp_full_match({col}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN TRY_CAST({col} AS DATE) END"
    return f"TRY_CAST({col} AS DATE)"


def bad_whole(col: str, types: dict[str, str], top: int) -> str:
    """A value that is not a whole number from 0 to `top` (written as digits, optionally `.0`)."""
    shape = f"NOT regexp_full_match({col}, '[0-9]+(\\.0*)?') OR " if types[col] == "VARCHAR" else ""
    num = f"TRY_CAST({col} AS DOUBLE)"
    return f"({col} IS NOT NULL AND ({shape}{num} IS NULL OR {num} <> floor({num}) OR {num} NOT BETWEEN 0 AND {top}))"


def bad_age(types: dict[str, str]) -> str:
    return bad_whole("age", types, 120)


def bad_date(col: str, types: dict[str, str]) -> str:
    return f"({col} IS NOT NULL AND {as_date(col, types)} IS NULL)"


def bad_code(col: str, codes) -> str:
    return f"({col} IS NOT NULL AND {col} NOT IN {sql_list(codes)})"


def load_tables(con: duckdb.DuckDBPyConnection, data: Path) -> tuple[dict[str, int], bool, bool]:
    """Typed valid rows in episodes, releases, prevalence (and reviews when present).

    Returns rows rejected per table, whether there is a reviews table, whether episodes have hcv_* columns.
    """
    t = load_raw(con, "episodes", find(data, "episodes"))
    has_hcv = "hcv_offered" in t
    subs = ("substance_1", "substance_2", "substance_3")
    ocu = " OR ".join(f"{s} IN {sql_list((*OPIATES, 'crack'))}" for s in subs)
    if has_hcv:  # §9: a hepatitis C error rejects the whole episode row
        hcv_cols = (", hcv_offered_d AS hcv_offered, hcv_tested_d AS hcv_tested, hcv_result, "
                    "hcv_treatment_d AS hcv_treatment_started")
        hcv_typed = (f", {as_date('hcv_offered', t)} AS hcv_offered_d, {as_date('hcv_tested', t)} AS hcv_tested_d, "
                     f"{as_date('hcv_treatment_started', t)} AS hcv_treatment_d")
        hcv_rules = f"""
                   AND NOT {bad_date('hcv_offered', t)} AND NOT {bad_date('hcv_tested', t)}
                   AND NOT {bad_date('hcv_treatment_started', t)} AND NOT {bad_code('hcv_result', HCV_RESULTS)}
                   AND NOT (hcv_tested IS NOT NULL AND hcv_offered IS NULL)
                   AND NOT (hcv_result IS NOT NULL AND hcv_tested IS NULL)
                   AND NOT (hcv_treatment_started IS NOT NULL AND coalesce(hcv_result <> 'positive', true))
                   AND NOT coalesce(hcv_tested_d < hcv_offered_d, false)
                   AND NOT coalesce(hcv_treatment_d < hcv_tested_d, false)"""
    else:
        hcv_cols = hcv_typed = hcv_rules = ""
    # One pass: type every column, check every rule, keep the verdict; `episodes` is the valid rows.
    con.execute(f"""
        CREATE TEMP TABLE checked_episodes AS
        SELECT episode_id, client_id, la_code, sex, CAST(TRY_CAST(age AS DOUBLE) AS INTEGER) AS age,
               substance_1, substance_2, substance_3,
               referral_d AS referral_date, triage_d AS triage_date, discharge_d AS discharge_date, discharge_reason
               {hcv_cols},
               coalesce(
                   episode_id IS NOT NULL AND client_id IS NOT NULL AND la_code IS NOT NULL AND sex IS NOT NULL
                   AND age IS NOT NULL AND substance_1 IS NOT NULL AND triage_d IS NOT NULL
                   AND regexp_full_match(la_code, '{LA_PATTERN}')
                   AND NOT {bad_code('sex', SEXES)} AND NOT {bad_age(t)}
                   AND NOT {bad_code('substance_1', SUBSTANCES)} AND NOT {bad_code('substance_2', SUBSTANCES)}
                   AND NOT {bad_code('substance_3', SUBSTANCES)} AND NOT {bad_code('discharge_reason', REASONS)}
                   AND NOT (referral_date IS NOT NULL AND referral_d IS NULL)
                   AND NOT (discharge_date IS NOT NULL AND discharge_d IS NULL)
                   AND occurrence = 1
                   AND NOT coalesce(discharge_d < triage_d, false)
                   AND (discharge_reason IS NULL) = (discharge_date IS NULL)
                   AND NOT coalesce(discharge_reason = 'completed_occasional_user' AND ({ocu}), false)
                   {hcv_rules},
                   false) AS ok
        FROM (
            SELECT *,
                   {as_date('referral_date', t)} AS referral_d,
                   {as_date('triage_date', t)} AS triage_d,
                   {as_date('discharge_date', t)} AS discharge_d
                   {hcv_typed},
                   row_number() OVER (PARTITION BY episode_id ORDER BY _row) AS occurrence
            FROM raw_episodes
        )""")
    con.execute("CREATE TEMP VIEW episodes AS SELECT * EXCLUDE (ok) FROM checked_episodes WHERE ok")

    t = load_raw(con, "prison_releases", find(data, "prison_releases"))
    con.execute(f"""
        CREATE TEMP TABLE releases AS
        SELECT release_id, client_id, la_code, sex, CAST(CAST(age AS DOUBLE) AS INTEGER) AS age,
               {as_date('release_date', t)} AS release_date, exclusion
        FROM (SELECT *, row_number() OVER (PARTITION BY release_id ORDER BY _row) AS occurrence FROM raw_prison_releases)
        WHERE release_id IS NOT NULL AND client_id IS NOT NULL AND la_code IS NOT NULL AND sex IS NOT NULL
          AND age IS NOT NULL AND release_date IS NOT NULL AND {as_date('release_date', t)} IS NOT NULL
          AND regexp_full_match(la_code, '{LA_PATTERN}')
          AND NOT {bad_code('sex', SEXES)} AND NOT {bad_age(t)} AND NOT {bad_code('exclusion', EXCLUSIONS)}
          AND occurrence = 1""")

    t = load_raw(con, "prevalence", find(data, "prevalence"))

    def number(col: str) -> str:
        return f"TRY_CAST({col} AS DOUBLE)"

    def bad_number(col: str) -> str:
        return f"({col} IS NOT NULL AND NOT coalesce(isfinite({number(col)}) AND {number(col)} >= 0, false))"

    con.execute(f"""
        CREATE TEMP TABLE prevalence AS
        SELECT la_code, category, year, {number('estimate')} AS estimate,
               {number('lower')} AS lower, {number('upper')} AS upper
        FROM (SELECT *, row_number() OVER (PARTITION BY la_code, category, year ORDER BY _row) AS occurrence
              FROM raw_prevalence)
        WHERE la_code IS NOT NULL AND category IS NOT NULL AND year IS NOT NULL AND estimate IS NOT NULL
          AND regexp_full_match(la_code, '{LA_PATTERN}') AND NOT {bad_code('category', PREVALENCE_CATEGORIES)}
          AND regexp_full_match(year, '[0-9]{{4}}-[0-9]{{2}}')
          AND NOT {bad_number('estimate')} AND NOT {bad_number('lower')} AND NOT {bad_number('upper')}
          AND occurrence = 1""")

    rejected = {
        "episodes": con.execute("SELECT count(*) FILTER (WHERE NOT ok) FROM checked_episodes").fetchone()[0],
        **{table: con.execute(f"SELECT (SELECT count(*) FROM raw_{table}) - (SELECT count(*) FROM {valid})").fetchone()[0]
           for table, valid in (("prison_releases", "releases"), ("prevalence", "prevalence"))},
    }

    path = find(data, "reviews", required=False)
    if path is not None:
        t = load_raw(con, "reviews", path)
        days = [*TOP_SUBSTANCES, *WORK_DAYS]
        typed_days = ", ".join(f"CAST(TRY_CAST(r.{c} AS DOUBLE) AS INTEGER) AS {c}" for c in days)
        day_rules = " AND ".join(f"NOT {bad_whole('r.' + c, {'r.' + c: t[c]}, 28)}" for c in days)
        # §9 rules; the episode must be a valid row (its first occurrence, since later ones are rejected)
        con.execute(f"""
            CREATE TEMP TABLE checked_reviews AS
            SELECT r.review_id, r.client_id, r.episode_id, r.review_d AS review_date, r.stage, {typed_days}, r.housing,
                   coalesce(
                       r.review_id IS NOT NULL AND r.client_id IS NOT NULL AND r.episode_id IS NOT NULL
                       AND r.stage IS NOT NULL AND r.review_d IS NOT NULL
                       AND NOT {bad_code('r.stage', STAGES)} AND NOT {bad_code('r.housing', HOUSING)}
                       AND {day_rules}
                       AND r.occurrence = 1
                       AND e.episode_id IS NOT NULL
                       AND r.client_id = e.client_id
                       AND r.review_d >= e.triage_date,
                       false) AS ok
            FROM (
                SELECT *, {as_date('review_date', t)} AS review_d,
                       row_number() OVER (PARTITION BY review_id ORDER BY _row) AS occurrence
                FROM raw_reviews
            ) r
            LEFT JOIN episodes e ON e.episode_id = r.episode_id""")
        con.execute("CREATE TEMP VIEW reviews AS SELECT * EXCLUDE (ok) FROM checked_reviews WHERE ok")
        rejected["reviews"] = con.execute("SELECT count(*) FILTER (WHERE NOT ok) FROM checked_reviews").fetchone()[0]
    return rejected, path is not None, has_hcv


def compute(con: duckdb.DuckDBPyConnection, period_end: str | None, months: int = 12,
            representation_months: int = 6, has_reviews: bool = False, has_hcv: bool = False,
            reduction_days: int = 7) -> tuple[str, str]:
    """Create table `results` (every metric, area and category); returns the period (start, end)."""
    if period_end is None:
        # the latest date found in the extract: every date column of every valid row
        hcv_dates = ", hcv_offered, hcv_tested, hcv_treatment_started" if has_hcv else ""
        review_dates = " UNION ALL SELECT review_date FROM reviews" if has_reviews else ""
        con.execute(f"""
            CREATE TEMP TABLE period AS
            WITH latest AS (
                SELECT max(d) AS d FROM (
                    SELECT greatest(referral_date, triage_date, discharge_date{hcv_dates}) AS d FROM episodes
                    UNION ALL SELECT release_date FROM releases{review_dates})
            )
            SELECT CASE WHEN d = last_day(d) THEN d ELSE CAST(date_trunc('month', d) - INTERVAL 1 DAY AS DATE) END
                   AS period_end
            FROM latest""")
    else:
        con.execute(f"CREATE TEMP TABLE period AS SELECT DATE '{period_end}' AS period_end")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE period AS
        SELECT CAST(period_end - INTERVAL {months} MONTH + INTERVAL 1 DAY AS DATE) AS p_start, period_end AS p_end
        FROM period""")
    start, end = con.execute("SELECT p_start::VARCHAR, p_end::VARCHAR FROM period").fetchone()

    def any_of(codes) -> str:
        return " OR ".join(f"coalesce({s} IN {sql_list(codes)}, false)" for s in ("substance_1", "substance_2", "substance_3"))

    # People in treatment: index episode (latest triage_date, then greatest episode_id) and the
    # union of substance flags over the person's in-period episodes.
    con.execute(f"""
        CREATE TEMP TABLE people AS
        WITH in_period AS (
            SELECT e.*,
                   {any_of(OPIATES)} AS opiate,
                   {any_of(('crack',))} AS crack,
                   {any_of(('alcohol',))} AS alcohol,
                   {any_of(('crack', *OTHER_DRUGS))} AS other_drug
            FROM episodes e, period
            WHERE e.triage_date <= p_end AND (e.discharge_date IS NULL OR e.discharge_date >= p_start)
        ),
        flagged AS (
            SELECT client_id, la_code, sex, age, discharge_date, discharge_reason,
                   episode_id, substance_1, substance_2, substance_3{", " + ", ".join(HCV) if has_hcv else ""},
                   bool_or(opiate) OVER client AS opiate,
                   bool_or(crack) OVER client AS crack,
                   bool_or(alcohol) OVER client AS alcohol,
                   bool_or(other_drug) OVER client AS other_drug
            FROM in_period
            WINDOW client AS (PARTITION BY client_id)
            QUALIFY row_number() OVER (PARTITION BY client_id ORDER BY triage_date DESC, episode_id DESC) = 1
        )
        SELECT *,
               age >= 18 AS adult,
               CASE WHEN opiate THEN 'opiate'
                    WHEN other_drug AND alcohol THEN 'non_opiate_and_alcohol'
                    WHEN other_drug THEN 'non_opiate_only'
                    ELSE 'alcohol_only' END AS substance_group,
               CASE WHEN opiate AND crack THEN 'opiate_and_crack'
                    WHEN opiate THEN 'opiate_only'
                    WHEN crack THEN 'crack_only' END AS ocu_group
        FROM flagged""")

    v2 = ""
    if has_reviews:
        tops(con, reduction_days)
        v2 += f"""
        -- §9 substantial progress: completed (no acute housing at the latest TOP) or improving
        UNION ALL
        SELECT 'progress', la_code,
               CASE WHEN GROUPING(substance_group) = 1 THEN 'all' ELSE substance_group END,
               count(*) FILTER (WHERE completed OR improving), count(*), NULL, NULL, NULL
        FROM people_tops WHERE adult
        GROUP BY GROUPING SETS ((la_code), (la_code, substance_group))

        -- §9 housing and employment at the latest TOP in the period
        UNION ALL
        SELECT metric, la_code, category, numerator, denominator, NULL, NULL, NULL FROM (
            SELECT la_code,
                   count(*) FILTER (WHERE lt_housing = 'acute') AS h_acute_n,
                   count(*) FILTER (WHERE lt_housing = 'none') AS h_none_n,
                   count(*) FILTER (WHERE lt_housing IS NOT NULL) AS h_den,
                   count(*) FILTER (WHERE lt_paid >= 1) AS paid_n, count(lt_paid) AS paid_den,
                   count(*) FILTER (WHERE lt_volunteer >= 1) AS vol_n, count(lt_volunteer) AS vol_den,
                   count(*) FILTER (WHERE lt_education >= 1) AS edu_n, count(lt_education) AS edu_den
            FROM people_tops WHERE adult GROUP BY la_code
        ) x,
        LATERAL (VALUES ('housing', 'acute', h_acute_n, h_den), ('housing', 'no_problem', h_none_n, h_den),
                        ('employment', 'paid_work', paid_n, paid_den),
                        ('employment', 'voluntary_work', vol_n, vol_den),
                        ('employment', 'education', edu_n, edu_den)) v(metric, category, numerator, denominator)"""
    if has_hcv:
        v2 += """
        -- §9 hepatitis C cascade on the index episode, each step on or before the period end
        UNION ALL
        SELECT 'hepatitis_c', la_code, category, numerator, denominator, NULL, NULL, NULL FROM (
            SELECT la_code,
                   count(*) AS adults,
                   count(*) FILTER (WHERE hcv_offered <= p_end) AS offered,
                   count(*) FILTER (WHERE hcv_tested <= p_end) AS tested,
                   count(*) FILTER (WHERE hcv_tested <= p_end AND hcv_result = 'positive') AS positive,
                   count(*) FILTER (WHERE hcv_tested <= p_end AND hcv_result = 'positive'
                                      AND hcv_treatment_started <= p_end) AS treated
            FROM people, period WHERE adult GROUP BY la_code
        ) x,
        LATERAL (VALUES ('offered', offered, adults), ('tested', tested, offered), ('positive', positive, tested),
                        ('treatment_started', treated, positive)) v(category, numerator, denominator)"""

    # LA-level numerators and denominators of every metric, in one long table.
    con.execute(f"""
        CREATE TEMP TABLE la_rows AS
        -- numbers in treatment: adults (all, by substance group) and young people
        SELECT 'in_treatment' AS metric, la_code,
               CASE WHEN GROUPING(substance_group) = 1 THEN 'all' ELSE substance_group END AS category,
               count(*)::DOUBLE AS numerator, NULL::DOUBLE AS denominator,
               NULL::DOUBLE AS lower, NULL::DOUBLE AS upper, NULL::BOOLEAN AS has_range
        FROM people WHERE adult
        GROUP BY GROUPING SETS ((la_code), (la_code, substance_group))
        UNION ALL
        SELECT 'in_treatment', la_code, 'young_people', count(*), NULL, NULL, NULL, NULL
        FROM people WHERE NOT adult GROUP BY la_code

        -- unmet need: adults in each prevalence category beside the latest estimate
        UNION ALL
        SELECT 'unmet_need', p.la_code, p.category, coalesce(n.numerator, 0), p.estimate, p.lower, p.upper,
               p.lower IS NOT NULL AND p.upper IS NOT NULL
        FROM (SELECT * FROM prevalence QUALIFY year = max(year) OVER (PARTITION BY la_code, category)) p
        LEFT JOIN (
            UNPIVOT (
                SELECT la_code,
                       count(*) FILTER (WHERE ocu_group IS NOT NULL) AS ocu,
                       count(*) FILTER (WHERE ocu_group = 'opiate_only') AS opiate_only,
                       count(*) FILTER (WHERE ocu_group = 'crack_only') AS crack_only,
                       count(*) FILTER (WHERE ocu_group = 'opiate_and_crack') AS opiate_and_crack,
                       count(*) FILTER (WHERE substance_group IN ('alcohol_only', 'non_opiate_and_alcohol')) AS alcohol
                FROM people WHERE adult GROUP BY la_code
            ) ON ocu, opiate_only, crack_only, opiate_and_crack, alcohol INTO NAME category VALUE numerator
        ) n ON n.la_code = p.la_code AND n.category = p.category

        -- continuity of care: releases in the period, not excluded; engaged within 21 days
        UNION ALL
        SELECT 'continuity', r.la_code, 'all',
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM episodes e
                   WHERE e.client_id = r.client_id
                     AND e.triage_date BETWEEN r.release_date AND r.release_date + INTERVAL 21 DAY)),
               count(*), NULL, NULL, NULL
        FROM releases r, period
        WHERE r.release_date BETWEEN p_start AND p_end AND r.exclusion IS NULL
        GROUP BY r.la_code

        -- deaths in treatment
        UNION ALL
        SELECT 'deaths', la_code,
               CASE WHEN GROUPING(substance_group) = 1 THEN 'all' ELSE substance_group END,
               count(*) FILTER (WHERE discharge_reason = 'client_died' AND discharge_date <= p_end),
               count(*), NULL, NULL, NULL
        FROM people, period WHERE adult
        GROUP BY GROUPING SETS ((la_code), (la_code, substance_group))

        -- successful completions without re-presentation within {representation_months} months
        UNION ALL
        SELECT 'completions', la_code,
               CASE WHEN GROUPING(substance_group) = 1 THEN 'all' ELSE substance_group END,
               count(*) FILTER (
                   WHERE discharge_reason IN {sql_list(SUCCESSFUL)} AND discharge_date <= p_end
                     AND NOT EXISTS (
                         SELECT 1 FROM episodes e
                         WHERE e.client_id = p.client_id
                           AND e.triage_date > p.discharge_date
                           AND e.triage_date <= p.discharge_date + INTERVAL {representation_months} MONTH)),
               count(*), NULL, NULL, NULL
        FROM people p, period WHERE adult
        GROUP BY GROUPING SETS ((la_code), (la_code, substance_group))

        -- mortality ratio: observed deaths over expected (England rate per sex × age band)
        UNION ALL
        SELECT 'mortality_ratio', la_code, 'all', sum(deaths), sum(adults * rate), NULL, NULL, NULL
        FROM (
            SELECT *, sum(deaths) OVER stratum / sum(adults) OVER stratum AS rate
            FROM (
                SELECT la_code, sex,
                       CASE WHEN age < 30 THEN '18-29' WHEN age < 40 THEN '30-39' WHEN age < 50 THEN '40-49'
                            WHEN age < 65 THEN '50-64' ELSE '65+' END AS age_band,
                       count(*) FILTER (WHERE discharge_reason = 'client_died' AND discharge_date <= p_end) AS deaths,
                       count(*) AS adults
                FROM people, period WHERE adult
                GROUP BY ALL
            )
            WINDOW stratum AS (PARTITION BY sex, age_band)
        )
        GROUP BY la_code
        {v2}""")

    # LA, region and England rows: sums of numerators and denominators, then values and intervals.
    con.execute(f"""
        CREATE TEMP TABLE areas AS
        SELECT metric, category,
               CASE WHEN GROUPING(l.la_code) = 0 THEN 'la' WHEN GROUPING(g.region_code) = 0 THEN 'region'
                    ELSE 'england' END AS area_type,
               CASE WHEN GROUPING(l.la_code) = 0 THEN l.la_code WHEN GROUPING(g.region_code) = 0 THEN g.region_code
                    ELSE 'E92000001' END AS area_code,
               g.region_code,
               sum(numerator) AS numerator, sum(denominator) AS denominator,
               sum(lower) AS lower, sum(upper) AS upper, bool_and(has_range) AS has_range
        FROM la_rows l LEFT JOIN read_csv('{GEOGRAPHY}', all_varchar = true) g ON g.la_code = l.la_code
        GROUP BY GROUPING SETS ((metric, category, l.la_code, g.region_code), (metric, category, g.region_code),
                                (metric, category))
        HAVING NOT (GROUPING(l.la_code) = 1 AND GROUPING(g.region_code) = 0 AND g.region_code IS NULL)""")
    z = Z
    wilson_lo = f"CASE WHEN {{o}} = 0 THEN 0 ELSE (2*{{o}} + {z*z} - {z}*sqrt({z*z} + 4*{{o}}*(1 - {{o}}/{{n}}))) / (2*({{n}} + {z*z})) END"
    wilson_hi = f"CASE WHEN {{o}} = {{n}} THEN 1 ELSE (2*{{o}} + {z*z} + {z}*sqrt({z*z} + 4*{{o}}*(1 - {{o}}/{{n}}))) / (2*({{n}} + {z*z})) END"
    p_lo, p_hi = wilson_lo.format(o="numerator", n="denominator"), wilson_hi.format(o="numerator", n="denominator")
    u_lo = wilson_lo.format(o="(denominator - numerator)", n="denominator")
    u_hi = wilson_hi.format(o="(denominator - numerator)", n="denominator")
    byar_base = f"(1 - 1/(9*numerator) - {z}/(3*sqrt(numerator)))"
    byar_lo = f"CASE WHEN numerator = 0 OR {byar_base} <= 0 THEN 0 ELSE numerator * pow({byar_base}, 3) / denominator END"
    byar_hi = f"(numerator + 1) * pow(1 - 1/(9*(numerator + 1)) + {z}/(3*sqrt(numerator + 1)), 3) / denominator"
    has_range = "has_range AND lower > 0 AND upper > 0"
    con.execute(f"""
        CREATE TEMP TABLE values_ AS
        SELECT metric, area_code, area_type, region_code, category, numerator, denominator,
               CASE WHEN metric = 'in_treatment' THEN numerator
                    WHEN metric = 'unmet_need' THEN 100 * (1 - numerator / denominator)
                    ELSE 100 * numerator / denominator END AS value,
               CASE WHEN metric IN {sql_list(PROPORTIONS)} THEN 100 * {p_lo}
                    WHEN metric = 'mortality_ratio' THEN 100 * {byar_lo}
                    WHEN metric = 'unmet_need' AND numerator > denominator THEN NULL
                    WHEN metric = 'unmet_need' AND {has_range} THEN 100 * (1 - numerator / lower)
                    WHEN metric = 'unmet_need' THEN 100 * {u_lo} END AS ci_lower,
               CASE WHEN metric IN {sql_list(PROPORTIONS)} THEN 100 * {p_hi}
                    WHEN metric = 'mortality_ratio' THEN 100 * {byar_hi}
                    WHEN metric = 'unmet_need' AND numerator > denominator THEN NULL
                    WHEN metric = 'unmet_need' AND {has_range} THEN 100 * (1 - numerator / upper)
                    WHEN metric = 'unmet_need' THEN 100 * {u_hi} END AS ci_upper
        FROM areas
        WHERE CASE WHEN metric = 'in_treatment' THEN numerator > 0 ELSE denominator > 0 END""")
    # Comparison with England: England's value strictly outside the area's interval, read by polarity.
    polarity = " ".join(f"WHEN r.metric = '{m}' AND r.category = '{c}' THEN '{p}'" for (m, c), p in POLARITY.items())
    con.execute(f"""
        CREATE TEMP TABLE results AS
        SELECT r.* EXCLUDE (pol),
               CASE WHEN r.area_type = 'england' OR r.ci_lower IS NULL OR r.ci_upper IS NULL OR pol IS NULL
                         OR e.value IS NULL THEN NULL
                    WHEN e.value < r.ci_lower THEN CASE pol WHEN 'higher' THEN 'better' WHEN 'lower' THEN 'worse'
                                                            ELSE 'higher' END
                    WHEN e.value > r.ci_upper THEN CASE pol WHEN 'higher' THEN 'worse' WHEN 'lower' THEN 'better'
                                                            ELSE 'lower' END
                    ELSE 'similar' END AS comparison
        FROM (SELECT *, CASE {polarity} END AS pol FROM values_ r) r
        LEFT JOIN values_ e ON e.metric = r.metric AND e.category = r.category AND e.area_type = 'england'
        ORDER BY r.metric, r.category, r.area_type, r.area_code""")
    return start, end


def tops(con: duckdb.DuckDBPyConnection, reduction_days: int) -> None:
    """Table people_tops: people plus what §9 reads from their index episode's TOPs.

    start TOP: earliest `start` (ties: smallest review_id), whatever its values; latest review: latest `review` or
    `exit` in the period on a date strictly after the start TOP's (ties: greatest review_id); latest TOP: latest of
    any stage in the period; and, for "completed", the latest TOP of any stage on or before the period end.
    """
    s_cols = ", ".join(f"{c} AS s_{c}" for c in TOP_SUBSTANCES)
    l_cols = ", ".join(f"{c} AS l_{c}" for c in TOP_SUBSTANCES)
    subs = ("substance_1", "substance_2", "substance_3")

    def cites(column: str) -> str:
        codes = [s for s, c in TOP_COLUMN.items() if c == column]
        return "(" + " OR ".join(f"coalesce(p.{s} IN {sql_list(codes)}, false)" for s in subs) + ")"

    # per TOP column: does the index episode cite it with a value at start and at the latest review; and did it improve
    pair = {c: f"({cites(c)} AND s.s_{c} IS NOT NULL AND l.l_{c} IS NOT NULL)" for c in TOP_SUBSTANCES}
    improved = {c: f"(l.l_{c} = 0 OR s.s_{c} - l.l_{c} >= {reduction_days})" for c in TOP_SUBSTANCES}
    con.execute(f"""
        CREATE TEMP TABLE people_tops AS
        WITH mine AS (  -- TOPs of adults' index episodes
            SELECT r.* FROM reviews r JOIN people p ON p.episode_id = r.episode_id WHERE p.adult
        ),
        start_top AS (
            SELECT episode_id, review_date AS s_date, {s_cols} FROM mine WHERE stage = 'start'
            QUALIFY row_number() OVER (PARTITION BY episode_id ORDER BY review_date, review_id) = 1
        ),
        latest_review AS (
            SELECT m.episode_id, {l_cols} FROM mine m JOIN start_top s USING (episode_id), period
            WHERE m.stage IN ('review', 'exit') AND m.review_date BETWEEN p_start AND p_end AND m.review_date > s.s_date
            QUALIFY row_number() OVER (PARTITION BY m.episode_id ORDER BY m.review_date DESC, m.review_id DESC) = 1
        ),
        latest_top AS (
            SELECT episode_id, housing AS lt_housing, paid_work_days AS lt_paid, volunteer_days AS lt_volunteer,
                   education_days AS lt_education
            FROM mine, period WHERE review_date BETWEEN p_start AND p_end
            QUALIFY row_number() OVER (PARTITION BY episode_id ORDER BY review_date DESC, review_id DESC) = 1
        ),
        completion_top AS (
            SELECT episode_id, housing AS c_housing FROM mine, period WHERE review_date <= p_end
            QUALIFY row_number() OVER (PARTITION BY episode_id ORDER BY review_date DESC, review_id DESC) = 1
        )
        SELECT p.la_code, p.adult, p.substance_group, lt.lt_housing, lt.lt_paid, lt.lt_volunteer, lt.lt_education,
               coalesce(p.discharge_reason IN {sql_list(SUCCESSFUL)} AND p.discharge_date <= p_end
                        AND coalesce(c.c_housing <> 'acute', true), false) AS completed,
               coalesce((p.discharge_date IS NULL OR p.discharge_date > p_end)
                        AND s.episode_id IS NOT NULL AND l.episode_id IS NOT NULL
                        AND ({" OR ".join(pair.values())})
                        AND {" AND ".join(f"(NOT {pair[c]} OR {improved[c]})" for c in TOP_SUBSTANCES)},
                        false) AS improving
        FROM people p CROSS JOIN period
        LEFT JOIN start_top s ON s.episode_id = p.episode_id
        LEFT JOIN latest_review l ON l.episode_id = p.episode_id
        LEFT JOIN latest_top lt ON lt.episode_id = p.episode_id
        LEFT JOIN completion_top c ON c.episode_id = p.episode_id
        WHERE p.adult""")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", default="-", help="JSON output file ('-' = stdout)")
    parser.add_argument("--period-end", default=None)
    parser.add_argument("--reduction-days", type=int, default=7,
                        help="§9 progress: days of use fewer than at start that count as a substantial reduction")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    con = duckdb.connect()
    rejected, has_reviews, has_hcv = load_tables(con, args.data)
    for table, n in rejected.items():
        if n:
            print(f"{table}: {n:,} rows rejected (contract §1/§9 input rules)", file=sys.stderr)
    if not has_reviews:
        print("no reviews table: progress, housing and employment left out", file=sys.stderr)
    if not has_hcv:
        print("no hcv_* columns on episodes: hepatitis_c left out", file=sys.stderr)
    start, end = compute(con, args.period_end, has_reviews=has_reviews, has_hcv=has_hcv,
                         reduction_days=args.reduction_days)
    cols = [d[0] for d in con.execute("SELECT * FROM results LIMIT 0").description]
    rows = [dict(zip(cols, r)) for r in con.execute("SELECT * FROM results").fetchall()]
    doc = {"tool": "duckdb", "period": {"start": start, "end": end}, "rejected": rejected,
           "seconds": time.perf_counter() - started, "rows": rows}
    if args.out == "-":
        json.dump(doc, sys.stdout)
    else:
        with open(args.out, "w") as fh:
            json.dump(doc, fh)


if __name__ == "__main__":
    main()
