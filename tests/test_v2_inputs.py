"""Contract §9 inputs: every rule of the reviews table and the hepatitis C columns, default and --strict,
in `validate` and `--rejects`, rows read = used + rejected; and the hepatitis C cascade, hand-worked."""

from __future__ import annotations

import csv

import pytest
from conftest import CALDERDALE, ENGLAND, cli, episode, review, row, rows_of, write_extract

END = "2023-09-30"
GOOD_EPISODES = [episode(f"G{i}", "2023-01-01", episode_id=f"GOOD{i}") for i in range(4)]
GOOD_TOPS = [review(e, "2023-01-01", "start", review_id=f"GR{i}", days_opiates=20) for i, e in enumerate(GOOD_EPISODES)]
TARGET = GOOD_EPISODES[0]


def bad_top(**fields):
    fields = {"review_id": "BADTOP", "review_date": "2023-02-01", "stage": "review", **fields}
    return review(TARGET, fields.pop("review_date"), fields.pop("stage"), **fields)


# (bad review row, column, value, rule fragment)
REVIEW_CASES = {
    "unknown stage": (bad_top(stage="middle"), "stage", "middle", "unknown code"),
    "capitalised stage": (bad_top(stage="Start"), "stage", "Start", "unknown code"),
    "null stage": (bad_top(stage=""), "stage", None, "value required"),
    "unknown housing": (bad_top(housing="homeless"), "housing", "homeless", "unknown code"),
    "days above 28": (bad_top(days_opiates="29"), "days_opiates", "29", "0 to 28"),
    "days negative": (bad_top(days_alcohol="-1"), "days_alcohol", "-1", "0 to 28"),
    "days fraction": (bad_top(days_crack="3.5"), "days_crack", "3.5", "0 to 28"),
    "work days text": (bad_top(paid_work_days="some"), "paid_work_days", "some", "0 to 28"),
    "bad review date": (bad_top(review_date="2023-02-30"), "review_date", "2023-02-30", "ISO date"),
    "null review id": (bad_top(review_id=""), "review_id", None, "value required"),
    "unknown episode": (bad_top(episode_id="NOPE"), "episode_id", "NOPE", "no such episode"),
    "other client": (bad_top(client_id="SOMEONE"), "client_id", "SOMEONE", "differs from the episode"),
    "before triage": (bad_top(review_date="2022-12-31"), "review_date", "2022-12-31", "before the episode"),
}


@pytest.mark.parametrize("case", list(REVIEW_CASES))
def test_review_rules_default_strict_and_validate(extract_dir, case):
    bad, column, value, rule = REVIEW_CASES[case]
    write_extract(extract_dir, GOOD_EPISODES, reviews=[*GOOD_TOPS, bad])
    run = cli("progress", "--data", extract_dir, "--period-end", END, "-f", "json", "--no-suppress")
    assert run.exit_code == 0, run.stderr
    line = next(ln for ln in run.stderr.splitlines() if "reviews.csv" in ln)
    assert "1 of 5 rows rejected" in line and f"row 5, column {column}" in line and rule in line
    assert any("reviews.csv" in w for w in run.json["warnings"])

    strict = cli("progress", "--data", extract_dir, "--period-end", END, "-f", "json", "--strict")
    assert strict.exit_code == 1 and strict.stdout == ""
    shown = "null" if value is None else repr(value)
    assert f"reviews.csv: row 5, column {column}, value {shown}:" in strict.stderr and "Traceback" not in strict.stderr

    doc = cli("validate", "--data", extract_dir, "-f", "json").json
    matching = [e for e in doc["errors"] if e["row"] == 5 and e["column"] == column and rule in e["rule"]]
    assert len(matching) == 1 and matching[0]["value"] == value
    summary = next(t for t in doc["tables"] if t["table"] == "reviews")
    assert summary["rows_read"] == summary["rows_used"] + summary["rows_rejected"] == 5
    assert summary["rows_rejected"] == 1


def test_repeated_review_id_rejects_every_occurrence_after_the_first(extract_dir):
    tops = [review(TARGET, "2023-01-01", "start", review_id="DUP"), review(TARGET, "2023-02-01", review_id="DUP"),
            review(TARGET, "2023-03-01", review_id="OK"), review(TARGET, "2023-04-01", review_id="DUP")]
    write_extract(extract_dir, GOOD_EPISODES, reviews=tops)
    doc = cli("validate", "--data", extract_dir, "-f", "json").json
    assert [(e["row"], e["column"], e["rule"]) for e in doc["errors"]] == [
        (2, "review_id", "repeated id"), (4, "review_id", "repeated id")]


def test_a_review_of_a_rejected_episode_is_rejected_saying_so(extract_dir, tmp_path):
    bad_episode = episode("B", "2023-01-01", episode_id="BADEP", age="200")
    tops = [*GOOD_TOPS, review(bad_episode, "2023-02-01", "start")]
    write_extract(extract_dir, [*GOOD_EPISODES, bad_episode], reviews=tops)
    rejects = tmp_path / "rejects.csv"
    run = cli("validate", "--data", extract_dir, "-f", "json", "--rejects", rejects)
    assert run.exit_code == 1
    errors = [(e["file"].rsplit("/", 1)[-1], e["row"], e["column"], e["rule"]) for e in run.json["errors"]]
    assert ("episodes.csv", 5, "age", "age not a whole number from 0 to 120") in errors
    assert ("reviews.csv", 5, "episode_id", "episode_id not a valid episode (its episode row was rejected)") in errors
    with rejects.open() as fh:
        rejected = list(csv.DictReader(fh))
    assert {(r["file"].rsplit("/", 1)[-1], r["row"]) for r in rejected} == {("episodes.csv", "5"), ("reviews.csv", "5")}
    assert all("client_id" not in r for r in rejected)  # client ids never reach any output


def test_a_review_of_a_repeated_episode_id_belongs_to_its_first_valid_occurrence(extract_dir):
    first = episode("A", "2023-01-01", episode_id="E1")
    repeat = episode("Z", "2023-01-05", episode_id="E1")  # rejected as a repeat
    write_extract(extract_dir, [first, repeat], reviews=[review(first, "2023-01-02", "start")])
    doc = cli("validate", "--data", extract_dir, "-f", "json").json
    assert [(e["file"].rsplit("/", 1)[-1], e["row"]) for e in doc["errors"]] == [("episodes.csv", 2)]


def test_a_top_may_be_on_the_triage_date_or_after_discharge(extract_dir):
    ep = episode("A", "2023-01-01", discharge_date="2023-02-01", discharge_reason="dropped_out")
    write_extract(extract_dir, [ep], reviews=[review(ep, "2023-01-01", "start"), review(ep, "2023-03-01", "exit")])
    assert cli("validate", "--data", extract_dir, "-f", "json").exit_code == 0


# -- hepatitis C columns ------------------------------------------------------------------------------


def hcv(client="B", **fields):
    base = {"hcv_offered": "", "hcv_tested": "", "hcv_result": "", "hcv_treatment_started": ""}
    return episode(client, "2023-02-01", episode_id="BADEP", **{**base, **fields})


HCV_CASES = {
    "test without offer": (hcv(hcv_tested="2023-02-05"), "hcv_tested", "2023-02-05", "hcv_tested without hcv_offered"),
    "result without test": (hcv(hcv_offered="2023-02-01", hcv_result="negative"), "hcv_result", "negative",
                            "hcv_result without hcv_tested"),
    "treatment without positive": (
        hcv(hcv_offered="2023-02-01", hcv_tested="2023-02-02", hcv_result="negative",
            hcv_treatment_started="2023-03-01"), "hcv_treatment_started", "2023-03-01", "without a positive"),
    "treatment without result": (
        hcv(hcv_offered="2023-02-01", hcv_tested="2023-02-02", hcv_treatment_started="2023-03-01"),
        "hcv_treatment_started", "2023-03-01", "without a positive"),
    "test before offer": (hcv(hcv_offered="2023-02-10", hcv_tested="2023-02-09"), "hcv_tested", "2023-02-09",
                          "hcv_tested before hcv_offered"),
    "treatment before test": (
        hcv(hcv_offered="2023-02-01", hcv_tested="2023-02-10", hcv_result="positive",
            hcv_treatment_started="2023-02-09"), "hcv_treatment_started", "2023-02-09",
        "hcv_treatment_started before hcv_tested"),
    "unknown result": (hcv(hcv_offered="2023-02-01", hcv_tested="2023-02-02", hcv_result="Positive"), "hcv_result",
                       "Positive", "unknown code"),
    "bad offer date": (hcv(hcv_offered="2023-13-01"), "hcv_offered", "2023-13-01", "ISO date"),
}


@pytest.mark.parametrize("case", list(HCV_CASES))
def test_hepatitis_c_rules_reject_the_whole_episode(extract_dir, case):
    bad, column, value, rule = HCV_CASES[case]
    good = [episode(f"G{i}", "2023-01-01", hcv_offered="2023-01-01") for i in range(4)]
    write_extract(extract_dir, [*good, bad])
    run = cli("in-treatment", "--data", extract_dir, "--period-end", END, "-f", "json", "--no-suppress")
    assert row(rows_of(run), CALDERDALE)["numerator"] == 4  # the row leaves every metric
    assert f"row 5, column {column}" in run.stderr and rule in run.stderr
    strict = cli("hepatitis-c", "--data", extract_dir, "--period-end", END, "-f", "json", "--strict")
    assert strict.exit_code == 1 and f"row 5, column {column}" in strict.stderr
    doc = cli("validate", "--data", extract_dir, "-f", "json").json
    assert [(e["row"], e["column"]) for e in doc["errors"] if rule in e["rule"]] == [(5, column)]
    assert doc["tables"][0]["rows_read"] == doc["tables"][0]["rows_used"] + doc["tables"][0]["rows_rejected"] == 5


def test_an_offer_may_precede_triage(extract_dir):
    write_extract(extract_dir, [episode("A", "2023-01-10", hcv_offered="2022-12-01", hcv_tested="2023-01-10")])
    assert cli("validate", "--data", extract_dir, "-f", "json").exit_code == 0


def cascade(folder, **extra):
    run = cli("hepatitis-c", "--data", folder, "--period-end", END, "-f", "json", "--no-suppress", *extra)
    rows = rows_of(run)
    return {r["category"]: (r["numerator"], r["denominator"]) for r in rows if r["area_code"] == CALDERDALE}


def test_cascade_steps_by_the_period_end_of_the_index_episode(extract_dir):
    step = dict(hcv_offered="2023-01-01", hcv_tested="2023-01-05", hcv_result="positive",
                hcv_treatment_started="2023-02-01")
    eps = [
        episode("A", "2023-01-01", **step),  # every step
        episode("B", "2023-01-01", **{**step, "hcv_treatment_started": "2023-10-01"}),  # treated after the end
        episode("C", "2023-01-01", hcv_offered="2023-01-01", hcv_tested="2023-01-02", hcv_result="negative"),
        episode("D", "2023-01-01", hcv_offered="2023-01-01", hcv_tested="2023-10-02", hcv_result="positive"),
        episode("E", "2023-01-01", hcv_offered="2023-10-01"),  # offered after the end
        episode("F", "2023-01-01", hcv_offered="2023-01-01", hcv_tested="2023-01-02"),  # awaiting a result
        episode("G", "2023-01-01"),  # nothing recorded
        # an earlier episode with every step; the index episode (later) has none: not counted
        episode("H", "2022-10-02", discharge_date="2022-12-01", discharge_reason="dropped_out", **step),
        episode("H", "2023-03-01"),
        episode("Y", "2023-01-01", age="16", **step),  # a young person: not counted
    ]
    write_extract(extract_dir, eps)
    assert cascade(extract_dir) == {
        "offered": (5, 8),  # A B C D F of A–H
        "tested": (4, 5),  # A B C F
        "positive": (2, 4),  # A B (D's test is after the end)
        "treatment_started": (1, 2),  # A
    }


def test_positive_has_no_polarity_and_compares_higher_or_lower(extract_dir, tmp_path):
    from conftest import LEEDS

    def tested(client, la, result):
        return episode(client, "2023-01-01", la_code=la, hcv_offered="2023-01-01", hcv_tested="2023-01-02",
                       hcv_result=result)

    eps = [tested(f"C{i}", CALDERDALE, "positive" if i < 18 else "negative") for i in range(20)]
    eps += [tested(f"L{i}", LEEDS, "negative") for i in range(200)]
    write_extract(extract_dir, eps)
    rows = rows_of(cli("hepatitis-c", "--data", extract_dir, "--period-end", END, "-f", "json", "--no-suppress"))
    assert row(rows, CALDERDALE, "positive")["comparison"] == "higher"
    assert row(rows, LEEDS, "positive")["comparison"] == "lower"
    assert row(rows, ENGLAND, "positive")["comparison"] is None


def test_hepatitis_c_without_the_columns_exits_1_and_report_leaves_it_out(extract_dir):
    write_extract(extract_dir, [episode("A", "2023-01-01")])
    run = cli("hepatitis-c", "--data", extract_dir, "--period-end", END, "-f", "json")
    assert run.exit_code == 1 and "no hepatitis C columns" in run.stderr and "Traceback" not in run.stderr
    report = cli("report", "--data", extract_dir, "--period-end", END, "--baseline-end", "none", "-f", "json")
    assert report.exit_code == 0 and "hepatitis c left out of the report" in report.stderr


@pytest.mark.parametrize("hashing", ["by length", "all equal"])
def test_reviews_find_their_episodes_exactly_whatever_the_id_hashes(extract_dir, monkeypatch, hashing):
    """A TOP finds its episode through the ids' 64-bit hashes. Forced collisions: by length, "X" shares "E"'s
    hash while the valid episodes' hashes stay unique (a false match, which must find no episode); all equal,
    the valid episodes' hashes repeat (the join falls back to the text). Either way the errors and the
    figures are those of real hashes."""
    import polars as pl

    episodes = [episode("A", "2023-01-01", episode_id="E"), episode("B", "2023-01-01", episode_id="EE"),
                episode("C", "2023-01-01", episode_id="EEE")]
    tops = [review(episodes[0], "2023-01-01", "start", review_id="R1", days_opiates=20),
            review(episodes[0], "2023-03-01", review_id="R2", days_opiates=0),
            review(episodes[1], "2023-01-01", "start", review_id="R3", days_opiates=20),
            review({**episodes[0], "episode_id": "X"}, "2023-03-01", review_id="R4"),  # no such episode
            review(episodes[2], "2023-02-01", "start", review_id="R5", days_opiates=20)]
    write_extract(extract_dir, episodes, reviews=tops)
    args = ("validate", "--data", extract_dir, "-f", "json")
    expected = cli(*args).json
    progress_args = ("progress", "--data", extract_dir, "--period-end", END, "-f", "json", "--no-suppress")
    expected_progress = cli(*progress_args).json
    assert [(e["row"], e["column"], e["value"], e["rule"]) for e in expected["errors"]] == [
        (4, "episode_id", "X", "episode_id not a valid episode (no such episode)")]
    real = pl.Series.hash
    if hashing == "by length":
        def fake(self, *a, **k):
            return self.str.len_bytes().cast(pl.UInt64) if self.dtype == pl.String else real(self, *a, **k)
    else:
        fake = lambda self, *a, **k: pl.repeat(7, self.len(), dtype=pl.UInt64, eager=True)  # noqa: E731
    monkeypatch.setattr(pl.Series, "hash", fake)
    assert cli(*args).json == expected
    assert cli(*progress_args).json == expected_progress


def test_parquet_reviews_give_the_values_as_read(extract_dir, tmp_path):
    """Parquet day counts stored as integers and codes as text are kept only as typed values; an error
    record or rejected row still shows each value as read (out of range, unknown, or valid beside a
    rule broken elsewhere in the row), the same as from CSV."""
    import polars as pl

    tops = [*GOOD_TOPS,
            bad_top(review_id="R5", days_opiates="29", housing="acute"),  # row 5: a day count out of range
            bad_top(review_id="R6", stage="middle", days_alcohol="7"),  # row 6: an unknown code
            bad_top(review_id="R7", client_id="SOMEONE", days_crack="12", stage="exit"),  # row 7: rejected, values valid
            bad_top(review_id="GR1")]  # row 8: repeats row 2's id
    write_extract(extract_dir, GOOD_EPISODES, reviews=tops)
    pq = tmp_path / "pq"
    pq.mkdir()
    for table in ("episodes", "reviews"):
        frame = pl.read_csv(extract_dir / f"{table}.csv", infer_schema=False)
        if table == "reviews":
            frame = frame.with_columns(pl.col(name).cast(pl.Int64) for name in frame.columns
                                       if name.startswith("days_") or name.endswith("_days"))
        frame.write_parquet(pq / f"{table}.parquet")
    found = {}
    for name, folder in (("csv", extract_dir), ("parquet", pq)):
        rejects = tmp_path / f"rejects_{name}.csv"
        run = cli("validate", "--data", folder, "-f", "json", "--rejects", rejects)
        with rejects.open() as fh:
            rejected = [(r["row"], r["stage"], r["days_opiates"], r["days_crack"], r["days_alcohol"], r["housing"])
                        for r in csv.DictReader(fh)]
        found[name] = ([(e["row"], e["column"], e["value"]) for e in run.json["errors"]], rejected)
    errors, rejected = found["parquet"]
    assert errors == [(5, "days_opiates", "29"), (6, "stage", "middle"), (7, "client_id", "SOMEONE"),
                      (8, "review_id", "GR1")]
    assert rejected == [("5", "review", "29", "", "", "acute"), ("6", "middle", "", "", "7", ""),
                        ("7", "exit", "", "12", "", ""), ("8", "review", "", "", "", "")]
    assert found["parquet"] == found["csv"]


def test_reviews_let_go_once_ordered_keep_their_counts(extract_dir):
    """Once the TOPs are ordered for the §9 measures, the reviews as validated are let go: their rows read,
    used and rejected stay (four read; one names no episode), and reading their rows again is an error,
    never an empty table."""
    from cdp_metrics import contract as c
    from cdp_metrics.pipeline import Extract, RunOptions

    a, b = episode("A", "2023-01-10"), episode("B", "2023-02-01")
    ghost = {**b, "episode_id": "NOSUCH"}
    write_extract(extract_dir, [a, b], reviews=[review(a, "2023-01-10", "start"), review(a, "2023-04-10"),
                                                review(b, "2023-02-01", "start"), review(ghost, "2023-03-01")])
    extract = Extract(RunOptions(data=extract_dir))
    before = extract.table(c.REVIEWS).counts()
    assert extract.tops.collect().height == 3
    after = extract.table(c.REVIEWS).counts()
    assert before == after and (after["rows_read"], after["rows_used"], after["rows_rejected"]) == (4, 3, 1)
    with pytest.raises(RuntimeError, match="let go"):
        extract.frame(c.REVIEWS)
