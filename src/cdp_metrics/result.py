"""A metric's result: its period, rows (contract §6 row fields) and warnings."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from . import CONTRACT_VERSION
from .contract import CONTRACT_VERSION_KEY, ROW_FIELDS
from .periods import Period


@dataclass
class Result:
    metric: str
    period: Period
    rows: pl.DataFrame  # ROW_FIELDS, in order
    warnings: list[str] = field(default_factory=list)
    confidence: float = 95.0  # level of the intervals (shown in tables; not part of the JSON)
    cell_notes: dict[str, tuple] = field(default_factory=dict)  # warning -> the cell it shows (dropped if hidden)
    # (area_code, category) -> the Fingertips time period of a published row that replaced a computed one
    benchmark_periods: dict[tuple[str, str], str] = field(default_factory=dict)

    def row_dicts(self) -> list[dict]:
        return self.rows.select(ROW_FIELDS).to_dicts()

    def document(self) -> dict:
        """The result's JSON document; its rows as a DataFrame (`render.dumps` writes it out)."""
        doc = {
            "metric": self.metric,
            CONTRACT_VERSION_KEY: CONTRACT_VERSION,
            "period": self.period.as_json(),
            "warnings": list(self.warnings),
            "rows": self.rows.select(ROW_FIELDS),
        }
        if self.benchmark_periods:
            doc["benchmark_periods"] = [{"area_code": a, "category": cat, "period": label}
                                        for (a, cat), label in sorted(self.benchmark_periods.items())]
        return doc
