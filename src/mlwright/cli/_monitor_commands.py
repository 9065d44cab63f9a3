"""``mlwright monitor``, ``feedback`` and ``retrain``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

import mlwright
from mlwright.cli._app import app
from mlwright.errors import ConfigError, DataError

_MODEL_HELP = (
    "The served model: an artifact directory, runs:/<id>/model, models:/NAME/VERSION or "
    "models:/NAME@alias."
)


def _console():
    return Console(highlight=False, soft_wrap=True)


def _default_log() -> str:
    # deferred: mlwright.config loads pydantic-settings (~0.1 s), not paid by `mlwright --help`
    from mlwright.config import get_settings

    return f"sqlite:///{(get_settings().home / 'predictions.db').resolve()}"


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _print_drift(console: Any, report: Any) -> None:
    style = "bold red" if report.dataset_drift else "bold green"
    console.print(f"[{style}]{report.summary()}[/]")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("feature", "kind", "method", "statistic", "value", "threshold", "verdict"):
        table.add_column(column)
    rows = list(report.features)
    if report.prediction is not None:
        rows.append(report.prediction)
    for item in rows:
        verdict = "[red]drifted[/] " + "; ".join(item.reasons) if item.drifted else "ok"
        table.add_row(
            item.name,
            item.kind,
            item.method,
            item.statistic,
            _fmt(item.value),
            _fmt(item.threshold),
            verdict,
        )
    console.print(table)


@app.command()
def monitor(
    model: str | None = typer.Argument(None, help=_MODEL_HELP),
    log: str | None = typer.Option(
        None, "--log", help="The prediction log (default: <home>/predictions.db)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="The served model name in the log (when it holds several)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only predictions of the last 7d, 12h, ..."
    ),
    window: str = typer.Option(
        "1d", "--window", help="Window of live metrics and traffic: 1d, 6h, or 500rows."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the self-contained HTML drift report here."
    ),
    alerts: Path | None = typer.Option(
        None, "--alerts", help="Alert rules and channels (YAML or JSON)."
    ),
    reference: Path | None = typer.Option(
        None, "--reference", help="Compare two files instead: the reference data."
    ),
    current: Path | None = typer.Option(None, "--current", help="... and the current data."),
    target: str | None = typer.Option(
        None, "--target", help="With --reference/--current: a column to leave out (the label)."
    ),
    retrain_on_drift: bool = typer.Option(
        False, "--retrain-on-drift", help="Retrain from the log when the dataset drifted."
    ),
    promote: str = typer.Option(
        "if-better", "--promote", help="With --retrain-on-drift: never, if-better or always."
    ),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Exit with code 3 when the dataset drifted."
    ),
) -> None:
    """Drift, live performance and alerts of a served model, from its prediction log.

    Example: mlwright monitor models/adult --since 7d --output drift.html
    """
    console = _console()
    if reference is not None or current is not None:
        if reference is None or current is None or model is not None:
            raise ConfigError(
                "Compare two files with both --reference A.csv and --current B.csv (and no "
                "MODEL), or monitor a model with MODEL [--log STORE]."
            )
        report = _files_drift(reference, current, target, alerts)
        if output is not None:
            # deferred: mlwright.report loads matplotlib (~0.25 s), not paid by `mlwright --help`
            from mlwright.report import save_drift_page

            title = f"Drift of {current.name} against {reference.name}"
            save_drift_page(report, output, title=title)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2))
        else:
            _print_drift(console, report)
            if output is not None:
                console.print(f"Report: {output}")
        if fail_on_drift and report.dataset_drift:
            raise typer.Exit(3)
        return
    if model is None:
        raise ConfigError(
            "Name the model to monitor (mlwright monitor MODEL), or compare two files with "
            "--reference A.csv --current B.csv."
        )
    # deferred: mlwright.monitor loads scikit-learn (~2 s), not paid by `mlwright --help`
    from mlwright.monitor import load_alert_config, monitor_model

    # deferred: mlwright.monitor loads scikit-learn (~2 s), not paid by `mlwright --help`
    from mlwright.monitor._performance import parse_period, parse_window

    parse_window(window)
    start = None if since is None else time.time() - parse_period(since)
    loaded = mlwright.load(model)
    config = load_alert_config(alerts)
    log_uri = log or _default_log()
    result = monitor_model(loaded, log_uri, name=name, since=start, window=window, config=config)
    if output is not None and result.drift is not None:
        # deferred: mlwright.report loads matplotlib (~0.25 s), not paid by `mlwright --help`
        from mlwright.report import save_drift_page

        save_drift_page(
            result.drift,
            output,
            title=f"Drift of {name or model}",
            performance=result.performance,
            traffic=result.traffic,
        )
    retrained = None
    if retrain_on_drift and result.drift is not None and result.drift.dataset_drift:
        # deferred: mlwright.monitor loads scikit-learn (~2 s), not paid by `mlwright --help`
        from mlwright.monitor import retrain

        retrained = retrain(model, from_log=log_uri, log_name=name, promote=promote)
    if as_json:
        document = result.to_dict()
        document["retrain"] = None if retrained is None else retrained.to_dict()
        typer.echo(json.dumps(document, indent=2, default=str))
    else:
        console.print(f"{result.n_rows} logged predictions in {log_uri}")
        if result.drift is None:
            console.print("No predictions logged in that period: nothing to measure.")
        else:
            _print_drift(console, result.drift)
        if result.performance is not None:
            console.print(result.performance.summary())
        for alert in result.alerts:
            console.print(f"[bold red]ALERT[/] [{alert['rule']}] {alert['message']}")
        if retrained is not None:
            console.print(f"Retrained: {retrained.decision}. {retrained.reason}")
        if output is not None and result.drift is not None:
            console.print(f"Report: {output}")
    if fail_on_drift and result.drift is not None and result.drift.dataset_drift:
        raise typer.Exit(3)


def _files_drift(reference: Path, current: Path, target: str | None, alerts: Path | None):
    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data import read

    # deferred: mlwright.monitor loads scikit-learn (~2 s), not paid by `mlwright --help`
    from mlwright.monitor import drift, load_alert_config

    reference_frame = read(reference)
    current_frame = read(current)
    for frame, path in ((reference_frame, reference), (current_frame, current)):
        if target is not None and target not in frame.columns:
            raise DataError(f"--target {target!r} is not a column of {path}.")
    if target is not None:
        reference_frame = reference_frame.drop(columns=[target])
        current_frame = current_frame.drop(columns=[target])
    common = [c for c in reference_frame.columns if c in set(current_frame.columns)]
    if not common:
        raise DataError(
            f"{reference} and {current} have no column in common; compare files with the same "
            "columns."
        )
    config = load_alert_config(alerts)
    return drift(reference_frame[common], current_frame[common], settings=config.drift)


def _resolve_log(log_or_model: str, log: str | None) -> tuple[str, str | None]:
    """``(log uri, target)`` from a log path/URI or a model reference."""
    text = str(log_or_model)
    if (
        "://" in text
        and not text.startswith(("runs:/", "models:/"))
        or text.endswith((".db", ".sqlite", ".jsonl", ".ndjson"))
    ):
        return text, None

    loaded = mlwright.load(text)
    return log or _default_log(), loaded.target


@app.command()
def feedback(
    log_or_model: str = typer.Argument(
        ..., help="The prediction log (predictions.db, sqlite:///..., x.jsonl) or the model."
    ),
    labels: Path = typer.Argument(..., help="The outcomes: request_id (or --key) and actual."),
    key: str | None = typer.Option(
        None, "--key", help="Join on this column (sent as a feature) instead of request_id."
    ),
    log: str | None = typer.Option(None, "--log", help="The log, when a model is given."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Attach true outcomes to logged predictions (for live metrics and retraining).

    Example: mlwright feedback .mlwright/predictions.db labels.csv
    """
    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data import read

    # deferred: mlwright.monitor loads scikit-learn (~2 s), not paid by `mlwright --help`
    from mlwright.monitor import join_feedback

    uri, target = _resolve_log(log_or_model, log)
    result = join_feedback(uri, read(labels), target=target, key=key)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    console = _console()
    console.print(f"Stored {result.stored} outcomes in {uri}.")
    if result.unmatched:
        console.print(
            f"[yellow]{result.unmatched} labels matched no logged prediction[/] (e.g. "
            f"{', '.join(map(str, result.unmatched_examples))})."
        )


@app.command()
def retrain(
    model: str = typer.Argument(..., help=_MODEL_HELP),
    data: Path | None = typer.Option(None, "--data", help="New labelled data."),
    from_log: bool = typer.Option(
        False, "--from-log", help="Train on logged predictions joined with their feedback."
    ),
    log: str | None = typer.Option(None, "--log", help="The prediction log (with --from-log)."),
    log_name: str | None = typer.Option(None, "--log-name", help="Served name in the log."),
    with_original: bool = typer.Option(
        False, "--with-original", help="Also train on the champion's original data."
    ),
    promote: str = typer.Option("if-better", "--promote", help="never, if-better or always."),
    name: str | None = typer.Option(
        None, "--name", help="Registered model name (default: from models:/NAME@alias)."
    ),
    holdout: float = typer.Option(0.3, "--holdout", help="Share of new data kept to compare on."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the comparison."),
    max_trials: int | None = typer.Option(None, "--max-trials", help="Override trials."),
    models: str | None = typer.Option(None, "--models", help="Override model families."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Override the budget."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Challenger directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Train a challenger with the champion's settings; promote it only if it is better.

    Example: mlwright retrain models:/adult@champion --from-log --promote if-better
    """
    # deferred: mlwright.monitor loads scikit-learn (~2 s), not paid by `mlwright --help`
    from mlwright.monitor import retrain as run_retrain

    overrides: dict[str, Any] = {}
    if max_trials is not None:
        overrides["max_trials"] = max_trials
        overrides.setdefault("time_limit", time_limit)
    if models is not None:
        overrides["models"] = models
    if time_limit is not None:
        overrides["time_limit"] = time_limit
    result = run_retrain(
        model,
        data=data,
        from_log=(log or _default_log()) if from_log else None,
        log_name=log_name,
        include_original=with_original,
        promote=promote,
        name=name,
        holdout=holdout,
        alpha=alpha,
        output=output,
        overrides=overrides,
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    console = _console()
    style = "bold green" if result.promoted else "bold"
    console.print(f"[{style}]{result.decision}[/]: {result.reason}")
    console.print(
        f"Challenger at {result.challenger_path} ({result.n_train} training rows, "
        f"{result.n_holdout} held out)."
    )
    if result.registered:
        console.print(
            f"Registered {result.registered['name']} version {result.registered['version']} "
            "(alias challenger)."
        )
