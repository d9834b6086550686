"""Disclosure control in a worker process (`disclosure.prepare(process=True)`, used by `report`): the same
cells as deciding in this process, errors raised here, and the tables decided here when the worker is gone."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
    answers = []
    for worker in _idle():  # each worker in turn
        _next_asked(worker)
        answers.append(d.decide([Result(ROWS)]))
    assert len(answers) == d.WORKERS
    hidden, first = answers[0]
    assert {k for k in hidden if k[0] == "engaged"} == EXPECTED
    assert first == EXPECTED
    assert answers == [(hidden, first)] * d.WORKERS
    d._workers["live"], live = 0, d._workers["live"]  # the same table decided in this process
    try:
        assert d.decide([Result(ROWS)]) == (hidden, first)
    finally:
        d._workers["live"] = live


def test_tables_decided_side_by_side(worker):
    # `report` publishes two periods at once: each worker decides one, and each gives what one alone gives
    other = continuity_rows({CALDERDALE: (1, 10), KIRKLEES: (9, 20), LEEDS: (4, 30)})
    alone = [d.decide([Result(rows)]) for rows in (ROWS, other)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(3):
            assert list(pool.map(lambda rows: d.decide([Result(rows)]), (ROWS, other))) == alone


def test_an_error_in_the_worker_is_raised_here(worker):
    # the same cell shown with two values: build's consistency check fails in the worker
    rows = ROWS + [d.Row("continuity", LEEDS, "la", ROWS[0].region_code, "all", 8, 30)]
    with pytest.raises(AssertionError, match="shown as"):
        d.decide([Result(rows)])


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _idle() -> list:
    """The idle workers, taken from the queue (none is left waiting in it)."""
    workers = []
    while True:
        try:
            workers.append(d._workers["idle"].get_nowait())
        except queue.Empty:
            return workers


def _next_asked(worker, *others) -> None:
    """Put the workers back so that `worker` is the next asked (the one that answered last is asked first)."""
    for w in (*others, worker):
        d._workers["idle"].put(w)


def _not_here(*args):
    raise AssertionError("decided in this process")


@pytest.mark.skipif(not d.FORKS or not Path("/proc/self/task").exists(), reason="needs fork and Linux's /proc")
def test_the_fork_serves_when_the_worker_process_stopped_and_this_process_when_both_did(monkeypatch):
    d.prepare(process=True)
    process, fork = sorted(_idle(), key=lambda w: not isinstance(w, subprocess.Popen))  # the process, its fork
    _next_asked(fork, process)
    monkeypatch.setattr(d, "decide_parts", _not_here)
    alone = d.decide([Result(ROWS)])  # the fork answers: it exists
    monkeypatch.undo()
    assert {k for k in alone[0] if k[0] == "engaged"} == EXPECTED
    assert _idle() == [fork, process]
    (fork_pid,) = _children(process.pid)
    process.kill()
    process.wait()
    _next_asked(process, fork)
    assert d.decide([Result(ROWS)]) == alone  # the worker found gone: decided here
    assert d._workers["live"] == 1
    monkeypatch.setattr(d, "decide_parts", _not_here)
    assert d.decide([Result(ROWS)]) == alone  # the fork still decides
    monkeypatch.undo()
    os.kill(fork_pid, signal.SIGKILL)
    assert d.decide([Result(ROWS)]) == alone  # the fork found gone: decided here
    assert d._workers["live"] == 0
    assert d.decide([Result(ROWS)]) == alone  # and again, with no worker left
    d.prepare(process=True)  # a new worker and fork, which decide the next tables
    assert d._workers["live"] == d.WORKERS
    monkeypatch.setattr(d, "decide_parts", _not_here)
    for worker in _idle():
        _next_asked(worker)
        assert d.decide([Result(ROWS)]) == alone


def test_a_worker_that_stopped_leaves_the_table_to_this_process(monkeypatch):
    d.prepare(process=True)
    workers = _idle()
    assert len(workers) == d.WORKERS
    for process in workers:
        if isinstance(process, subprocess.Popen):
            for fork in _children(process.pid) if Path("/proc/self/task").exists() else ():
                os.kill(fork, signal.SIGKILL)
        process.kill()
        process.wait()
    _next_asked(*workers)
    for left in reversed(range(d.WORKERS)):  # each worker found gone in turn: decided here
        hidden, first = d.decide([Result(ROWS)])
        assert {k for k in hidden if k[0] == "engaged"} == EXPECTED
        assert d._workers["live"] == left
    assert d.decide([Result(ROWS)])[0] == hidden  # and again, with no worker left
    d.prepare(process=True)  # a new worker, which decides the next tables
    assert d._workers["live"] == d.WORKERS

    monkeypatch.setattr(d, "decide_parts", _not_here)
    assert d.decide([Result(ROWS)])[0] == hidden
