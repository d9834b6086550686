"""Disclosure control in a worker process (`disclosure.prepare(process=True)`, used by `report`): the same
cells as deciding in this process, errors raised here, and the tables decided here when the worker is gone."""

from __future__ import annotations

import pytest

from cdp_metrics import disclosure as d

from test_disclosure import CALDERDALE, KIRKLEES, LEEDS, continuity_rows


class Frame:
    """The columns `decide` reads of a result's rows (a stand-in for a Polars frame)."""

    def __init__(self, rows: list[d.Row]):
        self.columns = {name: [getattr(r, name) for r in rows] for name in d.Row._fields[1:]}

    def get_column(self, name: str):
        values = self.columns[name]

        class Column:
            def to_list(self):
                return list(values)

        return Column()


class Result:
    def __init__(self, rows: list[d.Row]):
        self.metric = rows[0].metric
        self.rows = Frame(rows)


ROWS = continuity_rows({CALDERDALE: (2, 10), KIRKLEES: (3, 20), LEEDS: (7, 30)})
# Worked by hand in test_disclosure: Calderdale's 2 and Kirklees' 3 engaged protect each other (2 + 3 = 5)
EXPECTED = {("engaged", CALDERDALE, "all"), ("engaged", KIRKLEES, "all")}


@pytest.fixture
def worker():
    d.prepare(process=True)
    assert d._workers["live"] == d.WORKERS
    yield
    assert d._workers["live"] == d.WORKERS  # every test leaves the worker running for the rest of the suite


def test_the_worker_decides_the_same_cells(worker):
    hidden, first = d.decide([Result(ROWS)])
    assert {k for k in hidden if k[0] == "engaged"} == EXPECTED
    assert first == EXPECTED
    d._workers["live"], live = 0, d._workers["live"]  # the same table decided in this process
    try:
        assert d.decide([Result(ROWS)]) == (hidden, first)
    finally:
        d._workers["live"] = live


def test_an_error_in_the_worker_is_raised_here(worker):
    # the same cell shown with two values: build's consistency check fails in the worker
    rows = ROWS + [d.Row("continuity", LEEDS, "la", ROWS[0].region_code, "all", 8, 30)]
    with pytest.raises(AssertionError, match="shown as"):
        d.decide([Result(rows)])


def test_a_worker_that_stopped_leaves_the_table_to_this_process(monkeypatch):
    d.prepare(process=True)
    process = d._workers["idle"].get()
    process.kill()
    process.wait()
    d._workers["idle"].put(process)
    hidden, first = d.decide([Result(ROWS)])  # the worker is found gone: decided here
    assert {k for k in hidden if k[0] == "engaged"} == EXPECTED
    assert d._workers["live"] == d.WORKERS - 1
    assert d.decide([Result(ROWS)])[0] == hidden  # and again, with no worker left
    d.prepare(process=True)  # a new worker, which decides the next tables
    assert d._workers["live"] == d.WORKERS

    def not_here(*args):
        raise AssertionError("decided in this process")

    monkeypatch.setattr(d, "decide_parts", not_here)
    assert d.decide([Result(ROWS)])[0] == hidden
