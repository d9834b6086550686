"""Disclosure control (contract §8): primary and secondary suppression over the finished tables of a period.

This is a stage of its own, after every metric of a period has been computed
(unsuppressed, for every LA) and before anything is rendered:

1. **Cells.** Every count a period's tables publish becomes one *cell*,
   keyed by (quantity, area, category). A count that several metrics show is
   one cell: adults in treatment are in-treatment's numerators and the
   deaths and completions denominators; mortality-ratio observed deaths are
   deaths (`all`).
2. **Relations** an attacker can use (contract §8): every region and England
   cell is the sum of its LAs' cells; `all` is the sum of the four substance
   groups; unmet need `ocu` = `opiate_only` + `crack_only` +
   `opiate_and_crack`, unmet need `alcohol` = adults `alcohol_only` +
   `non_opiate_and_alcohol`, adults `opiate` = unmet need `opiate_only` +
   `opiate_and_crack`; numerators are at most their denominators; counts
   are at least 0. An LA with no estimate for an unmet-need category still
   has people in it: that count is an unknown nobody publishes.
3. **Primary** suppression: every cell from 1 to 4.
4. **Secondary** suppression, until *the rule* holds: for every primary cell,
   the range of values consistent with everything published and the
   relations (each suppressed cell an unknown real ≥ 0) reaches from 1 to 4.
   It is checked exactly, by linear programming (HiGHS, through `highspy`),
   as Tau-Argus and sdcTable check protection intervals (the "protection
   levels" of Fischetti and Salazar-González, 1999: lower 3 below a 4,
   upper 3 above a 1). Secondary cells are chosen greedily, in two steps
   that repeat until the check passes:

   * *singletons*: a relation with exactly one suppressed member gives that
     member back by subtraction, so another member is suppressed — the
     necessary condition GaussSuppression (Langsrud, 2024) and the hypercube
     method start from. The member chosen is an LA cell before a region or
     England one; then one that also mends another such relation (closing a
     rectangle, as the hypercube method does); then one of 3 or more (it can
     absorb the primary's range); then the smallest; then the first in
     (quantity, area, category) order — so every run chooses the same cells;
   * *narrow ranges*: where the programme still finds a range short of 1–4,
     one more member of a relation of that primary's component is
     suppressed, by the same order, preferring the primary's own relations
     and the published cells the programme's optimum rests on (non-zero
     duals). When a primary is still narrow after one such cell, its next
     cell is one that can move both ways (not a zero) before the level
     order: LA zeros can only grow, and suppressing them one by one for a
     range that needs a count to fall once hid hundreds of cells for three
     primaries.

   The relations only connect cells through suppressed ones, so the
   programmes are solved per connected component of unknowns: small, and
   only re-solved for components that changed.

Suppressing a published figure can only widen what an attacker can deduce,
so the same pattern over the whole table protects any subset of it: `--la`
shows a subset of the protected national table, and the same LA gets the same
pattern whichever LAs a run shows. Figures derived from a suppressed count
(values, intervals, comparisons, changes, target progress, trend points) are
suppressed with it by `apply`.
"""

from __future__ import annotations

import atexit
import copy
import gc
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from . import contract as c

SMALL = (1, 4)
GROUPS = c.SUBSTANCE_GROUPS
OCU_PARTS = ("opiate_only", "crack_only", "opiate_and_crack")
LEVEL = {"la": 0, "region": 1, "england": 2}
TOLERANCE = 1e-6
WITHIN, ACROSS, ENGLAND = 0, 1, 2  # the kinds of equality (`Table.kind`)


def cells_of(metric: str, category: str) -> tuple[tuple[str, str], tuple[str, str] | None]:
    """The (quantity, category) of the cells a row of `metric` shows: its numerator, and its denominator
    when that is a count (None for none, a prevalence estimate or expected deaths).

    A count that several rows show is one cell: adults in treatment are the in-treatment numerators and
    the deaths, completions and progress denominators, and the hepatitis C offers; each cascade step's
    numerator is the next step's denominator; housing's two categories share one denominator.
    """
    if metric == "in_treatment":
        return ("young" if category == "young_people" else "adults", category), None
    if metric in SHARED_CELLS:
        return SHARED_CELLS[metric][category]
    numerator = (NUMERATORS[metric], category)
    return numerator, ((DENOMINATORS[metric], category) if metric in DENOMINATORS else None)


NUMERATORS = {"unmet_need": "unmet", "deaths": "deaths", "mortality_ratio": "deaths",
              "completions": "completions", "continuity": "engaged", "progress": "progress"}
# metrics whose denominator is a count of the same category (the others: see SHARED_CELLS, or none)
DENOMINATORS = {"deaths": "adults", "completions": "adults", "continuity": "releases", "progress": "adults"}
# the §9 measures whose rows show cells of other categories
SHARED_CELLS = {
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
# quantities whose `all` is the sum of the four substance groups, in every area
GROUP_SUMS = ("adults", "deaths", "completions", "progress")
# cell a ≤ cell b of the same area and category: every numerator within its denominator, and the TOP
# denominators (adults with a latest TOP) within adults in treatment
BOUNDS = (("deaths", "adults"), ("completions", "adults"), ("engaged", "releases"), ("progress", "adults"),
          ("hcv_offered", "adults"), ("hcv_tested", "hcv_offered"), ("hcv_positive", "hcv_tested"),
          ("hcv_started", "hcv_positive"), ("housing_acute", "housing_known"), ("housing_none", "housing_known"),
          ("housing_known", "adults"), ("work_paid", "work_paid_known"), ("work_voluntary", "work_voluntary_known"),
          ("work_education", "work_education_known"), ("work_paid_known", "adults"),
          ("work_voluntary_known", "adults"), ("work_education_known", "adults"))
# total = the published parts + one part nobody publishes, in every area: adults with a known housing
# status are those with acute, no or another (at risk) housing problem
PARTLY_PUBLISHED = ((("housing_known", "all"), (("housing_acute", "all"), ("housing_none", "all")), "housing_other"),)
# quantities with a row for every LA that has an estimate (not only the non-zero ones): an LA with no
# row has no estimate, and its count is an unknown, not a zero
ESTIMATED = ("unmet",)
# Metrics protected together: their counts are linked by the relations above. Continuity stands alone.
LINKED = (("in_treatment", "unmet_need", "deaths", "mortality_ratio", "completions", "progress", "housing",
           "employment", "hepatitis_c"), ("continuity",))


def linked_group(metric: str) -> tuple[str, ...]:
    return next(group for group in LINKED if metric in group)


Key = tuple[str, str, str]  # (quantity, area_code, category)


@dataclass
class Table:
    """The cells of one period's tables and the relations between them.

    Besides the cells and relations, the indexes the search walks (`terms_of`, `relations_of`,
    `bounds_of`, `kind`), built with them (`_structure`). Nothing changes a table once it is built.
    """

    keys: list[Key] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)  # None: an unknown no table shows
    level: list[int] = field(default_factory=list)
    eligible: list[bool] = field(default_factory=list)  # may be suppressed as a secondary cell
    equalities: list[list[tuple[int, int]]] = field(default_factory=list)  # Σ coefficient · cell = 0
    bounds: list[tuple[int, int]] = field(default_factory=list)  # cell a ≤ cell b
    index: dict[Key, int] = field(default_factory=dict)
    # per cell: (relation, the cell's coefficient in it) for every equality it is in, in relation order
    terms_of: list[list[tuple[int, int]]] = field(default_factory=list)
    relations_of: list[list[int]] = field(default_factory=list)  # per cell: the equalities it is in
    bounds_of: list[list[int]] = field(default_factory=list)  # per cell: the bounds it is in
    # per equality: WITHIN one area (categories), ACROSS areas (a region's sum) or ENGLAND's sum
    kind: list[int] = field(default_factory=list)


class Row(NamedTuple):
    """What disclosure control needs of one row of a result."""

    metric: str
    area_code: str
    area_type: str
    region_code: str | None
    category: str
    numerator: float | None
    denominator: float | None


# one metric's rows, column by column, sorted by (area level, area code, category): area codes, area types,
# region codes, categories, numerators, denominators
Columns = tuple[list, list, list, list, list, list]


def build(rows: list[Row], fixed: set[Key] = frozenset()) -> Table:
    """The cells and relations of one period's rows (every LA, unsuppressed).

    `fixed` cells are shown from elsewhere (published benchmarks): never chosen as secondary cells.
    """
    parts: dict[str, list[tuple]] = {}
    for r in sorted(rows, key=lambda r: (r.metric, LEVEL[r.area_type], r.area_code, r.category)):
        parts.setdefault(r.metric, []).append(r[1:])
    return build_columns([(metric, tuple(map(list, zip(*part)))) for metric, part in parts.items()], fixed)


def build_columns(parts: list[tuple[str, Columns]], fixed: set[Key] = frozenset()) -> Table:
    """`build` over each metric's rows as columns (`Columns`), the metrics in name order.

    The cells and relations depend only on which rows there are (metric, area and category), not on
    their figures: they are built once per such set (`_structure`) and kept for the next period with the
    same rows (a trend's quarters often have them), and each table only reads its figures into them.
    """
    signature = tuple((metric, tuple(columns[0]), tuple(columns[1]), tuple(columns[2]), tuple(columns[3]))
                      for metric, columns in parts)
    with _STRUCTURES_LOCK:  # tables may be decided here on two threads (`report` without a worker)
        structure = _STRUCTURES.pop(signature, None)
    structure = structure or _structure(parts)
    with _STRUCTURES_LOCK:
        _STRUCTURES[signature] = structure  # the most recent last
        while len(_STRUCTURES) > _KEEP_STRUCTURES:
            del _STRUCTURES[next(iter(_STRUCTURES))]
    table = copy.copy(structure.table)  # the structure's lists are shared, never changed after it is built
    unset = _UNSET
    values = [unset] * structure.shown
    for (_, columns), numerator_cells, denominator_cells in zip(parts, structure.numerators, structure.denominators):
        for cells, figures in ((numerator_cells, columns[4]), (denominator_cells, columns[5])):
            for i, figure in zip(cells, figures):
                if i is None:
                    continue
                held = values[i]
                if held is unset:
                    values[i] = figure
                elif held != figure:
                    raise AssertionError(f"cell {table.keys[i]} shown as {held} and {figure}")
    values.extend([None] * (len(table.keys) - structure.shown))  # the unknowns no table shows
    table.value = values
    table.eligible = [v is not None and key not in fixed for v, key in zip(values, table.keys)]
    return table


class _Structure(NamedTuple):
    """The cells and relations of a set of rows (`_structure`), without figures."""

    table: Table  # its value and eligible lists are empty
    shown: int  # the cells the rows show come first; the unknowns no row shows after them
    numerators: list[list[int]]  # per part, per row: its numerator's cell
    denominators: list[list[int | None]]  # per part, per row: its denominator's cell, or None


_UNSET = object()
_STRUCTURES: dict[tuple, _Structure] = {}  # by the rows' signature (`build_columns`), least recent first
_KEEP_STRUCTURES = 4
_STRUCTURES_LOCK = threading.Lock()


def _structure(parts: list[tuple[str, Columns]]) -> _Structure:
    """The cells and relations of the rows in `parts` (their figures are not read).

    Written for speed: some 6,000 rows and 6,000 relations and bounds a period.
    """
    table = Table()
    index, keys, levels = table.index, table.keys, table.level
    areas: dict[str, tuple[int, str | None]] = {}
    numerators: list[list[int]] = []
    denominators: list[list[int | None]] = []

    def add_cell(key: Key, level: int) -> int:
        """The index of the cell `key`, added (its key and level) the first time it is asked for."""
        i = index.get(key)
        if i is None:
            i = index[key] = len(keys)
            keys.append(key)
            levels.append(level)
        return i

    for metric, (area_codes, area_types, region_codes, categories, _, _) in parts:
        of_category = {category: cells_of(metric, category) for category in set(categories)}
        row_levels = [LEVEL[area_type] for area_type in area_types]
        areas.update(zip(area_codes, zip(row_levels, region_codes)))
        numerator_cells: list[int] = []
        denominator_cells: list[int | None] = []
        for area, level, category in zip(area_codes, row_levels, categories):
            (nq, nc), den = of_category[category]
            numerator_cells.append(add_cell((nq, area, nc), level))
            denominator_cells.append(None if den is None else add_cell((den[0], area, den[1]), level))
        numerators.append(numerator_cells)
        denominators.append(denominator_cells)
    shown = len(keys)
    terms_of = table.terms_of = [[] for _ in keys]
    relations_of = table.relations_of = [[] for _ in keys]
    bounds_of = table.bounds_of = [[] for _ in keys]
    equalities, kinds = table.equalities, table.kind

    def unknown(key: Key, level: int) -> int:
        """A cell no table shows (an unknown count), added after the cells the rows show."""
        i = add_cell(key, level)
        terms_of.append([])
        relations_of.append([])
        bounds_of.append([])
        return i

    def relate(members: list[tuple[int, int]], kind: int) -> None:
        """The equality Σ coefficient · cell = 0 over `members`, of the given kind."""
        r = len(equalities)
        equalities.append(members)
        kinds.append(kind)
        for i, coef in members:
            terms_of[i].append((r, coef))
            relations_of[i].append(r)

    cells = sorted(index)  # creation order above is by metric; relations are built in key order
    by_qc: dict[tuple[str, str], list[Key]] = {}
    for key in cells:
        by_qc.setdefault((key[0], key[2]), []).append(key)
    # areas: region = Σ its LAs; England = Σ the regions (the same as Σ every LA once each region is the
    # sum of its LAs, but it links two regions' unknowns only through a suppressed region or England
    # cell, so the programmes are solved per region: a tenth of the size), or Σ every LA when an LA's
    # region has no cell of this quantity and category
    for _, group in sorted(by_qc.items()):
        las_of: dict[str | None, list[tuple[int, int]]] = {}
        every_la: list[tuple[int, int]] = []
        regions: list[tuple[int, int]] = []
        totals: list[tuple[int, str, int]] = []  # (level, area, cell) of the region and England cells
        for k in group:
            level, region = areas[k[1]]
            i = index[k]
            if level == 0:
                las_of.setdefault(region, []).append((i, -1))
                every_la.append((i, -1))
            else:
                totals.append((level, k[1], i))
                if level == 1:
                    regions.append((i, -1))
        by_regions = {keys[i][1] for i, _ in regions}.issuperset(las_of)
        for level, area, i in totals:
            if level == 1:
                members = las_of.get(area, [])
            else:
                members = regions if by_regions else every_la
            relate([(i, 1), *members], (ENGLAND if level == 2 else ACROSS) if members else WITHIN)
    # categories: all = Σ groups, in every area
    ordered_areas = sorted(areas)
    for quantity in GROUP_SUMS:
        for area in ordered_areas:
            present = [(i, 1 if g == "all" else -1) for g in ("all", *GROUPS)
                       if (i := index.get((quantity, area, g))) is not None]
            if present:
                relate(present, WITHIN)
    # the links between unmet need and in treatment, per LA
    level_of = {area: level for area, (level, _) in areas.items()}

    def member(quantity: str, la: str, category: str) -> int | None:
        key = (quantity, la, category)
        if key in index:
            return index[key]
        if quantity in ESTIMATED:  # no estimate: an unknown count
            return unknown(key, 0)
        return None  # no row: zero

    for la in sorted(a for a, level in level_of.items() if level == 0):
        links = (
            (("unmet", "ocu"), [("unmet", p) for p in OCU_PARTS]),
            (("unmet", "alcohol"), [("adults", "alcohol_only"), ("adults", "non_opiate_and_alcohol")]),
            (("adults", "opiate"), [("unmet", "opiate_only"), ("unmet", "opiate_and_crack")]),
        )
        for (tq, tc), parts in links:
            if not any((q, la, cat) in index for q, cat in [(tq, tc), *parts]):
                continue
            if not any(q == "unmet" and (q, la, cat) in index for q, cat in [(tq, tc), *parts]):
                continue  # no estimates at all for this LA: nothing of unmet need is shown
            members = [(member(tq, la, tc), 1)] + [(member(q, la, cat), -1) for q, cat in parts]
            relate([(i, coef) for i, coef in members if i is not None], WITHIN)
    # a total of published parts and an unpublished rest (an unknown ≥ 0), in every area
    for (tq, tc), parts, rest in PARTLY_PUBLISHED:
        for area in sorted(areas):
            total = index.get((tq, area, tc))
            if total is None:
                continue  # no row: the total and its parts are 0
            members = [(index[(q, area, cat)], -1) for q, cat in parts if (q, area, cat) in index]
            other = unknown((rest, area, tc), areas[area][0])
            relate([(total, 1), *members, (other, -1)], WITHIN)
    by_quantity: dict[str, list[Key]] = {}
    for key in cells:
        by_quantity.setdefault(key[0], []).append(key)
    bounds = table.bounds
    for small, big in BOUNDS:  # cell a ≤ cell b
        for key in by_quantity.get(small, ()):
            j = index.get((big, key[1], key[2]))
            if j is not None:
                i = index[key]
                bounds_of[i].append(len(bounds))
                bounds_of[j].append(len(bounds))
                bounds.append((i, j))
    return _Structure(table, shown, numerators, denominators)


def primary(table: Table) -> list[int]:
    return [i for i, v in enumerate(table.value) if v is not None and SMALL[0] <= v <= SMALL[1]]


# -- secondary suppression ------------------------------------------------------------------------


def protect(table: Table) -> set[int]:
    """The suppressed cells: the primary ones and as few secondary ones as the rule needs."""
    first = primary(table)
    suppressed: set[int] = set()
    if not first:
        return suppressed
    relations_of = table.relations_of
    free = {i for i, v in enumerate(table.value) if v is None}
    hidden = [0] * len(table.equalities)  # suppressed members per relation
    unknowns = [0] * len(table.equalities)  # suppressed or free members per relation
    for i in free:
        for r in relations_of[i]:
            unknowns[r] += 1
    checker = _Checker(table, free, first)

    def suppress(i: int) -> None:
        suppressed.add(i)
        checker.add(i)
        for r in relations_of[i]:
            hidden[r] += 1
            unknowns[r] += 1

    def singleton(r: int) -> bool:
        """The relation gives its one suppressed member back by subtraction."""
        return hidden[r] == 1 and unknowns[r] == 1

    def cost(i: int, preferred: set[int] = frozenset()) -> tuple:
        value = table.value[i]
        mends = sum(1 for r in relations_of[i] if singleton(r))
        return (table.level[i], i not in preferred, -mends, value < 3, value, table.keys[i])

    def candidates(relations) -> list[int]:
        return list(dict.fromkeys(i for r in relations for i, _ in table.equalities[r]
                                  if table.eligible[i] and i not in suppressed))

    def mend_singletons(work: deque) -> None:
        while work:
            r = work.popleft()
            if not singleton(r):
                continue
            options = candidates([r])
            if not options:
                continue  # every other member is fixed or has no row: nothing to suppress in this relation
            chosen = min(options, key=cost)
            suppress(chosen)
            work.extend(relations_of[chosen])

    def widen(p: int, component: list[int], holding: list[int]) -> int | None:
        """The cell to suppress for a primary whose range is too narrow: one of the published cells that
        hold it (by `cost`); else one of its own relations' members, else one of its component's relations'
        (an LA cell before a region or England one, then as `cost`)."""
        own = candidates(relations_of[p])
        preferred = set(own)
        useful = [i for i in holding if table.eligible[i] and i not in suppressed]
        if useful and widened[p]:
            # still too narrow after a cell was suppressed for it: the cheapest cell was not enough (often a
            # zero, which cannot move down), so a zero comes after every cell that can move both ways
            return min(useful, key=lambda i: (table.value[i] == 0,) + cost(i, preferred))
        if useful:
            return min(useful, key=lambda i: cost(i, preferred))
        best = min(own, key=cost) if own else None
        if best is not None and table.level[best] == 0:
            return best
        wider = candidates(sorted({r for i in component for r in relations_of[i]}))
        return min(wider, key=lambda i: cost(i, preferred)) if wider else None

    widened = dict.fromkeys(first, 0)  # per primary: the rounds a cell was chosen for it
    for i in first:
        suppress(i)
    mend_singletons(deque(r for i in first for r in relations_of[i]))
    while True:
        narrow = checker.narrow(suppressed)
        if not narrow:
            return suppressed
        touched: set[int] = set()  # relations given a cell this round: their primaries may be mended already
        for p, component, holding_of in narrow:
            if touched.intersection(relations_of[p]):
                continue
            holding = holding_of(p)
            if holding is None:
                continue  # reaches 1–4 alone: the programme over all targets had not placed it there
            chosen = widen(p, component, holding)
            widened[p] += 1
            if chosen is not None:
                suppress(chosen)
                touched.update(relations_of[chosen])
                mend_singletons(deque(relations_of[chosen]))
        if not touched:
            return suppressed  # nothing left that may be suppressed (only fixed benchmark cells)


class _Checker:
    """Each primary cell's range by linear programming, per connected component of unknowns.

    Suppressing one more cell turns a published constant into an unknown: every solution
    before is still one after, so a range only ever widens. A primary found to reach 4 (or 1)
    stays settled, and only the unsettled ones are solved for again.
    """

    def __init__(self, table: Table, free: set[int], first: list[int]):
        self.table = table
        self.relations_of = table.relations_of
        self.bounds_of = table.bounds_of
        self.need_high = {i for i in first if table.value[i] < SMALL[1]}  # the true figures reach the rest
        self.need_low = {i for i in first if table.value[i] > SMALL[0]}
        self.tried: set[int] = set()  # targets looked at for rectangles (once: later rounds solve)
        self.parent: dict[int, int] = {}  # union-find over the unknowns: components only ever merge
        self.unknown: set[int] = set()
        self.anchor: dict[int, int] = {}  # relation -> an unknown in it (its unknowns are joined already)
        for i in sorted(free):
            self.add(i)

    def add(self, i: int) -> None:
        """Cell i became an unknown: join it to the unknowns it shares a relation or bound with."""
        self.parent.setdefault(i, i)
        self.unknown.add(i)
        linked = [self.anchor.setdefault(r, i) for r in self.relations_of[i]]
        linked += [j for k in self.bounds_of[i] for j in self.table.bounds[k]]
        for j in linked:
            if j in self.unknown and j != i:
                a, b = self._find(i), self._find(j)
                if a != b:
                    self.parent[max(a, b)] = min(a, b)

    def _find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def components(self) -> list[list[int]]:
        """The unknowns in groups linked by relations and bounds (through unknowns only), in cell order."""
        groups: dict[int, list[int]] = {}
        for i in sorted(self.unknown):
            groups.setdefault(self._find(i), []).append(i)
        return list(groups.values())

    def narrow(self, suppressed: set[int]) -> list[tuple[int, list[int], Callable]]:
        """(primary, its component, a function giving the published cells holding its range, or None when
        it reaches 1–4 after all) for every primary not yet shown to reach 1–4, in cell order."""
        out = []
        for component in self.components():
            high = [i for i in component if i in self.need_high]
            low = [i for i in component if i in self.need_low]
            for i in [i for i in high + low if i not in self.tried]:  # a rectangle settles most without a programme
                self.tried.add(i)
                high_reached, low_reached = rectangle_reach(self.table, i, suppressed)
                if high_reached:
                    self.need_high.discard(i)
                if low_reached:
                    self.need_low.discard(i)
            high = [i for i in high if i in self.need_high]
            low = [i for i in low if i in self.need_low]
            if not high and not low:
                continue
            if self._all_reach(high, low, suppressed):
                self.need_high.difference_update(high)
                self.need_low.difference_update(low)
                continue
            open_high, open_low, probe = settle(self.table, component, high, low)

            def holding(p: int, probe=probe, open_high=open_high, open_low=open_low) -> list[int] | None:
                cells = probe(p)
                if p not in open_high:
                    self.need_high.discard(p)
                if p not in open_low:
                    self.need_low.discard(p)
                return cells

            self.need_high.difference_update(set(high) - open_high)
            self.need_low.difference_update(set(low) - open_low)
            out.extend((p, component, holding) for p in set(high + low) if p in open_high or p in open_low)
        return sorted(out, key=lambda short: self.table.keys[short[0]])

    def _all_reach(self, high: list[int], low: list[int], suppressed: set[int]) -> bool:
        """Whether a move of two cells (`line_reach`) shows every target of a component reaching.

        All or nothing: the programme is skipped only when it would settle every target anyway, since
        an answer per target would change the programmes over the others, and the basis their probes
        start from. About a fifth of the programmes a national table solved are components of two
        unknowns that such a move settles (63 of 288 over the nine tables of a national trend).
        """
        reach = {}
        for targets, direction in ((high, 0), (low, 1)):
            for i in targets:
                if i not in reach:
                    reach[i] = line_reach(self.table, i, suppressed)
                if not reach[i][direction]:
                    return False
        return True


def rectangle_reach(table: Table, p: int, suppressed: set[int]) -> tuple[bool, bool]:
    """Whether cell p can move up to 4, and down to 1, along a rectangle of suppressed cells, keeping every
    relation.

    The hypercube method's move in two dimensions: p and a partner `a` in a relation within p's area
    (another substance group, or the `all` total), a partner `b` in p's area relation (another LA of
    the region), and the corner `c` (a's quantity and category in b's area), moved by +t, ∓t, −t, ±t.
    Every relation and bound the four are in is checked, so a move is only counted when it is one.
    A found move proves the range (a feasible point); none found proves nothing (the caller solves).
    """
    keys, value, index, terms_of = table.keys, table.value, table.index, table.terms_of
    row_partners, column_partners = [], []
    for r, coef_p in terms_of[p]:
        kind = table.kind[r]
        if kind == ENGLAND:
            continue  # England's sum: its rectangles are the regions' (a move within a region keeps both)
        partners = row_partners if kind == WITHIN else column_partners
        partners.extend((i, -coef_p / coef) for i, coef in table.equalities[r] if i != p and i in suppressed)
    start = value[p]
    reach = start >= SMALL[1], start <= SMALL[0]  # (high, low): reached already
    for a, delta_a in row_partners:
        quantity_a, _, category_a = keys[a]
        for b, delta_b in column_partners:
            corner = index.get((quantity_a, keys[b][1], category_a))
            if corner is None or corner not in suppressed or corner in (p, a, b):
                continue
            reach = _reach_along(table, p, {p: 1.0, a: delta_a, b: delta_b, corner: delta_a * delta_b}, reach)
            if reach == (True, True):
                return reach
    return reach


def line_reach(table: Table, p: int, suppressed: set[int]) -> tuple[bool, bool]:
    """Whether cell p can move up to 4, and down to 1, against one other suppressed cell, keeping every
    relation: the one-dimensional move (+t, ∓t) of p and a member `a` of one of its relations. It keeps
    them only when p and a are in the same relations (an LA of a metric with one category and another
    LA of its region, say), which is how a component of two unknowns is held. Like `rectangle_reach`,
    a found move proves the range, none found proves nothing.
    """
    start = table.value[p]
    reach = start >= SMALL[1], start <= SMALL[0]
    seen = set()
    for r, coef_p in table.terms_of[p]:
        for a, coef in table.equalities[r]:
            if a == p or a in seen or a not in suppressed:
                continue
            seen.add(a)
            reach = _reach_along(table, p, {p: 1.0, a: -coef_p / coef}, reach)
            if reach == (True, True):
                return reach
    return reach


def _reach_along(table: Table, p: int, move: dict[int, float], reach: tuple[bool, bool]) -> tuple[bool, bool]:
    """`reach` (whether p is known to reach 4, and 1) with what moving the cells by t · `move` (p's
    coefficient 1) shows: how far t can go up and down with every count ≥ 0 and within its bounds, when
    the move keeps every relation the cells are in."""
    value, bounds_of = table.value, table.bounds_of
    high, low = reach
    start = value[p]
    up = down = float("inf")
    for i, d in move.items():  # counts stay ≥ 0
        if d < 0:
            up = min(up, value[i] / -d)
        else:
            down = min(down, value[i] / d)
    if (high or start + up < SMALL[1]) and (low or start - down > SMALL[0]):
        return reach  # the bounds below only narrow it: this move cannot reach what is still missing
    balance: dict[int, float] = {}
    for i, d in move.items():
        for r, coef in table.terms_of[i]:
            balance[r] = balance.get(r, 0.0) + coef * d
    if any(abs(total) > TOLERANCE for total in balance.values()):
        return reach
    for k in {k for i in move for k in bounds_of[i]}:  # numerator ≤ denominator
        small, big = table.bounds[k]
        slack, d = value[big] - value[small], move.get(small, 0.0) - move.get(big, 0.0)
        if d > 0:
            up = min(up, slack / d)
        elif d < 0:
            down = min(down, slack / -d)
    return high or start + up >= SMALL[1], low or start - down <= SMALL[0]


def settle(table: Table, component: list[int], high: list[int], low: list[int]) -> tuple[set[int], set[int], Callable]:
    """Of the `high` targets, those not yet shown to reach 4; of the `low` ones, those not yet shown to reach
    1 (both sets shrink as `probe` is called); and `probe(target)`, which solves for one target alone and
    gives the published cells its range is held by (`binding_cells`), or None when it reaches after all.

    Solved over the unknowns of one `component`, the published cells as constants. Every
    solution is a feasible point, so each programme settles every target it happens to place
    at 4 or more (1 or less), not only the one it was solved for: programmes over all unsettled
    targets at once come first, then one target at a time, lazily: a round of `protect` widens only
    the targets no cell chosen earlier in the round touches, and only those need solving alone.
    """
    import highspy
    import numpy as np

    relations_of, bounds_of = table.relations_of, table.bounds_of
    col = {i: n for n, i in enumerate(component)}
    n = len(component)
    lower, upper, starts, indices, values = [], [], [], [], []
    row_cells: list[list[int]] = []  # per row: the published cells whose values it holds
    bound_cells: list[list[int]] = [[] for _ in component]  # per column: published cells bounding it

    def add_row(entries: list[tuple[int, int]], lo: float, hi: float, published: list[int] = ()) -> None:
        row_cells.append(list(published))
        starts.append(len(indices))
        for i, coef in entries:
            indices.append(col[i])
            values.append(float(coef))
        lower.append(lo)
        upper.append(hi)

    col_lower, col_upper = np.zeros(n), np.full(n, np.inf)
    for r in sorted({r for i in component for r in relations_of[i]}):
        members = table.equalities[r]
        inside = [(i, coef) for i, coef in members if i in col]
        outside = [(i, coef) for i, coef in members if i not in col]
        rhs = -sum(coef * table.value[i] for i, coef in outside)
        add_row(inside, rhs, rhs, [i for i, _ in outside])
    for a, b in (table.bounds[k] for k in sorted({k for i in component for k in bounds_of[i]})):
        if a in col and b in col:
            add_row([(a, 1), (b, -1)], -np.inf, 0.0)
        elif a in col:
            col_upper[col[a]] = min(col_upper[col[a]], table.value[b])
            bound_cells[col[a]].append(b)
        elif b in col:
            col_lower[col[b]] = max(col_lower[col[b]], table.value[a])
            bound_cells[col[b]].append(a)
    # Capped copies for the programmes over many targets: 0 ≤ y ≤ 4 with y ≤ x (maximise Σ y: as many
    # targets at 4 as will go), and w ≥ 0 with w ≥ x − 1 (minimise Σ w: as many at 1 as will go).
    aux = {}
    for i in high:
        aux[("y", i)] = n + len(aux)
        add_row([(i, -1)], -np.inf, 0.0)
        indices.append(aux[("y", i)])
        values.append(1.0)
    for i in low:
        aux[("w", i)] = n + len(aux)
        add_row([(i, 1)], -np.inf, float(SMALL[0]))
        indices.append(aux[("w", i)])
        values.append(-1.0)
    bounds_y = [(0.0, float(SMALL[1])) if kind == "y" else (0.0, np.inf) for kind, _ in aux]
    col_lower = np.concatenate([col_lower, [lo for lo, _ in bounds_y]])
    col_upper = np.concatenate([col_upper, [hi for _, hi in bounds_y]])
    total = n + len(aux)
    h = highspy._Highs()  # the bare solver (exported): highspy.Highs prints a banner to stdout on first use
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")  # each programme starts from the last one's basis instead
    h.setOptionValue("threads", 1)  # small programmes: no thread pool beside Polars' own
    h.addVars(total, col_lower, col_upper)
    if lower:
        h.addRows(len(lower), np.array(lower), np.array(upper), len(indices), np.array(starts, dtype=np.int32),
                  np.array(indices, dtype=np.int32), np.array(values))
    everything = np.arange(total, dtype=np.int32)
    need_high, need_low = set(high), set(low)
    binding: dict[int, list[int]] = {}

    def solve(objective: list[int], sense_max: bool) -> np.ndarray | None:
        """A solution at the objective's optimum (over columns); None when it is unbounded (only when maximising)."""
        costs = np.zeros(total)
        costs[objective] = 1.0
        h.changeColsCost(total, everything, costs)
        h.changeObjectiveSense(highspy.ObjSense.kMaximize if sense_max else highspy.ObjSense.kMinimize)
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            return np.asarray(h.getSolution().col_value)
        if sense_max and status in (highspy.HighsModelStatus.kUnbounded,
                                    highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return None
        raise RuntimeError(f"disclosure control: no solution consistent with the published figures ({status})")

    def record(solution: np.ndarray) -> None:
        need_high.difference_update([i for i in need_high if solution[col[i]] >= SMALL[1] - TOLERANCE])
        need_low.difference_update([i for i in need_low if solution[col[i]] <= SMALL[0] + TOLERANCE])

    def binding_cells() -> list[int]:
        """The published cells in the constraints the last optimum rests on (non-zero duals): suppressing one
        of them is what can widen the range."""
        solution = h.getSolution()
        rows = np.flatnonzero(np.abs(np.asarray(solution.row_dual)) > TOLERANCE)
        columns = np.flatnonzero(np.abs(np.asarray(solution.col_dual)[:n]) > TOLERANCE)
        cells = [i for r in rows for i in row_cells[r]] + [i for c in columns for i in bound_cells[c]]
        return list(dict.fromkeys(cells))

    for need, sense_max in ((need_high, True), (need_low, False)):
        while need:  # over all unsettled targets, while that settles some
            before = len(need)
            record(solve([aux[("y" if sense_max else "w", i)] for i in need], sense_max))
            if len(need) == before:
                break

    start = h.getBasis()

    def probe(i: int) -> list[int] | None:
        """Target i alone, in each direction it still needs: None when it reaches 1–4 after all, else the
        published cells holding its range. Solved only for the targets about to be widened, over the
        programme as it was when `settle` was called."""
        holding: list[int] = []
        for need, sense_max in ((need_high, True), (need_low, False)):
            if i in need:
                h.setBasis(start)  # from the same basis whichever targets were probed before: the same answer
                solution = solve([col[i]], sense_max)
                if solution is None:
                    need.discard(i)  # unbounded above
                    continue
                record(solution)
                if i in need:
                    holding.extend(binding_cells())
        return list(dict.fromkeys(holding)) if i in need_high or i in need_low else None

    return need_high, need_low, probe


# -- over results ---------------------------------------------------------------------------------


def row_keys(metric: str, area_code: str, category: str) -> tuple[Key, Key | None]:
    """The cells a row shows: its numerator's, and its denominator's when that is a count."""
    (nq, nc), den = cells_of(metric, category)
    return (nq, area_code, nc), (None if den is None else (den[0], area_code, den[1]))


def prepare(process: bool = False) -> None:
    """Get the solver ready while Polars reads the tables.

    In this process (the default): import it (highspy and numpy, about 0.1 s) on a thread of its own.
    `process=True` (`report`, which protects a table per period): start the `WORKERS` (a worker process
    and its fork) that decide the run's tables (`serve`): the search is pure Python, and in a process of
    its own it runs beside the metrics of the next periods instead of taking turns with them for this one's GIL (and
    NumPy and HiGHS are not loaded here). Every way decides with the same code, so it gives the same
    cells; when a worker cannot be started or stops answering, its tables are decided here.
    """
    if process:
        if not _workers["live"]:
            _start_worker()
        if _workers["live"]:
            return
    threading.Thread(target=_import_solver, name="import highspy").start()


def _import_solver() -> None:
    import highspy  # noqa: F401


def decide(results, fixed: set[Key] = frozenset()) -> tuple[set[Key], set[Key]]:
    """The suppressed cells of one period's results (every LA, unsuppressed), and which of them are primary."""
    columns: dict[str, list[list]] = {}
    for r in results:
        acc = columns.setdefault(r.metric, [[] for _ in Row._fields[1:]])
        for values, name in zip(acc, Row._fields[1:]):
            values.extend(r.rows.get_column(name).to_list())
    parts = []
    for metric in sorted(columns):  # as `build` orders the rows: by metric, area level, area, category
        values = columns[metric]
        area_codes, area_types, _, categories = values[:4]
        order = sorted(range(len(area_codes)), key=lambda i: (LEVEL[area_types[i]], area_codes[i], categories[i]))
        parts.append((metric, tuple([column[i] for i in order] for column in values)))
    if _workers["live"]:
        answer = _ask_worker(parts, set(fixed))
        if answer is not None:
            return answer
    return decide_parts(parts, fixed)


def decide_parts(parts: list[tuple[str, Columns]], fixed: set[Key]) -> tuple[set[Key], set[Key]]:
    """`decide` over each metric's rows as columns (`build_columns`)."""
    enabled = gc.isenabled()
    gc.disable()  # some 10^5 small objects, none kept in cycles: collections of the whole heap cost ~15 ms a table
    try:
        table = build_columns(parts, fixed)
        hidden = protect(table)
        return {table.keys[i] for i in hidden}, {table.keys[i] for i in primary(table)}
    finally:
        if enabled:
            gc.enable()


# -- the worker process ---------------------------------------------------------------------------
# Messages both ways: an 8-byte little-endian length, then a pickle. To a worker: (parts, fixed);
# from it: ("ok", (suppressed, primary)) or ("error", the exception). It ends at the end of its input.
# The workers are started once per process and serve every run in it (the test suite's too).

# Two workers: a process, and a fork of it made once it has imported NumPy and HiGHS, so the second costs no
# start-up (a second process started alike, 0.1 CPU s more, measured no faster). The last two tables of a
# run (a period's and its baseline's, computed side by side) are then decided side by side too.
FORKS = hasattr(os, "fork")
WORKERS = 2 if FORKS else 1
# Idle workers last in, first out: a trend's tables, which arrive one at a time, keep going to the worker that
# holds their structures (`_STRUCTURES` is per process); the other takes a table only while that one is busy.
_workers: dict = {"live": 0, "idle": queue.LifoQueue(), "lock": threading.Lock(), "all": []}


class _Fork:
    """The worker's fork as `_ask_worker` and `_stop_workers` use a process: its two pipes."""

    def __init__(self, stdin, stdout):
        self.stdin, self.stdout = stdin, stdout

    def kill(self) -> None:
        for stream in (self.stdin, self.stdout):  # the fork stops at the end of its input
            try:
                stream.close()
            except OSError:
                pass

    def wait(self, timeout: float | None = None) -> None:
        pass  # the worker's child, not this process's: it ends when its input does


def _start_worker() -> bool:
    """Start a worker process, and (where processes fork) the pipes to its fork (`serve`): `WORKERS` in all."""
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):  # NumPy's BLAS threads: nothing here uses them
        env.setdefault(name, "1")
    pipes = (*os.pipe(), *os.pipe()) if FORKS else ()  # to the fork (read, write), from it (read, write)
    fork_ends = pipes[0::3]  # the fork's input and output, inherited by the worker as they are numbered here
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", f"from cdp_metrics.disclosure import serve; serve(*{fork_ends!r})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, pass_fds=fork_ends)
    except OSError:
        for fd in pipes:
            os.close(fd)
        return False  # errors are answers (`serve`); a worker that fails to start or dies leaves its tables here
    started = [process]
    if pipes:
        for fd in fork_ends:
            os.close(fd)
        started.append(_Fork(os.fdopen(pipes[1], "wb"), os.fdopen(pipes[2], "rb")))
    with _workers["lock"]:
        if not _workers["all"]:
            atexit.register(_stop_workers)
        _workers["all"].extend(started)
        _workers["live"] += len(started)
    for worker in started:
        _workers["idle"].put(worker)
    return True


def _stop_workers() -> None:
    """At exit: end every worker's input, and wait for it."""
    for process in _workers["all"]:
        try:
            process.stdin.close()
            process.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            process.kill()


def _send(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream):
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def _ask_worker(parts, fixed) -> tuple[set[Key], set[Key]] | None:
    """An idle worker's decision for one table; None when no worker could give one (then decide here)."""
    if not _workers["live"]:
        return None
    while (process := _workers["idle"].get()) is None:  # the word that the last worker stopped
        if not _workers["live"]:
            _workers["idle"].put(None)  # passed on to the next caller waiting
            return None
        # else a worker was started since: the word is stale
    try:
        _send(process.stdin, (parts, fixed))
        status, payload = _receive(process.stdout)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError):  # ValueError: its pipe was closed
        process.kill()
        with _workers["lock"]:
            _workers["live"] -= 1
            if not _workers["live"]:
                _workers["idle"].put(None)
        return None
    _workers["idle"].put(process)
    if status == "error":
        raise payload
    return payload


def serve(fork_input: int | None = None, fork_output: int | None = None) -> None:
    """The worker process's loop (`prepare(process=True)`): decide each table it is sent, until its input ends.

    With `fork_input` and `fork_output` (the pipes of `_start_worker`), it first forks: the fork serves
    those pipes, with the imports already made.
    """
    gc.disable()
    import highspy  # noqa: F401  (before the first table arrives, and before the fork: it shares them)

    forked = False
    if fork_input is not None:
        try:
            forked = os.fork() == 0
        except OSError:
            pass  # the fork's pipes close below: this process's caller then finds it gone
        if not forked:
            os.close(fork_input)
            os.close(fork_output)
    if forked:
        os.dup2(2, 0)  # the worker's pipes are not the fork's: closed here, or neither would see the other end
        os.dup2(2, 1)
        inp, out = os.fdopen(fork_input, "rb"), os.fdopen(fork_output, "wb")
    else:
        inp, out = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)  # anything else written to stdout goes where stderr goes (nowhere), not into the answers
    while True:
        try:
            parts, fixed = _receive(inp)
        except EOFError:
            return
        try:
            answer = ("ok", decide_parts(parts, fixed))
        except Exception as exc:  # noqa: BLE001  (given back to the caller, which raises it)
            try:
                pickle.dumps(exc)
            except Exception:  # noqa: BLE001
                exc = RuntimeError(f"{type(exc).__name__}: {exc}")
            answer = ("error", exc)
        _send(out, answer)


def _keys_of(result) -> tuple[list[Key], list[Key | None]]:
    """The numerator's and the denominator's cell of each of the result's rows, in row order."""
    areas, categories = (result.rows.get_column(name).to_list() for name in ("area_code", "category"))
    of_category = {category: cells_of(result.metric, category) for category in set(categories)}
    numerators, denominators = [], []
    for area, category in zip(areas, categories):
        (nq, nc), den = of_category[category]
        numerators.append((nq, area, nc))
        denominators.append(None if den is None else (den[0], area, den[1]))
    return numerators, denominators


def mask(result, hidden: set[Key]):
    """The result's rows with suppressed cells and every figure derived from them set to null."""
    import polars as pl

    if not hidden:
        return result.rows
    numerators, denominators = _keys_of(result)
    num = pl.Series([key in hidden for key in numerators], dtype=pl.Boolean)
    den = pl.Series([key in hidden for key in denominators], dtype=pl.Boolean)
    either = num | den
    null = lambda name, when: pl.when(when).then(None).otherwise(pl.col(name)).alias(name)  # noqa: E731
    return result.rows.with_columns(
        null("numerator", num), null("denominator", den),
        *[null(name, either) for name in ("value", "ci_lower", "ci_upper", "comparison")],
        either.alias("suppressed"),
    )


def shown(results, cells: set[Key]) -> set[Key]:
    """The cells among `cells` that the results' rows show (as a figure or as `*`)."""
    out = set()
    if not cells:
        return out
    for r in results:
        for keys in _keys_of(r):
            out.update(cells.intersection(keys))
    return out
