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

Unknown keys are refused and every problem is reported at once. A column
with a value map accepts only the mapped source values: anything else is an
input error (unknown code) naming the source value.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .contract import TABLES
from .errors import UsageError

_ALL_COLUMNS = {c.name: c for t in TABLES.values() for c in t.columns}
_SUBSTANCE_COLUMNS = ("substance_1", "substance_2", "substance_3")


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    date_format: str | None = None

    @field_validator("columns")
    @classmethod
    def _known_targets(cls, columns: dict[str, str]) -> dict[str, str]:
        bad = sorted({t for t in columns.values() if t not in _ALL_COLUMNS})
        if bad:
            raise ValueError(f"not contract columns: {', '.join(bad)}")
        return columns

    @model_validator(mode="after")
    def _known_codes(self) -> Mapping:
        problems = []
        for column, table in self.values.items():
            targets = _SUBSTANCE_COLUMNS if column == "substance" else (column,)
            spec = _ALL_COLUMNS.get(targets[0])
            if spec is None or not spec.codes:
                problems.append(f"values.{column}: not a coded contract column")
                continue
            bad = sorted({v for v in table.values() if v not in spec.codes})
            if bad:
                problems.append(f"values.{column}: not contract codes: {', '.join(bad)}")
        if self.date_format is not None and "%" not in self.date_format:
            problems.append(f"date_format: {self.date_format!r} has no % directive")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def renames_for(self, header: list[str]) -> dict[str, str]:
        """Source name -> contract name for the columns of `header` that the mapping renames."""
        return {h: self.columns[h] for h in header if h in self.columns}

    def value_map(self, column: str) -> dict[str, str] | None:
        if column in self.values:
            return self.values[column]
        if column in _SUBSTANCE_COLUMNS and "substance" in self.values:
            return self.values["substance"]
        return None


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; UsageError (exit 2) listing every problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: mapping file not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'mapping'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise UsageError(f"{path}: {problems}") from exc
