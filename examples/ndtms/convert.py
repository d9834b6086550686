"""Write an NDTMS-style copy of a contract-shaped extract, using the inverse of mapping.toml.

    .venv/bin/python examples/ndtms/convert.py                      # data/samples -> examples/ndtms
    .venv/bin/python examples/ndtms/convert.py --data DIR --out DIR [--mapping FILE]

Every name, code and the date format come from the mapping file (read with tomllib), so
this script holds no code table of its own:

- columns are renamed contract name -> source name (the first source name listed for it);
- coded columns are recoded contract code -> source value (the first source value listed
  for it, where several map to one code); a contract code the mapping cannot write is an
  error, never a blank;
- date columns (the contract's date columns: the `*_date` ones and the hcv_* dates) are
  rewritten from ISO to `date_format`;
- every other value is copied as text, unchanged.

The tables are episodes, prison_releases, prevalence and, when the input has one, the
optional reviews table (TOP interviews, contract section 9).

Reading the result with `--mapping mapping.toml` must give exactly the metrics of the
contract-shaped input: tests/test_mapping.py checks that round trip.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import polars as pl

from cdp_metrics import contract

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TABLES = ("episodes", "prison_releases", "prevalence")
OPTIONAL_TABLES = ("reviews",)  # converted when the input has them
SUBSTANCE_COLUMNS = ("substance_1", "substance_2", "substance_3")
DATE_COLUMNS = frozenset(col.name for table in contract.TABLES.values() for col in table.columns if col.kind == "date")


def first_of_each(pairs: dict[str, str]) -> dict[str, str]:
    """Invert source -> target into target -> the first source listed for it."""
    inverse: dict[str, str] = {}
    for source, target in pairs.items():
        inverse.setdefault(target, source)
    return inverse


def value_table(mapping: dict, column: str) -> dict[str, str] | None:
    """The mapping's source value -> contract code table for a contract column, as the tool applies it."""
    values = mapping.get("values", {})
    if column in values:
        return values[column]
    if column in SUBSTANCE_COLUMNS and "substance" in values:
        return values["substance"]
    return None


def convert_table(frame: pl.DataFrame, mapping: dict, label: str) -> pl.DataFrame:
    """One contract-shaped table (all text) -> the NDTMS-style layout."""
    date_format = mapping.get("date_format")
    exprs = []
    for column in frame.columns:
        expr = pl.col(column)
        table = value_table(mapping, column)
        if table is not None:
            inverse = first_of_each(table)
            present = set(frame[column].drop_nulls().unique())
            missing = sorted(present - set(inverse))
            if missing:
                sys.exit(f"{label}: column {column}: no source value in the mapping for {', '.join(missing)}")
            expr = expr.replace_strict(inverse, default=None, return_dtype=pl.String)
        elif column in DATE_COLUMNS and date_format:
            expr = expr.str.to_date("%Y-%m-%d", strict=True).dt.strftime(date_format)
        exprs.append(expr)
    renames = first_of_each(mapping.get("columns", {}))
    return frame.select(exprs).rename({c: renames[c] for c in frame.columns if c in renames})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "samples",
                        help="contract-shaped extract folder (default: data/samples)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: examples/ndtms)")
    parser.add_argument("--mapping", type=Path, default=HERE / "mapping.toml", help="mapping file to invert")
    args = parser.parse_args(argv)

    mapping = tomllib.loads(args.mapping.read_text(encoding="utf-8"))
    args.out.mkdir(parents=True, exist_ok=True)
    for name in (*TABLES, *OPTIONAL_TABLES):
        source = args.data / f"{name}.csv"
        if not source.is_file():
            if name in OPTIONAL_TABLES:
                continue
            sys.exit(f"{source}: no such file")
        # All text, empty = null: values are copied exactly as written.
        frame = pl.read_csv(source, infer_schema=False)
        converted = convert_table(frame, mapping, str(source))
        target = args.out / f"{name}.csv"
        converted.write_csv(target, line_terminator="\n")
        print(f"wrote {target} ({converted.height:,} rows)", file=sys.stderr)


if __name__ == "__main__":
    main()
