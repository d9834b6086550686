"""The `cdp-metrics` command line: parses options, runs the pipeline, renders.

No data work happens here, and polars is imported only once a command runs,
so `--help` and `--version` stay fast.
"""

import functools
import inspect
import os
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import CONTRACT_VERSION, __version__
from .errors import EXIT_DATA, EXIT_USAGE, CdpError, UsageError

app = typer.Typer(
    name="cdp-metrics",
    help="National Combating Drugs Outcomes Framework metrics from record-level NDTMS-style extracts.\n\n"
    "Every metric command prints LA, region and England rows with confidence intervals, "
    "significance against England and small-number suppression. Run with no options to use the bundled "
    "synthetic sample.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

METRIC_FORMATS = ("table", "json", "ndjson", "csv", "xlsx")
# --output's extension -> the format it implies (txt: the table as plain text)
EXTENSIONS = {"json": "json", "ndjson": "ndjson", "jsonl": "ndjson", "csv": "csv", "xlsx": "xlsx", "txt": "table"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cdp-metrics {__version__} (data contract v{CONTRACT_VERSION})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    pass


def _parse_date(value: Optional[str], option: str) -> Optional[date]:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise UsageError(f"{option} {value}: not a date (YYYY-MM-DD)") from None


# -- the shared options ----------------------------------------------------------------------------

INPUT, PERIOD, OUTPUT, BEHAVIOUR = "Input", "Period and areas", "Output", "Behaviour"


def _opt(name: str, annotation, default, *flags: str, panel: str, **kwargs) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, typer.Option(*flags, rich_help_panel=panel, **kwargs)],
    )


DATA_OPTIONS = [
    _opt("data", Optional[Path], None, "--data", panel=INPUT, metavar="DIR",
         help="Folder holding episodes.*, prison_releases.*, prevalence.* and reviews.* (CSV or Parquet). "
              "Default: the bundled sample."),
    _opt("episodes", Optional[Path], None, "--episodes", panel=INPUT, metavar="FILE",
         help="Episodes table, overriding --data."),
    _opt("releases", Optional[Path], None, "--releases", panel=INPUT, metavar="FILE",
         help="Prison releases table, overriding --data."),
    _opt("prevalence", Optional[Path], None, "--prevalence", panel=INPUT, metavar="FILE",
         help="Prevalence estimates table, overriding --data."),
    _opt("reviews", Optional[Path], None, "--reviews", panel=INPUT, metavar="FILE",
         help="TOP interviews table (reviews), overriding --data."),
    _opt("mapping", Optional[Path], None, "--mapping", panel=INPUT, metavar="FILE",
         help="TOML mapping of a real extract's columns and codes onto the contract."),
]
METRIC_OPTIONS = [
    _opt("benchmarks", Optional[Path], None, "--benchmarks", panel=INPUT, metavar="FILE",
         help="Published region/England figures (CSV) to show and compare against, for an extract of some LAs "
              "only; e.g. data/benchmarks/ohid_2023-09.csv, or a Fingertips download (data.csv)."),
    _opt("benchmarks_map", Optional[Path], None, "--benchmarks-map", panel=INPUT, metavar="FILE",
         help="TOML saying which Fingertips indicator is which metric and category ([fingertips.ID] with metric "
              "and category). Default: the shipped map."),
    _opt("period_end", Optional[str], None, "--period-end", panel=PERIOD, metavar="YYYY-MM-DD",
         help="Last day of the reporting period. Default: the last month end on or before the extract's latest date."),
    _opt("months", int, 12, "--months", panel=PERIOD, min=1, max=120,
         help="Length of the period in calendar months (3 for a rolling quarter)."),
    _opt("prevalence_year", Optional[str], None, "--prevalence-year", panel=PERIOD, metavar="YYYY-YY",
         help="Prevalence estimate year. Default: the latest for each LA and category."),
    _opt("la", Optional[list[str]], None, "--la", panel=PERIOD, metavar="CODE",
         help="Only this LA (repeatable), with its region and England."),
    _opt("format", Optional[str], None, "--format", "-f", panel=OUTPUT, metavar="|".join(METRIC_FORMATS),
         help="Output format. Default: table on a terminal, else JSON (or from --output's extension). "
              "xlsx: an Excel workbook, to -o FILE.xlsx or a redirected stdout."),
    _opt("output", Optional[Path], None, "--output", "-o", panel=OUTPUT, metavar="FILE",
         help="Write the data to FILE atomically instead of stdout; .json, .ndjson, .csv, .xlsx or .txt "
              "(the table) say the format."),
    _opt("no_suppress", bool, False, "--no-suppress", panel=OUTPUT,
         help="Show counts from 1 to 4 and their figures (internal use only)."),
    _opt("confidence", str, "95", "--confidence", panel=OUTPUT, metavar="95|99.8",
         help="Confidence level of every interval and comparison."),
    _opt("strict", bool, False, "--strict", panel=BEHAVIOUR,
         help="Exit 1 on the first invalid input row instead of leaving bad rows out."),
]
DEATHS_OPTIONS = [
    _opt("reference_rates", Optional[Path], None, "--reference-rates", panel=INPUT, metavar="FILE",
         help="CSV of England death rates (sex, age_band, rate) for an extract of one LA."),
]
COMPLETIONS_OPTIONS = [
    _opt("representation_months", int, 6, "--representation-months", panel=PERIOD, min=0, max=24,
         help="Months without re-presentation after a successful discharge (PHOF: 6; 0: plain rate)."),
]
PROGRESS_OPTIONS = [
    _opt("reduction_days", int, 7, "--reduction-days", panel=PERIOD, min=1, max=28,
         help="Days of use (of the last 28) by which a substance must fall between the start TOP and the latest "
              "review to count as significantly reduced (this tool's default: 7)."),
]
DIAGNOSTIC_OPTIONS = [
    _opt("quiet", bool, False, "--quiet", "-q", panel=BEHAVIOUR, help="No warnings on stderr (errors still)."),
    _opt("verbose", bool, False, "--verbose", panel=BEHAVIOUR, help="Show a traceback on an unexpected error."),
]


@dataclass
class Common:
    """The values of the shared options, as one object."""

    data: Optional[Path] = None
    episodes: Optional[Path] = None
    releases: Optional[Path] = None
    prevalence: Optional[Path] = None
    reviews: Optional[Path] = None
    mapping: Optional[Path] = None
    period_end: Optional[str] = None
    months: int = 12
    prevalence_year: Optional[str] = None
    la: Optional[list[str]] = None
    benchmarks: Optional[Path] = None
    benchmarks_map: Optional[Path] = None
    format: Optional[str] = None
    output: Optional[Path] = None
    no_suppress: bool = False
    confidence: str = "95"
    strict: bool = False
    reference_rates: Optional[Path] = None
    representation_months: int = 6
    reduction_days: int = 7
    quiet: bool = False
    verbose: bool = False

    def run_options(self):
        from .pipeline import RunOptions

        if self.confidence not in ("95", "99.8"):
            raise UsageError(f"--confidence {self.confidence}: must be 95 or 99.8")
        return RunOptions(
            data=self.data, episodes=self.episodes, releases=self.releases, prevalence=self.prevalence,
            reviews=self.reviews,
            period_end=_parse_date(self.period_end, "--period-end"), months=self.months,
            prevalence_year=self.prevalence_year, las=tuple(dict.fromkeys(self.la or ())),
            confidence=float(self.confidence), suppress=not self.no_suppress, strict=self.strict,
            mapping=self.mapping, benchmarks=self.benchmarks, benchmarks_map=self.benchmarks_map,
            reference_rates=self.reference_rates,
            representation_months=self.representation_months, reduction_days=self.reduction_days,
        )

    def output_format(self, formats: tuple[str, ...] = METRIC_FORMATS) -> str:
        """The format to write: --format, else --output's extension (none: JSON), else table on a terminal.

        An --output extension the command cannot write, or one naming another format than --format's,
        is a usage error; so is a workbook to a terminal.
        """
        if self.format is not None and self.format not in formats:
            raise UsageError(f"--format {self.format}: must be one of {', '.join(formats)}")
        fmt = self.format
        if self.output is not None:
            suffix = self.output.suffix.lower().lstrip(".")
            implied = EXTENSIONS.get(suffix)
            if fmt is None and suffix and implied not in formats:
                known = ", ".join(f".{e}" for e, f in EXTENSIONS.items() if f in formats)
                raise UsageError(f"--output {self.output}: cannot write a .{suffix} file (use {known}, "
                                 "or name the format with --format)")
            if fmt is not None and implied not in (None, fmt) and (implied != "table" or fmt == "xlsx"):
                raise UsageError(f"--output {self.output}: a .{suffix} file, but --format {fmt}")
            fmt = fmt or implied or "json"
        if fmt is None:
            fmt = "table" if sys.stdout.isatty() and "table" in formats else "json"
        if fmt == "xlsx" and self.output is None and sys.stdout.isatty():
            raise UsageError("--format xlsx: a workbook is binary; give -o FILE.xlsx (or redirect stdout)")
        return fmt


@functools.cache
def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _stdout():
    """The console for tables: the terminal's width, or 120 columns when stdout is a file or a pipe."""
    from rich.console import Console

    wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120
    return Console(highlight=False, width=wide)


def _say(label: str, style: str, message: str) -> None:
    """One diagnostic line on stderr. The message is plain text: values from the data may hold '[...]'.

    Styled through Rich on a terminal; written as is otherwise (a cron log or a
    pipe gets the same text, without importing Rich).
    """
    if not (sys.stderr.isatty() or os.environ.get("FORCE_COLOR")):
        sys.stderr.write(f"{label} {message}\n")
        sys.stderr.flush()
        return
    from rich.text import Text

    _stderr().print(Text.assemble((label, style), " ", message))


def shared_options(*groups: list[inspect.Parameter]):
    """Add the shared options to a command: they arrive as one `common: Common` argument.

    Errors become one line on stderr and the documented exit code; --verbose
    adds the traceback.
    """
    params = [p for group in groups for p in group]

    def decorate(fn):
        own = [p for p in inspect.signature(fn).parameters.values() if p.name != "common"]

        @functools.wraps(fn)
        def wrapper(**kwargs):
            common = Common(**{p.name: kwargs.pop(p.name) for p in params})
            try:
                return fn(common=common, **kwargs)
            except CdpError as exc:
                if common.verbose:
                    import traceback

                    traceback.print_exc()
                _say("error:", "bold red", str(exc))
                raise typer.Exit(exc.exit_code) from None
            except (typer.Exit, typer.Abort, BrokenPipeError, KeyboardInterrupt):
                raise
            except Exception as exc:  # never a bare traceback for a user
                if common.verbose:
                    import traceback

                    traceback.print_exc()
                from .io import describe_error

                _say("error:", "bold red",
                     f"unexpected {type(exc).__name__}: {describe_error(exc)} (run with --verbose for details)")
                raise typer.Exit(EXIT_DATA) from None

        del wrapper.__wrapped__  # typer must read the new signature, not fn's
        wrapper.__signature__ = inspect.Signature([*own, *params])
        wrapper.__annotations__ = {**{p.name: p.annotation for p in own}, **{p.name: p.annotation for p in params}}
        return wrapper

    return decorate


def _emit(common: Common, results, *, document: dict | None = None, changes=None, after_table=None,
          command: str = "", inputs: list[dict] = (), report=None) -> None:
    """Render results in the chosen format to stdout or atomically to --output; warnings already on stderr.

    `document` replaces the plain JSON of the results; `changes()` gives the since-baseline column of
    tables (only called for tables); `after_table(console)` prints more under the tables on a terminal.
    A workbook names the `command`, lists the `inputs` read (`Extract.inputs`) and holds a `report`'s other tables.
    """
    from . import render

    fmt = common.output_format()
    if fmt == "xlsx":
        from .xlsx import About, workbook

        about = About(command, list(inputs), not common.no_suppress,
                      tuple(dict.fromkeys(common.la or ())))
        _write(common, workbook(results, about, report))
        return
    if fmt == "table":
        changes = changes() if changes is not None else None
        if common.output is not None:
            render.write_atomic(common.output, render.table_text(results, changes=changes))
            return
        console = _stdout()
        render.to_table(results, console, changes=changes)
        if after_table is not None:
            after_table(console)
        return
    if fmt == "json" and document is not None:
        _write(common, render.dumps(document))
        return
    _write(common, render.render(results, fmt))


def _warner(common: Common):
    """Where warnings go: one line each on stderr, or nowhere under --quiet."""
    if common.quiet:
        return None
    return lambda message: _say("warning:", "yellow", message)


def _write(common: Common, text: str | bytes) -> None:
    """Machine-format text (or a workbook's bytes) to --output (atomically) or stdout."""
    from . import render

    if common.output is not None:
        render.write_atomic(common.output, text)
    elif isinstance(text, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _run(command: str, common: Common) -> None:
    from .pipeline import run_with_inputs

    common.output_format()  # a bad --format is a usage error before any work
    results, inputs = run_with_inputs(command, common.run_options(), warn=_warner(common))
    _emit(common, results, command=command, inputs=inputs)


METRIC = (DATA_OPTIONS, METRIC_OPTIONS, DIAGNOSTIC_OPTIONS)


@app.command("in-treatment")
@shared_options(*METRIC)
def in_treatment(common: Common) -> None:
    """Adults in treatment (all and by substance group) and young people, by LA, region and England.

    Examples:

      cdp-metrics in-treatment --la E08000033

      cdp-metrics in-treatment --period-end 2023-09-30 --format csv -o in_treatment.csv
    """
    _run("in-treatment", common)


@app.command("unmet-need")
@shared_options(*METRIC)
def unmet_need(common: Common) -> None:
    """Unmet need: % of people estimated to need treatment (opiates/crack, alcohol) not in it.

    Examples:

      cdp-metrics unmet-need --la E08000033

      cdp-metrics unmet-need --prevalence-year 2019-20 --format json | python -m json.tool
    """
    _run("unmet-need", common)


@app.command("continuity")
@shared_options(*METRIC)
def continuity(common: Common) -> None:
    """Continuity of care: % of prison leavers engaged in community treatment within 3 weeks of release.

    Examples:

      cdp-metrics continuity --la E08000033

      cdp-metrics continuity --months 3 --format ndjson
    """
    _run("continuity", common)


@app.command("deaths")
@shared_options(*METRIC, DEATHS_OPTIONS)
def deaths(common: Common) -> None:
    """Deaths in treatment (count and % of adults in treatment) and the indirectly standardised mortality ratio.

    Examples:

      cdp-metrics deaths --la E08000033

      cdp-metrics deaths --data my_extract --reference-rates england_rates.csv --format json
    """
    _run("deaths", common)


@app.command("completions")
@shared_options(*METRIC, COMPLETIONS_OPTIONS)
def completions(common: Common) -> None:
    """Successful completions by substance group (PHOF form: no re-presentation within 6 months).

    Examples:

      cdp-metrics completions --la E08000033

      cdp-metrics completions --representation-months 0 --format csv
    """
    _run("completions", common)


@app.command("progress")
@shared_options(*METRIC, PROGRESS_OPTIONS)
def progress(common: Common) -> None:
    """Substantial progress: adults who completed (no acute housing need) or are abstinent or much reduced (TOPs).

    Needs the TOP interviews (reviews.* in --data, or --reviews).

    Examples:

      cdp-metrics progress --la E08000033

      cdp-metrics progress --reduction-days 10 --format csv -o progress.csv
    """
    _run("progress", common)


@app.command("housing")
@shared_options(*METRIC)
def housing(common: Common) -> None:
    """Housing of adults in treatment at their latest TOP: an acute housing problem, or none.

    Examples:

      cdp-metrics housing --la E08000033

      cdp-metrics housing --months 3 --format json
    """
    _run("housing", common)


@app.command("employment")
@shared_options(*METRIC)
def employment(common: Common) -> None:
    """Paid work, voluntary work and education of adults in treatment at their latest TOP.

    Examples:

      cdp-metrics employment --la E08000033

      cdp-metrics employment --format ndjson
    """
    _run("employment", common)


@app.command("hepatitis-c")
@shared_options(*METRIC)
def hepatitis_c(common: Common) -> None:
    """The hepatitis C cascade: offered a test, tested, positive, started treatment (index episodes).

    Needs the hcv_* columns on episodes.

    Examples:

      cdp-metrics hepatitis-c --la E08000033

      cdp-metrics hepatitis-c --format csv -o hepatitis_c.csv
    """
    _run("hepatitis-c", common)


def _input_file(flag: str, help: str):
    """The annotation of an optional input file option of one command."""
    return Annotated[Optional[Path], typer.Option(flag, metavar="FILE", rich_help_panel=INPUT, help=help)]


@app.command("report")
@shared_options(*METRIC, DEATHS_OPTIONS, COMPLETIONS_OPTIONS, PROGRESS_OPTIONS)
def report(
    common: Common,
    baseline_end: Annotated[
        str,
        typer.Option("--baseline-end", metavar="YYYY-MM-DD|none", rich_help_panel=PERIOD,
                     help="End of the baseline period to compare with ('none' for no baseline)."),
    ] = "2022-03-31",
    targets: Annotated[
        Optional[Path],
        typer.Option("--targets", metavar="FILE", rich_help_panel=INPUT,
                     help="CSV of local targets (la_code, metric, category, target)."),
    ] = None,
    trend: Annotated[
        Optional[str],
        typer.Option("--trend", metavar="quarterly", rich_help_panel=PERIOD,
                     help="Rolling values at each quarter end, from --trend-from (default: the baseline end)."),
    ] = None,
    trend_from: Annotated[
        Optional[str],
        typer.Option("--trend-from", metavar="YYYY-MM-DD", rich_help_panel=PERIOD, help="First date of the trend."),
    ] = None,
    workforce: _input_file("--workforce", "CSV of each LA's treatment workforce (la_code, workers: full-time "
                                          "equivalents): caseload per worker.") = None,
    funding: _input_file("--funding", "CSV of each LA's funding (la_code, year like 2023-24, amount): funding per "
                                      "person in treatment, for the financial year holding the period end.") = None,
    html: Annotated[
        Optional[str],
        typer.Option("--html", metavar="FILE", rich_help_panel=OUTPUT,
                     help="Also write the report as one self-contained HTML page (DIR/ or a folder: as --html-dir)."),
    ] = None,
    html_dir: Annotated[
        Optional[Path],
        typer.Option("--html-dir", metavar="DIR", rich_help_panel=OUTPUT,
                     help="Also write a pack: DIR/<la_code>.html for each --la (every LA if none), DIR/index.html."),
    ] = None,
) -> None:
    """Every metric for one LA (--la) or all, against region, England, baseline and targets, from one read.

    Examples:

      cdp-metrics report --la E08000033

      cdp-metrics report --la E08000033 --trend quarterly --html calderdale.html

      cdp-metrics report --trend quarterly --html-dir pack/

      cdp-metrics report --data my_la --benchmarks data/benchmarks/ohid_2023-09.csv --targets targets.csv

      cdp-metrics report --la E08000033 --workforce examples/workforce.csv --funding examples/funding.csv
    """
    if not common.no_suppress:
        from . import disclosure

        # the disclosure workers start before Polars is imported here (0.12 s on one core): their own start-up
        # (NumPy and HiGHS, 0.1 s) runs beside it instead of beside the reads (`report.build` starts them if not)
        disclosure.prepare(process=True)
    from . import render
    from .report import build

    common.output_format()  # a bad --format is a usage error before any work
    baseline = None if baseline_end.lower() == "none" else _parse_date(baseline_end, "--baseline-end")
    options = common.run_options()
    page = None if html is None else Path(html)
    if page is not None and (html.endswith(("/", os.sep)) or page.is_dir()):  # `--html pack/`: a pack
        page, html_dir = None, html_dir or page
    pages = page is not None or html_dir is not None
    with _progress(common.quiet) as step:
        result = build(options, baseline_end=baseline, targets_path=targets, trend=trend,
                       trend_from=_parse_date(trend_from, "--trend-from"), workforce_path=workforce,
                       funding_path=funding, warn=_warner(common), step=step,
                       every_la=pages)  # the pages place each LA among all of them
    if page is not None:
        from .html import render_html

        render.write_atomic(page, render_html(result, options.las))
    if html_dir is not None:
        from .html import render_pack

        _write_pack(html_dir, render_pack(result, options.las))
    result = result.select(options.las) if pages else result
    _emit(common, result.results, document=result.document(), changes=result.changes_by_key,
          after_table=lambda console: _print_extras(result, options.las, console), command="report",
          inputs=result.inputs, report=result)


def _write_pack(folder: Path, pages: dict[str, str]) -> None:
    """Each page written atomically; the index last, so that it never links a page not yet written."""
    from . import render

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--html-dir {folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(pages, key=lambda n: n == "index.html"):
        render.write_atomic(folder / name, pages[name])


def _print_extras(result, las, console) -> None:
    """Targets and trend sparklines under the report's tables."""
    from rich.table import Table

    from . import render

    if result.targets is not None:
        table = Table(title="Local targets", title_justify="left")
        for name in ("Area", "Metric", "Category", "Baseline", "Now", "Target", "Progress", "Met"):
            table.add_column(name, justify="left" if name in ("Area", "Metric", "Category") else "right")
        for t in result.targets.iter_rows(named=True):
            progress = "–" if t["progress_percent"] is None else f"{t['progress_percent']:.0f}%"
            met = "–" if t["met"] is None else ("[green]yes[/green]" if t["met"] else "[red]not yet[/red]")
            places = 0 if t["metric"] == "in_treatment" else 1
            table.add_row(t["area_name"] or t["la_code"], render.SHORT_TITLES[t["metric"]], t["category"],
                          render._num(t["baseline_value"], places), render._num(t["value"], places),
                          render._num(t["target"], places), progress, met)
        console.print(table)
    if result.trend is not None:
        import polars as pl

        table = Table(title="Trend: rolling 12 months at each quarter end", title_justify="left")
        for name in ("Metric", "Area", "Trend", "First", "Latest"):
            table.add_column(name, justify="right" if name in ("First", "Latest") else "left")
        trend = result.trend.filter(pl.col("category") == pl.when(pl.col("metric") == "unmet_need")
                                    .then(pl.lit("ocu")).otherwise(pl.lit("all")))
        trend = trend.filter((pl.col("area_type") == "england") | pl.col("area_code").is_in(list(las)))
        for (metric, _code), rows in trend.group_by("metric", "area_code", maintain_order=True):
            rows = rows.sort("period_end")
            values = rows["value"].to_list()
            decimals = 0 if metric == "in_treatment" else 1
            table.add_row(render.SHORT_TITLES[metric], rows["area_name"][0] or _code, render.sparkline(values),
                          render._num(values[0], decimals), render._num(values[-1], decimals))
        console.print(table)
    if result.context is not None and result.context.height:
        console.print(render.context_table(result.context))
    for note in result.notes:
        console.print(f"note: {note}", style="dim", markup=False)


class _NoProgress:
    def __enter__(self):
        return lambda _: None

    def __exit__(self, *exc):
        return False


def _progress(quiet: bool):
    """A Rich progress display on stderr when it is a terminal; nothing otherwise (cron)."""
    if quiet or not sys.stderr.isatty():
        return _NoProgress()
    from contextlib import contextmanager

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    @contextmanager
    def show():
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=_stderr(), transient=True) as bar:
            task = bar.add_task("reading the extract")
            yield lambda step: bar.update(task, description=f"computing: {step}")

    return show()


@app.command("validate")
@shared_options(DATA_OPTIONS, DIAGNOSTIC_OPTIONS)
def validate(
    common: Common,
    format: Annotated[
        Optional[str],
        typer.Option("--format", "-f", metavar="table|json|csv", rich_help_panel=OUTPUT,
                     help="Output format. Default: table on a terminal, else JSON."),
    ] = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", metavar="FILE", rich_help_panel=OUTPUT, help="Write the report to FILE."),
    ] = None,
    rejects: Annotated[
        Optional[Path],
        typer.Option("--rejects", metavar="FILE", rich_help_panel=OUTPUT,
                     help="Write every rejected row, with its reasons, to FILE (CSV)."),
    ] = None,
) -> None:
    """List every input error (file, row, column, value, rule); exit 1 when there is any.

    Examples:

      cdp-metrics validate --data my_extract

      cdp-metrics validate --data my_extract --format json --rejects rejected.csv
    """
    from . import checks

    common.format, common.output = format, output
    fmt = common.output_format(("table", "json", "csv"))
    report = checks.check_extract(common.run_options(), rejects)
    if fmt == "table" and output is None:
        from rich.console import Console

        checks.print_table(report, Console(highlight=False))
    else:
        _write(common, checks.table_text(report) if fmt == "table" else checks.render(report, fmt))
    if report.error_count:
        raise typer.Exit(EXIT_DATA)


@app.command("samples")
def samples(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder to write the extract into.")],
    people: Annotated[int, typer.Option("--people", min=1, help="Number of people.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same files).")] = 1,
    format: Annotated[str, typer.Option("--format", "-f", metavar="csv|parquet", help="File format.")] = "csv",
    la: Annotated[
        Optional[list[str]], typer.Option("--la", metavar="CODE", help="Only these LAs (repeatable). Default: all.")
    ] = None,
    end: Annotated[str, typer.Option("--end", metavar="YYYY-MM-DD", help="Last date of the extract.")] = "2024-03-31",
    years: Annotated[int, typer.Option("--years", min=1, max=10, help="Years of history.")] = 3,
) -> None:
    """Write a synthetic NDTMS-style extract (episodes with hcv_* columns, prison releases, prevalence, TOP reviews).

    Examples:

      cdp-metrics samples --out /tmp/extract --people 5000

      cdp-metrics samples --out /tmp/national --people 1000000 --format parquet
    """
    try:
        if format not in ("csv", "parquet"):
            raise UsageError(f"--format {format}: must be csv or parquet")
        end_date = _parse_date(end, "--end")
        if la:
            from .geography import check_la_codes

            check_la_codes(list(la))
        from .samples import generate

        counts = generate(out, people=people, seed=seed, fmt=format, la_codes=la or None, end=end_date, years=years)
    except CdpError as exc:
        _say("error:", "bold red", str(exc))
        raise typer.Exit(exc.exit_code) from None
    summary = ", ".join(f"{name}: {n:,} rows" for name, n in counts.items())
    _stderr().print(f"wrote {out} ({summary})")


# Polars' allocator (jemalloc, whose options it reads from _RJEM_MALLOC_CONF when polars is first imported)
# keeps freed pages for 10 s by default, so a run's peak memory is that of everything it ever freed, not of
# what it holds: a background thread handing freed pages back after 0.1 s takes a national report's peak from
# about 1,060 to 910 MB at no measured cost in time (README, Performance). A value the user sets wins.
ALLOCATOR = ("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0")


def main() -> None:
    """Console-script entry point: quiet on a closed pipe (e.g. `| head -1`)."""
    os.environ.setdefault(*ALLOCATOR)  # before polars is imported (only once a command runs)
    try:
        app()
    except BrokenPipeError:
        # Python flushes stdout at exit; point it at devnull so that flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)


__all__ = ["app", "main", "EXIT_USAGE"]
