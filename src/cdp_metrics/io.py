"""Reading input tables (contract §1): CSV or Parquet by extension, columns selected early.

`scan_table` returns a LazyFrame of the contract columns present in the file,
renamed through the mapping when one is given, plus `_row` (1 = first data
row). Types are not checked here: that is `validate`'s job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .contract import Table
from .errors import InputError

if TYPE_CHECKING:  # pydantic is imported only when a mapping is used
    from .mapping import Mapping

ROW = "_row"
EPISODE_ROW = "_episode_row"  # a TOP's episode, as that episode's ROW: an integer key for the §9 joins
EXTENSIONS = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class Source:
    path: Path
    table: Table

    @property
    def label(self) -> str:
        return self.path.name


def find_table_file(directory: Path, table: Table) -> Path | None:
    """The file for `table` in `directory` (`episodes.csv`, `episodes.parquet`, ...), or None."""
    found = [directory / f"{table.name}{ext}" for ext in EXTENSIONS if (directory / f"{table.name}{ext}").is_file()]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise InputError(f"{directory}: more than one file for table {table.name} ({names}); keep one")
    return found[0] if found else None


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def describe_error(exc: Exception) -> str:
    """The first line of a parser's message, without the file content it quotes.

    Polars quotes the offending text between backticks; that text may hold a
    client id, and client ids never reach any output.
    """
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    first = re.sub(r"`[^`]*`?", "`…`", first)
    offset = re.search(r"current offset in the file is (\d+) bytes", text)
    return f"{first} (at byte {offset.group(1)})" if offset else first


def _check_csv_shape(path: Path, n_fields: int) -> None:
    """Fail on a CSV line with fewer or more fields than the header.

    Polars fills a short line with nulls, which would turn a truncated row into
    an open episode without a word. Lines holding a quote are left to the CSV
    parser (a quoted field may hold a comma or span lines).

    Most files are settled by counting bytes (`_commas_add_up`); the others are read line by line
    (`csv_shape_error`), which names the first line that is short or long.
    """
    if not _commas_add_up(path, n_fields) and (error := csv_shape_error(path, n_fields)) is not None:
        raise error


_CHUNK = 1 << 22  # 4 MB: compared a chunk at a time, which stays in the CPU's cache (16 MB chunks took 60% longer)


def _commas_add_up(path: Path, n_fields: int) -> bool:
    """True when the file holds no quote and exactly `n_fields - 1` commas a line on average (header included).

    Then no line is short: a short line would need a long one to make up its commas, and the parser
    rejects a line with more fields than the header (`collect_raw` then names the line). Counted over
    the file's bytes, 4 MB at a time (NumPy: 35-45 ms for the 126-143 MB national episodes and reviews,
    where reading them as lines and counting each line's commas took 175-205 ms and twice the CPU).
    A file with a quote, an empty line or any line of the wrong length is read line by line instead.
    """
    import numpy as np  # only when a CSV is read

    commas = newlines = 0
    last = b"\n"
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            data = np.frombuffer(chunk, dtype=np.uint8)
            if np.count_nonzero(data == ord('"')):
                return False
            commas += int(np.count_nonzero(data == ord(",")))
            newlines += int(np.count_nonzero(data == ord("\n")))
            last = chunk[-1:]
    lines = newlines + (last != b"\n")  # a last line without its newline is a line
    return commas == (n_fields - 1) * lines


def csv_shape_error(path: Path, n_fields: int) -> InputError | None:
    """The first line, quotes aside, whose number of fields is not the header's, as an InputError; or None."""
    lines = pl.scan_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        infer_schema=False,
        skip_rows=1,
        encoding="utf8",
        glob=False,
    )
    bad = (
        lines.with_row_index("line_no", offset=2)
        .filter(pl.col("line").is_not_null() & ~pl.col("line").str.contains('"', literal=True))
        .filter(pl.col("line").str.count_matches(",", literal=True) != n_fields - 1)
        .head(1)
        .collect()
    )
    if not bad.height:
        return None
    line_no, line = bad.row(0)
    count = line.count(",") + 1
    return InputError(f"{path.name}: line {line_no}: {count} fields where the header has {n_fields} "
                      "(truncated or malformed line)")


def read_header(path: Path) -> list[str]:
    """Column names of a CSV or Parquet file; InputError when unreadable or empty."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        if _is_parquet(path):
            return list(pl.scan_parquet(path, glob=False).collect_schema().names())
        if path.stat().st_size == 0:
            raise InputError(f"{path.name}: empty file (no header row)")
        return list(pl.scan_csv(path, infer_schema=False, encoding="utf8", n_rows=0, glob=False)
                    .collect_schema().names())
    except InputError:
        raise
    except Exception as exc:  # polars raises several kinds for a file it cannot parse
        raise InputError(f"{path.name}: unreadable: {describe_error(exc)}") from exc


def scan_table(source: Source, mapping: Mapping | None = None) -> pl.LazyFrame:
    """LazyFrame of the contract columns of `source` (after renaming), plus `_row`."""
    path, table = source.path, source.table
    header = read_header(path)
    renames = mapping.renames_for(header) if mapping else {}
    present: dict[str, str] = {}
    for h in header:
        name = renames.get(h, h)
        if name in present and name in table.column_names:
            raise InputError(f"{path.name}: columns {present[name]!r} and {h!r} both give contract column {name!r}; "
                             "keep one (or map only one of them)")
        present[name] = h
    missing = [c.name for c in table.columns if c.required and c.name not in present]
    if missing:
        raise InputError(f"{path.name}: missing required column {', '.join(repr(m) for m in missing)}")
    wanted = [c.name for c in table.columns if c.name in present]
    if _is_parquet(path):
        lf = pl.scan_parquet(path, glob=False)
    else:
        try:
            _check_csv_shape(path, len(header))
        except pl.exceptions.NoDataError as exc:
            raise InputError(f"{path.name}: empty input (no data rows)") from exc
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{path.name}: unreadable: {describe_error(exc)}") from exc
        lf = pl.scan_csv(path, infer_schema=False, encoding="utf8", glob=False)
    lf = lf.select([pl.col(present[name]).alias(name) for name in wanted])
    return lf.with_row_index(ROW, offset=1)


def collect_raw(lf: pl.LazyFrame, source: Source, engine: str = "in-memory") -> pl.DataFrame:
    """Collect a scanned table, turning parser failures into one-line InputErrors.

    The whole table is kept (the valid rows are the result), so the streaming engine saves memory only where
    what is kept is smaller than what is read (`validate`'s typed columns); elsewhere the in-memory engine
    is a little faster.
    """
    try:
        df = lf.collect(engine=engine)
    except Exception as exc:
        if not _is_parquet(source.path):  # a line with more fields than the header: say which
            try:
                shape = csv_shape_error(source.path, len(read_header(source.path)))
            except Exception:  # noqa: BLE001  (the parser's own message below)
                shape = None
            if shape is not None:
                raise shape from exc
        raise InputError(f"{source.label}: unreadable: {describe_error(exc)}") from exc
    if df.height == 0:
        raise InputError(f"{source.label}: empty input (no data rows)")
    return df


def read_side_table(path: Path, what: str, schema: dict, required: tuple[str, ...], **options) -> pl.DataFrame:
    """A small CSV supplied beside the extract (benchmarks, targets, reference rates).

    InputError (exit 1) when it is missing, unreadable or lacks a required column;
    the caller checks its rows.
    """
    try:
        frame = pl.read_csv(path, schema_overrides=schema, **options)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: {what} file not found") from exc
    except Exception as exc:
        raise InputError(f"{path}: unreadable {what}: {describe_error(exc)}") from exc
    missing = [col for col in required if col not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing required column {', '.join(repr(m) for m in missing)}")
    return frame


def side_row_error(path: Path, row: int, column: str, value, rule: str) -> InputError:
    """The one-line error for a bad row of a side file read row by row (context files, Fingertips downloads)."""
    return InputError(f"{path}: row {row}: column {column!r}: value {'' if value is None else value!r}: {rule}")
