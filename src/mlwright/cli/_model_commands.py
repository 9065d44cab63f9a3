"""``mlwright train`` and ``mlwright predict``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlwright.cli._app import app
from mlwright.cli._shared import dropped_rows_line, na_values_option, number, summary_line
from mlwright.errors import ConfigError, write_error

# Seconds kept from the search at least for logging the saved model into the MLflow run
# (measured at 1-3 s for a small artifact on a busy 2-core machine).
TRACKING_RESERVE_SECONDS = 2.5


def tracking_reserve(opening_seconds: float, time_limit: float | None) -> float:
    """Budget seconds to keep for logging the finished model into the MLflow run.

    Logging costs about what opening the run cost on the same machine and store (both are
    MLflow calls against the same SQLite file or server), so half the measured opening time is
    kept, at least :data:`TRACKING_RESERVE_SECONDS`, and never more than a quarter of the budget.
    """
    wanted = max(TRACKING_RESERVE_SECONDS, 0.5 * opening_seconds)
    budget = time_limit if time_limit is not None else 60.0
    return min(wanted, 0.25 * budget)


# Captured when the command line is imported, as a fallback for the process start below.
_IMPORTED_AT = time.monotonic()


def process_start_monotonic() -> float:
    """The ``time.monotonic()`` value at which this process started.

    ``--time-limit`` covers the whole command, so the budget counts from the process start
    (interpreter start-up and imports included), read from /proc where available.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22 of stat(5): start time after boot, in ticks
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        age = uptime - started_ticks / os.sysconf("SC_CLK_TCK")
        # CLOCK_MONOTONIC and /proc/uptime both count from boot; guard against odd kernels.
        if 0 <= age < time.monotonic() - _IMPORTED_AT + 60:
            return time.monotonic() - age
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORTED_AT


@app.command("train")
def train_command(
    data: str = typer.Argument(
        ...,
        help="Training data: a file (CSV, Parquet, JSON lines, Excel, ARFF) with the target.",
        show_default=False,
    ),
    target: str = typer.Option(
        ..., "--target", "-t", help="The column to predict.", show_default=False
    ),
    time_limit: float | None = typer.Option(
        None,
        "--time-limit",
        help="Whole budget of the command in seconds, reading and saving included "
        "\\[default: 60, or none with --max-trials].",
        show_default=False,
    ),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="Metric to optimise \\[default: roc_auc (binary), log_loss (multiclass), "
        "rmse (regression)].",
        show_default=False,
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Artifact directory to write \\[default: ./models/<dataset>-<timestamp>].",
        show_default=False,
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    max_trials: int | None = typer.Option(
        None,
        "--max-trials",
        help="Stop after this many candidate fits (with --seed, runs are reproducible).",
        show_default=False,
    ),
    models: str | None = typer.Option(
        None,
        "--models",
        help="Comma-separated model families to search, e.g. lightgbm,xgboost.",
        show_default=False,
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    na_values: str | None = typer.Option(
        None,
        "--na-values",
        help="Cells read as missing, in every column: a comma-separated list such as '?,-' "
        "('' for only empty cells), or a JSON object per column such as "
        '\'{"income": ["-999"]}\'. Default: empty cells, and a marker (NA, ?, -, ...) only '
        "among a column's numbers or in a column of nothing but markers. Recorded in the "
        "model: predict and evaluate read new files the same way.",
        show_default=False,
    ),
    # Registry options (owner: registry stage, see cli/_registry_commands.py).
    register: str | None = typer.Option(
        None,
        "--register",
        help="Register the model as a new version of NAME in the MLflow registry.",
        show_default=False,
    ),
    tracking_uri: str | None = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else the SQLite store in "
        "MLWRIGHT_HOME, ./.mlwright).",
        show_default=False,
    ),
    track: bool = typer.Option(
        True, "--track/--no-track", help="Record the training as an MLflow run."
    ),
) -> None:
    """Train the most accurate model the time budget allows and save it as an artifact."""
    start = process_start_monotonic()

    # deferred: mlwright.model loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.model._artifact import check_destination

    # deferred: mlwright.model loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.model._train_api import check_settings, train

    # Option mistakes fail in a second, before the MLflow run is opened.
    rule = na_values_option(na_values)
    check_settings(
        target=target,
        time_limit=time_limit,
        metric=metric,
        seed=seed,
        max_trials=max_trials,
        models=models,
        na_values=rule,
    )
    console = Console(stderr=True, highlight=False)
    out = Console(highlight=False, soft_wrap=True)
    destination = output if output is not None else default_output(data)
    # A model that could not be saved there fails now, before the MLflow run and the search.
    check_destination(destination)
    display = None if quiet else TrainingDisplay(console, time_limit, max_trials, start)
    # Every training is an MLflow run, opened before training so a crash or kill is recorded.
    # deferred: at the top it would register the registry commands first, reordering --help
    from mlwright.cli._registry_commands import TrainingTracking

    requested = {"target": target, "time_limit": time_limit, "metric": metric, "seed": seed}
    requested.update({"max_trials": max_trials, "models": models, "output": str(destination)})
    if rule is not None:
        requested["na_values"] = rule
    if display is not None:
        # Shown from the start: opening a new MLflow store can take seconds.
        display.phase = "opening the MLflow run" if track else "reading data"
        display.start()
    try:
        opening = time.monotonic()
        tracking = TrainingTracking(
            data, settings=requested, tracking_uri=tracking_uri, register=register, track=track
        )
        reserve = tracking_reserve(time.monotonic() - opening, time_limit) if track else 0.0
        if display is not None:
            display.phase = "reading data"
        with tracking:
            model = train(
                data,
                target=target,
                time_limit=time_limit,
                metric=metric,
                seed=seed,
                max_trials=max_trials,
                models=models,
                na_values=rule,
                output=destination,
                progress=None if display is None else display.update,
                start_time=start,
                # Logging the saved model to the MLflow run happens after training, inside the
                # budget: keep time for it.
                reserve_seconds=reserve,
            )
            # The model card goes into the artifact (and so into the MLflow run) when the
            # budget leaves time for it.
            # deferred: mlwright.report loads matplotlib (~0.25 s), not paid by `mlwright --help`
            from mlwright.report import attach_model_report

            report = attach_model_report(
                model, finish_by=None if time_limit is None else start + time_limit - reserve
            )
            if display is not None:
                display.phase = "logging to MLflow" if track else "saved"
            tracking.log_model(model, data)
    finally:
        if display is not None:
            display.stop()
    metrics = model.metrics
    if not quiet:
        console.print(leaderboard_table(metrics.get("leaderboard", []), metrics))
    dropped = dropped_rows_line(model.lineage)
    if dropped:
        out.print(dropped)
    out.print(summary_line(metrics))
    out.print(f"Model saved to {model.path}")
    if report is not None:
        out.print(f"Model report: {report.resolve().as_uri()}")
    else:
        out.print(
            f"Write the model report with: mlwright report {model.path} --data TEST.csv "
            "--output report.html"
        )
    tracking.finish(out)


@app.command("predict")
def predict_command(
    model: str = typer.Argument(
        ...,
        help="The model: an artifact directory written by `mlwright train`, runs:/<id>/model, "
        "models:/NAME/VERSION or models:/NAME@alias.",
        show_default=False,
    ),
    data: str = typer.Argument(
        ..., help="Rows to predict: a file (CSV, Parquet, JSON lines, ...).", show_default=False
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="CSV file to write: `prediction` and one `proba_<class>` column per class.",
        show_default=False,
    ),
    chunk_rows: int = typer.Option(
        100_000, "--chunk-rows", help="Rows predicted per chunk (bounds memory use)."
    ),
    runtime: str = typer.Option(
        "auto",
        "--runtime",
        help="python: the saved pipeline; onnx: a graph written by `mlwright export` (MODEL is "
        "the .onnx file), run by onnxruntime alone; auto: onnx for an .onnx file, else python.",
    ),
) -> None:
    """Predict every row of DATA with MODEL; one output row per input row, in order."""
    if chunk_rows < 1:
        raise ConfigError(f"--chunk-rows must be a positive number of rows; got {chunk_rows}.")
    if runtime not in ("auto", "python", "onnx"):
        raise ConfigError(f"--runtime must be auto, python or onnx; got {runtime!r}.")
    is_graph = model.lower().endswith(".onnx")
    if runtime == "onnx" or (runtime == "auto" and is_graph):
        if not is_graph:
            raise ConfigError(
                f"--runtime onnx needs the .onnx file `mlwright export` writes; got {model!r}. "
                f"Run `mlwright export {model} --format onnx --output model.onnx` and predict "
                "with model.onnx."
            )
        _predict_onnx(model, data, output)
        return
    if is_graph:
        raise ConfigError(
            f"{model!r} is an ONNX graph, which --runtime python cannot run; use --runtime onnx "
            "(or auto), or pass the model's artifact directory."
        )
    # deferred: mlwright.model loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.model import load

    # deferred: mlwright.model loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.model._batch import predict_file

    started = time.perf_counter()
    loaded = load(model)
    n_rows = predict_file(loaded, data, output, chunk_rows=chunk_rows)
    seconds = time.perf_counter() - started
    Console(stderr=True, highlight=False).print(
        f"Predicted {n_rows:,} rows in {seconds:.1f} s; wrote {output}"
    )


def _predict_onnx(model: str, data: str, output: Path) -> None:
    """``predict --runtime onnx``: onnxruntime alone scores the file; nothing is unpickled."""
    # deferred: pandas (~0.3 s) is not paid by `mlwright --help`
    import pandas as pd

    # onnxruntime (mlwright[onnx]) and the data stage (pandas, DuckDB) load for this path only.
    # deferred: not paid by `mlwright --help`
    from mlwright.compiled import load_compiled
    from mlwright.data import read
    from mlwright.data._markers import MarkerRule

    started = time.perf_counter()
    compiled = load_compiled(model)
    rule = None
    if compiled.reading_rule is not None:
        # The file is read as the training data was (the rule the export recorded).
        default = compiled.reading_rule.get("default")
        rule = MarkerRule(
            default=None if default is None else tuple(default),
            columns={
                name: tuple(markers)
                for name, markers in (compiled.reading_rule.get("columns") or {}).items()
            },
            strict=False,
        )
    frame = read(data, na_values=rule)
    if compiled.task == "regression":
        result = pd.DataFrame({"prediction": compiled.predict(frame)})
    else:
        outputs = compiled.run(frame)
        result = pd.DataFrame({"prediction": outputs["label"]})
        for position, label in enumerate(compiled.classes or []):
            result[f"proba_{label}"] = outputs["probabilities"][:, position]
    existed = output.exists()
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        # A temporary file renamed at the end, as on the Python path: never a partial CSV.
        output.parent.mkdir(parents=True, exist_ok=True)
        result.to_csv(temporary, index=False)
        os.replace(temporary, output)
    except OSError as err:
        if temporary.exists():
            temporary.unlink()
        error = write_error(err, "predictions", output, kept=existed)
        if error is None:
            raise
        raise error from err
    seconds = time.perf_counter() - started
    Console(stderr=True, highlight=False).print(
        f"Predicted {len(result):,} rows with onnxruntime in {seconds:.1f} s; wrote {output}"
    )


_GENERIC_STEMS = {"train", "training", "data", "dataset", "input", "test", "full"}


def default_output(data: str) -> Path:
    """``./models/<dataset>-<timestamp>``; the dataset is the file's stem, or its folder's name
    when the stem says nothing (``credit-g/train.csv`` -> ``credit-g``)."""
    path = Path(data)
    name = path.stem
    if name.lower() in _GENERIC_STEMS and path.parent.name:
        name = path.parent.resolve().name
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name).strip("-.") or "model"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    candidate = Path("models") / f"{safe}-{stamp}"
    counter = 2
    while candidate.exists():
        candidate = Path("models") / f"{safe}-{stamp}-{counter}"
        counter += 1
    return candidate


def leaderboard_table(rows: list[dict[str, Any]], metrics: dict[str, Any], limit: int = 10) -> Any:
    """The best candidates as a Rich table (best first)."""
    greater = bool(metrics.get("greater_is_better", True))
    scored = [row for row in rows if isinstance(row.get("score"), (int, float))]
    scored.sort(key=lambda row: row["score"], reverse=greater)
    table = Table(title=f"Leaderboard ({len(rows)} candidates)", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("model")
    table.add_column(str(metrics.get("metric", "score")), justify="right")
    table.add_column("± std", justify="right")
    table.add_column("fit s", justify="right")
    table.add_column("ensemble weight", justify="right")
    for rank, row in enumerate(scored[:limit], 1):
        weight = row.get("weight")
        table.add_row(
            str(rank),
            str(row.get("model", row.get("family", "?"))),
            number(row.get("score")),
            number(row.get("std")) if row.get("std") is not None else "",
            f"{row['fit_seconds']:.1f}" if isinstance(row.get("fit_seconds"), (int, float)) else "",
            f"{weight:.2f}" if isinstance(weight, (int, float)) and weight else "",
        )
    return table


class TrainingDisplay:
    """A Rich live view of the search: a progress bar and the current leaderboard.

    ``update`` is the search's progress callback; it accepts events as dicts or objects and
    uses what they carry (a finished candidate's model and score, a phase message).
    """

    def __init__(
        self, console: Any, time_limit: float | None, max_trials: int | None, start: float
    ) -> None:
        self.console = console
        self.time_limit = time_limit if time_limit is not None else (None if max_trials else 60.0)
        self.max_trials = max_trials
        self.start_time = start
        self.rows: list[dict[str, Any]] = []
        self.metric: dict[str, Any] = {"metric": "score", "greater_is_better": True}
        self.phase = "reading data"
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        )
        total = self.time_limit if self.time_limit is not None else float(max_trials or 1)
        self.task_id = self.progress.add_task("training", total=total, status=self.phase)
        self.live: Any = None

    def _render(self) -> Any:
        # Called by Live at every refresh: the bar advances with the clock between events.
        self._refresh_bar()
        if not self.rows:
            return self.progress
        return Group(self.progress, leaderboard_table(self.rows, self.metric, limit=5))

    def start(self) -> None:
        self.live = Live(
            self._render(),
            console=self.console,
            refresh_per_second=4,
            transient=True,
            get_renderable=self._render,
        )
        self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def update(self, event: Any) -> None:
        fields = event if isinstance(event, dict) else getattr(event, "__dict__", {})
        if fields.get("metric"):
            self.metric["metric"] = fields["metric"]
        if "greater_is_better" in fields:
            self.metric["greater_is_better"] = bool(fields["greater_is_better"])
        name = fields.get("name", fields.get("model"))
        if name is not None and isinstance(fields.get("score"), (int, float)):
            if fields.get("kind", "candidate") == "candidate":
                self.rows.append({**fields, "model": name})
        kind = fields.get("kind")
        if kind == "start":
            self.phase = f"searching ({fields.get('rows', '?')} rows, {fields.get('folds')} folds)"
        elif kind == "candidate":
            self.phase = f"{name}: {fields.get('status', 'ok')}"
        elif kind == "ensemble":
            self.phase = "ensemble selection"
        elif kind == "refit":
            self.phase = "refitting the final model"
        elif kind == "done":
            self.phase = "saving"
        elif fields.get("message"):
            self.phase = str(fields["message"])
        self._refresh_bar()

    def _refresh_bar(self) -> None:
        elapsed = time.monotonic() - self.start_time
        if self.time_limit is not None:
            completed = min(elapsed, self.time_limit)
        else:
            completed = min(len(self.rows), self.max_trials or 1)
        best = self._best()
        status = f"{len(self.rows)} fits" + (f", best {number(best)}" if best is not None else "")
        self.progress.update(
            self.task_id, completed=completed, status=f"{status} · {self.phase}"[:80]
        )

    def _best(self) -> float | None:
        scores = [row["score"] for row in self.rows]
        if not scores:
            return None
        return max(scores) if self.metric["greater_is_better"] else min(scores)
