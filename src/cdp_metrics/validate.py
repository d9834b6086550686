"""Validation of input tables against the contract's rules (§1 "Input errors").

Every rule is a vectorised boolean expression over the whole table; the
columns are read and typed (a Parquet file's rebuilt columns by a streaming
read of their own), every rule is evaluated over them, then rows that break any
rule are split off with one error record per (row, column, rule). Rows read =
rows used + rows rejected, always.
"""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING

from dataclasses import dataclass, replace

import polars as pl

from . import contract as c
from .contract import Column, Table
from .io import EPISODE_ROW, ROW, Source, _is_parquet, collect_raw, scan_table
from .errors import InputError

if TYPE_CHECKING:  # pydantic is imported only when a mapping is used
    from .mapping import Mapping

ERROR_SCHEMA = {"file": pl.String, "row": pl.Int64, "column": pl.String, "value": pl.String, "rule": pl.String}
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_WHOLE = r"^[0-9]+(\.0*)?$"
_YEAR = r"^[0-9]{4}-[0-9]{2}$"
_TYPED = "_t_"  # prefix of typed working columns
# whole-number kinds: (lowest, highest, rule); ages and TOP day counts ("day counts are whole numbers as ages are")
_WHOLE_RANGES = {"age": (0, 120, c.RULE_AGE), "days": (0, 28, c.RULE_DAYS)}
_EPISODE = "_ep_"  # prefix of the episode columns joined to reviews
_AGAIN = "_again_"  # prefix of values read again from the file (`_read_again`)


@dataclass(frozen=True)
class Validated:
    """One table after validation: typed valid rows, and the errors of the rest."""

    source: Source
    frame: pl.DataFrame  # valid rows, contract column names and types, plus _row
    errors: pl.DataFrame  # ERROR_SCHEMA, sorted by row
    rows_read: int
    rejected: pl.DataFrame  # the rejected rows as read (text), with _row
    present: frozenset[str] = frozenset()  # the contract columns the file has (the others are all null)
    used: int | None = None  # the valid rows' count once `frame` has been let go (`without_rows`)

    @property
    def rows_used(self) -> int:
        return self.frame.height if self.used is None else self.used

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.rows_used

    def counts(self) -> dict:
        """The file, its table and how many rows were read, used and rejected."""
        return {"file": str(self.source.path), "table": self.source.table.name, "rows_read": self.rows_read,
                "rows_used": self.rows_used, "rows_rejected": self.rows_rejected}

    def without_rows(self) -> Validated:
        """The same counts, errors and rejected rows, with no valid rows held (an empty `frame` of the same
        schema): for a table whose rows have all been read into what is derived from them."""
        return replace(self, frame=self.frame.clear(), used=self.rows_used)

    def summary(self) -> str | None:
        """One line naming how many rows were left out and why, or None."""
        if self.errors.is_empty():
            return None
        counts = self.errors.group_by("rule").len().sort(["len", "rule"], descending=[True, False])
        reasons = ", ".join(f"{n:,} {rule}" for rule, n in counts.iter_rows())
        return (
            f"{self.source.path}: {self.rows_rejected:,} of {self.rows_read:,} rows rejected ({reasons}); "
            f"first: {format_error(self.errors.row(0, named=True))}"
        )


def format_error(err: dict) -> str:
    """`file: row R, column C, value 'V': rule` — the one-line form of an error record."""
    where = f"row {err['row']}, " if err.get("row") is not None else ""
    value = "null" if err["value"] is None else repr(err["value"])
    return f"{err['file']}: {where}column {err['column']}, value {value}: {err['rule']}"


def _blank(column: str, strings: set[str]) -> pl.Expr:
    """The value is missing: null, or (in a text column, one of `strings`) the empty string.

    CSV reading makes an empty field null, but a quoted "" and a Parquet ""
    stay empty strings; both count as missing. Tested as a boolean rather than
    rewriting the text columns, which would copy every one of them.
    """
    value = pl.col(column)
    return (value.is_null() | (value == "")) if column in strings else value.is_null()


def _as_read(column: str, strings: set[str]) -> pl.Expr:
    """The raw value as text for error records and rejected rows, a blank shown as null."""
    return pl.when(_blank(column, strings)).then(None).otherwise(pl.col(column).cast(pl.String)).alias(column)


def _rebuilt(column: Column, dtype: pl.DataType, mapping: Mapping | None, source: Source) -> bool:
    """Whether the column's values as read can be rebuilt from its typed values wherever those are not null,
    so that the column as read is never held beside its typed copy.

    In a Parquet file: whole numbers stored as integers (a 64-bit day count beside its 16-bit typed copy was
    1.4 GB of 18.9M TOPs) and codes stored as text without a value map (the text beside the Enum). Where the
    typed value is null, the value was blank or broke the type rule; the few that broke it are read again
    from the file for their error records (`_read_again`), one column of a columnar file.
    """
    if not _is_parquet(source.path):
        return False  # a CSV would be parsed again; its values are text, kept as read
    if column.kind in _WHOLE_RANGES:
        return dtype.is_integer()
    if column.kind in ("code", "la"):
        return dtype in (pl.String, pl.Categorical) and not (mapping and mapping.value_map(column.name))
    return False


def _read_again(source: Source, mapping: Mapping | None, names: list[str], rows: pl.Series,
                strings: set[str]) -> pl.DataFrame:
    """The named columns of the given rows as read (`_as_read`), read again from the file, keyed by ROW."""
    scan = scan_table(source, mapping).select(ROW, *names).filter(pl.col(ROW).is_in(rows.implode()))
    return collect_raw(scan, source).select(ROW, *[_as_read(name, strings).alias(_AGAIN + name) for name in names])


def _may_repeat(column: str) -> pl.Expr:
    """True (on every row) when fewer distinct 64-bit hashes than non-null values are found.

    Every exact repeat makes this true; when it is false there is no repeat,
    and the exact (slower, per-row) rule is only evaluated otherwise. Counting
    distinct hashes is about four times cheaper than flagging each row.
    """
    present = pl.col(column).filter(~_blank(column, {column}))  # a blank id is missing, not repeated
    return present.hash().n_unique() < present.len()


def _repeated(ids: pl.Series) -> pl.Series:
    """True on every row whose id (typed: text) is not blank and not its first appearance.

    Only rows whose 64-bit hash repeats can be repeats; the exact rule (text equality, in row
    order) runs on those few rows alone rather than over every id (about 0.5 s at 1.9M rows).
    """
    hashes = ids.hash()
    ordered = hashes.sort()  # a sort of integers finds the repeated hashes faster than a hash table
    repeated_hashes = ordered.filter(ordered == ordered.shift(1)).unique()
    candidates = (hashes.is_in(repeated_hashes.implode()) & ids.is_not_null() & (ids != "")).arg_true()
    later = candidates.filter(~ids.gather(candidates).is_first_distinct())
    return pl.repeat(False, ids.len(), dtype=pl.Boolean, eager=True).scatter(later, True)


def _typed(column: Column, dtype: pl.DataType, mapping: Mapping | None) -> tuple[pl.Expr, str | None]:
    """(typed expression, type rule) for one column.

    The typed value is null exactly where the raw value (`pl.col(name)`, text
    or a native Parquet type) is blank (null or "") or breaks the column's
    type rule, so the check is always "raw not blank and typed null" (see
    `validate`). Ids are the exception: a blank id stays "", and its row is
    rejected as missing a required value.
    """
    raw = pl.col(column.name)
    text = raw.cast(pl.String)
    kind = column.kind
    if kind == "id":
        return text, None
    if kind == "la":
        # Categorical: a few hundred codes over millions of rows group, sort and join as integers
        return pl.when(text.str.contains(c.LA_CODE_PATTERN)).then(text).cast(pl.Categorical), c.RULE_LA
    if kind == "code":
        value_map = mapping.value_map(column.name) if mapping else None
        # a blank is missing, never a mapped value
        source = pl.when(text != "").then(text.replace_strict(value_map, default=None, return_dtype=pl.String)) \
            if value_map else text
        return source.cast(pl.Enum(column.codes), strict=False), c.RULE_CODE
    if kind == "date":
        if dtype == pl.Date:
            return raw, None
        if isinstance(dtype, pl.Datetime):
            return raw.dt.date(), None
        fmt = mapping.date_format if mapping and mapping.date_format else None
        if fmt:
            parsed = text.str.to_date(fmt, strict=False)
            # chrono reads a two-digit year under %Y as year 23: only four-digit years are dates here
            return pl.when(parsed.dt.year() >= 1000).then(parsed), c.RULE_DATE_FORMAT.format(fmt)
        return pl.when(text.str.contains(_ISO_DATE)).then(text.str.to_date("%Y-%m-%d", strict=False)), c.RULE_DATE
    if kind in _WHOLE_RANGES:
        low, high, rule = _WHOLE_RANGES[kind]
        if dtype.is_integer():
            number = raw.cast(pl.Int64)
            ok = number.is_between(low, high)
        else:
            number = raw.cast(pl.Float64, strict=False) if dtype.is_float() else text.cast(pl.Float64, strict=False)
            ok = number.is_finite() & (number == number.floor()) & number.is_between(low, high)
            if not dtype.is_float():
                ok = ok & text.str.contains(_WHOLE)
        return pl.when(ok).then(number).cast(pl.Int16), rule
    if kind == "number":
        number = raw.cast(pl.Float64, strict=False) if dtype.is_numeric() else text.cast(pl.Float64, strict=False)
        return pl.when(number.is_finite() & (number >= 0)).then(number), c.RULE_NUMBER
    if kind == "year":
        return pl.when(text.str.contains(_YEAR)).then(text), c.RULE_YEAR
    raise ValueError(f"unknown column kind {kind}")


def _t(name: str) -> pl.Expr:
    return pl.col(_TYPED + name)


def _row_rules(table: Table, present: set[str], strings: set[str]) -> list[tuple[str, str, pl.Expr]]:
    """(column, rule, bad expression) for the rules that involve a whole row or other rows.

    The repeated-id rule starts as a cheap whole-table check (`_may_repeat`);
    `validate` swaps in the exact per-row rule when that check is true.
    """
    rules: list[tuple[str, str, pl.Expr]] = []
    if table.id_column:
        rules.append((table.id_column, c.RULE_DUPLICATE, _may_repeat(_TYPED + table.id_column)))
    if table is c.EPISODES:
        no_date, no_reason = _blank("discharge_date", strings), _blank("discharge_reason", strings)
        rules += [
            ("discharge_date", c.RULE_DISCHARGE_ORDER, (_t("discharge_date") < _t("triage_date")).fill_null(False)),
            ("discharge_reason", c.RULE_REASON_WITHOUT_DATE, ~no_reason & no_date),
            ("discharge_date", c.RULE_DATE_WITHOUT_REASON, ~no_date & no_reason),
        ]
        # on the Enum's physical codes (positions in the code list): no string comparisons
        ocu_codes = [c.SUBSTANCES.index(code) for code in (*c.OPIATES, c.CRACK)]
        cites_ocu = pl.any_horizontal(
            _t(s).to_physical().is_in(ocu_codes).fill_null(False)
            for s in ("substance_1", "substance_2", "substance_3")
            if s in present
        )
        occasional = c.DISCHARGE_REASONS.index("completed_occasional_user")
        rules.append(
            (
                "discharge_reason",
                c.RULE_OCCASIONAL,
                (_t("discharge_reason").to_physical() == occasional).fill_null(False) & cites_ocu,
            )
        )
    if table is c.EPISODES and present.intersection(c.HCV_COLUMNS):
        rules += _hcv_rules(present, strings)
    if table is c.REVIEWS:
        rules += _review_rules(strings)
    if table is c.PREVALENCE:
        key = pl.struct(_t("la_code"), _t("category"), _t("year"))
        complete = _t("la_code").is_not_null() & _t("category").is_not_null() & _t("year").is_not_null()
        rules.append(("year", c.RULE_DUPLICATE_ESTIMATE, complete & ~key.is_first_distinct()))
    return rules


def _hcv_rules(present: set[str], strings: set[str]) -> list[tuple[str, str, pl.Expr]]:
    """The hepatitis C cascade's order (§9): each step needs the one before it, on or after its date.

    An absent column is all null: a test in a file without `hcv_offered` is a test without an offer.
    """
    def given(name: str) -> pl.Expr:
        return ~_blank(name, strings) if name in present else pl.lit(False)

    def day(name: str) -> pl.Expr:
        return _t(name) if name in present else pl.lit(None, dtype=pl.Date)

    positive = (_t("hcv_result") == "positive").fill_null(False) if "hcv_result" in present else pl.lit(False)
    return [
        ("hcv_tested", c.RULE_TEST_WITHOUT_OFFER, given("hcv_tested") & ~given("hcv_offered")),
        ("hcv_result", c.RULE_RESULT_WITHOUT_TEST, given("hcv_result") & ~given("hcv_tested")),
        ("hcv_treatment_started", c.RULE_TREATMENT_WITHOUT_POSITIVE, given("hcv_treatment_started") & ~positive),
        ("hcv_tested", c.RULE_TEST_BEFORE_OFFER, (day("hcv_tested") < day("hcv_offered")).fill_null(False)),
        ("hcv_treatment_started", c.RULE_TREATMENT_BEFORE_TEST,
         (day("hcv_treatment_started") < day("hcv_tested")).fill_null(False)),
    ]


def _review_rules(strings: set[str]) -> list[tuple[str, str, pl.Expr]]:
    """A TOP belongs to a valid episode of the same client, on or after its triage date (§9).

    What each review's episode says is set beside the reviews (`_EPISODE` prefix) by `validate`
    (`_episode_columns`): `_ep_found` marks a valid episode's id, `_ep_rejected` an id the episodes table has
    only on rejected rows.
    """
    found = pl.col(_EPISODE + "found")
    named = ~_blank("episode_id", strings)
    return [
        ("episode_id", c.RULE_NO_EPISODE, named & ~found & ~pl.col(_EPISODE + "rejected")),
        ("episode_id", c.RULE_REJECTED_EPISODE, named & ~found & pl.col(_EPISODE + "rejected")),
        ("client_id", c.RULE_OTHER_CLIENT, found & ~_blank("client_id", strings) & pl.col(_EPISODE + "other_client")),
        ("review_date", c.RULE_BEFORE_TRIAGE, pl.col(_EPISODE + "before_triage")),
    ]


def _episode_columns(reviews: pl.DataFrame, episodes: Validated) -> list[pl.Series]:
    """For each review (its typed episode_id, client_id and review_date): whether its episode_id is a valid
    episode's (`_ep_found`; ids are unique there) or only a rejected episode row's (`_ep_rejected`); whether
    its client_id differs from that episode's (`_ep_other_client`) and its date is before the episode's
    triage date (`_ep_before_triage`); and the episode's row.

    The row (`EPISODE_ROW`) stays on the valid reviews: the §9 measures join TOPs to index episodes on
    it, an integer, rather than on the episode_id text. Each review's episode is found as a position among
    the valid episodes, and their client_id and triage_date are gathered one at a time, compared and let go:
    set beside the reviews until the rules were evaluated, they raised the peak of validating the 18.9M TOPs
    of 12M episodes from 3.3 to 4.1 GB (a sampler of the resident memory).
    """
    ids = reviews.get_column(_TYPED + "episode_id")
    valid = episodes.frame
    valid_ids = valid.get_column("episode_id")
    rejected_ids = episodes.rejected.get_column("episode_id").drop_nulls() \
        if "episode_id" in episodes.rejected.columns else pl.Series([], dtype=pl.String)
    rejected = ids.is_in(rejected_ids.implode()).fill_null(False).alias(_EPISODE + "rejected")
    key, position = "_key", "_position"

    def positions(probe: pl.Series, build: pl.Series) -> pl.Series:
        """Where each value of `probe` is in `build` (unique values), or null."""
        return probe.to_frame(key).join(build.to_frame(key).with_row_index(position), on=key, how="left",
                                        maintain_order="left").get_column(position)
    valid_hashes = valid_ids.hash()
    if valid_hashes.n_unique() < valid.height:  # two valid ids share a 64-bit hash: join on the text itself
        at = positions(ids, valid_ids)
    else:
        # Joined on the ids' 64-bit hashes, which are unique among the valid episodes: faster than on the text,
        # and at 19M reviews 0.5 GB less memory. A review whose hash meets a valid episode's while its id is
        # not that episode's cannot belong to any valid episode (its own would have the same hash): unmatched.
        at = positions(ids.hash(), valid_hashes)
        false_match = at.is_not_null() & ~(valid_ids.gather(at) == ids).fill_null(False)
        if false_match.any():
            at = pl.select(pl.when(false_match).then(None).otherwise(at)).to_series()
    other_client = (reviews.get_column(_TYPED + "client_id") != valid.get_column("client_id").gather(at))
    before_triage = (reviews.get_column(_TYPED + "review_date") < valid.get_column("triage_date").gather(at))
    return [at.is_not_null().alias(_EPISODE + "found"), rejected,
            other_client.fill_null(False).alias(_EPISODE + "other_client"),
            before_triage.fill_null(False).alias(_EPISODE + "before_triage"),
            valid.get_column(ROW).gather(at).alias(EPISODE_ROW)]


def validate(source: Source, mapping: Mapping | None = None, episodes: Validated | None = None) -> Validated:
    """Read and validate one table: typed valid rows plus an error record per broken rule.

    The file is read and every column typed (in two reads of a Parquet file: see `_rebuilt`), then every rule
    is evaluated over the typed columns. The reviews table
    needs the validated `episodes` (its rows must belong to valid episodes).
    """
    scan = scan_table(source, mapping)
    schema = scan.collect_schema()
    table = source.table
    columns = [col for col in table.columns if col.name in schema]
    for col in columns:
        dtype = schema[col.name]
        if not (dtype in (pl.String, pl.Date, pl.Null, pl.Categorical) or dtype.is_numeric()
                or isinstance(dtype, (pl.Datetime, pl.Enum))):
            raise InputError(f"{source.path}: column {col.name} holds {dtype} values; expected {col.kind} "
                             "(text, a number or a date)")
    strings = {col.name for col in columns if schema[col.name] == pl.String}
    present = frozenset(col.name for col in columns)
    rebuilt = [col.name for col in columns if _rebuilt(col, schema[col.name], mapping, source)]

    # A rebuilt column is read, typed and let go a batch of rows at a time (the streaming engine): only its
    # typed values and a stand-in of the same name, null where the value was blank and True elsewhere, are
    # kept, so that the rules read its blanks as they read any other column's. Read whole, the 64-bit day
    # counts and text codes of 18.9M TOPs were held beside their typed copies while these were made: reading
    # those reviews (typing their day counts and codes alone, in a script) took 3.5 GB whole and 1.7 GB so.
    blanks = strings - set(rebuilt)  # the stand-ins are not text
    typed_exprs, rebuilt_exprs, checks = [], [], []
    type_checks: dict[str, int] = {}
    for col in columns:
        typed, rule = _typed(col, schema[col.name], mapping)
        if col.name in rebuilt:
            rebuilt_exprs += [typed.alias(_TYPED + col.name),
                              pl.when(_blank(col.name, strings)).then(None).otherwise(True).alias(col.name)]
        else:
            typed_exprs.append(typed.alias(_TYPED + col.name))
        if not col.nullable:
            checks.append((col.name, c.RULE_NULL, _blank(col.name, blanks)))
        if rule is not None:
            type_checks[col.name] = len(checks)  # where the typed value is null but the value was not blank
            checks.append((col.name, rule, ~_blank(col.name, blanks) & _t(col.name).is_null()))
    checks += _row_rules(table, {col.name for col in columns}, blanks)
    flag_names = [f"_bad{i}" for i in range(len(checks))]
    flags = [bad.alias(name) for name, (_, _, bad) in zip(flag_names, checks)]
    typed_rebuilt = collect_raw(scan.select(rebuilt_exprs), source, engine="streaming") if rebuilt else None
    read = collect_raw(scan.drop(rebuilt).with_columns(typed_exprs), source)
    if typed_rebuilt is not None:
        if typed_rebuilt.height != read.height:  # two reads of one file: never, unless it changed between them
            raise InputError(f"{source.label}: changed while it was read")
        read = read.hstack(typed_rebuilt)
        del typed_rebuilt
    if table is c.REVIEWS:
        if episodes is None:
            raise ValueError("validating reviews needs the validated episodes")
        # the episode columns are joined onto the one id column, then set beside the read rows: a join of
        # the whole wide frame copied it (about 640 MB more at 1.9M reviews)
        read = read.hstack(_episode_columns(read, episodes))
    checked = read.lazy().with_columns(flags).drop(rebuilt).collect(engine="in-memory")
    del read  # else its columns as read outlive `checked` (below), while the valid rows are copied out
    if table.id_column:
        flag = flag_names[next(i for i, (column, rule, _) in enumerate(checks) if rule == c.RULE_DUPLICATE)]
        if checked[flag].any():  # two rows may share an id: apply the exact rule
            checked = checked.with_columns(_repeated(checked.get_column(_TYPED + table.id_column)).alias(flag))
    # an `or` of the flag Series: pl.any_horizontal over flags of unlike chunking took 3.6 s at 12M episodes
    bad_rows = functools.reduce(operator.or_, (checked.get_column(name) for name in flag_names))
    typed_columns = [pl.col(ROW), *[_t(col.name).alias(col.name) for col in columns],
                     *([pl.col(EPISODE_ROW)] if table is c.REVIEWS else [])]
    if not bad_rows.any():
        frame = _add_absent_columns(checked.select(typed_columns), table)
        empty = pl.DataFrame(schema=ERROR_SCHEMA)
        return Validated(source, frame, empty, checked.height, checked.head(0).select(ROW), present)

    label = str(source.path)
    # the few rejected rows first, then the columns each record needs; the valid rows as typed columns
    # only: filtering the whole frame (raw, typed and flags) copied it again
    bad = checked.select(ROW, *(_TYPED + col.name if col.name in rebuilt else col.name for col in columns),
                         *flag_names).filter(bad_rows)
    # a rebuilt column's values that broke its type rule are read again; the others are their typed values
    again = [column for column in rebuilt if column in type_checks and bad[flag_names[type_checks[column]]].any()]
    if again:
        bad = bad.join(_read_again(source, mapping, again, bad.get_column(ROW), strings), on=ROW, how="left",
                       maintain_order="left")

    def as_read(column: str) -> pl.Expr:
        if column not in rebuilt:
            return _as_read(column, strings)
        typed = _t(column)
        dtype = schema[column]
        back = (typed.cast(dtype) if dtype.is_integer() else typed).cast(pl.String)
        missing = pl.col(_AGAIN + column) if column in again else pl.lit(None, dtype=pl.String)
        return pl.when(typed.is_not_null()).then(back).otherwise(missing).alias(column)
    errors = [
        bad.filter(pl.col(name)).select(
            pl.lit(label).alias("file"),
            pl.col(ROW).cast(pl.Int64).alias("row"),
            pl.lit(column).alias("column"),
            as_read(column).alias("value"),
            pl.lit(rule).alias("rule"),
        )
        for name, (column, rule, _) in zip(flag_names, checks)
        if bad[name].any()
    ]
    errors_df = pl.concat(errors).sort("row", maintain_order=True)
    rejected = bad.select(pl.col(ROW), *[as_read(col.name) for col in columns])
    rows_read = checked.height
    typed = checked.select(typed_columns)
    del checked  # the raw columns are freed before the valid rows are copied out
    frame = _add_absent_columns(typed.filter(~bad_rows), table)
    return Validated(source, frame, errors_df, rows_read, rejected, present)


def _add_absent_columns(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Optional columns absent from the file are all null, with their contract type."""
    missing = [col for col in table.columns if col.name not in frame.columns]
    if not missing:
        return frame
    dtypes = {"code": lambda col: pl.Enum(col.codes), "date": lambda col: pl.Date, "number": lambda col: pl.Float64,
              "days": lambda col: pl.Int16}
    return frame.with_columns(
        pl.lit(None, dtype=dtypes.get(col.kind, lambda col: pl.String)(col)).alias(col.name) for col in missing
    )
