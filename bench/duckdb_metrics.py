"""The cdp-metrics report written as plain DuckDB SQL (benchmark comparison, not part of the package).

    python bench/duckdb_metrics.py --data DIR [--out FILE] [--period-end YYYY-MM-DD]

Reads episodes / prison_releases / prevalence (CSV or Parquet) from DIR, rejects
rows that break the data contract's input rules (§1), builds people and index
episodes (§3) and every metric of §4 for each LA, region and England:
in_treatment, unmet_need, continuity, deaths, mortality_ratio, completions.
Values and 95% intervals (Wilson, prevalence range, Byar) are computed; no
comparison with England and no disclosure control (cheap, row-level work on a
few thousand rows that the benchmark leaves to cdp-metrics).

Output: JSON {"tool", "period", "rejected", "seconds", "rows": [...]} with one row per
metric, area and category (numerator, denominator, value, ci_lower, ci_upper).
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

COLUMNS = {
    "episodes": ["episode_id", "client_id", "la_code", "sex", "age", "substance_1", "substance_2", "substance_3",
                 "referral_date", "triage_date", "discharge_date", "discharge_reason"],
    "prison_releases": ["release_id", "client_id", "la_code", "sex", "age", "release_date", "exclusion"],
    "prevalence": ["la_code", "category", "year", "estimate", "lower", "upper"],
}
OPTIONAL = {"substance_2", "substance_3", "referral_date", "lower", "upper"}


def sql_list(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def find(data: Path, table: str) -> Path:
    for ext in (".csv", ".parquet", ".pq"):
        if (data / f"{table}{ext}").is_file():
            return data / f"{table}{ext}"
    sys.exit(f"{data}: no {table}.csv or {table}.parquet")


def load_raw(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> dict[str, str]:
    """raw_<table>: the contract columns as read ('' → NULL; values taken as written) plus _row; returns column types."""
    if path.suffix == ".csv":
        source = f"(SELECT row_number() OVER () AS _row, * FROM read_csv('{path}', header = true, all_varchar = true))"
    else:
        source = f"(SELECT file_row_number + 1 AS _row, * FROM read_parquet('{path}', file_row_number = true))"
    types = {name: typ for name, typ, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    missing = [c for c in COLUMNS[table] if c not in types and c not in OPTIONAL]
    if missing:
        sys.exit(f"{path.name}: missing required column {', '.join(missing)}")
    cols = []
    for c in COLUMNS[table]:
        if c not in types:
            cols.append(f"NULL::VARCHAR AS {c}")
        elif types[c] == "VARCHAR":
            cols.append(f"NULLIF({c}, '') AS {c}")
        else:
            cols.append(c)
    con.execute(f"CREATE TEMP VIEW raw_{table} AS SELECT _row, {', '.join(cols)} FROM {source}")
    return {c: types.get(c, "VARCHAR") for c in COLUMNS[table]}


def as_date(col: str, types: dict[str, str]) -> str:
    if types[col] == "DATE":
        return col
    if types[col] == "VARCHAR":
        return f"CASE WHEN regexp_full_match({col}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN TRY_CAST({col} AS DATE) END"
    return f"TRY_CAST({col} AS DATE)"


def bad_age(types: dict[str, str]) -> str:
    shape = "NOT regexp_full_match(age, '[0-9]+(\\.0*)?') OR " if types["age"] == "VARCHAR" else ""
    num = "TRY_CAST(age AS DOUBLE)"
    return f"(age IS NOT NULL AND ({shape}{num} IS NULL OR {num} <> floor({num}) OR {num} NOT BETWEEN 0 AND 120))"


def bad_code(col: str, codes) -> str:
    return f"({col} IS NOT NULL AND {col} NOT IN {sql_list(codes)})"


def load_tables(con: duckdb.DuckDBPyConnection, data: Path) -> dict[str, int]:
    """Typed valid rows in episodes, releases, prevalence; returns rows rejected per table."""
    t = load_raw(con, "episodes", find(data, "episodes"))
    subs = ("substance_1", "substance_2", "substance_3")
    ocu = " OR ".join(f"{s} IN {sql_list((*OPIATES, 'crack'))}" for s in subs)
    # One pass: type every column, check every rule, keep the verdict; `episodes` is the valid rows.
    con.execute(f"""
        CREATE TEMP TABLE checked_episodes AS
        SELECT episode_id, client_id, la_code, sex, CAST(TRY_CAST(age AS DOUBLE) AS INTEGER) AS age,
               substance_1, substance_2, substance_3,
               referral_d AS referral_date, triage_d AS triage_date, discharge_d AS discharge_date, discharge_reason,
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
                   AND NOT coalesce(discharge_reason = 'completed_occasional_user' AND ({ocu}), false),
                   false) AS ok
        FROM (
            SELECT *,
                   {as_date('referral_date', t)} AS referral_d,
                   {as_date('triage_date', t)} AS triage_d,
                   {as_date('discharge_date', t)} AS discharge_d,
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

    return {
        "episodes": con.execute("SELECT count(*) FILTER (WHERE NOT ok) FROM checked_episodes").fetchone()[0],
        **{table: con.execute(f"SELECT (SELECT count(*) FROM raw_{table}) - (SELECT count(*) FROM {valid})").fetchone()[0]
           for table, valid in (("prison_releases", "releases"), ("prevalence", "prevalence"))},
    }


def compute(con: duckdb.DuckDBPyConnection, period_end: str | None, months: int = 12,
            representation_months: int = 6) -> tuple[str, str]:
    """Create table `results` (every metric, area and category); returns the period (start, end)."""
    if period_end is None:
        con.execute("""
            CREATE TEMP TABLE period AS
            WITH latest AS (
                SELECT max(d) AS d FROM (
                    SELECT greatest(referral_date, triage_date, discharge_date) AS d FROM episodes
                    UNION ALL SELECT release_date FROM releases)
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
        GROUP BY la_code""")

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
        CREATE TEMP TABLE results AS
        SELECT metric, area_code, area_type, region_code, category, numerator, denominator,
               CASE WHEN metric = 'in_treatment' THEN numerator
                    WHEN metric = 'unmet_need' THEN 100 * (1 - numerator / denominator)
                    ELSE 100 * numerator / denominator END AS value,
               CASE WHEN metric IN ('continuity', 'deaths', 'completions') THEN 100 * {p_lo}
                    WHEN metric = 'mortality_ratio' THEN 100 * {byar_lo}
                    WHEN metric = 'unmet_need' AND numerator > denominator THEN NULL
                    WHEN metric = 'unmet_need' AND {has_range} THEN 100 * (1 - numerator / lower)
                    WHEN metric = 'unmet_need' THEN 100 * {u_lo} END AS ci_lower,
               CASE WHEN metric IN ('continuity', 'deaths', 'completions') THEN 100 * {p_hi}
                    WHEN metric = 'mortality_ratio' THEN 100 * {byar_hi}
                    WHEN metric = 'unmet_need' AND numerator > denominator THEN NULL
                    WHEN metric = 'unmet_need' AND {has_range} THEN 100 * (1 - numerator / upper)
                    WHEN metric = 'unmet_need' THEN 100 * {u_hi} END AS ci_upper
        FROM areas
        WHERE CASE WHEN metric = 'in_treatment' THEN numerator > 0 ELSE denominator > 0 END
        ORDER BY metric, category, area_type, area_code""")
    return start, end


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", default="-", help="JSON output file ('-' = stdout)")
    parser.add_argument("--period-end", default=None)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    con = duckdb.connect()
    rejected = load_tables(con, args.data)
    for table, n in rejected.items():
        if n:
            print(f"{table}: {n:,} rows rejected (contract §1 input rules)", file=sys.stderr)
    start, end = compute(con, args.period_end)
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
