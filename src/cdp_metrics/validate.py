"""Validation of input tables against the contract's rules (§1 "Input errors").

Every rule is a vectorised boolean expression over the whole table; one
collect types the columns and evaluates every rule, then rows that break any
rule are split off with one error record per (row, column, rule). Rows read =
rows used + rows rejected, always.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from . import contract as c
from .contract import Column, Table
from .io import ROW, Source, collect_raw, scan_table
from .errors import InputError
from .mapping import Mapping

ERROR_SCHEMA = {"file": pl.String, "row": pl.Int64, "column": pl.String, "value": pl.String, "rule": pl.String}
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_WHOLE = r"^[0-9]+(\.0*)?$"
_YEAR = r"^[0-9]{4}-[0-9]{2}$"
_TYPED = "_t_"  # prefix of typed working columns


@dataclass(frozen=True)
class Validated:
    """One table after validation: typed valid rows, and the errors of the rest."""

    source: Source
    frame: pl.DataFrame  # valid rows, contract column names and types, plus _row
    errors: pl.DataFrame  # ERROR_SCHEMA, sorted by row
    rows_read: int
    rejected: pl.DataFrame  # the rejected rows as read (text), with _row

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.frame.height

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


def _string(col: str) -> pl.Expr:
    """Trimmed text, with the empty string as null."""
    s = pl.col(col).cast(pl.String).str.strip_chars()
    return pl.when(s == "").then(None).otherwise(s).alias(col)


def _typed(column: Column, dtype: pl.DataType, mapping: Mapping | None) -> tuple[pl.Expr, str | None, pl.Expr | None]:
    """(typed expression, type rule, bad-value expression) for one column.

    The raw column (already normalised to trimmed text or its native type) is
    `pl.col(name)`; the bad expression is true where a non-null raw value
    fails to parse.
    """
    raw = pl.col(column.name)
    text = raw.cast(pl.String)
    kind = column.kind
    if kind in ("id", "la"):
        typed = text
        if kind == "la":
            return typed, c.RULE_LA, raw.is_not_null() & ~text.str.contains(c.LA_CODE_PATTERN)
        return typed, None, None
    if kind == "code":
        value_map = mapping.value_map(column.name) if mapping else None
        source = text.replace_strict(value_map, default=None, return_dtype=pl.String) if value_map else text
        typed = source.cast(pl.Enum(column.codes), strict=False)
        return typed, c.RULE_CODE, raw.is_not_null() & typed.is_null()
    if kind == "date":
        if dtype == pl.Date:
            return raw, None, None
        if isinstance(dtype, pl.Datetime):
            return raw.dt.date(), None, None
        fmt = mapping.date_format if mapping and mapping.date_format else None
        if fmt:
            parsed = text.str.to_date(fmt, strict=False)
            # chrono reads a two-digit year under %Y as year 23: only four-digit years are dates here
            typed = pl.when(parsed.dt.year() >= 1000).then(parsed)
            return typed, c.RULE_DATE_FORMAT.format(fmt), raw.is_not_null() & typed.is_null()
        parsed = text.str.to_date("%Y-%m-%d", strict=False)
        typed = pl.when(text.str.contains(_ISO_DATE)).then(parsed)
        return typed, c.RULE_DATE, raw.is_not_null() & typed.is_null()
    if kind == "age":
        if dtype.is_integer():
            number = raw.cast(pl.Int64)
            ok = number.is_between(0, 120)
        else:
            number_f = raw.cast(pl.Float64, strict=False) if dtype.is_float() else text.cast(pl.Float64, strict=False)
            shape_ok = number_f.is_finite() & (number_f == number_f.floor())
            if not dtype.is_float():
                shape_ok = shape_ok & text.str.contains(_WHOLE)
            ok = shape_ok & number_f.is_between(0, 120)
            number = number_f
        typed = pl.when(ok).then(number).cast(pl.Int16)
        return typed, c.RULE_AGE, raw.is_not_null() & ~ok.fill_null(False)
    if kind == "number":
        number = raw.cast(pl.Float64, strict=False) if dtype.is_numeric() else text.cast(pl.Float64, strict=False)
        ok = number.is_finite() & (number >= 0)
        typed = pl.when(ok).then(number)
        return typed, c.RULE_NUMBER, raw.is_not_null() & ~ok.fill_null(False)
    if kind == "year":
        return text, c.RULE_YEAR, raw.is_not_null() & ~text.str.contains(_YEAR)
    raise ValueError(f"unknown column kind {kind}")


def _t(name: str) -> pl.Expr:
    return pl.col(_TYPED + name)


def _row_rules(table: Table, present: set[str]) -> list[tuple[str, str, pl.Expr]]:
    """(column, rule, bad expression) for the rules that involve a whole row or other rows."""
    rules: list[tuple[str, str, pl.Expr]] = []
    if table.id_column:
        ident = _t(table.id_column)
        rules.append((table.id_column, c.RULE_DUPLICATE, ident.is_not_null() & ~ident.is_first_distinct()))
    if table is c.EPISODES:
        ddate, reason = pl.col("discharge_date"), pl.col("discharge_reason")
        rules += [
            ("discharge_date", c.RULE_DISCHARGE_ORDER, (_t("discharge_date") < _t("triage_date")).fill_null(False)),
            ("discharge_reason", c.RULE_REASON_WITHOUT_DATE, reason.is_not_null() & ddate.is_null()),
            ("discharge_date", c.RULE_DATE_WITHOUT_REASON, ddate.is_not_null() & reason.is_null()),
        ]
        cites_ocu = pl.any_horizontal(
            _t(s).cast(pl.String).is_in([*c.OPIATES, c.CRACK]).fill_null(False)
            for s in ("substance_1", "substance_2", "substance_3")
            if s in present
        )
        rules.append(
            (
                "discharge_reason",
                c.RULE_OCCASIONAL,
                (_t("discharge_reason").cast(pl.String) == "completed_occasional_user").fill_null(False) & cites_ocu,
            )
        )
    if table is c.PREVALENCE:
        key = pl.struct(_t("la_code"), _t("category"), _t("year"))
        complete = _t("la_code").is_not_null() & _t("category").is_not_null() & _t("year").is_not_null()
        rules.append(("year", c.RULE_DUPLICATE_ESTIMATE, complete & ~key.is_first_distinct()))
    return rules


def validate(source: Source, mapping: Mapping | None = None) -> Validated:
    """Read and validate one table: typed valid rows plus an error record per broken rule."""
    raw = collect_raw(scan_table(source, mapping), source)
    table = source.table
    columns = [col for col in table.columns if col.name in raw.columns]
    for col in columns:
        dtype = raw.schema[col.name]
        if not (dtype in (pl.String, pl.Date, pl.Null, pl.Categorical) or dtype.is_numeric()
                or isinstance(dtype, (pl.Datetime, pl.Enum))):
            raise InputError(f"{source.path}: column {col.name} holds {dtype} values; expected {col.kind} "
                             "(text, a number or a date)")
    raw = raw.with_columns(_string(col.name) if raw.schema[col.name] == pl.String else pl.col(col.name) for col in columns)

    typed_exprs, checks = [], []
    for col in columns:
        typed, rule, bad = _typed(col, raw.schema[col.name], mapping)
        typed_exprs.append(typed.alias(_TYPED + col.name))
        if not col.nullable:
            checks.append((col.name, c.RULE_NULL, pl.col(col.name).is_null()))
        if rule is not None and bad is not None:
            checks.append((col.name, rule, bad))
    checked = raw.with_columns(typed_exprs)
    checks += _row_rules(table, {col.name for col in columns})
    flags = checked.select(bad.alias(f"_bad{i}") for i, (_, _, bad) in enumerate(checks))

    label = str(source.path)
    errors = [
        checked.filter(flags[f"_bad{i}"]).select(
            pl.lit(label).alias("file"),
            pl.col(ROW).cast(pl.Int64).alias("row"),
            pl.lit(column).alias("column"),
            pl.col(column).cast(pl.String).alias("value"),
            pl.lit(rule).alias("rule"),
        )
        for i, (column, rule, _) in enumerate(checks)
        if flags[f"_bad{i}"].any()
    ]
    errors_df = pl.concat(errors).sort("row", maintain_order=True) if errors else pl.DataFrame(schema=ERROR_SCHEMA)
    any_bad = flags.select(pl.any_horizontal(pl.all()).alias("bad")).to_series() if checks else None
    valid = checked if any_bad is None else checked.filter(~any_bad)
    rejected = checked.head(0) if any_bad is None else checked.filter(any_bad)
    rejected = rejected.select(pl.col(ROW), *[pl.col(col.name).cast(pl.String) for col in columns])
    frame = valid.select(pl.col(ROW), *[_t(col.name).alias(col.name) for col in columns])
    frame = _add_absent_columns(frame, table)
    return Validated(source, frame, errors_df, raw.height, rejected)


def _add_absent_columns(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Optional columns absent from the file are all null, with their contract type."""
    missing = [col for col in table.columns if col.name not in frame.columns]
    if not missing:
        return frame
    dtypes = {"code": lambda col: pl.Enum(col.codes), "date": lambda col: pl.Date, "number": lambda col: pl.Float64}
    return frame.with_columns(
        pl.lit(None, dtype=dtypes.get(col.kind, lambda col: pl.String)(col)).alias(col.name) for col in missing
    )
