"""Synthetic NDTMS-style extracts (contract v2, sections 1 and 9) for demos, tests and benchmarks.

`generate` writes `episodes`, `prison_releases`, `prevalence` and `reviews` tables
that obey every rule of the data contract and look roughly like real adult and
young people's treatment data: the NDTMS substance mix, age and sex profile,
repeat episodes and re-presentations, moves between LAs, deaths, completions,
prison releases with and without engagement, and prevalence estimates sized so
that unmet need comes out realistic.

Section 9 adds, on each episode, the hepatitis C cascade (`hcv_offered`,
`hcv_tested`, `hcv_result`, `hcv_treatment_started`: offered to most, tested,
positive far more often for opiate clients, treatment for most positives) and
the `reviews` table of Treatment Outcomes Profile interviews: a start TOP for
most episodes (a few have two, some on the same day), six-monthly reviews while
the episode is open and an exit TOP at most discharges, with days of use for the
episode's own substances (high at start, falling much more for completers than
for drop-outs), housing need and days of work, volunteering and education.

Everything is vectorised with numpy and polars (loops only run over the few
substance groups or columns), and every random draw comes from generators seeded
from `seed`, so the same arguments always give the same bytes. The section 9
draws come from generators of their own (seeded from `seed` and a fixed salt),
made after the others: the v1 columns are exactly what they were before them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from . import contract as c
from .periods import add_months

GEOGRAPHY_CSV = Path(__file__).parent / "data" / "geography.csv"

_EPOCH = date(1970, 1, 1)
_DAYS_PER_YEAR = 365.25

# Person-level substance groups (young people are a group of their own here).
_OPIATE, _NON_OPIATE, _NON_OPIATE_ALCOHOL, _ALCOHOL_ONLY, _YOUNG = range(5)
_ADULT_GROUP_SHARES = (0.48, 0.17, 0.10, 0.25)  # NDTMS adults, roughly
_YOUNG_SHARE = 0.065

_SEX_SHARES = (0.655, 0.328, 0.006, 0.011)  # M F X U (order of contract.SEXES)
_RELEASE_SEX_SHARES = (0.90, 0.09, 0.004, 0.006)

# Number of episodes per person before the window cuts later ones off.
_EPISODE_COUNT_SHARES = (0.46, 0.28, 0.15, 0.07, 0.04)

# Episode length in days: lognormal (median, sigma) per group.
_DURATION = {
    _OPIATE: (420.0, 1.05),
    _NON_OPIATE: (160.0, 0.85),
    _NON_OPIATE_ALCOHOL: (170.0, 0.85),
    _ALCOHOL_ONLY: (185.0, 0.80),
    _YOUNG: (140.0, 0.80),
}

# Discharge reasons of closed episodes (client_died is drawn separately, by age),
# weights in the order of contract.DISCHARGE_REASONS without client_died:
# drug_free, alcohol_free, occasional_user, transferred_community,
# transferred_custody, dropped_out, withdrawn_by_provider,
# declined_onward_referral, other.
_REASON_WEIGHTS = {
    _OPIATE: (0.21, 0.00, 0.00, 0.13, 0.08, 0.40, 0.08, 0.04, 0.06),
    _NON_OPIATE: (0.38, 0.00, 0.14, 0.07, 0.04, 0.24, 0.05, 0.03, 0.05),
    _NON_OPIATE_ALCOHOL: (0.27, 0.10, 0.12, 0.07, 0.03, 0.27, 0.05, 0.04, 0.05),
    _ALCOHOL_ONLY: (0.00, 0.50, 0.07, 0.07, 0.01, 0.24, 0.04, 0.03, 0.04),
    _YOUNG: (0.52, 0.06, 0.16, 0.06, 0.01, 0.12, 0.03, 0.02, 0.02),
}
# Probability that a closed episode ends in death, at age 42 (doubling ~every 16 years).
_DEATH_RATE = {
    _OPIATE: 0.014,
    _NON_OPIATE: 0.003,
    _NON_OPIATE_ALCOHOL: 0.004,
    _ALCOHOL_ONLY: 0.006,
    _YOUNG: 0.0003,
}

# Prevalence: unmet need targets (uniform ranges) per estimate category.
_UNMET_TARGET = {
    "opiate_only": (0.38, 0.55),
    "crack_only": (0.55, 0.75),
    "opiate_and_crack": (0.38, 0.55),
    "alcohol": (0.75, 0.85),
}
_DRUG_YEARS = ("2016-17", "2019-20")
_ALCOHOL_YEARS = ("2018-19", "2019-20")

# Approximate resident population (thousands) of some LAs, for realistic weights;
# other LAs get a default by LA type.  Need per head is higher in metropolitan
# and deprived areas (factor below).
_POPULATION = {
    "E08000025": 1145, "E08000035": 812, "E08000039": 556, "E08000003": 552,
    "E08000012": 486, "E08000032": 546, "E06000023": 472, "E08000021": 300,
    "E08000026": 345, "E06000018": 324, "E06000016": 368, "E08000031": 264,
    "E08000034": 433, "E08000036": 353, "E08000028": 341, "E08000027": 323,
    "E08000010": 330, "E08000015": 320, "E08000017": 308, "E08000024": 274,
    "E10000016": 1577, "E10000012": 1503, "E10000014": 1400, "E10000017": 1235,
    "E10000030": 1203, "E10000015": 1198, "E10000020": 916, "E10000028": 876,
    "E10000032": 882, "E10000024": 824, "E10000007": 794, "E10000019": 768,
    "E10000029": 760, "E10000025": 725, "E10000018": 712, "E10000003": 678,
    "E10000013": 645, "E10000034": 603, "E10000031": 596, "E10000008": 811,
    "E10000011": 545, "E06000052": 570, "E06000060": 553, "E06000047": 522,
    "E06000054": 510, "E06000058": 400, "E06000049": 398, "E06000059": 379,
    "E06000050": 357, "E06000051": 323, "E06000057": 320, "E06000042": 287,
    "E06000043": 277, "E06000010": 267, "E06000026": 264, "E06000015": 261,
    "E06000021": 258, "E06000045": 249, "E06000044": 208, "E06000014": 202,
    "E06000002": 143, "E06000009": 141, "E06000001": 92, "E06000017": 41,
    "E06000053": 2, "E09000001": 9, "E09000008": 390, "E09000003": 389,
    "E09000025": 351, "E09000005": 339, "E09000030": 310, "E09000033": 205,
    "E08000033": 206, "E06000061": 360, "E06000062": 425, "E06000063": 275,
    "E06000064": 225, "E06000065": 615, "E06000066": 575,
}
_DEFAULT_POPULATION = {"E06": 220, "E08": 300, "E09": 280, "E10": 750}
_NEED_BY_TYPE = {"E06": 1.1, "E08": 1.3, "E09": 1.0, "E10": 0.8}
_NEED = {
    # higher: Blackpool, Middlesbrough, Hartlepool, Hull, Liverpool, Manchester, Newcastle
    "E06000009": 2.0, "E06000002": 1.6, "E06000001": 1.6, "E06000010": 1.4,
    "E08000012": 1.4, "E08000003": 1.3, "E08000021": 1.3,
    # lower: Surrey, Hertfordshire, Buckinghamshire, Oxfordshire, Wokingham, Windsor and Maidenhead
    "E10000030": 0.7, "E10000015": 0.7, "E06000060": 0.7, "E10000025": 0.75,
    "E06000041": 0.6, "E06000040": 0.7,
}


def generate(
    out_dir: Path,
    people: int = 20_000,
    seed: int = 1,
    fmt: str = "csv",
    la_codes: Sequence[str] | None = None,
    end: date = date(2024, 3, 31),
    years: int = 3,
) -> dict[str, int]:
    """Write a synthetic extract (episodes, prison_releases, prevalence, reviews) into out_dir.

    Returns the number of rows written per table.  The same arguments always
    give byte-identical files.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    if people < 1:
        raise ValueError("people must be at least 1")
    if years < 1:
        raise ValueError("years must be at least 1")
    las = _resolve_las(la_codes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    seeds = np.random.SeedSequence(seed).spawn(5)
    rng_la, rng_people, rng_episodes, rng_releases, rng_prev = (np.random.default_rng(s) for s in seeds)

    end_day = _day(end)
    start_day = _day(add_months(end, -12 * years)) + 1
    weights = _la_weights(las, rng_la)

    persons = _people(rng_people, people, len(las), weights, start_day, end_day)
    episodes = _episodes(rng_episodes, persons, len(las), weights, start_day, end_day)
    releases = _releases(rng_releases, persons, episodes, len(las), weights, start_day, end_day)

    # Pseudonymous client ids for people with episodes and release-only people:
    # distinct random 32-bit values, never derived from a row or episode number.
    n_ids = people + releases["extra_people"]
    id_values = rng_people.choice(16**8, size=n_ids, replace=False)
    client_ids = _hex_ids("C", id_values)
    la_series = pl.Series("la_code", las, dtype=pl.String)

    ep_frame = _episode_frame(episodes, client_ids, la_series)
    rel_frame = _release_frame(releases, client_ids, la_series)
    prev_frame = _prevalence_frame(rng_prev, episodes, las, end)

    # Section 9, drawn last and from generators of their own: the draws above (and so every
    # v1 column) are the same with or without them.
    rng_hcv, rng_top = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, _V2_SALT]).spawn(2))
    ep_frame = ep_frame.hstack(_hcv_columns(_hepatitis_c(rng_hcv, episodes, end_day))).select(
        c.EPISODES.column_names
    )
    rev_frame = _review_frame(_reviews(rng_top, episodes, end_day), ep_frame)

    ext = "csv" if fmt == "csv" else "parquet"
    counts: dict[str, int] = {}
    for name, frame in (
        (c.EPISODES.name, ep_frame),
        (c.RELEASES.name, rel_frame),
        (c.PREVALENCE.name, prev_frame),
        (c.REVIEWS.name, rev_frame),
    ):
        path = out_dir / f"{name}.{ext}"
        if fmt == "csv":
            frame.write_csv(path)
        else:
            frame.write_parquet(path, statistics=False)
        counts[name] = frame.height
    return counts


# --------------------------------------------------------------------------- LAs


def _resolve_las(la_codes: Sequence[str] | None) -> list[str]:
    if la_codes is None:
        if not GEOGRAPHY_CSV.exists():
            raise FileNotFoundError(f"LA lookup not found: {GEOGRAPHY_CSV}")
        geo = pl.read_csv(GEOGRAPHY_CSV, infer_schema=False)
        codes = geo.get_column("la_code").to_list()
    else:
        if isinstance(la_codes, str):
            la_codes = [la_codes]
        codes = list(la_codes)
    pattern = re.compile(c.LA_CODE_PATTERN)
    seen: dict[str, None] = {}
    for code in codes:
        code = (code or "").strip()
        if not pattern.match(code):
            raise ValueError(f"malformed la_code: {code!r}")
        seen.setdefault(code, None)
    if not seen:
        raise ValueError("no LA codes to generate data for")
    return list(seen)


def _la_weights(las: list[str], rng: np.random.Generator) -> np.ndarray:
    """Share of people per LA: population x need factor x a little noise."""
    pop = np.array([_POPULATION.get(code, _DEFAULT_POPULATION[code[:3]]) for code in las], dtype=float)
    need = np.array([_NEED_BY_TYPE[code[:3]] * _NEED.get(code, 1.0) for code in las])
    noise = rng.lognormal(0.0, 0.15, size=len(las))
    w = pop * need * noise
    return w / w.sum()


# ------------------------------------------------------------------------ people


def _people(rng, n, n_la, la_w, start_day, end_day) -> dict[str, np.ndarray]:
    young = rng.random(n) < _YOUNG_SHARE
    group = rng.choice(4, size=n, p=_ADULT_GROUP_SHARES).astype(np.int8)
    group[young] = _YOUNG

    # Age at first episode: adults 18-80 skewed to 30-55 (non-opiate younger,
    # alcohol older); young people 10-17, mostly 14-17.
    a, b = np.full(n, 2.8), np.full(n, 4.4)
    a[group == _NON_OPIATE] = 1.7
    a[group == _NON_OPIATE_ALCOHOL] = 2.0
    a[group == _ALCOHOL_ONLY] = 3.4
    b[group == _ALCOHOL_ONLY] = 4.0
    age = 18 + np.floor(rng.beta(a, b) * 63).astype(np.int64)
    young_ages = rng.choice(np.arange(10, 18), size=n, p=_norm([1, 2, 4, 8, 14, 20, 25, 26]))
    age = np.where(young, young_ages, np.minimum(age, 80))

    sex = rng.choice(4, size=n, p=_SEX_SHARES).astype(np.int8)
    la = rng.choice(n_la, size=n, p=la_w)

    # First triage anywhere in the window; date of birth consistent with age then.
    # (a little front-loaded, as later episodes of earlier starters fill the end)
    first = start_day + np.floor(rng.beta(0.9, 1.15, size=n) * (end_day - start_day + 1)).astype(np.int64)
    dob = first - np.floor(age * _DAYS_PER_YEAR + rng.random(n) * 365.0).astype(np.int64)

    s1, s2, s3 = _substances(rng, group)
    return {"group": group, "sex": sex, "la": la, "first": first, "dob": dob, "s1": s1, "s2": s2, "s3": s3}


def _substances(rng, group):
    """Up to three distinct substance codes per person (indices into SUBSTANCES, -1 = null)."""
    n = len(group)
    s1 = np.full(n, -1, dtype=np.int64)
    s2 = np.full(n, -1, dtype=np.int64)
    s3 = np.full(n, -1, dtype=np.int64)

    def pick(m, pool):
        codes = np.array([_SUB[k] for k in pool])
        return codes[rng.choice(len(codes), size=m, p=_norm(list(pool.values())))]

    def maybe(m, p, pool):
        return np.where(rng.random(m) < p, pick(m, pool), -1)

    alcohol = _SUB[c.ALCOHOL]
    crack = _SUB[c.CRACK]
    secondary = {"alcohol": 30, "cannabis": 25, "benzodiazepine": 20, "cocaine": 15, "amphetamine": 5, "other_drug": 5}
    non_opiate = {
        "cannabis": 36, "cocaine": 30, "crack": 8, "amphetamine": 8, "benzodiazepine": 7,
        "ketamine": 4, "ecstasy": 3, "nps": 2, "other_drug": 2,
    }
    with_alcohol = {
        "cocaine": 50, "cannabis": 30, "crack": 5, "amphetamine": 5, "benzodiazepine": 5,
        "ketamine": 2, "ecstasy": 2, "other_drug": 1,
    }
    young_main = {"cannabis": 72, "alcohol": 14, "cocaine": 5, "ecstasy": 3, "ketamine": 3, "nps": 2, "other_drug": 1}
    young_other = {"alcohol": 50, "cannabis": 30, "cocaine": 10, "ecstasy": 5, "ketamine": 5}

    m = np.flatnonzero(group == _OPIATE)
    k = len(m)
    s1[m] = pick(k, {"heroin": 72, "methadone": 12, "buprenorphine": 4, "other_opiate": 12})
    has_crack = rng.random(k) < 0.55
    s2[m] = np.where(has_crack, crack, maybe(k, 0.35, secondary))
    s3[m] = np.where(has_crack, maybe(k, 0.30, secondary), -1)

    m = np.flatnonzero(group == _NON_OPIATE)
    k = len(m)
    s1[m] = pick(k, non_opiate)
    s2[m] = maybe(k, 0.35, non_opiate)
    s3[m] = maybe(k, 0.10, non_opiate)

    m = np.flatnonzero(group == _NON_OPIATE_ALCOHOL)
    k = len(m)
    drug = pick(k, with_alcohol)
    alcohol_first = rng.random(k) < 0.5
    s1[m] = np.where(alcohol_first, alcohol, drug)
    s2[m] = np.where(alcohol_first, drug, alcohol)
    s3[m] = maybe(k, 0.15, with_alcohol)

    s1[group == _ALCOHOL_ONLY] = alcohol

    m = np.flatnonzero(group == _YOUNG)
    k = len(m)
    s1[m] = pick(k, young_main)
    s2[m] = maybe(k, 0.40, young_other)
    s3[m] = maybe(k, 0.08, young_other)

    return _dedupe(s1, s2, s3)


def _dedupe(s1, s2, s3):
    s2 = np.where(s2 == s1, -1, s2)
    s3 = np.where((s3 == s1) | (s3 == s2), -1, s3)
    shift = (s2 < 0) & (s3 >= 0)
    s2 = np.where(shift, s3, s2)
    s3 = np.where(shift, -1, s3)
    return s1, s2, s3


# ---------------------------------------------------------------------- episodes


def _episodes(rng, p, n_la, la_w, start_day, end_day) -> dict[str, np.ndarray]:
    n = len(p["group"])
    k = rng.choice(np.arange(1, len(_EPISODE_COUNT_SHARES) + 1), size=n, p=_EPISODE_COUNT_SHARES)
    total = int(k.sum())
    pid = np.repeat(np.arange(n), k)
    starts = np.cumsum(k) - k
    seq = np.arange(total) - np.repeat(starts, k)
    group = p["group"][pid]

    # Length of each episode and the gap after the previous one's discharge.
    median = np.array([_DURATION[g][0] for g in range(5)])
    sigma = np.array([_DURATION[g][1] for g in range(5)])
    duration = np.minimum(np.floor(median[group] * np.exp(sigma[group] * rng.standard_normal(total))), 3000)
    duration = duration.astype(np.int64)
    quick = rng.random(total) < 0.40  # re-presentations within six months
    gap = np.where(quick, rng.integers(7, 183, size=total), 20 + np.floor(rng.exponential(260.0, size=total)))
    gap = gap.astype(np.int64)
    step = np.zeros(total, dtype=np.int64)
    later = seq > 0
    step[later] = gap[later] + duration[np.flatnonzero(later) - 1]
    cum = np.cumsum(step)
    triage = p["first"][pid] + cum - cum[starts][pid]
    discharge = triage + duration

    kept = triage <= end_day
    closed = discharge <= end_day

    # Substances per episode: mostly the person's, some later episodes cite fewer.
    s1, s2, s3 = p["s1"][pid], p["s2"][pid].copy(), p["s3"][pid].copy()
    fewer = later & (rng.random(total) < 0.12)
    s2[fewer] = -1
    s3[fewer] = -1

    age_approx = np.floor((triage - p["dob"][pid]) / _DAYS_PER_YEAR)

    # Discharge reasons for closed episodes (index into DISCHARGE_REASONS).
    others = [r for r in c.DISCHARGE_REASONS if r != c.DIED]
    reason_codes = np.array([_REASON[r] for r in others])
    u = rng.random(total)
    reason = np.full(total, -1, dtype=np.int64)
    for g, weights in _REASON_WEIGHTS.items():
        m = group == g
        cdf = np.cumsum(_norm(weights))
        reason[m] = reason_codes[np.minimum(np.searchsorted(cdf, u[m], side="right"), len(cdf) - 1)]
    death_rate = np.array([_DEATH_RATE[g] for g in range(5)])[group] * np.exp2((age_approx - 42) / 16)
    died = closed & (rng.random(total) < np.minimum(death_rate, 0.25))
    reason[died] = _REASON[c.DIED]
    reason[~closed] = -1

    cites = _cites(s1, s2, s3)
    drug_free, alcohol_free, occasional = (_REASON[r] for r in c.SUCCESSFUL_DISCHARGES)
    reason[(reason == occasional) & (cites["opiate"] | cites["crack"])] = drug_free
    reason[(reason == alcohol_free) & ~cites["alcohol"]] = drug_free
    reason[(reason == drug_free) & cites["alcohol"] & ~cites["other"] & ~cites["opiate"]] = alcohol_free

    # Nobody has an episode after dying.
    dcum = np.cumsum(died)
    died_before = (dcum - died) - (dcum - died)[starts][pid] > 0
    kept &= ~died_before

    # A few people move: their later episodes are in another LA.
    la = p["la"][pid]
    if n_la > 1:
        mover = (rng.random(n) < 0.12) & (k > 1)
        move_at = 1 + np.floor(rng.random(n) * np.maximum(k - 1, 1)).astype(np.int64)
        new_la = rng.choice(n_la, size=n, p=la_w)
        new_la = np.where(new_la == p["la"], (new_la + 1) % n_la, new_la)
        moved = mover[pid] & (seq >= move_at[pid])
        la = np.where(moved, new_la[pid], la)

    referral_gap = np.floor(rng.gamma(1.3, 9.0, size=total)).astype(np.int64)
    has_referral = rng.random(total) >= 0.07

    idx = np.flatnonzero(kept)
    e = {
        "pid": pid[idx],
        "seq": seq[idx],
        "group": group[idx],
        "la": la[idx],
        "s1": s1[idx],
        "s2": s2[idx],
        "s3": s3[idx],
        "triage": triage[idx],
        "closed": closed[idx],
        "discharge": discharge[idx],
        "reason": reason[idx],
        "referral_gap": referral_gap[idx],
        "has_referral": has_referral[idx],
    }
    # Make the extract's latest date the period end itself, so the default
    # period of the CLI (last month end on or before the latest date) is `end`.
    if not (e["triage"] == end_day).any():
        open_idx = np.flatnonzero(~e["closed"])
        if len(open_idx):
            latest = open_idx[np.argmax(e["triage"][open_idx])]
            e["triage"][latest] = end_day

    # Episode ids follow triage order (ties: person, sequence).
    order = np.lexsort((e["seq"], e["pid"], e["triage"]))
    e = {key: v[order] for key, v in e.items()}
    e["age"] = np.floor((e["triage"] - p["dob"][e["pid"]]) / _DAYS_PER_YEAR).astype(np.int64)
    e["sex"] = p["sex"][e["pid"]]
    e["referral"] = e["triage"] - e["referral_gap"]
    return e


def _cites(s1, s2, s3):
    opiate_codes = np.array([_SUB[s] for s in c.OPIATES])
    out = {"opiate": np.zeros(len(s1), bool), "crack": np.zeros(len(s1), bool),
           "alcohol": np.zeros(len(s1), bool), "other": np.zeros(len(s1), bool)}
    for s in (s1, s2, s3):
        opi = np.isin(s, opiate_codes)
        alc = s == _SUB[c.ALCOHOL]
        out["opiate"] |= opi
        out["crack"] |= s == _SUB[c.CRACK]
        out["alcohol"] |= alc
        out["other"] |= (s >= 0) & ~opi & ~alc
    return out


# ---------------------------------------------------------------------- releases


def _releases(rng, p, e, n_la, la_w, start_day, end_day) -> dict:
    n_people = len(p["group"])
    n_release_people = max(1, round(0.04 * n_people))
    n_linked = n_release_people // 2

    # People with episodes: weighted towards men and opiate / crack users,
    # anchored on one adult episode triaged late enough for a release in the window.
    eligible = np.flatnonzero((e["age"] >= 19) & (e["triage"] >= start_day + 61))
    w = np.array([3.0, 2.0, 1.5, 1.0, 0.0])[e["group"][eligible]]
    w = w * np.where(e["sex"][eligible] == 0, 2.0, 1.0)
    w = np.where(np.isin(e["s1"][eligible], [_SUB[c.CRACK]]) | np.isin(e["s2"][eligible], [_SUB[c.CRACK]]), w * 1.5, w)
    keys = rng.exponential(size=len(eligible)) / np.maximum(w, 1e-12)
    keys[w == 0] = np.inf
    order = np.argsort(keys, kind="stable")
    _, first_pos = np.unique(e["pid"][eligible[order]], return_index=True)
    chosen = eligible[order[np.sort(first_pos)[:n_linked]]]
    chosen = chosen[np.isfinite(keys[np.searchsorted(eligible, chosen)])]
    n_linked = len(chosen)

    # Each person's latest triage date (for releases with no later episode) and
    # date of death, if they died in treatment (nobody is released after that).
    last_triage = np.full(n_people, np.iinfo(np.int64).min)
    np.maximum.at(last_triage, e["pid"], e["triage"])
    death_day = np.full(n_people, np.iinfo(np.int64).max)
    died = e["closed"] & (e["reason"] == _REASON[c.DIED])
    death_day[e["pid"][died]] = e["discharge"][died]

    person = e["pid"][chosen]
    anchor = e["triage"][chosen]
    u = rng.random(n_linked)
    engaged = anchor - rng.integers(0, 22, size=n_linked)
    late = anchor - rng.integers(22, 61, size=n_linked)
    after = last_triage[person] + rng.integers(1, 400, size=n_linked)
    none = np.where(
        after <= np.minimum(end_day, death_day[person]), after, anchor - rng.integers(61, 200, size=n_linked)
    )
    release = np.where(u < 0.55, engaged, np.where(u < 0.80, late, none))
    la = np.where(rng.random(n_linked) < 0.85, e["la"][chosen], rng.choice(n_la, size=n_linked, p=la_w))
    sex = p["sex"][person]
    dob = p["dob"][person]

    # People released from prison who never came to community treatment.
    n_new = n_release_people - n_linked
    new_person = n_people + np.arange(n_new)
    new_release = rng.integers(start_day, end_day + 1, size=n_new)
    new_age = 18 + np.floor(rng.beta(2.2, 4.5, size=n_new) * 50).astype(np.int64)
    new_dob = new_release - np.floor(new_age * _DAYS_PER_YEAR + rng.random(n_new) * 365.0).astype(np.int64)
    new_sex = rng.choice(4, size=n_new, p=_RELEASE_SEX_SHARES).astype(np.int8)
    new_la = rng.choice(n_la, size=n_new, p=la_w)

    person = np.concatenate([person, new_person])
    release = np.concatenate([release, new_release])
    la = np.concatenate([la, new_la])
    sex = np.concatenate([sex, new_sex])
    dob = np.concatenate([dob, new_dob])
    death = np.concatenate([death_day[person[:n_linked]], np.full(n_new, np.iinfo(np.int64).max)])

    # Some people are released more than once.
    again = np.flatnonzero(rng.random(len(person)) < 0.15)
    shift = rng.integers(90, 700, size=len(again))
    second = release[again] - shift
    second = np.where(second < start_day, release[again] + shift, second)
    ok = (second <= np.minimum(end_day, death[again])) & ((second - dob[again]) / _DAYS_PER_YEAR >= c.ADULT_AGE)
    again, second = again[ok], second[ok]
    person = np.concatenate([person, person[again]])
    release = np.concatenate([release, second])
    la = np.concatenate([la, la[again]])
    sex = np.concatenate([sex, sex[again]])
    dob = np.concatenate([dob, dob[again]])

    age = np.floor((release - dob) / _DAYS_PER_YEAR).astype(np.int64)
    exclusion = np.where(
        rng.random(len(person)) < 0.07,
        rng.choice(len(c.EXCLUSIONS), size=len(person), p=_norm([40, 25, 15, 20])),
        -1,
    )
    # "died" only on a person's last release with no treatment after it.
    last_release = np.full(n_people + n_new, np.iinfo(np.int64).min)
    np.maximum.at(last_release, person, release)
    later_triage = np.concatenate([last_triage, np.full(n_new, np.iinfo(np.int64).min)])[person] >= release
    bad_death = (exclusion == c.EXCLUSIONS.index("died")) & ((release < last_release[person]) | later_triage)
    exclusion[bad_death] = c.EXCLUSIONS.index("hospital")
    order = np.lexsort((person, release))
    return {
        "person": person[order],
        "release": release[order],
        "la": la[order],
        "sex": sex[order],
        "age": age[order],
        "exclusion": exclusion[order],
        "extra_people": n_new,
    }


# -------------------------------------------------------------------- prevalence


def _prevalence_frame(rng, e, las, end) -> pl.DataFrame:
    """Estimates = adults in treatment in the 12 months to `end` / (1 - unmet need)."""
    n_la = len(las)
    end_day = _day(end)
    period_start = _day(add_months(end, -12)) + 1
    in_period = (e["triage"] <= end_day) & (~e["closed"] | (e["discharge"] >= period_start))
    cites = _cites(e["s1"], e["s2"], e["s3"])
    frame = pl.DataFrame(
        {
            "pid": e["pid"][in_period],
            "row": np.flatnonzero(in_period),  # episode ids follow row order
            "la": e["la"][in_period],
            "age": e["age"][in_period],
            "opiate": cites["opiate"][in_period],
            "crack": cites["crack"][in_period],
            "alcohol": cites["alcohol"][in_period],
        }
    )
    people = (
        frame.group_by("pid")
        .agg(
            pl.col("la").sort_by("row").last(),
            pl.col("age").sort_by("row").last(),
            pl.col("opiate").any(),
            pl.col("crack").any(),
            pl.col("alcohol").any(),
        )
        .filter(pl.col("age") >= c.ADULT_AGE)
    )
    la = people.get_column("la").to_numpy()
    opiate = people.get_column("opiate").to_numpy()
    crack = people.get_column("crack").to_numpy()
    alcohol = people.get_column("alcohol").to_numpy()
    masks = {
        "opiate_only": opiate & ~crack,
        "crack_only": crack & ~opiate,
        "opiate_and_crack": opiate & crack,
        "alcohol": alcohol & ~opiate,  # substance group alcohol_only or non_opiate_and_alcohol
    }
    cats = tuple(masks)
    counts = np.stack([np.bincount(la[masks[k]], minlength=n_la) for k in cats], axis=1)

    lo = np.array([_UNMET_TARGET[k][0] for k in cats])
    hi = np.array([_UNMET_TARGET[k][1] for k in cats])
    target = lo + (hi - lo) * rng.random((n_la, 4))
    latest = np.rint(np.maximum(counts, 1) / (1 - target) * 10).astype(np.int64)  # tenths
    earlier = np.rint(latest * rng.uniform(0.88, 1.08, size=(n_la, 4))).astype(np.int64)
    earlier = np.maximum(earlier, 1)

    no_range = np.zeros(n_la, bool)
    if n_la >= 4:
        no_range[rng.choice(n_la, size=max(1, round(0.05 * n_la)), replace=False)] = True

    all_cats = c.PREVALENCE_CATEGORIES
    ocu_cols = [cats.index(k) for k in c.OCU_GROUPS]
    col_of = [None if k == "ocu" else cats.index(k) for k in all_cats]
    parts = []
    for year_idx, est in enumerate((earlier, latest)):
        # tenths, columns in PREVALENCE_CATEGORIES order; ocu is the exact sum.
        ocu = est[:, ocu_cols].sum(axis=1)  # exactly the sum of its parts
        full = np.column_stack([ocu if j is None else est[:, j] for j in col_of])
        lower = np.rint(full * (1 - rng.uniform(0.10, 0.20, size=full.shape))).astype(np.int64)
        upper = np.rint(full * (1 + rng.uniform(0.10, 0.20, size=full.shape))).astype(np.int64)
        years = np.array([(_ALCOHOL_YEARS if k == "alcohol" else _DRUG_YEARS)[year_idx] for k in all_cats])
        parts.append(
            pl.DataFrame(
                {
                    "la_idx": np.repeat(np.arange(n_la), len(all_cats)),
                    "cat_idx": np.tile(np.arange(len(all_cats)), n_la),
                    "year": np.tile(years, n_la),
                    "estimate": full.ravel() / 10,
                    "lower": lower.ravel() / 10,
                    "upper": upper.ravel() / 10,
                    "no_range": np.repeat(no_range, len(all_cats)),
                }
            )
        )
    df = pl.concat(parts).sort("la_idx", "cat_idx", "year")
    return df.select(
        pl.Series(las, dtype=pl.String).gather(df.get_column("la_idx")).alias("la_code"),
        pl.Series(all_cats, dtype=pl.String).gather(df.get_column("cat_idx")).alias("category"),
        pl.col("year").cast(pl.String),
        pl.col("estimate").cast(pl.Float64),
        pl.when(~pl.col("no_range")).then(pl.col("lower")).cast(pl.Float64).alias("lower"),
        pl.when(~pl.col("no_range")).then(pl.col("upper")).cast(pl.Float64).alias("upper"),
    )


# ------------------------------------------------------------------ hepatitis C

_V2_SALT = 12345  # the section 9 generators: SeedSequence([seed, _V2_SALT]), apart from the v1 ones

# Per kind of client: opiate, crack (no opiate), other adults, young people.
_HCV_OFFERED = (0.93, 0.89, 0.85, 0.60)
_HCV_TESTED = (0.82, 0.78, 0.74, 0.60)  # of those offered
_HCV_POSITIVE = (0.15, 0.05, 0.012, 0.005)  # of those tested with a result
_HCV_TREATED = 0.72  # of positives (before the extract end cuts later starts off)


def _hepatitis_c(rng, e, end_day) -> dict[str, np.ndarray]:
    """The cascade per episode: day numbers, each with a mask (False = null; dates after `end_day` are unknown)."""
    n = len(e["pid"])
    cites = _cites(e["s1"], e["s2"], e["s3"])
    kind = np.where(e["age"] < c.ADULT_AGE, 3, np.where(cites["opiate"], 0, np.where(cites["crack"], 1, 2)))
    triage, discharge, closed = e["triage"], e["discharge"], e["closed"]

    # Offer: a few at assessment just before triage, most within the first two weeks, some later; short
    # episodes are offered a test before discharge.
    u = _u(rng, n)
    offset = np.select(
        [u < 0.08, u < 0.80, u < 0.95],
        [-rng.integers(1, 8, n, dtype=np.int16), rng.integers(0, 15, n, dtype=np.int16),
         rng.integers(15, 61, n, dtype=np.int16)],
        rng.integers(61, 181, n, dtype=np.int16),
    )
    offer = triage + offset
    during = triage + np.floor(rng.random(n) * (discharge - triage + 1)).astype(np.int64)
    offer = np.where(closed & (offer > discharge), during, offer)
    offered = (_u(rng, n) < np.asarray(_HCV_OFFERED)[kind]) & (offer <= end_day)

    # Test: a third on the day of the offer (dried blood spot), the others within weeks, before discharge.
    wait = 1 + np.floor(rng.standard_gamma(1.2, n, dtype=np.float32) * 12.0).astype(np.int64)
    test = offer + np.where(_u(rng, n) < 0.35, 0, wait)
    test = np.where(closed & (test > discharge), np.maximum(discharge, offer), test)
    tested = offered & (_u(rng, n) < np.asarray(_HCV_TESTED)[kind]) & (test <= end_day)

    # Result: a few still awaited (mostly recent tests); positive far more often for opiate clients.
    awaiting = ((test > end_day - 28) & (_u(rng, n) < 0.5)) | (_u(rng, n) < 0.02)
    has_result = tested & ~awaiting
    positive = has_result & (_u(rng, n) < np.asarray(_HCV_POSITIVE)[kind])

    treat = test + 7 + np.floor(rng.standard_gamma(2.0, n, dtype=np.float32) * 20.0).astype(np.int64)
    treated = positive & (_u(rng, n) < _HCV_TREATED) & (treat <= end_day)
    return {"offer": offer, "offered": offered, "test": test, "tested": tested,
            "has_result": has_result, "positive": positive, "treat": treat, "treated": treated}


def _hcv_columns(h) -> list[pl.Series]:
    results = pl.Series([*c.HCV_RESULTS, None], dtype=pl.String)
    result = np.where(h["has_result"], np.where(h["positive"], 0, 1), 2)
    return [
        _dates(h["offer"], h["offered"]).alias("hcv_offered"),
        _dates(h["test"], h["tested"]).alias("hcv_tested"),
        results.gather(result).alias("hcv_result"),
        _dates(h["treat"], h["treated"]).alias("hcv_treatment_started"),
    ]


# ----------------------------------------------------------------------- reviews

_START, _REVIEW, _EXIT = (c.STAGES.index(s) for s in ("start", "review", "exit"))
_TOP_START = 0.87  # share of episodes with a start TOP
_TOP_SECOND_START = 0.03  # of those, a second start TOP (two in five on the same day)
_TOP_REVIEW_DONE = 0.25  # share of the six-monthly reviews due that are recorded
_TOP_EXIT_OPEN = 0.01  # open episodes whose latest review is recorded as an exit TOP

# Exit TOP at discharge, by discharge reason (order of contract.DISCHARGE_REASONS).
_TOP_EXIT = (0.78, 0.78, 0.78, 0.08, 0.55, 0.50, 0.45, 0.42, 0.40, 0.42)

# Days of use at start for the main substance's column: (share high, high range, low range), inclusive.
_DAYS_START_MAIN = {
    "days_opiates": (0.72, (20, 28), (4, 19)),
    "days_crack": (0.50, (14, 28), (2, 13)),
    "days_cocaine": (0.45, (10, 28), (2, 9)),
    "days_amphetamine": (0.50, (12, 28), (2, 11)),
    "days_cannabis": (0.70, (20, 28), (4, 19)),
    "days_alcohol": (0.80, (15, 28), (4, 14)),
}
# Outcome at the latest TOP: abstinent, reduced by >= 7 days, reduced by 1-6, unchanged, worse;
# rows: the outcome statuses (closed with a successful code, closed otherwise, open).
_DAYS_OUTCOME = (
    (0.45, 0.33, 0.10, 0.07, 0.05),
    (0.08, 0.22, 0.20, 0.28, 0.22),
    (0.18, 0.32, 0.18, 0.18, 0.14),
)
# Change in days for each outcome: sign, then lowest change and how many values (abstinent: to 0).
_DAYS_CHANGE = np.array([(0, 0, 1), (-1, 7, 22), (-1, 1, 6), (0, 0, 1), (1, 1, 10)])
# Housing at start (none, at_risk, acute) for opiate clients and the others, and where it ends
# up by the latest TOP (per outcome status; rows: from, columns: to).
_HOUSING_START = ((0.72, 0.17, 0.11), (0.855, 0.10, 0.045))
_HOUSING_MOVE = (
    ((0.97, 0.025, 0.005), (0.55, 0.42, 0.03), (0.35, 0.35, 0.30)),
    ((0.93, 0.05, 0.02), (0.25, 0.65, 0.10), (0.15, 0.30, 0.55)),
    ((0.95, 0.04, 0.01), (0.35, 0.58, 0.07), (0.20, 0.35, 0.45)),
)
# Work columns: share with >= 1 day at start (opiate adults, other adults, young people), chance of
# starting / stopping by the latest TOP (per outcome status), and the range of days when any.
_WORK = {
    "paid_work_days": ((0.10, 0.25, 0.04), ((0.18, 0.08), (0.05, 0.20), (0.09, 0.12)), (1, 24)),
    "volunteer_days": ((0.035, 0.045, 0.02), ((0.07, 0.30), (0.02, 0.50), (0.04, 0.40)), (1, 12)),
    "education_days": ((0.04, 0.055, 0.55), ((0.06, 0.30), (0.02, 0.50), (0.04, 0.35)), (1, 20)),
}
_NULL_DAYS, _NULL_HOUSING, _NULL_WORK = 0.03, 0.02, 0.02  # missing answers


def _add_months_days(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Day numbers + whole months, clamped to the month's last day (as periods.add_months)."""
    d = days.astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    day_of_month = (d - month.astype("datetime64[D]")).astype(np.int64)
    target = month + months.astype("timedelta64[M]")
    first = target.astype("datetime64[D]")
    length = ((target + np.timedelta64(1, "M")).astype("datetime64[D]") - first).astype(np.int64)
    return first.astype(np.int64) + np.minimum(day_of_month, length - 1)


def _u(rng, size) -> np.ndarray:
    """Uniform draws in [0, 1) in single precision: enough for every share drawn with them, and faster."""
    return rng.random(size, dtype=np.float32)


def _sprinkle(rng, m: int, p: float) -> np.ndarray:
    """A mask with about a share p of its m rows set, at random (drawing only the rows set)."""
    mask = np.zeros(m, bool)
    if m:
        mask[rng.integers(0, m, rng.binomial(m, p))] = True
    return mask


def _pick(rng, table, index: np.ndarray) -> np.ndarray:
    """One category per row: row i is drawn with the probabilities `table[index[i]]` (each row sums to 1)."""
    cdf = np.cumsum(np.asarray(table, dtype=np.float32), axis=1)
    u = _u(rng, len(index))
    out = np.zeros(len(index), dtype=np.int8)
    for k in range(cdf.shape[1] - 1):
        out += u >= cdf[:, k][index]
    return out


def _reviews(rng, e, end_day) -> dict:
    """TOP interviews: per TOP its episode (row index), day number and stage, sorted by episode and
    date; per answer column the values and a mask of the answers given (False = null)."""
    n = len(e["pid"])
    triage, closed, discharge, reason = e["triage"], e["closed"], e["discharge"], e["reason"]
    last = np.where(closed, discharge, end_day)  # TOPs during treatment are on or before this day
    successful = np.zeros(len(c.DISCHARGE_REASONS) + 1, bool)  # index -1 (open) reads the last slot
    successful[[_REASON[r] for r in c.SUCCESSFUL_DISCHARGES]] = True
    status = np.where(closed, np.where(successful[reason], 0, 1), 2).astype(np.int8)  # completed, other, open

    # Start TOPs: mostly on the triage day, the others within weeks (never after discharge or the end).
    starts = np.flatnonzero(_u(rng, n) < _TOP_START)
    k = len(starts)
    late = np.where(_u(rng, k) < 0.6, 0, rng.integers(1, 31, k, dtype=np.int16))
    start_day = np.minimum(triage[starts] + late, last[starts])
    pick = _u(rng, k) < _TOP_SECOND_START
    seconds = starts[pick]
    k = len(seconds)
    later_day = np.minimum(start_day[pick] + rng.integers(1, 22, k, dtype=np.int16), last[seconds])
    second_day = np.where(_u(rng, k) < 0.4, start_day[pick], later_day)

    # Six-monthly reviews while open: due 6, 12, 18 ... months after triage, a fortnight either side.
    due_max = np.maximum(last - triage, 0) // 181  # at least as many as can be due
    r_ep = np.repeat(np.arange(n), due_max)
    r_k = np.arange(len(r_ep)) - np.repeat(np.cumsum(due_max) - due_max, due_max) + 1
    done = _u(rng, len(r_ep)) < _TOP_REVIEW_DONE
    r_ep, r_k = r_ep[done], r_k[done]
    due = _add_months_days(triage[r_ep], 6 * r_k)
    r_day = np.minimum(due + rng.integers(-14, 15, len(r_ep), dtype=np.int16), last[r_ep])
    keep = due < np.where(closed, discharge, end_day + 1)[r_ep]
    r_ep, r_day = r_ep[keep], r_day[keep]

    # Exit TOPs at discharge: mostly that day, a few a little before or after.
    exits = np.flatnonzero(closed & (_u(rng, n) < np.asarray(_TOP_EXIT, dtype=np.float32)[reason]))  # open: -1
    k = len(exits)
    u = _u(rng, k)
    d = discharge[exits]
    before = np.maximum(d - rng.integers(1, 15, k, dtype=np.int16), triage[exits])
    after = np.minimum(d + rng.integers(1, 11, k, dtype=np.int16), end_day)
    exit_day = np.where(u < 0.80, d, np.where(u < 0.92, before, after))

    # Rows by episode, then date, then start, second start, review, exit.
    ep = np.concatenate([starts, seconds, r_ep, exits])
    day = np.concatenate([start_day, second_day, r_day, exit_day])
    kind = np.repeat(np.arange(4, dtype=np.int64), [len(starts), len(seconds), len(r_ep), len(exits)])
    day0 = int(day.min()) if len(day) else 0
    order = np.argsort((ep << 24) | ((day - day0) << 2) | kind, kind="stable")
    ep, day, kind = ep[order], day[order], kind[order]
    stage = np.array([_START, _START, _REVIEW, _EXIT], dtype=np.int8)[kind]
    m = len(ep)

    # Each TOP's phase: start TOPs have the episode's start state, its latest later TOP (review or
    # exit) the outcome state, and the later TOPs in between (`mid`) lie `frac` of the way there.
    later = stage != _START
    cum = np.cumsum(later)
    first = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]]) if m else np.zeros(0, np.int64)
    last_row = np.r_[first[1:] - 1, m - 1] if m else first
    done_before = np.zeros(n, np.int64)  # later TOPs of the episodes before each one
    done_after = np.zeros(n, np.int64)  # ... and of the episode itself
    done_before[ep[first]] = cum[first] - later[first]
    done_after[ep[first]] = cum[last_row]
    is_last = later & (cum == done_after[ep])
    mid = np.flatnonzero(later & ~is_last)
    mid_ep = ep[mid]
    frac = (cum[mid] - done_before[mid_ep]) / (done_after - done_before)[mid_ep]
    phase = 2 * ep + later  # index into per-episode (start, outcome) pairs
    # An open episode's latest review is now and then recorded as an exit TOP (§9 counts it as a review).
    relabel = np.flatnonzero(is_last & ~closed[ep])
    stage[relabel[_u(rng, len(relabel)) < _TOP_EXIT_OPEN]] = _EXIT
    # The first of an episode's two start TOPs is now and then recorded without any answers.
    two = np.zeros(n, bool)
    two[seconds] = True
    first_of_two = first[(kind[first] == 0) & two[ep[first]]]
    blank = np.zeros(m, bool)
    blank[first_of_two[_u(rng, len(first_of_two)) < 0.3]] = True

    out: dict = {"ep": ep, "day": day, "stage": stage}

    # Days of use, only in the columns of the episode's own substances: the start value, the outcome
    # at the latest TOP, a straight line with a little noise in between.
    sub_col = np.full(len(c.SUBSTANCES) + 1, -1)  # index -1 (a null substance) reads the last slot
    for s, col in c.TOP_DAYS.items():
        sub_col[_SUB[s]] = c.DAYS_COLUMNS.index(col)
    cols = [sub_col[e[key]] for key in ("s1", "s2", "s3")]
    ep_outcome = _pick(rng, _DAYS_OUTCOME, status)
    for j, name in enumerate(c.DAYS_COLUMNS):
        cites = (cols[0] == j) | (cols[1] == j) | (cols[2] == j)
        eps = np.flatnonzero(cites)
        k = len(eps)
        p_high, (hlo, hhi), (llo, lhi) = _DAYS_START_MAIN[name]
        high = rng.integers(hlo, hhi + 1, k, dtype=np.int16)
        low = rng.integers(llo, lhi + 1, k, dtype=np.int16)
        other = rng.integers(1, 21, k, dtype=np.int16)  # a substance other than the main one
        u = _u(rng, k)
        s0 = np.where(cols[0][eps] == j, np.where(u < p_high, high, low), np.where(u < 0.15, 0, other))
        # mostly the episode's outcome; for a quarter of the substances one of their own
        outcome = ep_outcome[eps]
        own = np.flatnonzero(_u(rng, k) < 0.25)
        outcome[own] = _pick(rng, _DAYS_OUTCOME, status[eps[own]])
        sign, lowest, count = (_DAYS_CHANGE[outcome, i] for i in range(3))
        change = sign * (lowest + np.floor(_u(rng, k) * count).astype(np.int16))
        final = np.where(outcome == 0, 0, np.clip(s0 + change, 0, 28))
        pair = np.zeros(2 * n, np.int8)
        pair[2 * eps], pair[2 * eps + 1] = s0, final
        value = pair[phase]
        a, b = pair[2 * mid_ep].astype(np.float64), pair[2 * mid_ep + 1]
        value[mid] = np.clip(np.rint(a + (b - a) * frac) + rng.integers(-2, 3, len(mid), dtype=np.int16), 0, 28)
        out[name] = (value, cites[ep] & ~_sprinkle(rng, m, _NULL_DAYS) & ~blank)

    # Housing and work: the start state, then from some point on (the same for all of them) the state
    # at the latest TOP.
    switch = phase.copy()
    switch[mid] = 2 * mid_ep + (frac >= (1.0 - _u(rng, n))[mid_ep])
    opiate = _cites(e["s1"], e["s2"], e["s3"])["opiate"]
    pair = np.empty(2 * n, np.int8)
    pair[0::2] = _pick(rng, _HOUSING_START, np.where(opiate, 0, 1))
    pair[1::2] = _pick(rng, np.reshape(_HOUSING_MOVE, (-1, 3)), 3 * status + pair[0::2])
    out["housing"] = (pair[switch], ~_sprinkle(rng, m, _NULL_HOUSING) & ~blank)

    who = np.where(e["age"] < c.ADULT_AGE, 2, np.where(opiate, 0, 1))
    for name, (start_share, moves, (lo, hi)) in _WORK.items():
        before = _u(rng, n) < np.asarray(start_share, dtype=np.float32)[who]
        # chance of working at the latest TOP, by status and working at start
        p_after = np.array([(gain, 1 - lose) for gain, lose in moves], dtype=np.float32).ravel()
        after = _u(rng, n) < p_after[2 * status + before]
        d0 = rng.integers(lo, hi + 1, n, dtype=np.int16)
        d1 = np.where(before, d0, rng.integers(lo, hi + 1, n, dtype=np.int16))
        pair = np.empty(2 * n, np.int8)
        pair[0::2], pair[1::2] = np.where(before, d0, 0), np.where(after, d1, 0)
        out[name] = (pair[switch], ~_sprinkle(rng, m, _NULL_WORK) & ~blank)
    return out


def _review_frame(t, episodes: pl.DataFrame) -> pl.DataFrame:
    """The reviews table: rows (and review ids) by episode, then date; client and episode ids from `episodes`."""
    ep = t["ep"]
    raw = pl.DataFrame(
        {
            "ep": ep,
            "day": t["day"].astype(np.int32),
            "stage": t["stage"],
            **{name: t[name][0] for name in ("housing", *c.DAYS_COLUMNS, *c.WORK_COLUMNS)},
            **{"_has_" + name: t[name][1] for name in ("housing", *c.DAYS_COLUMNS, *c.WORK_COLUMNS)},
        }
    )
    stages = pl.Series(c.STAGES, dtype=pl.String)
    housing = pl.Series(c.HOUSING, dtype=pl.String)

    def answer(name: str, expr: pl.Expr) -> pl.Expr:
        return pl.when(pl.col("_has_" + name)).then(expr).alias(name)

    frame = raw.select(
        _ids("TP", len(ep)).alias("review_id"),
        pl.lit(episodes.get_column("client_id")).gather(pl.col("ep")).alias("client_id"),
        pl.lit(episodes.get_column("episode_id")).gather(pl.col("ep")).alias("episode_id"),
        pl.col("day").cast(pl.Date).alias("review_date"),
        pl.lit(stages).gather(pl.col("stage")).alias("stage"),
        *(answer(name, pl.col(name).cast(pl.Int64)) for name in c.DAYS_COLUMNS),
        answer("housing", pl.lit(housing).gather(pl.col("housing"))),
        *(answer(name, pl.col(name).cast(pl.Int64)) for name in c.WORK_COLUMNS),
    )
    return frame.select(c.REVIEWS.column_names)


# ---------------------------------------------------------------------- frames


def _episode_frame(e, client_ids: pl.Series, la_series: pl.Series) -> pl.DataFrame:
    n = len(e["pid"])
    subs = pl.Series(list(c.SUBSTANCES) + [None], dtype=pl.String)
    reasons = pl.Series(list(c.DISCHARGE_REASONS) + [None], dtype=pl.String)
    null_sub = len(c.SUBSTANCES)
    null_reason = len(c.DISCHARGE_REASONS)
    closed = e["closed"]
    cols = [
        _ids("EP", n),
        client_ids.gather(e["pid"]),
        la_series.gather(e["la"]),
        pl.Series(c.SEXES, dtype=pl.String).gather(e["sex"]),
        pl.Series(e["age"], dtype=pl.Int64),
        subs.gather(e["s1"]),
        subs.gather(np.where(e["s2"] < 0, null_sub, e["s2"])),
        subs.gather(np.where(e["s3"] < 0, null_sub, e["s3"])),
        _dates(e["referral"], e["has_referral"]),
        _dates(e["triage"], None),
        _dates(e["discharge"], closed),
        reasons.gather(np.where(closed, e["reason"], null_reason)),
    ]
    return _frame(cols, [name for name in c.EPISODES.column_names if name not in c.HCV_COLUMNS])


def _release_frame(r, client_ids: pl.Series, la_series: pl.Series) -> pl.DataFrame:
    n = len(r["person"])
    excl = pl.Series(list(c.EXCLUSIONS) + [None], dtype=pl.String)
    cols = [
        _ids("RL", n),
        client_ids.gather(r["person"]),
        la_series.gather(r["la"]),
        pl.Series(c.SEXES, dtype=pl.String).gather(r["sex"]),
        pl.Series(r["age"], dtype=pl.Int64),
        _dates(r["release"], None),
        excl.gather(np.where(r["exclusion"] < 0, len(c.EXCLUSIONS), r["exclusion"])),
    ]
    return _frame(cols, c.RELEASES.column_names)


def _frame(columns: Sequence[pl.Series], names: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame([col.alias(name) for col, name in zip(columns, names, strict=True)])


def _ids(prefix: str, n: int) -> pl.Series:
    """prefix + zero-padded row number, e.g. EP0000001."""
    width = max(7, len(str(n)))
    return pl.select(pl.format(prefix + "{}", pl.int_range(1, n + 1).cast(pl.String).str.zfill(width))).to_series()


def _dates(days: np.ndarray, present: np.ndarray | None) -> pl.Series:
    s = pl.Series(days.astype(np.int32)).cast(pl.Date)
    if present is None:
        return s
    return pl.select(pl.when(pl.Series(present)).then(s)).to_series()


# ---------------------------------------------------------------------- helpers

_SUB = {s: i for i, s in enumerate(c.SUBSTANCES)}
_REASON = {r: i for i, r in enumerate(c.DISCHARGE_REASONS)}


def _norm(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def _day(d: date) -> int:
    return (d - _EPOCH).days


def _hex_ids(prefix: str, values: np.ndarray) -> pl.Series:
    """prefix + 8 upper-case hex digits per value, built without a Python loop."""
    v = values.astype(np.uint64)
    nibbles = (v[:, None] >> np.arange(28, -1, -4, dtype=np.uint64)) & np.uint64(15)
    chars = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)[nibbles]
    width = len(prefix) + 8
    full = np.empty((len(v), width), dtype=np.uint8)
    full[:, : len(prefix)] = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    full[:, len(prefix) :] = chars
    return pl.Series(full.view(f"S{width}").ravel()).cast(pl.String)
