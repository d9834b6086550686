"""Contract §8: secondary suppression, hand-worked (the attacker's-eye audit is in test_audit / audit.py)."""

import pytest

from cdp_metrics import disclosure as d
from conftest import CALDERDALE, ENGLAND, KIRKLEES, LEEDS, YORKSHIRE, cli, row, rows_of

WESTMINSTER, CORNWALL = "E09000033", "E06000052"
LONDON, SOUTH_WEST, NORTH_WEST = "E12000007", "E12000009", "E12000002"


def test_westminster_and_cornwall_cannot_be_recovered_from_the_totals():
    """The issue's two cases on the bundled sample, worked from the JSON as an attacker would.

    Before: Westminster's 1 release was England's 238 minus the other regions' 237; Cornwall's 3
    engaged releases were narrowed to 2–3. Now each regional sum leaves two hidden regions."""
    rows = rows_of(cli("continuity", "-f", "json"))
    regions = {r["area_code"]: r for r in rows if r["area_type"] == "region"}
    england = row(rows, ENGLAND)
    assert (england["numerator"], england["denominator"]) == (52, 238)
    for la in (WESTMINSTER, CORNWALL):
        assert row(rows, la)["suppressed"] is True
    assert row(rows, WESTMINSTER)["denominator"] is None and row(rows, CORNWALL)["numerator"] is None
    # Westminster's releases: London's are hidden, and so are the South West's (Cornwall alone).
    hidden_releases = [code for code, r in regions.items() if r["denominator"] is None]
    assert sorted(hidden_releases) == [LONDON, SOUTH_WEST]
    rest = 238 - sum(r["denominator"] for r in regions.values() if r["denominator"] is not None)
    assert rest == 16  # London + South West: Westminster is anything from 0 to 16
    # Cornwall's engaged releases: two regions' counts are hidden (South West and North West).
    hidden_engaged = [code for code, r in regions.items() if r["numerator"] is None]
    assert sorted(hidden_engaged) == [NORTH_WEST, SOUTH_WEST]
    rest = 52 - sum(r["numerator"] for r in regions.values() if r["numerator"] is not None)
    assert rest == 8  # the North West's 5 and the South West's 3: Cornwall is anything from 0 to 8


def test_suppression_line_counts_primary_and_secondary_figures():
    run = cli("continuity", "-f", "json")
    line = [w for w in run.json["warnings"] if "suppressed" in w]
    # 10 counts of 1–4 in the sample's --no-suppress output: engaged Hull 1, Cornwall 3, Manchester 1,
    # Liverpool 4, Bradford 4, Calderdale 2, Kirklees 2, South West 3; releases Westminster 1, London 1
    assert len(line) == 1 and line[0] in run.stderr
    total, secondary = [int(word) for word in line[0].replace(",", "").split() if word.isdigit()][:2]
    assert total - secondary == 10 and secondary > 0
    assert line[0] == (f"{total} figures suppressed, {secondary} of them to prevent subtraction "
                       "(* is a count from 1 to 4, or a figure hidden to protect one)")
    assert not [w for w in cli("continuity", "-f", "json", "--no-suppress").json["warnings"] if "suppressed" in w]


# -- the algorithm on small tables ------------------------------------------------------------------


def continuity_rows(counts: dict[str, tuple[int, int]], region: str = YORKSHIRE) -> list[d.Row]:
    """Continuity rows for some LAs of one region (engaged, releases), with the region and England sums."""
    rows = [d.Row("continuity", la, "la", region, "all", n, den) for la, (n, den) in counts.items()]
    total = (sum(n for n, _ in counts.values()), sum(den for _, den in counts.values()))
    rows.append(d.Row("continuity", region, "region", region, "all", *total))
    rows.append(d.Row("continuity", ENGLAND, "england", None, "all", *total))
    return rows


def hidden(rows: list[d.Row]) -> set:
    table = d.build(rows)
    return {table.keys[i] for i in d.protect(table)}


def test_secondary_is_the_smallest_la_count_that_can_absorb_the_range():
    # Calderdale 2 engaged: Leeds 7, Kirklees 3 are both LA cells of 3 or more; Kirklees is smaller.
    # (Kirklees' 3 is itself a primary cell: so Calderdale and Kirklees protect each other: 2 + 3 = 5.)
    cells = hidden(continuity_rows({CALDERDALE: (2, 10), KIRKLEES: (3, 20), LEEDS: (7, 30)}))
    assert {k for k in cells if k[0] == "engaged"} == {("engaged", CALDERDALE, "all"), ("engaged", KIRKLEES, "all")}
    # with no other small count, the smallest LA count of 3 or more is chosen, never the region's
    cells = hidden(continuity_rows({CALDERDALE: (2, 10), KIRKLEES: (9, 20), LEEDS: (7, 30)}))
    assert {k for k in cells if k[0] == "engaged"} == {("engaged", CALDERDALE, "all"), ("engaged", LEEDS, "all")}


def test_a_zero_partner_is_not_enough_and_a_bigger_one_is_added():
    # Calderdale 2, Kirklees 0, Leeds 6 engaged. Hiding Kirklees' 0 alone leaves C + K = 2: Calderdale
    # at most 2, short of 4. Leeds' 6 has to go too (C + K + L = 8: Calderdale 0–8).
    cells = hidden(continuity_rows({CALDERDALE: (2, 10), KIRKLEES: (0, 20), LEEDS: (6, 30)}))
    engaged = {k[1] for k in cells if k[0] == "engaged"}
    assert CALDERDALE in engaged and LEEDS in engaged and YORKSHIRE not in engaged


def test_an_la_alone_in_its_region_hides_its_region_too():
    # Calderdale is the only LA of its region here: the region's figure is Calderdale's.
    rows = continuity_rows({CALDERDALE: (2, 10)})
    rows += [r for r in continuity_rows({"E08000003": (9, 40)}, region="E12000002") if r.area_type != "england"]
    rows = [r for r in rows if r.area_type != "england"] + [d.Row("continuity", ENGLAND, "england", None, "all",
                                                               11, 50)]
    cells = hidden(rows)
    assert ("engaged", YORKSHIRE, "all") in cells
    assert ("engaged", "E08000003", "all") in cells  # England − the other region gives it back otherwise


def test_numerator_bounded_by_its_denominator():
    # Leeds 4 of 4 releases engaged: both are primary; the release count bounds the engaged count.
    cells = hidden(continuity_rows({CALDERDALE: (9, 12), LEEDS: (4, 4), KIRKLEES: (8, 15)}))
    assert ("engaged", LEEDS, "all") in cells and ("releases", LEEDS, "all") in cells


def test_nothing_small_nothing_hidden():
    assert hidden(continuity_rows({CALDERDALE: (5, 10), LEEDS: (0, 30)})) == set()


@pytest.mark.parametrize("cmd", ["in-treatment", "unmet-need", "continuity", "deaths", "completions"])
def test_no_suppress_shows_everything(cmd):
    for r in rows_of(cli(cmd, "-f", "json", "--no-suppress"), "deaths" if cmd == "deaths" else None):
        assert r["suppressed"] is False


def test_a_table_with_the_same_rows_reuses_their_structure_with_its_own_figures():
    """The cells and relations of a set of rows are built once (a trend's quarters often share them); each
    table still reads its own figures, and decides exactly as a table built afresh."""
    d._STRUCTURES.clear()
    first = continuity_rows({CALDERDALE: (2, 10), KIRKLEES: (9, 20), LEEDS: (7, 30)})
    second = continuity_rows({CALDERDALE: (8, 10), KIRKLEES: (1, 20), LEEDS: (7, 30)})
    before = d.build(first)
    after = d.build(second)
    assert len(d._STRUCTURES) == 1 and after.equalities is before.equalities  # one structure, shared
    assert before.value[before.index[("engaged", CALDERDALE, "all")]] == 2  # the first table's figures kept
    assert after.value[after.index[("engaged", CALDERDALE, "all")]] == 8
    reused = {after.keys[i] for i in d.protect(after)}
    d._STRUCTURES.clear()
    assert reused == hidden(second)  # built afresh: the same cells
    assert ("engaged", KIRKLEES, "all") in reused  # the second table's 1, not the first's 9
    assert ("engaged", CALDERDALE, "all") in hidden(first)  # and the first's 2, decided afresh
    # a fixed cell (a published benchmark) is never eligible, whichever table built the structure first
    fixed = d.build(second, {("engaged", LEEDS, "all")})
    assert fixed.eligible[fixed.index[("engaged", LEEDS, "all")]] is False
    assert d.build(second).eligible[fixed.index[("engaged", LEEDS, "all")]] is True


def test_a_cell_shown_with_two_figures_is_an_error_on_a_reused_structure_too():
    rows = continuity_rows({CALDERDALE: (2, 10), LEEDS: (7, 30)})
    d.build(rows)
    in_treatment = [d.Row("deaths", CALDERDALE, "la", YORKSHIRE, "all", 0, 11),  # adults 11 here, 12 below
                    d.Row("in_treatment", CALDERDALE, "la", YORKSHIRE, "all", 12, None)]
    for _ in range(2):  # built, then reused
        with pytest.raises(AssertionError, match="shown as"):
            d.build(rows + in_treatment)
