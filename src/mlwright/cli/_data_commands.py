"""Commands about data: ``profile``, ``check`` and ``run`` (the main job).

Only typer and rich are imported here at module level; the library is imported inside each
command so that ``mlwright --help`` stays fast.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from mlwright.cli._app import app
from mlwright.cli._shared import NA_VALUES_HELP, na_values_option
from mlwright.errors import EXIT_CHECK_FAILED, ConfigError

_DATA_HELP = (
    "The data: a CSV/TSV, Parquet, JSON Lines, Excel or ARFF file, a DuckDB file, or an "
    "SQLAlchemy URL (sqlite:///x.db, postgresql://...) together with --query."
)
_TYPE_SHORT = {
    "numeric": "num",
    "categorical": "cat",
    "boolean": "bool",
    "datetime": "date",
    "identifier": "id",
    "constant": "const",
    "text": "text",
}
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _default_output(data: str) -> Path:
    """``mlwright-output/<name of the data>``: one folder per dataset, in the working dir."""
    if "://" in data:
        stem = "query"
    else:
        path = Path(data)
        stem = path.parent.name + "-" + path.stem if path.stem in ("train", "data") else path.stem
    return Path("mlwright-output") / (re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "data")


def _open(data: str, query: str | None, na_values: object = None):
    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data import open_table

    return open_table(data, query=query, na_values=na_values)


def _marker_summary(profile: Any) -> list[str]:
    """One line per column whose markers were read as missing or kept as values."""
    lines = []
    for column in profile.columns:
        parts = []
        gone = {marker: count for marker, count in column.missing_markers.items() if count}
        if any(gone):
            shown = ", ".join(
                f"{count:,} empty" if marker == "" else f"{count:,} {marker!r}"
                for marker, count in gone.items()
            )
            parts.append(f"read as missing: {shown}")
        if column.kept_markers:
            shown = ", ".join(
                f"{count:,} {marker!r}" for marker, count in column.kept_markers.items()
            )
            parts.append(f"kept as values: {shown}")
        if parts:
            lines.append(f"{column.name}: " + "; ".join(parts))
    return lines


def _short(value: Any, width: int = 24) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e12:
        text = f"{int(value):,}"
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _percent(share: float) -> str:
    if not share:
        return "0%"
    return "<0.1%" if share < 0.001 else f"{share:.1%}"


def render_profile(profile: Any, console: Console) -> None:
    """Print a profile as a Rich table (one row per column)."""
    title = f"{profile.source}: {profile.n_rows:,} rows x {profile.n_columns} columns"
    if profile.target:
        title += f", target {profile.target!r} ({profile.task}: {profile.task_reason})"
    table = RichTable(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
    )
    table.add_column("column", overflow="ellipsis", max_width=24, no_wrap=True)
    table.add_column("type", no_wrap=True, min_width=5)
    table.add_column("missing", justify="right", no_wrap=True, min_width=7)
    table.add_column("distinct", justify="right", no_wrap=True, min_width=8)
    table.add_column("range / top value", overflow="ellipsis", max_width=24, no_wrap=True)
    if profile.target:
        table.add_column("assoc.", justify="right", no_wrap=True, min_width=6)
    for column in profile.columns:
        if column.minimum is not None and column.semantic_type in ("numeric", "datetime"):
            spread = f"{_short(column.minimum, 12)} .. {_short(column.maximum, 12)}"
        elif column.top_values:
            first = column.top_values[0]
            spread = f"{_short(first['value'], 18)} ({_percent(first['share'])})"
        else:
            spread = ""
        name = ("* " if column.is_target else "") + column.name
        row = [
            name,
            _TYPE_SHORT.get(column.semantic_type, column.semantic_type),
            _percent(column.missing_share),
            _short(column.distinct) + ("" if column.distinct_exact else "~"),
            spread,
        ]
        if profile.target:
            value = (column.association or {}).get("value")
            row.append("" if value is None else f"{value:.2f}")
        table.add_row(*row)
    console.print(table)
    markers = _marker_summary(profile)
    if markers:
        console.print("Missing-value markers per column:", style="dim")
        for line in markers:
            console.print("  " + line, style="dim", markup=False)
    if profile.target and profile.associations:
        rows = (
            f"all {profile.n_rows:,} rows"
            if profile.sample_rows >= profile.n_rows
            else f"a sample of {profile.sample_rows:,} rows"
        )
        console.print(
            f"Associations with {profile.target!r} on {rows}: "
            "|Spearman| (numeric-numeric), Cramér's V (categorical-categorical), correlation "
            "ratio (mixed). * marks the target.",
            style="dim",
        )


def render_findings(findings: list[Any], console: Console, title: str) -> None:
    """Print findings as a Rich table, errors first."""
    if not findings:
        console.print(f"{title}: no findings.", style="green")
        return
    table = RichTable(title=title, title_justify="left", show_lines=True)
    table.add_column("severity")
    table.add_column("kind")
    table.add_column("columns", max_width=26, overflow="fold")
    table.add_column("finding and fix", overflow="fold")
    for finding in findings:
        columns = ", ".join(finding.columns[:4])
        if len(finding.columns) > 4:
            columns += f" (+{len(finding.columns) - 4} more)"
        style = _SEVERITY_STYLE.get(finding.severity, "")
        table.add_row(
            f"[{style}]{finding.severity}[/]",
            finding.kind,
            columns,
            f"{_escape(finding.message)}\n[dim]Fix: {_escape(finding.fix)}[/dim]",
        )
    console.print(table)


def _escape(text: str) -> str:
    return escape(text)


def _summary(findings: list[Any]) -> dict[str, int]:
    counts = {"error": 0, "warning": 0, "info": 0}
    for finding in findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    return counts


@app.command()
def profile(
    data: str = typer.Argument(..., help=_DATA_HELP),
    target: str | None = typer.Option(None, "--target", "-t", help="The column to predict."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Folder for profile.json and profile.html [default: mlwright-output/<data name>].",
    ),
    query: str | None = typer.Option(None, "--query", "-q", help="SQL query for SQL sources."),
    na_values: str | None = typer.Option(None, "--na-values", help=NA_VALUES_HELP),
) -> None:
    """Profile DATA: per-column statistics, histograms and association with the target.

    Prints a table, writes OUTPUT/profile.json and a self-contained OUTPUT/profile.html.
    """
    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data._profile import profile_table

    # deferred: mlwright.report loads matplotlib (~0.25 s), not paid by `mlwright --help`
    from mlwright.report import save_profile_page

    rule = na_values_option(na_values)
    console = _console()
    output = output or _default_output(data)
    with _open(data, query, rule) as table:
        result = profile_table(table, target=target)
    render_profile(result, console)
    json_path = result.save_json(output / "profile.json")
    html_path = save_profile_page(result, output / "profile.html")
    console.print(f"Profile written to {json_path} and {html_path}")


@app.command()
def check(
    data: str = typer.Argument(..., help=_DATA_HELP),
    target: str = typer.Option(..., "--target", "-t", help="The column to predict."),
    test: str | None = typer.Option(
        None, "--test", help="Test data to compare with DATA (adds distribution-shift checks)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    query: str | None = typer.Option(None, "--query", "-q", help="SQL query for SQL sources."),
    na_values: str | None = typer.Option(
        None, "--na-values", help=NA_VALUES_HELP + " Applies to --test too."
    ),
) -> None:
    """Check DATA for quality problems before training (leakage, duplicates, imbalance, ...).

    Exit code 0 when there is no error-level finding, 3 when there is one (use it to gate a
    pipeline).
    """
    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data._checks import check_table, sort_findings

    rule = na_values_option(na_values)
    with _open(data, query, rule) as table:
        if test is None:
            findings = check_table(table, target=target)
        else:
            with _open(test, None, rule) as test_table:
                findings = check_table(table, target=target, test=test_table)
        source = str(table.source)
    findings = sort_findings(findings)
    counts = _summary(findings)
    if as_json:
        document = {
            "data": source,
            "target": target,
            "test": test,
            "summary": counts,
            "findings": [finding.to_dict() for finding in findings],
        }
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        console = _console()
        render_findings(findings, console, f"Quality checks of {source} (target {target!r})")
        console.print(
            f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info."
        )
    if counts["error"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


# --- run: the main job as a sequence of stages ------------------------------------------------


@dataclass
class RunState:
    """What the stages of ``mlwright run`` share: inputs, open table, results, files written."""

    data: str
    target: str
    output: Path
    query: str | None
    console: Console
    table: Any = None
    schema: Any = None
    stats: Any = None
    profile: Any = None
    findings: list[Any] = field(default_factory=list)
    artifacts: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Bounds of the training stage (None: train's defaults, a 60 s budget).
    time_limit: float | None = None
    max_trials: int | None = None
    models: list[str] | None = None
    # --na-values (None: the automatic rule), for reading and for training.
    na_values: Any = None


def _stage_read(state: RunState) -> None:
    state.table = _open(state.data, state.query, state.na_values)
    state.console.print(
        f"Read {state.table.source}: {state.table.n_rows:,} rows x "
        f"{len(state.table.columns)} columns."
    )


def _stage_profile(state: RunState) -> None:
    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data import Schema

    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data._profile import profile_table

    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data._stats import compute_stats

    table = state.table
    state.schema = Schema.infer(table, target=state.target)
    # Computed once, shared by the profile and the checks.
    state.stats = compute_stats(table.connection, table.ref, table.n_rows, list(table.columns))
    state.profile = profile_table(
        table, target=state.target, stats=state.stats, schema=state.schema
    )
    render_profile(state.profile, state.console)


def _stage_check(state: RunState) -> None:
    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data._checks import check_table, sort_findings

    state.findings = sort_findings(
        check_table(state.table, target=state.target, stats=state.stats, schema=state.schema)
    )
    render_findings(state.findings, state.console, "Quality checks")
    counts = _summary(state.findings)
    if counts["error"]:
        state.notes.append(
            f"The checks found {counts['error']} error-level problem(s) (listed above); "
            "`mlwright run` reports them and carries on. Fix them before trusting a model, or "
            "gate a pipeline on `mlwright check` (exit code 3)."
        )


def _stage_write(state: RunState) -> None:
    # deferred: mlwright.report loads matplotlib (~0.25 s), not paid by `mlwright --help`
    from mlwright.report import save_profile_page

    state.artifacts["profile.json"] = state.profile.save_json(state.output / "profile.json")
    checks = state.output / "checks.json"
    checks.write_text(
        json.dumps([finding.to_dict() for finding in state.findings], indent=2) + "\n"
    )
    state.artifacts["checks.json"] = checks
    state.artifacts["profile.html"] = save_profile_page(
        state.profile, state.output / "profile.html", findings=state.findings
    )


def _stage_train_and_register(state: RunState) -> None:
    # The stage lives with the registry commands, which own MLflow tracking and registration.
    # deferred: at the top it would register the registry commands first, reordering --help
    from mlwright.cli._registry_commands import run_stage_train_and_register

    run_stage_train_and_register(state)


#: The stages of the main job, in order.
RUN_STAGES: list[tuple[str, Callable[[RunState], None]]] = [
    ("read", _stage_read),
    ("profile", _stage_profile),
    ("check", _stage_check),
    ("write", _stage_write),
    ("train and register", _stage_train_and_register),
]


@app.command()
def run(
    data: str = typer.Argument(..., help=_DATA_HELP),
    target: str = typer.Option(..., "--target", "-t", help="The column to predict."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Folder for everything the run produces [default: mlwright-output/<data name>].",
    ),
    query: str | None = typer.Option(None, "--query", "-q", help="SQL query for SQL sources."),
    time_limit: float = typer.Option(
        60.0, "--time-limit", help="Seconds for the training stage (the whole train command)."
    ),
    max_trials: int | None = typer.Option(
        None, "--max-trials", help="At most this many model configurations (deterministic)."
    ),
    models: str | None = typer.Option(
        None, "--models", help="Comma-separated model families, e.g. lightgbm,catboost."
    ),
    na_values: str | None = typer.Option(None, "--na-values", help=NA_VALUES_HELP),
) -> None:
    """Run the main job on DATA: profile, check, train, register and document a model.

    Check findings are reported, not fatal: the run finishes (exit 0) and tells you where the
    profile page, the model report and the MLflow run are. Use `mlwright check` to gate on
    errors.
    """
    if time_limit <= 0:
        raise ConfigError(
            f"--time-limit must be a positive number of seconds, got {time_limit:g}. "
            "Try --time-limit 60."
        )
    rule = na_values_option(na_values)
    console = _console()
    state = RunState(
        data=data,
        target=target,
        output=output or _default_output(data),
        query=query,
        console=console,
        time_limit=time_limit,
        max_trials=max_trials,
        models=[name.strip() for name in models.split(",") if name.strip()] if models else None,
        na_values=rule,
    )
    try:
        for index, (name, stage) in enumerate(RUN_STAGES, start=1):
            console.rule(f"[bold]Stage {index}/{len(RUN_STAGES)}: {name}")
            stage(state)
    finally:
        if state.table is not None:
            state.table.close()
    console.rule("[bold]Done")
    for note in state.notes:
        console.print(note, style="yellow")
    for name, path in state.artifacts.items():
        console.print(f"{name}: {path}")
    if "profile.html" in state.artifacts:
        console.print(
            f"Open the profile page: {state.artifacts['profile.html'].resolve().as_uri()}"
        )
    if "report.html" in state.artifacts:
        console.print(
            f"Open the model report: {Path(state.artifacts['report.html']).resolve().as_uri()}"
        )
