"""``mlwright evaluate``, ``compare``, ``explain`` and ``report``."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mlwright.cli._app import app
from mlwright.errors import EXIT_CHECK_FAILED, ConfigError, DataError

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": False}
_MODEL_HELP = (
    "The model: an artifact directory, runs:/<id>/model, models:/NAME/VERSION or "
    "models:/NAME@alias."
)


def _columns(ctx: typer.Context, given: list[str] | None, option: str) -> list[str]:
    """Column names from a repeatable option, comma lists, and the words that follow it.

    ``--sensitive sex race`` leaves ``race`` as an extra argument; it belongs to the option.
    """
    names = [part.strip() for value in (given or []) for part in value.split(",")]
    extras = list(ctx.args)
    if extras and not given:
        raise ConfigError(
            f"Unexpected argument(s) {extras}. Column names go after an option, e.g. "
            f"{option} sex race."
        )
    names += [part.strip() for value in extras for part in value.split(",")]
    return [name for name in names if name]


def _console():
    return Console(highlight=False, soft_wrap=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:
            return "–"
        return f"{value:.4g}"
    return str(value)


def _interval_text(interval: dict[str, Any]) -> str:
    if interval.get("lower") is None:
        return "–"
    return f"[{_fmt(interval['lower'])}, {_fmt(interval['upper'])}]"


def _load(reference: str):
    # deferred: mlwright.model loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.model import load

    return load(reference)


def _local_directory(reference: str) -> Path | None:
    path = Path(reference)
    return path if path.is_dir() else None


@app.command("evaluate", context_settings=_EXTRA)
def evaluate_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., help=_MODEL_HELP, show_default=False),
    data: str = typer.Argument(
        ..., help="Labelled rows (with the target column) to evaluate on.", show_default=False
    ),
    sensitive: list[str] = typer.Option(
        None, "--sensitive", help="Columns to check fairness over (e.g. --sensitive sex race)."
    ),
    slices: list[str] = typer.Option(
        None, "--slice", help="Columns to report metrics per value of (default: --sensitive)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the evaluation as JSON."),
    threshold_for: str = typer.Option(
        None,
        "--threshold-for",
        help="Choose the binary decision threshold on DATA: f1, precision=0.9, recall=0.8 or "
        "cost=FP:FN; saved with the model.",
    ),
    calibrate_method: str = typer.Option(
        None,
        "--calibrate",
        help="Fit isotonic or sigmoid calibration on DATA (held-out rows); saved with the model.",
    ),
    output: Path = typer.Option(
        None,
        "--output",
        "-o",
        help="Where to save the calibrated/thresholded model (default: replace MODEL when it is "
        "a local directory).",
    ),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    difference_bound: float = typer.Option(
        0.1, "--difference-bound", help="Warn when a fairness difference exceeds this."
    ),
    ratio_bound: float = typer.Option(
        0.8, "--ratio-bound", help="Warn when the demographic parity ratio falls below this."
    ),
) -> None:
    """Metrics of MODEL on DATA with bootstrap 95% confidence intervals, calibration,
    slices and fairness."""
    # deferred: mlwright.evaluate loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.evaluate import calibrate, evaluate, tune_threshold

    # deferred: mlwright.evaluate loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.evaluate._threshold import parse_objective

    sensitive_columns = _columns(ctx, sensitive, "--sensitive")
    loaded = _load(model)
    notes: list[str] = []
    if calibrate_method is not None or threshold_for is not None:
        destination = output or _local_directory(model)
        if destination is None:
            raise ConfigError(
                f"The model '{model}' is not a local directory, so the calibrated or "
                "thresholded model needs somewhere to go: add --output DIR."
            )
        if calibrate_method is not None:
            method = calibrate_method.strip().lower()
            if method not in ("isotonic", "sigmoid"):
                raise ConfigError(
                    f"--calibrate takes isotonic or sigmoid; got {calibrate_method!r}."
                )
            loaded, summary = calibrate(loaded, data, method=method)
            notes.append(
                f"Calibrated ({method}) on {summary['n_rows']} rows: ECE "
                f"{summary['ece_before']:.4f} -> {summary['ece_after']:.4f}."
            )
        if threshold_for is not None:
            loaded, choice = tune_threshold(loaded, data, **parse_objective(threshold_for))
            notes.append(choice.describe())
        saved = loaded.save(destination, overwrite=True)
        notes.append(
            f"Saved the adjusted model to {saved}. The figures below are measured on the same "
            "rows it was adjusted on (optimistic): evaluate on other rows for honest ones."
        )
    evaluation = evaluate(
        loaded,
        data,
        sensitive=sensitive_columns,
        slices=_columns_plain(slices) if slices else None,
        n_resamples=resamples,
        seed=seed,
        difference_bound=difference_bound,
        ratio_bound=ratio_bound,
    )
    run_id = _log_to_registry(model, evaluation, data)
    if run_id is not None:
        notes.append(f"Logged the evaluation to MLflow run {run_id}.")
    if as_json:
        document = evaluation.to_dict()
        document["notes"] = notes
        typer.echo(json.dumps(document, indent=2, default=str))
        return
    _print_evaluation(evaluation, notes)


def _columns_plain(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _registry_run(reference: str) -> tuple[Any, str] | None:
    """The MLflow store and training run behind a ``runs:/`` or ``models:/`` reference."""
    text = str(reference).strip()
    if not text.startswith(("models:/", "runs:/")):
        return None
    # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.registry import get_version, open_store

    store = open_store()
    runs = re.match(r"^runs:/(?P<run>[^/]+)", text)
    if runs:
        return store, runs["run"]
    found = re.match(
        r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))/?$", text
    )
    if found is None:
        return None
    version = get_version(found["name"], found["version"] or found["alias"], store=store)
    return store, version.run_id


def _log_to_registry(reference: str, evaluation: Any, data: str) -> str | None:
    """Record an evaluation on the model's MLflow training run (registry models only)."""
    if not str(reference).startswith(("models:/", "runs:/")):
        return None
    # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.registry import log_evaluation

    return log_evaluation(reference, evaluation, data)


def _log_report_to_registry(reference: str, paths: dict[str, Path]) -> str | None:
    """Attach the report files to the model's MLflow training run (registry models only)."""
    found = _registry_run(reference)
    if found is None:
        return None
    # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.registry._store import quiet_mlflow, translate_errors

    store, run_id = found
    with quiet_mlflow(), translate_errors(store.uri, f"log the report to run {run_id}"):
        for path in paths.values():
            store.client.log_artifact(run_id, str(path), artifact_path="report")
    return run_id


def _print_evaluation(evaluation: Any, notes: list[str]) -> None:
    console = _console()
    for note in notes:
        console.print(note)
    result = evaluation.to_dict()
    level = round(result["settings"]["confidence"] * 100)
    title = (
        f"{result['target']} ({result['task']}) on {result['n_rows']:,} rows; "
        f"{level}% bootstrap intervals, {result['settings']['n_resamples']} resamples"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(f"{level}% CI", justify="right")
    for name, interval in result["metrics"].items():
        marker = " (primary)" if name == result["metric"] else ""
        table.add_row(name + marker, _fmt(interval["value"]), _interval_text(interval))
    console.print(table)
    if result["threshold"] is not None:
        console.print(f"Decision threshold: {result['threshold']:.4g}")
    if result["per_class"]:
        per_class = Table(title="Per class", title_justify="left")
        for heading in ("class", "support", "precision", "recall", "F1"):
            per_class.add_column(heading, justify="left" if heading == "class" else "right")
        for row in result["per_class"]:
            per_class.add_row(
                str(row["class"]),
                str(row["support"]),
                *(
                    f"{_fmt(row[kind]['value'])} {_interval_text(row[kind])}"
                    for kind in ("precision", "recall", "f1")
                ),
            )
        console.print(per_class)
        confusion = result["confusion_matrix"]
        matrix = Table(
            title="Confusion matrix (rows: true, columns: predicted)", title_justify="left"
        )
        matrix.add_column("")
        for label in confusion["labels"]:
            matrix.add_column(str(label), justify="right")
        for label, counts in zip(confusion["labels"], confusion["matrix"], strict=True):
            matrix.add_row(str(label), *(f"{count:,}" for count in counts))
        console.print(matrix)
        console.print(
            f"Expected calibration error: {result['calibration']['ece']:.4f} "
            "(0 = probabilities match observed frequencies)"
        )
    if result["residuals"]:
        residuals = result["residuals"]
        console.print(
            "Residuals (predicted - true): mean {mean}, sd {std}, median {median}, "
            "5-95% [{p05}, {p95}], largest |error| {max_abs}".format(
                **{key: _fmt(value) for key, value in residuals.items()}
            )
        )
    if result["slices"]:
        slices = Table(title=f"Slices by {result['metric']}, worst first", title_justify="left")
        for heading in ("column", "value", "rows", result["metric"], "95% CI", "gap"):
            slices.add_column(heading)
        for row in result["slices"][:15]:
            interval = row["value_interval"]
            slices.add_row(
                row["column"],
                row["value"] + (" (small)" if row["small"] else ""),
                f"{row['n_rows']:,}",
                _fmt(interval["value"]),
                _interval_text(interval),
                _fmt(row["gap"]),
            )
        console.print(slices)
    for fairness in result["fairness"]:
        groups = Table(title=f"Fairness: {fairness['column']}", title_justify="left")
        for heading in ("group", "rows", "selection rate", "TPR", "FPR", fairness["metric"]):
            groups.add_column(heading, justify="left" if heading == "group" else "right")
        for row in fairness["groups"]:
            groups.add_row(
                row["group"],
                f"{row['n_rows']:,}",
                _fmt(row["selection_rate"]),
                _fmt(row["tpr"]),
                _fmt(row["fpr"]),
                _fmt(row["metric"]),
            )
        console.print(groups)
        if fairness["demographic_parity_difference"] is not None:
            console.print(
                f"demographic parity difference {_fmt(fairness['demographic_parity_difference'])}"
                f", ratio {_fmt(fairness['demographic_parity_ratio'])}; equalized odds "
                f"difference {_fmt(fairness['equalized_odds_difference'])}"
            )
    for warning in result["warnings"]:
        console.print(f"[bold yellow]Warning:[/bold yellow] {warning}")


@app.command("compare")
def compare_command(
    model_a: str = typer.Argument(
        ..., help="Model A (e.g. the champion). " + _MODEL_HELP, show_default=False
    ),
    model_b: str = typer.Argument(..., help="Model B (e.g. the challenger).", show_default=False),
    data: str = typer.Argument(
        ..., help="Labelled rows both models are scored on.", show_default=False
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the verdict."),
    metric: str = typer.Option(None, "--metric", help="Metric (default: A's training metric)."),
    resamples: int = typer.Option(1000, "--resamples", help="Paired bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    fail_unless_better: bool = typer.Option(
        False,
        "--fail-unless-better",
        help="Exit with code 3 unless B is significantly better (a promotion gate).",
    ),
) -> None:
    """Is MODEL_B better than MODEL_A on DATA? Paired bootstrap and McNemar's test."""
    # deferred: mlwright.evaluate loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.evaluate import compare

    comparison = compare(
        _load(model_a),
        _load(model_b),
        data,
        metric=metric,
        alpha=alpha,
        n_resamples=resamples,
        seed=seed,
        names=(model_a, model_b),
    )
    if as_json:
        typer.echo(json.dumps(comparison.to_dict(), indent=2, default=str))
    else:
        _print_comparison(comparison)
    if fail_unless_better and not comparison.b_is_better:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _print_comparison(comparison: Any) -> None:
    console = _console()
    result = comparison.to_dict()
    level = round((1 - result["alpha"]) * 100)
    table = Table(
        title=f"{result['metric']} on {result['n_rows']:,} rows (paired bootstrap, "
        f"{result['n_resamples']} resamples)",
        title_justify="left",
    )
    table.add_column("model")
    table.add_column(result["metric"], justify="right")
    table.add_column(f"{level}% CI", justify="right")
    table.add_row(
        f"A: {result['names'][0]}", _fmt(result["a"]["value"]), _interval_text(result["a"])
    )
    table.add_row(
        f"B: {result['names'][1]}", _fmt(result["b"]["value"]), _interval_text(result["b"])
    )
    table.add_row(
        "B - A", _fmt(result["difference"]["value"]), _interval_text(result["difference"])
    )
    console.print(table)
    if result["mcnemar"] is not None:
        mcnemar = result["mcnemar"]
        console.print(
            f"McNemar ({'exact' if mcnemar['exact'] else 'chi-squared'}): only A right on "
            f"{mcnemar['only_a_correct']} rows, only B right on {mcnemar['only_b_correct']}; "
            f"p={mcnemar['p_value']:.3g}"
        )
    colour = {"better": "green", "worse": "red"}.get(result["verdict"], "yellow")
    console.print(f"[bold {colour}]Verdict:[/bold {colour}] {result['summary']}")


@app.command("explain")
def explain_command(
    model: str = typer.Argument(..., help=_MODEL_HELP, show_default=False),
    data: str = typer.Argument(..., help="Rows to explain from.", show_default=False),
    row: int = typer.Option(
        ..., "--row", help="Row number in DATA (0 = first data row).", show_default=False
    ),
    top: int = typer.Option(10, "--top", help="Contributions shown."),
    method: str = typer.Option(
        "auto",
        "--method",
        help="auto (native TreeSHAP when the model allows, else shap), native or shap.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the explanation as JSON."),
) -> None:
    """One prediction's top feature contributions (TreeSHAP or shap)."""
    # deferred: mlwright.evaluate loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.evaluate import contributions

    # deferred: mlwright.evaluate loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.evaluate._evaluation import read_frame

    loaded = _load(model)
    frame = read_frame(data, loaded)
    if not 0 <= row < len(frame):
        raise DataError(
            f"--row {row} is outside '{data}', which has {len(frame):,} rows: use a number "
            f"from 0 to {len(frame) - 1}."
        )
    features = frame.drop(columns=[loaded.target], errors="ignore")
    one = features.iloc[[row]].reset_index(drop=True)
    explanation = contributions(loaded, one, method=method, background=features)
    if loaded.task == "regression":
        predicted = float(loaded.predict(one)[0])
        explanation["predicted"] = predicted
    else:
        proba = loaded.predict_proba(one)
        label = loaded.predict(one)[0]
        explanation["predicted"] = label.item() if hasattr(label, "item") else label
        explanation["probabilities"] = {
            str(label): float(proba.iloc[0][label]) for label in proba.columns
        }
    explanation["row"] = row
    if as_json:
        typer.echo(json.dumps(explanation, indent=2, default=str))
        return
    console = _console()
    heading = f"Row {row}: predicted {explanation['predicted']}"
    if "probabilities" in explanation:
        heading += (
            " ("
            + ", ".join(
                f"P({label})={value:.3f}" for label, value in explanation["probabilities"].items()
            )
            + ")"
        )
    console.print(heading)
    explained = f" of {explanation['explained']}" if explanation["explained"] is not None else ""
    table = Table(
        title=f"Top contributions ({explanation['method']}, in {explanation['space']}"
        f"{explained}; base {explanation['base_value']:.4g} -> "
        f"{explanation['prediction']:.4g})",
        title_justify="left",
    )
    table.add_column("column")
    table.add_column("value")
    table.add_column("contribution", justify="right")
    for item in explanation["contributions"][:top]:
        sign = "+" if item["contribution"] >= 0 else ""
        table.add_row(item["column"], _fmt(item["value"]), f"{sign}{item['contribution']:.4f}")
    console.print(table)


@app.command("report", context_settings=_EXTRA)
def report_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., help=_MODEL_HELP, show_default=False),
    output: Path = typer.Option(
        ..., "--output", "-o", help="HTML file to write.", show_default=False
    ),
    data: str = typer.Option(
        None, "--data", help="Labelled test rows for metrics, plots, slices and fairness."
    ),
    sensitive: list[str] = typer.Option(
        None, "--sensitive", help="Columns to check fairness over (e.g. --sensitive sex race)."
    ),
    markdown: Path = typer.Option(
        None, "--markdown", help="Markdown version (default: next to the HTML, .md)."
    ),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and samples."),
) -> None:
    """Write the model report (a model card): one self-contained HTML file and Markdown."""
    # deferred: mlwright.report loads matplotlib (~0.25 s), not paid by `mlwright --help`
    from mlwright.report import write_model_report

    started = time.perf_counter()
    sensitive_columns = _columns(ctx, sensitive, "--sensitive")
    loaded = _load(model)
    paths = write_model_report(
        loaded,
        output,
        data=data,
        sensitive=sensitive_columns,
        markdown=markdown,
        n_resamples=resamples,
        seed=seed,
        reference=model,
    )
    console = _console()
    console.print(
        f"Wrote {paths['html']} and {paths['markdown']} in {time.perf_counter() - started:.1f} s"
    )
    run_id = _log_report_to_registry(model, paths)
    if run_id is not None:
        console.print(f"Logged the report to MLflow run {run_id}.")
