"""Column and value mapping for real extracts (contract §7), as a pydantic model.

A mapping file is TOML::

    date_format = "%d/%m/%Y"          # optional: how the source writes dates

    [columns]                          # source column = contract column
    CLIENTID = "client_id"
    TRIAGED = "triage_date"

    [values.discharge_reason]          # per contract column: source value = contract code
    "80" = "completed_drug_free"

    [values.substance]                 # shorthand for substance_1, substance_2 and substance_3
    "1" = "heroin"

Unknown keys are refused and every problem is reported at once: each part
(`columns`, `values`, `date_format`) is checked on its own, so a problem in
one never hides a problem in another. A column with a value map accepts only
the mapped source values: anything else is an input error (unknown code)
naming the source value.
"""

from __future__ import annotations

import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .contract import TABLES
from .errors import UsageError

_ALL_COLUMNS = {c.name: c for t in TABLES.values() for c in t.columns}
_SUBSTANCE_COLUMNS = ("substance_1", "substance_2", "substance_3")
_CODED = sorted({name for name, col in _ALL_COLUMNS.items() if col.codes} - set(_SUBSTANCE_COLUMNS))
# Dates whose day, month and year are all different (and day > 12), to check that a date_format round-trips.
_PROBE_DATES = (date(2023, 12, 31), date(2001, 2, 3))
_TOP_LEVEL_KEYS = ("columns", "values", "date_format")


def _codes_for(column: str) -> tuple[str, ...] | None:
    """Contract codes of a `[values.<column>]` table (`substance` = substance_1..3), or None if not coded."""
    spec = _ALL_COLUMNS.get(_SUBSTANCE_COLUMNS[0] if column == "substance" else column)
    return spec.codes if spec is not None and spec.codes else None


def _quoted(items) -> str:
    return ", ".join(repr(i) for i in items)


class Mapping(BaseModel):
    """A checked mapping. The validators run on the raw TOML and name every problem with its location."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    date_format: str | None = None

    @field_validator("columns", mode="before")
    @classmethod
    def _known_targets(cls, columns: Any) -> Any:
        if not isinstance(columns, dict):
            raise ValueError("columns: must be a table of source column = contract column")
        problems = []
        for source, target in columns.items():
            if not isinstance(target, str):
                problems.append(f"columns.{source}: must be a contract column name (a string)")
            elif target not in _ALL_COLUMNS:
                problems.append(f"columns.{source}: {target!r} is not a contract column")
        if problems:
            raise ValueError("; ".join(problems))
        return columns

    @field_validator("values", mode="before")
    @classmethod
    def _known_codes(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            raise ValueError("values: must hold [values.<contract column>] tables")
        problems = []
        for column, table in values.items():
            codes = _codes_for(column)
            if codes is None:
                problems.append(
                    f"values.{column}: not a coded contract column (coded: {', '.join([*_CODED, 'substance'])}, "
                    f"{', '.join(_SUBSTANCE_COLUMNS)})"
                )
                continue
            if not isinstance(table, dict):
                problems.append(f"values.{column}: must be a table of source value = contract code")
                continue
            if not table:
                problems.append(f"values.{column}: empty (it would accept no value at all)")
                continue
            not_text = [source for source, code in table.items() if not isinstance(code, str)]
            problems += [f"values.{column}.{source}: must be a contract code (a string)" for source in not_text]
            bad = [code for code in table.values() if isinstance(code, str) and code not in codes]
            if bad:
                problems.append(
                    f"values.{column}: not contract codes: {_quoted(dict.fromkeys(bad))} (codes: {', '.join(codes)})"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return values

    @field_validator("date_format", mode="before")
    @classmethod
    def _usable_date_format(cls, fmt: Any) -> Any:
        if fmt is None:
            return fmt
        if not isinstance(fmt, str):
            raise ValueError("date_format: must be a string such as \"%d/%m/%Y\"")
        try:
            ok = all(datetime.strptime(d.strftime(fmt), fmt).date() == d for d in _PROBE_DATES)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"date_format: {fmt!r} does not read back a full date (day, month and year); "
                "use strftime directives, e.g. \"%d/%m/%Y\""
            )
        return fmt

    def renames_for(self, header: list[str]) -> dict[str, str]:
        """Source name -> contract name for the columns of `header` that the mapping renames."""
        return {h: self.columns[h] for h in header if h in self.columns}

    def value_map(self, column: str) -> dict[str, str] | None:
        if column in self.values:
            return self.values[column]
        if column in _SUBSTANCE_COLUMNS and "substance" in self.values:
            return self.values["substance"]
        return None


def _problem(err: dict, what: str = "mapping", keys: tuple[str, ...] = _TOP_LEVEL_KEYS) -> str:
    """One problem of a ValidationError as `location: message` (`keys`: the file's top-level keys)."""
    if err["type"] == "value_error":  # our validators' messages name their own location
        return err["msg"].removeprefix("Value error, ")
    where = ".".join(str(p) for p in err["loc"]) or what
    if err["type"] == "extra_forbidden":
        if len(err["loc"]) > 1:
            return f"{where}: unknown key"
        return f"{where}: unknown key (a {what} holds only {', '.join(keys)})"
    return f"{where}: {err['msg']}"


def load_toml_model(path: Path, model: type[BaseModel], what: str, keys: tuple[str, ...] = _TOP_LEVEL_KEYS):
    """Read a TOML file into a pydantic `model`; UsageError (exit 2) listing every problem on one line."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: {what} file not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what} file: {exc.strerror or exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(f"{path}: {'; '.join(_problem(err, what, keys) for err in exc.errors())}") from exc


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; UsageError (exit 2) listing every problem on one line."""
    return load_toml_model(path, Mapping, "mapping")
