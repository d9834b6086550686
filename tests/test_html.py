"""`report --html`: the summary page (tiles, spine chart) and `--html-dir`: a pack of pages, read back as a DOM.

The figures on the page are checked against the JSON of the same run; the spine chart's markers against
every LA's published values (a run without --la: disclosure control is the same whatever --la is).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import CALDERDALE, LEEDS, cli
from test_report import _chromium, _headless

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ROOT / "examples" / "targets.csv"
ARTIFACTS = ROOT / "test-artifacts"
# Which way is better, from docs/metrics.md (not from the code): lower unmet need, deaths, mortality ratio and
# acute housing problems; higher continuity, completions, progress, paid work and hepatitis C testing.
LOWER_IS_BETTER = {"unmet_need", "deaths", "mortality_ratio", "housing"}
SPINE_LEFT, SPINE_WIDTH = 8, 284  # the bar's drawn width: a 300-wide box less 8 each side


class Node:
    def __init__(self, tag: str, attrs: dict):
        self.tag, self.attrs, self.children, self.parts = tag, attrs, [], []

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def find_all(self, tag: str | None = None, **attrs) -> list[Node]:
        out = []
        for child in self.children:
            if (tag is None or child.tag == tag) and all(
                    (v in child.attrs.get(k.rstrip("_"), "").split()) if k == "class_" else child.attrs.get(k) == v
                    for k, v in attrs.items()):
                out.append(child)
            out += child.find_all(tag, **attrs)
        return out

    def find(self, tag: str | None = None, **attrs) -> Node | None:
        found = self.find_all(tag, **attrs)
        return found[0] if found else None


class Tree(HTMLParser):
    VOID = {"meta", "br", "img", "input", "link", "hr"}

    def __init__(self, text: str):
        super().__init__()
        self.root = Node("root", {})
        self.stack = [self.root]
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data):
        self.stack[-1].parts.append(data)


def dom(path: Path) -> Node:
    return Tree(path.read_text(encoding="utf-8")).root


def by_key(doc: dict) -> dict:
    return {(res["metric"], r["area_code"], r["category"]): r for res in doc["results"] for r in res["rows"]}


def shown(metric: str, value, unit: bool = True) -> str:
    """A figure as a board paper prints it: people whole, a percentage to 1 dp, the ratio to 1 dp."""
    if value is None:
        return "*"
    if metric == "in_treatment":
        return f"{round(value):,}"
    return f"{value:.1f}" + ("%" if unit and metric != "mortality_ratio" else "")


@pytest.fixture(scope="module")
def calderdale(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    page = folder / "calderdale.html"
    run = cli("report", "--la", CALDERDALE, "--targets", TARGETS, "--trend", "quarterly", "--html", page,
              "-f", "json")
    assert run.exit_code == 0, run.stderr
    every = cli("report", "--targets", TARGETS, "-f", "json")
    assert every.exit_code == 0, every.stderr
    return page, run.json, every.json


def test_tiles_show_the_figures_of_the_json(calderdale):
    page, doc, _ = calderdale
    rows = by_key(doc)
    summary = dom(page).find("section", class_="summary")
    assert summary.attrs["data-la"] == CALDERDALE
    tiles = {(t.attrs["data-metric"], t.attrs["data-category"]): t
             for t in summary.find_all("div", class_="tile") if "data-metric" in t.attrs}
    # one tile per headline measure: the bundled sample has the v1 and v2 tables, so all eleven
    assert set(tiles) == {("in_treatment", "all"), ("unmet_need", "ocu"), ("unmet_need", "alcohol"),
                          ("continuity", "all"), ("completions", "all"), ("progress", "all"), ("deaths", "all"),
                          ("mortality_ratio", "all"), ("housing", "acute"), ("employment", "paid_work"),
                          ("hepatitis_c", "tested")}
    changes = {(c["metric"], c["area_code"], c["category"]): c for c in doc["changes"]}
    for (metric, category), tile in tiles.items():
        mine = rows[metric, CALDERDALE, category]
        assert tile.find("span", class_="value").text() == shown(metric, mine["value"]), metric
        assert tile.find("b", class_="region").text() == shown(metric, rows[metric, mine["region_code"],
                                                                            category]["value"])
        assert tile.find("b", class_="england").text() == shown(metric, rows[metric, "E92000001",
                                                                             category]["value"])
        badge = tile.find("span", class_="badge")
        assert (badge.text().split()[-1] if badge else None) == mine["comparison"]
        baseline = changes[metric, CALDERDALE, category]["baseline_value"]
        assert f"Baseline {shown(metric, baseline)}" in tile.text()
        quarters = [t["value"] for t in doc["trend"] if (t["metric"], t["area_code"], t["category"])
                    == (metric, CALDERDALE, category) and t["value"] is not None]
        # --trend: a line of the quarters, when two or more are published
        assert (tile.find("svg", class_="spark") is not None) == (len(quarters) >= 2), metric
        if mine["suppressed"]:
            assert tile.find("span", class_="value").text() == "*" and "suppressed" in tile.text()
    # targets from examples/targets.csv: 650 adults, 45% OCU unmet need, 18% completions
    assert "Target 650" in tiles["in_treatment", "all"].text()
    ocu = next(t for t in doc["targets"] if t["metric"] == "unmet_need")
    assert f"Target 45.0% · {ocu['progress_percent']:.0f}% of the way" in tiles["unmet_need", "ocu"].text()
    assert "Target 18.0%" in tiles["completions", "all"].text()
    assert "Target" not in tiles["housing", "acute"].text()


def test_spine_markers_sit_on_the_range_of_every_la(calderdale):
    page, doc, every = calderdale
    rows = by_key(every)
    spine = dom(page).find("table", class_="spine")
    charted = spine.find_all("tr", **{})[1:]  # the header row first
    assert {(r.attrs["data-metric"], r.attrs["data-category"]) for r in charted} == {
        ("unmet_need", "ocu"), ("unmet_need", "alcohol"), ("continuity", "all"), ("completions", "all"),
        ("progress", "all"), ("deaths", "all"), ("mortality_ratio", "all"), ("housing", "acute"),
        ("employment", "paid_work"), ("hepatitis_c", "tested")}  # a count is not charted
    for tr in charted:
        metric, category = tr.attrs["data-metric"], tr.attrs["data-category"]
        values = sorted(r["value"] for (m, _, cat), r in rows.items()
                        if m == metric and cat == category and r["area_type"] == "la" and r["value"] is not None)
        england = rows[metric, "E92000001", category]["value"]
        assert float(tr.attrs["data-min"]) == values[0] and float(tr.attrs["data-max"]) == values[-1]
        assert int(tr.attrs["data-n"]) == len(values) and float(tr.attrs["data-england"]) == england
        half = max(england - values[0], values[-1] - england)
        sign = -1 if metric in LOWER_IS_BETTER else 1

        def x(v):
            return SPINE_LEFT + SPINE_WIDTH * (0.5 + sign * (v - england) / (2 * half))

        bar = tr.find("svg", class_="spine-bar")
        assert float(bar.find("line", class_="england").attrs["x1"]) == pytest.approx(SPINE_LEFT + SPINE_WIDTH / 2)
        span = bar.find("rect", class_="range")
        ends = sorted((x(values[0]), x(values[-1])))
        assert float(span.attrs["x"]) == pytest.approx(ends[0], abs=0.06)
        assert float(span.attrs["width"]) == pytest.approx(ends[1] - ends[0], abs=0.11)
        # the worst is at the left end and the best at the right one
        assert min(ends) == pytest.approx(SPINE_LEFT, abs=0.06) or max(ends) == pytest.approx(
            SPINE_LEFT + SPINE_WIDTH, abs=0.06)
        mine = rows[metric, CALDERDALE, category]
        circle = bar.find("circle", class_="la")
        if mine["value"] is None:  # suppressed: a `*`, no marker
            assert circle is None and tr.find("td", class_="la-value").text() == "*"
        else:
            assert float(circle.attrs["cx"]) == pytest.approx(x(mine["value"]), abs=0.06)
            assert ends[0] - 0.06 <= float(circle.attrs["cx"]) <= ends[1] + 0.06
        region = rows[metric, mine["region_code"], category]["value"]
        assert (bar.find("path", class_="region") is None) == (region is None)
    assert "How the chart is built" in dom(page).find("section", class_="summary").text()


def test_the_page_reads_as_a_board_paper(calderdale):
    page, doc, _ = calderdale
    root = dom(page)
    targets = root.find("table", class_="targets")
    header = [th for th in targets.find("thead").find_all("th")]
    assert [th.attrs.get("class") for th in header[:3]] == ["text"] * 3  # Area, Metric, Category left-aligned
    assert "th.text,td.text{text-align:left}" in page.read_text()
    first = targets.find("tbody").find("tr").find_all("td")
    assert first[5].text() == "650"  # the adults-in-treatment target: a count, no ".0"
    # the unmet need table's "Of": whole prevalence estimates without ".0"
    estimate = by_key(doc)["unmet_need", CALDERDALE, "ocu"]["denominator"]
    assert estimate == int(estimate) and f">{int(estimate):,}<" in page.read_text()
    # no count, nor any "Of" but the mortality ratio's expected deaths (fractional), ends in ".0"
    for table in root.find_all("table"):
        heads = [th.text() for th in table.find("thead").find_all("th")]
        for name in ("People", "Count", "Of"):
            if name in heads and table.attrs.get("data-metric") not in (None, "mortality_ratio"):
                cells = [tr.find_all("td")[heads.index(name)].text() for tr in table.find("tbody").find_all("tr")]
                assert cells and not [c for c in cells if c.endswith(".0")], (name, cells)
    # printed: A4, the summary alone on its page, table rows never split and headers repeated on each page
    css = root.find("style").text()
    print_css = css[css.index("@media print"):]
    for rule in ("@page{size:A4", ".summary{break-after:page}", "thead{display:table-header-group}"):
        assert rule in css
    assert re.search(r"(^|[},])tr(,[^{]*)?\{break-inside:avoid", print_css)
    # the mortality ratio's trend: no flat England series, a dashed England = 100 line instead
    chart = next(f for f in root.find_all("figure", class_="chart") if "Mortality ratio" in f.text())
    assert "England" not in chart.find("figcaption").text()
    assert chart.find("line", class_="reference") is not None and "England = 100" in chart.text()


def test_a_page_of_several_las_has_a_summary_for_each(tmp_path):
    page = tmp_path / "two.html"
    run = cli("report", "--la", LEEDS, "--la", CALDERDALE, "--html", page, "-f", "json")
    assert run.exit_code == 0, run.stderr
    summaries = dom(page).find_all("section", class_="summary")
    assert [s.attrs["data-la"] for s in summaries] == [CALDERDALE, LEEDS]  # by name
    assert [s.find("h2").text() for s in summaries] == ["Calderdale: summary", "Leeds: summary"]
    every = cli("report", "--html", page, "-f", "json")  # all areas: tables only, no LA to summarise
    assert every.exit_code == 0 and not dom(page).find_all("section", class_="summary")


def test_json_is_the_same_with_or_without_pages(calderdale, tmp_path):
    _, doc, _ = calderdale
    plain = cli("report", "--la", CALDERDALE, "--targets", TARGETS, "--trend", "quarterly", "-f", "json")
    assert plain.json == doc


def test_pack_writes_a_page_per_la_and_an_index_linking_them(tmp_path):
    pack = tmp_path / "pack"
    run = cli("report", "--la", CALDERDALE, "--la", LEEDS, "--html-dir", pack, "-f", "json")
    assert run.exit_code == 0, run.stderr
    assert sorted(p.name for p in pack.iterdir()) == ["E08000033.html", "E08000035.html", "index.html"]
    assert run.json == cli("report", "--la", CALDERDALE, "--la", LEEDS, "-f", "json").json
    index = dom(pack / "index.html")
    links = {a.attrs["href"]: a.text() for a in index.find("table", class_="index").find_all("a")}
    assert links == {"E08000033.html": "Calderdale", "E08000035.html": "Leeds"}
    rows = by_key(run.json)
    for code in (CALDERDALE, LEEDS):
        page = dom(pack / f"{code}.html")
        summaries = page.find_all("section", class_="summary")
        assert [s.attrs["data-la"] for s in summaries] == [code]
        assert page.find("p", class_="back").find("a").attrs["href"] == "index.html"
        cell = index.find("tr", **{"data-la": code}).find("td", **{"data-metric": "unmet_need",
                                                                     "data-category": "ocu"})
        assert cell.text().startswith(shown("unmet_need", rows["unmet_need", code, "ocu"]["value"]))


def test_each_pack_page_counts_the_figures_suppressed_on_it(tmp_path):
    """A pack's page says what `report --la` of its LA alone says: how many of *its* figures (the LA's, its
    region's, England's, in every period of the run) are suppressed, not how many in the whole pack."""
    pack = tmp_path / "pack"
    run = cli("report", "--la", CALDERDALE, "--la", LEEDS, "--trend", "quarterly", "--html-dir", pack,
              "-f", "json")
    assert run.exit_code == 0, run.stderr
    line = re.compile(r"[0-9,]+ figures? suppressed, [0-9,]+ of them to prevent subtraction")

    def warned(doc: dict) -> set[str]:
        return {m.group(0) for res in doc["results"] for w in res["warnings"] for m in [line.search(w)] if m}

    both = warned(run.json)
    assert len(both) == 1
    pages = {}
    for code in (CALDERDALE, LEEDS):
        on_page = set(line.findall((pack / f"{code}.html").read_text()))
        alone = cli("report", "--la", code, "--trend", "quarterly", "-f", "json")
        assert alone.exit_code == 0, alone.stderr
        assert on_page == warned(alone.json), code
        pages[code] = on_page
    assert pages[CALDERDALE] != pages[LEEDS] and both not in pages.values()


def test_pack_of_every_la_and_html_to_a_folder(tmp_path):
    pack = tmp_path / "all"
    pack.mkdir()
    run = cli("report", "--html", pack, "-f", "json")  # --html to a folder is the pack
    assert run.exit_code == 0, run.stderr
    las = {r["area_code"] for res in run.json["results"] for r in res["rows"] if r["area_type"] == "la"}
    assert len(las) == 12  # the bundled sample's LAs (Makefile `sample`)
    assert {p.name for p in pack.iterdir()} == {f"{code}.html" for code in las} | {"index.html"}
    links = {a.attrs["href"] for a in dom(pack / "index.html").find("table", class_="index").find_all("a")}
    assert links == {f"{code}.html" for code in las}
    assert not list(pack.glob(".*.tmp"))  # atomic writes leave no temporary file
    slash = tmp_path / "new"
    run = cli("report", "--la", LEEDS, "--html", f"{slash}/", "-f", "json")  # `--html DIR/`: a pack too
    assert run.exit_code == 0, run.stderr
    assert sorted(p.name for p in slash.iterdir()) == ["E08000035.html", "index.html"]
    blocked = tmp_path / "file"
    blocked.write_text("x")
    run = cli("report", "--html-dir", blocked, "-f", "json")
    assert run.exit_code == 2 and "not a folder" in run.stderr and "Traceback" not in run.stderr


# -- in a real browser --------------------------------------------------------------------------------------

def pdf_pages(path: Path) -> int:
    """Pages of a PDF as Chromium writes it (each page object says `/Type /Page`)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", path.read_bytes()))


def summary_pages(browser: str, page: Path, tmp_path: Path) -> int:
    """The A4 pages the page's first summary takes when printed alone."""
    text = page.read_text(encoding="utf-8")
    alone = tmp_path / "summary.html"
    alone.write_text(text[:text.index("</section>") + len("</section>")] + "</body></html>", encoding="utf-8")
    printed = tmp_path / "summary.pdf"
    _headless(browser, tmp_path / "pdf-alone", "--no-pdf-header-footer", f"--print-to-pdf={printed}", alone.as_uri())
    return pdf_pages(printed)


@pytest.fixture(scope="module")
def browser():
    found = _chromium()
    if found is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
    return found


def test_summary_renders_and_fits_one_a4_page_in_chromium(calderdale, browser, tmp_path):
    page, doc, _ = calderdale
    ARTIFACTS.mkdir(exist_ok=True)
    for name, size in (("summary-screen.png", "1280,1400"), ("summary-a4.png", "794,1123")):
        shot = ARTIFACTS / name
        shot.unlink(missing_ok=True)
        result = _headless(browser, tmp_path / name, f"--screenshot={shot}", f"--window-size={size}", page.as_uri())
        assert shot.exists() and shot.stat().st_size > 20_000, result.stderr[-500:]
    rendered = Tree(_headless(browser, tmp_path / "dom", "--dump-dom", page.as_uri()).stdout).root
    summary = rendered.find("section", class_="summary")
    ocu = by_key(doc)["unmet_need", CALDERDALE, "ocu"]["value"]
    tile = summary.find("div", **{"data-metric": "unmet_need", "data-category": "ocu"})
    assert tile.find("span", class_="value").text() == f"{ocu:.1f}%"
    assert len(summary.find_all("svg", class_="spine-bar")) == 10
    # printed: the whole report on A4 pages, the summary alone on one
    whole = ARTIFACTS / "report.pdf"
    whole.unlink(missing_ok=True)
    _headless(browser, tmp_path / "pdf", "--no-pdf-header-footer", f"--print-to-pdf={whole}", page.as_uri())
    assert pdf_pages(whole) > 1 and b"/MediaBox [0 0 594.95996 841.91998]" in whole.read_bytes()  # A4 in points
    assert summary_pages(browser, page, tmp_path) == 1


def test_context_tiles_on_the_summary_and_still_one_a4_page(tmp_path, browser):
    """--workforce/--funding add two tiles (Calderdale: 330 open ÷ 6.5 FTE = 50.8; £620,000 ÷ 561 = £1,105)."""
    page = tmp_path / "context.html"
    run = cli("report", "--la", CALDERDALE, "--targets", TARGETS, "--trend", "quarterly", "--workforce",
              ROOT / "examples" / "workforce.csv", "--funding", ROOT / "examples" / "funding.csv", "--html", page,
              "-f", "json")
    assert run.exit_code == 0, run.stderr
    summary = dom(page).find("section", class_="summary")
    caseload = summary.find("div", **{"data-measure": "caseload_per_worker"})
    funding = summary.find("div", **{"data-measure": "funding_per_person"})
    assert caseload.find("span", class_="value").text() == f"{330 / 6.5:.1f}" == "50.8"
    assert "(ambition: 40)" in caseload.text()
    assert funding.find("span", class_="value").text() == f"£{620_000 / 561:,.0f}" == "£1,105"
    assert [r["value"] for r in run.json["context"]] == pytest.approx([330 / 6.5, 620_000 / 561])
    assert summary_pages(browser, page, tmp_path) == 1
