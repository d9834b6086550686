"""An attacker's-eye audit of disclosure control (contract section 8), from a run's JSON output alone.

The attacker knows every published figure and the linear relations between counts (area sums,
category sums, cross-metric identities, numerator <= denominator). For every suppressed count whose
true value is 1-4, two linear programmes give the smallest and largest value it could take, with
every suppressed or unpublished count an unknown real >= 0. The rule: min <= 1 and max >= 4.

    from audit import audit, published_periods
    truth = {end: <--no-suppress JSON for that period end> for end in published_periods(doc)}
    assert audit(doc, truth) == []

True values come only from `truth`; they pick which cells must be protected, give the values a
trend row publishes (trend rows carry no counts) and check, before solving, that the true point
satisfies every relation (an AssertionError then means this model is wrong, not the tool).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_array

ENGLAND = "E92000001"
TOL = 1e-6
GROUPS = ("opiate", "non_opiate_only", "non_opiate_and_alcohol", "alcohol_only")
ADULT_CATEGORIES = ("all", *GROUPS)
UNMET_CATEGORIES = ("ocu", "opiate_only", "crack_only", "opiate_and_crack", "alcohol")

# metric -> row category -> (numerator cell, denominator cell); a cell is (quantity, cell category),
# None where the field is not a count (a prevalence estimate, expected deaths, or null).
CELLS: dict[str, dict[str, tuple[tuple[str, str] | None, tuple[str, str] | None]]] = {
    "in_treatment": {**{c: (("adults", c), None) for c in ADULT_CATEGORIES},
                     "young_people": (("young", "young_people"), None)},
    "unmet_need": {c: (("unmet", c), None) for c in UNMET_CATEGORIES},
    "deaths": {c: (("deaths", c), ("adults", c)) for c in ADULT_CATEGORIES},
    "mortality_ratio": {"all": (("deaths", "all"), None)},
    "completions": {c: (("completions", c), ("adults", c)) for c in ADULT_CATEGORIES},
    "continuity": {"all": (("engaged", "all"), ("releases", "all"))},
    # v2 (section 9): not in today's output
    "progress": {c: (("progress", c), ("adults", c)) for c in ADULT_CATEGORIES},
    "hepatitis_c": {
        "offered": (("hcv_offered", "all"), ("adults", "all")),
        "tested": (("hcv_tested", "all"), ("hcv_offered", "all")),
        "positive": (("hcv_positive", "all"), ("hcv_tested", "all")),
        "treatment_started": (("hcv_started", "all"), ("hcv_positive", "all")),
    },
    "housing": {
        "acute": (("housing_acute", "all"), ("housing_known", "all")),
        "no_problem": (("housing_none", "all"), ("housing_known", "all")),
    },
    "employment": {
        "paid_work": (("work_paid", "all"), ("work_paid_known", "all")),
        "voluntary_work": (("work_voluntary", "all"), ("work_voluntary_known", "all")),
        "education": (("work_education", "all"), ("work_education_known", "all")),
    },
}
# Quantities whose region / England figure sums only the LAs that have a row for it (an estimate).
SUMMED_OVER_ROWS = frozenset({"unmet"})
# total = sum of members, at every area level
CATEGORY_SUMS = [(q, "all", GROUPS) for q in ("adults", "deaths", "completions", "progress")]
# total = sum of members, at LA level only (aggregates sum different LAs for each unmet category)
LA_RELATIONS = [
    (("unmet", "ocu"), (("unmet", "opiate_only"), ("unmet", "crack_only"), ("unmet", "opiate_and_crack"))),
    (("unmet", "alcohol"), (("adults", "alcohol_only"), ("adults", "non_opiate_and_alcohol"))),
    (("adults", "opiate"), (("unmet", "opiate_only"), ("unmet", "opiate_and_crack"))),
]
# numerator <= denominator, at every area level
BOUNDS = sorted({(num, den) for cats in CELLS.values() for num, den in cats.values() if num and den})

Cell = tuple[str, str, str]  # (quantity, area_code, category)


def _results(doc: dict) -> list[dict]:
    if "results" in doc:
        return list(doc["results"])
    return [doc] if "metric" in doc else []


def _end(result: dict, fallback: str | None = None) -> str:
    return (result.get("period") or {}).get("end") or fallback


def published_periods(doc: dict) -> list[str]:
    """ISO period ends of every table the document publishes: the current period, the baseline and
    every distinct trend period_end."""
    ends = {_end(r) for r in _results(doc)}
    if doc.get("baseline"):
        base_end = doc["baseline"]["period"]["end"]
        ends |= {_end(r, base_end) for r in doc["baseline"].get("results", [])} | {base_end}
    ends |= {t["period_end"] for t in doc.get("trend") or []}
    return sorted(e for e in ends if e)


def _truth_cells(doc: dict) -> dict[Cell, float]:
    cells: dict[Cell, float] = {}
    for result in _results(doc):
        for row in result["rows"]:
            num, den = CELLS.get(result["metric"], {}).get(row["category"], (None, None))
            for spec, fieldname in ((num, "numerator"), (den, "denominator")):
                if spec is None or row.get(fieldname) is None:
                    continue
                cell = (spec[0], row["area_code"], spec[1])
                value = float(row[fieldname])
                if cell in cells and abs(cells[cell] - value) > TOL:
                    raise AssertionError(f"the unsuppressed run gives {cell} as {cells[cell]} and {value}")
                cells[cell] = value
    return cells


@dataclass
class _Table:
    period: str
    published: dict = field(default_factory=lambda: defaultdict(list))  # cell -> [(value, where)]
    seen: set = field(default_factory=set)  # every cell some row shows (published or null)
    area_type: dict = field(default_factory=dict)
    has_row: set = field(default_factory=set)  # (quantity, la, category) given by a row (unmet LAs)
    quantities: set = field(default_factory=set)

    def show(self, cell: Cell, value, where: str) -> None:
        self.seen.add(cell)
        self.quantities.add(cell[0])
        if value is not None:
            self.published[cell].append((float(value), where))


def _fmt(x: float) -> str:
    return f"{round(x, 6) + 0.0:g}"


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


class _Model:
    """Linear relations of one table: each is ({variable: coefficient}, constant, text); the
    relation is sum + constant == 0 ('eq') or <= 0 ('ub')."""

    def __init__(self, table: _Table, truth: dict[Cell, float], region: dict, partial: bool):
        self.t, self.truth, self.region, self.partial = table, truth, region, partial
        self.las = sorted(a for a, k in table.area_type.items() if k == "la")
        self.eq: list[tuple[dict, float, str]] = []
        self.ub: list[tuple[dict, float, str]] = []
        self.variables: dict = {}  # key -> true value or None (a free unknown)

    def value(self, cell: Cell):
        """('c', number) for a known figure, ('v', key) for an unknown, None if the cell does not exist."""
        if cell in self.t.published:
            return "c", self.t.published[cell][0][0]
        if cell in self.t.seen:
            return self._var(cell)
        q, area, _ = cell
        if self.t.area_type.get(area) != "la":
            return None
        if q in SUMMED_OVER_ROWS or self.partial or q not in self.t.quantities:
            return self._var(cell)  # exists, never published
        return "c", 0.0  # a full run omits zero rows

    def _var(self, key):
        self.variables.setdefault(key, self.truth.get(key) if isinstance(key, tuple) and len(key) == 3 else None)
        return "v", key

    def relate(self, kind: str, plus, minus, text: str, *, extra=None) -> None:
        """sum(plus) - sum(minus) (+ extra unknowns) == 0 or <= 0, skipped if a cell does not exist."""
        coeffs: dict = defaultdict(float)
        const = 0.0
        touched = False
        for sign, cells in ((1.0, plus), (-1.0, minus)):
            for cell in cells:
                got = self.value(cell)
                if got is None:
                    return
                touched |= cell in self.t.seen
                if got[0] == "c":
                    const += sign * got[1]
                else:
                    coeffs[got[1]] += sign
        if not touched:
            return
        for key, coef in (extra or {}).items():
            self._var(key)
            coeffs[key] += coef
        (self.eq if kind == "eq" else self.ub).append(({k: c for k, c in coeffs.items() if c}, const, text))

    def build(self) -> None:
        t = self.t
        aggregates = [c for c in t.seen if t.area_type.get(c[1]) in ("region", "england")]
        for q, area, cat in sorted(aggregates):
            members = [la for la in self.las
                       if t.area_type[area] == "england" or self.region.get(la) == area]
            if q in SUMMED_OVER_ROWS:
                members = [la for la in members if (q, la, cat) in t.has_row]
            extra = {("others", q, area, cat): -1.0} if self.partial else None
            self.relate("eq", [(q, area, cat)], [(q, la, cat) for la in members],
                        f"{q}/{cat}: {area} = sum of its LAs", extra=extra)
        for area in sorted(t.area_type):
            for q, total, members in CATEGORY_SUMS:
                self.relate("eq", [(q, area, total)], [(q, area, m) for m in members],
                            f"{q} at {area}: {total} = sum of {'+'.join(members)}")
            if t.area_type[area] == "la":
                for (q, total), members in LA_RELATIONS:
                    self.relate("eq", [(q, area, total)], [(mq, area, m) for mq, m in members],
                                f"at {area}: {q}/{total} = " + " + ".join(f"{mq}/{m}" for mq, m in members))
            for (nq, nc), (dq, dc) in BOUNDS:
                self.relate("ub", [(nq, area, nc)], [(dq, area, dc)], f"at {area}: {nq}/{nc} <= {dq}/{dc}")


def _components(model: _Model) -> list[tuple[list, list, list]]:
    """Split the unknowns into connected components: [(keys, eq rows, ub rows)]."""
    parent: dict = {k: k for k in model.variables}

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for coeffs, _, _ in model.eq + model.ub:
        keys = list(coeffs)
        for k in keys[1:]:
            a, b = find(keys[0]), find(k)
            if a != b:
                parent[a] = b
    groups: dict = defaultdict(lambda: ([], [], []))
    for k in model.variables:
        groups[find(k)][0].append(k)
    for coeffs, const, text in model.eq:
        if coeffs:
            groups[find(next(iter(coeffs)))][1].append((coeffs, const, text))
    for coeffs, const, text in model.ub:
        if coeffs:
            groups[find(next(iter(coeffs)))][2].append((coeffs, const, text))
    return list(groups.values())


def _matrix(rows, index):
    if not rows:
        return None, None
    r, c, v = [], [], []
    for i, (coeffs, _, _) in enumerate(rows):
        for k, coef in coeffs.items():
            r.append(i)
            c.append(index[k])
            v.append(coef)
    a = coo_array((v, (r, c)), shape=(len(rows), len(index))).tocsr()
    return a, np.array([-const for _, const, _ in rows])


def _check_truth(model: _Model, period: str, keys, eqs, ubs) -> None:
    """The true point must satisfy every relation (else the model, not the tool, is wrong)."""
    free = [k for k in keys if model.variables[k] is None]
    for kind, rows in (("eq", eqs), ("ub", ubs)):
        for coeffs, const, text in rows:
            if any(model.variables[k] is None for k in coeffs):
                continue
            lhs = const + sum(c * model.variables[k] for k, c in coeffs.items())
            if (abs(lhs) if kind == "eq" else lhs) > TOL:
                raise AssertionError(f"{period}: the true values break '{text}' (off by {lhs:g})")
    if free:
        index = {k: i for i, k in enumerate(keys)}
        bounds = [(model.variables[k],) * 2 if model.variables[k] is not None else (0, None) for k in keys]
        a_eq, b_eq = _matrix(eqs, index)
        a_ub, b_ub = _matrix(ubs, index)
        res = linprog(np.zeros(len(keys)), A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds,
                      method="highs")
        if res.status == 2:
            texts = sorted({text for coeffs, _, text in eqs + ubs if any(k in free for k in coeffs)})
            raise AssertionError(f"{period}: no values of the unknowns {free[:5]} fit the true values "
                                 f"under: {texts[:8]}")


def _ranges(model: _Model, targets: set, keys, eqs, ubs) -> dict:
    """(min, max) of each target cell; a bound already shown to pass (<= 1 / >= 4) is not solved."""
    index = {k: i for i, k in enumerate(keys)}
    a_eq, b_eq = _matrix(eqs, index)
    a_ub, b_ub = _matrix(ubs, index)
    mine = [k for k in keys if k in targets]
    points = [np.array([model.variables[k] if model.variables[k] is not None else np.nan for k in keys])]
    out = {}

    def solve(objective):
        res = linprog(objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        if res.status == 3:
            return None
        if res.status != 0:
            raise AssertionError(f"{model.t.period}: linprog failed ({res.message}) for {mine[:3]}")
        points.append(res.x)
        return res.x

    # one LP per direction over all targets first: its vertex often settles many at once
    if len(mine) > 1:
        c = np.zeros(len(keys))
        c[[index[k] for k in mine]] = 1.0
        solve(c)
    def extreme(i: int, sign: float) -> float:
        """The smallest (sign 1) or largest (sign -1) value of unknown i."""
        c = np.zeros(len(keys))
        c[i] = sign
        x = solve(c)
        return np.inf if x is None else x[i]

    for k in mine:
        i = index[k]
        lo = min((p[i] for p in points if not np.isnan(p[i])), default=np.inf)
        hi = max((p[i] for p in points if not np.isnan(p[i])), default=-np.inf)
        lo_exact = hi_exact = False
        if lo > 1 + TOL:
            lo, lo_exact = extreme(i, 1.0), True
        if hi < 4 - TOL:
            hi, hi_exact = extreme(i, -1.0), True
        if lo > 1 + TOL or hi < 4 - TOL:  # a failing cell: report its exact range
            if not lo_exact:
                lo = extreme(i, 1.0)
            if not hi_exact:
                hi = extreme(i, -1.0)
        out[k] = (lo, hi)
    return out


def audit(doc: dict, truth: dict[str, dict], *, partial: bool = False,
          external: frozenset = frozenset()) -> list[str]:
    """Violations of disclosure control in `doc`, one readable string each (empty: the rule holds).

    truth: period end -> the unsuppressed (--no-suppress) document for that period.
    partial: the run used --la, so each region / England sum has one more unknown >= 0.
    external: (period_end, metric, area_code, category) rows from a benchmarks file, ignored."""
    violations: list[str] = []
    tables: dict[str, _Table] = {}
    names: dict[str, str] = {}
    region: dict[str, str | None] = {}
    truth_cells = {end: _truth_cells(d) for end, d in truth.items()}

    def table(end: str) -> _Table:
        return tables.setdefault(end, _Table(end))

    def note_area(t: _Table, row: dict) -> None:
        t.area_type[row["area_code"]] = row["area_type"]
        names.setdefault(row["area_code"], row.get("area_name") or row["area_code"])
        if row["area_type"] == "la" and "region_code" in row:
            region.setdefault(row["area_code"], row["region_code"])

    for d in truth.values():
        for result in _results(d):
            for row in result["rows"]:
                if row["area_type"] == "la" and "region_code" in row:
                    region.setdefault(row["area_code"], row["region_code"])

    # -- the published tables --------------------------------------------------------------------
    sources = [("results", r, _end(r)) for r in _results(doc)]
    if doc.get("baseline"):
        base_end = doc["baseline"]["period"]["end"]
        sources += [("baseline", r, _end(r, base_end)) for r in doc["baseline"].get("results", [])]
    count_rows = []  # (where, end, metric, row) for the derived-figure checks
    for where, result, end in sources:
        t = table(end)
        metric = result["metric"]
        for row in result["rows"]:
            if (end, metric, row["area_code"], row["category"]) in external:
                continue
            note_area(t, row)
            num, den = CELLS.get(metric, {}).get(row["category"], (None, None))
            label = f"{where} {metric} {row['area_code']}/{row['category']}"
            for spec, fieldname in ((num, "numerator"), (den, "denominator")):
                if spec is not None:
                    cell = (spec[0], row["area_code"], spec[1])
                    t.show(cell, row.get(fieldname), f"{label} {fieldname}")
                    t.has_row.add(cell)
            count_rows.append((where, end, metric, row))
    for row in doc.get("trend") or []:
        end, metric = row["period_end"], row["metric"]
        if (end, metric, row["area_code"], row["category"]) in external:
            continue
        t = table(end)
        note_area(t, row)
        num, den = CELLS.get(metric, {}).get(row["category"], (None, None))
        for spec in (num, den):
            if spec is None:
                continue
            cell = (spec[0], row["area_code"], spec[1])
            t.has_row.add(cell)
            if row["suppressed"]:
                t.show(cell, None, "trend")
                continue
            if end not in truth_cells or cell not in truth_cells[end]:
                raise AssertionError(f"trend {end} publishes {cell}, which truth[{end!r}] does not give")
            t.show(cell, truth_cells[end][cell], f"trend {end} {metric} {row['area_code']}/{row['category']}")
        if row["suppressed"] and any(row.get(f) is not None for f in ("value", "ci_lower", "ci_upper")):
            violations.append(f"trend {end} {metric} {row['area_code']}/{row['category']}: "
                              f"suppressed but shows value/interval")

    def describe(end: str, cell: Cell) -> str:
        q, area, cat = cell
        return f"{end} {q} {area} ({names.get(area, area)}) {cat}"

    # -- derived figures ---------------------------------------------------------------------------
    for where, end, metric, row in count_rows:
        t = tables[end]
        label = f"{where} {end} {metric} {row['area_code']}/{row['category']}"
        num, den = CELLS.get(metric, {}).get(row["category"], (None, None))
        for spec, fieldname in ((num, "numerator"), (den, "denominator")):
            if spec is None or (spec[0], row["area_code"], spec[1]) in t.published:
                continue
            shown = [f for f in ("value", "ci_lower", "ci_upper", "comparison") if row.get(f) is not None]
            if shown or row.get("suppressed") is not True:
                violations.append(f"{label}: {fieldname} suppressed but the row shows "
                                  f"{', '.join(shown) or 'suppressed: false'}")
        if row.get("suppressed") and any(row.get(f) is not None for f in ("value", "ci_lower", "ci_upper")):
            violations.append(f"{label}: suppressed but shows value/interval")

    # -- changes and targets -----------------------------------------------------------------------
    def lookup(results):
        return {(r["metric"], row["area_code"], row["category"]): row for r in results for row in r["rows"]}

    current = lookup(_results(doc))
    baseline = lookup(doc["baseline"].get("results", [])) if doc.get("baseline") else {}
    cur_end = _end(_results(doc)[0]) if _results(doc) else None
    base_end = doc["baseline"]["period"]["end"] if doc.get("baseline") else None
    for ch in doc.get("changes") or []:
        key = (ch["metric"], ch["area_code"], ch["category"])
        if (cur_end, *key) in external or (base_end, *key) in external:
            continue
        label = f"change {'/'.join(key)}"
        for fieldname, rows in (("value", current), ("baseline_value", baseline)):
            if ch.get(fieldname) is None:
                continue
            src = rows.get(key)
            if src is None or src.get("suppressed") or src.get("value") is None:
                violations.append(f"{label}: {fieldname} {ch[fieldname]} shown but that row is suppressed or absent")
            elif not _close(float(src["value"]), float(ch[fieldname])):
                violations.append(f"{label}: {fieldname} {ch[fieldname]} differs from the row's {src['value']}")
        if ch.get("change") is not None and (ch.get("value") is None or ch.get("baseline_value") is None):
            violations.append(f"{label}: change shown without both values")
    for tg in doc.get("targets") or []:
        key = (tg["metric"], tg["la_code"], tg["category"])
        label = f"target {'/'.join(key)}"
        cur = current.get(key)
        cur_ok = cur is not None and cur.get("suppressed") is False
        for fieldname in ("value", "progress_percent"):
            if tg.get(fieldname) is not None and not cur_ok:
                violations.append(f"{label}: {fieldname} shown but the current row is suppressed or absent")
        base = baseline.get(key)
        if tg.get("baseline_value") is not None and not (base is not None and base.get("suppressed") is False):
            violations.append(f"{label}: baseline_value shown but the baseline row is suppressed or absent")

    # -- published cells: agree, and none is a count of 1-4 --------------------------------------------
    for end, t in sorted(tables.items()):
        tc = truth_cells.get(end, {})
        for cell, shown in sorted(t.published.items()):
            values = {v for v, _ in shown}
            if len(values) > 1:
                violations.append(f"{describe(end, cell)}: published as " +
                                  ", ".join(f"{v:g} ({w})" for v, w in shown))
            v = shown[0][0]
            if 1 - TOL <= v <= 4 + TOL:
                violations.append(f"{describe(end, cell)}: count {v:g} published ({shown[0][1]})")
            if cell in tc and abs(tc[cell] - v) > TOL:
                violations.append(f"{describe(end, cell)}: published {v:g}, the unsuppressed run says {tc[cell]:g}")

    # -- the linear programmes ---------------------------------------------------------------------
    for end, t in sorted(tables.items()):
        model = _Model(t, truth_cells.get(end, {}), region, partial)
        model.build()
        targets = {c for c in t.seen - set(t.published)
                   if c in model.variables and model.variables[c] is not None
                   and 1 - TOL <= model.variables[c] <= 4 + TOL}
        for keys, eqs, ubs in _components(model):
            _check_truth(model, end, keys, eqs, ubs)
            if not any(k in targets for k in keys):
                continue
            for cell, (lo, hi) in sorted(_ranges(model, targets, keys, eqs, ubs).items()):
                if lo > 1 + TOL or hi < 4 - TOL:
                    violations.append(f"{describe(end, cell)}: true {model.variables[cell]:g}, "
                                      f"an attacker narrows it to [{_fmt(lo)}, {_fmt(hi)}]")
    return violations
