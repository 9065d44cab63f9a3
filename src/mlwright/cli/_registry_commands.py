"""``mlwright models list|show|promote|rollback|delete`` and ``mlwright reproduce``.

The registry is MLflow's; these commands are thin: parse, call :mod:`mlwright.registry`,
render. MLflow is imported inside the commands only.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mlwright.cli._app import app
from mlwright.cli._shared import summary_line
from mlwright.errors import ConfigError

models_app = typer.Typer(
    name="models",
    help="The model registry (MLflow): list, show, promote, roll back and delete versions.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

_TRACKING_HELP = (
    "MLflow tracking/registry URI (default: MLFLOW_TRACKING_URI, else the SQLite store "
    "in MLWRIGHT_HOME, ./.mlwright)."
)


def _tracking_option() -> Any:
    return typer.Option(None, "--tracking-uri", help=_TRACKING_HELP, show_default=False)


def _console(stderr: bool = False) -> Any:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _when(milliseconds: int) -> str:
    if not milliseconds:
        return ""
    moment = dt.datetime.fromtimestamp(milliseconds / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _score(version: Any) -> str:
    scores = [
        f"{key.removeprefix('validation_')}={value:.4f}"
        for key, value in sorted(version.metrics.items())
        if key.startswith("validation_") and not key.endswith(("_std", "_fold"))
    ]
    return ", ".join(scores)


@models_app.command("list")
def list_command(
    tracking_uri: str | None = _tracking_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered models with their latest version and aliases."""
    # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.registry import list_models, open_store

    store = open_store(tracking_uri)
    models = list_models(store=store)
    if as_json:
        typer.echo(json.dumps([model.to_dict() for model in models], indent=2))
        return
    console = _console()
    if not models:
        console.print(
            f"No registered models in {store.uri}. Register one with `mlwright train DATA "
            "--target COLUMN --register NAME`."
        )
        return
    table = Table(title=f"Registered models ({store.uri})", title_justify="left")
    for column in ("name", "versions", "latest", "aliases", "latest created"):
        table.add_column(column)
    for model in models:
        latest = model.latest
        aliases = ", ".join(f"{alias}->{number}" for alias, number in sorted(model.aliases.items()))
        table.add_row(
            model.name,
            str(len(model.versions)),
            str(latest.version) if latest else "",
            aliases,
            _when(latest.created) if latest else "",
        )
    console.print(table)


@models_app.command("show")
def show_command(
    model: str = typer.Argument(
        ...,
        help="NAME (all versions), NAME/VERSION or NAME@alias.",
        show_default=False,
    ),
    tracking_uri: str | None = _tracking_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show a registered model's versions, or one version in detail."""
    # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.registry import get_model, get_version, open_store

    name, selector = _split(model)
    store = open_store(tracking_uri)
    console = _console()
    if selector is None:
        info = get_model(name, store=store)
        if as_json:
            typer.echo(json.dumps(info.to_dict(), indent=2))
            return

        aliases = ", ".join(f"{alias}->{number}" for alias, number in sorted(info.aliases.items()))
        table = Table(title=f"{info.name}  (aliases: {aliases or 'none'})", title_justify="left")
        for column in ("version", "aliases", "created", "validation", "run"):
            table.add_column(column)
        for version in info.versions:
            table.add_row(
                str(version.version),
                ", ".join(version.aliases),
                _when(version.created),
                _score(version),
                version.run_id or "",
            )
        console.print(table)
        return
    version = get_version(name, selector, store=store)
    if as_json:
        typer.echo(json.dumps(version.to_dict(), indent=2))
        return
    console.print(f"[bold]{version.name}[/bold] version {version.version}")
    console.print(f"  reference  {version.reference}")
    console.print(f"  aliases    {', '.join(version.aliases) or '-'}")
    console.print(f"  created    {_when(version.created)}")
    console.print(f"  run        {version.run_id or '-'}  (runs:/{version.run_id}/model)")
    console.print(f"  source     {version.source}")
    if version.metrics:
        console.print(f"  validation {_score(version) or '-'}")
    for key, value in sorted(version.tags.items()):
        console.print(f"  tag        {key} = {value}")


def _split(reference: str) -> tuple[str, str | None]:
    text = reference.strip().removeprefix("models:/")
    if "@" in text:
        name, alias = text.split("@", 1)
        return name, alias
    if "/" in text:
        name, version = text.rsplit("/", 1)
        return name, version
    return text, None


@models_app.command("promote")
def promote_command(
    name: str = typer.Argument(..., help="Registered model name.", show_default=False),
    version: str = typer.Argument(
        ..., help="Version number (or an alias, e.g. challenger).", show_default=False
    ),
    alias: str = typer.Option("champion", "--alias", help="The alias to point at VERSION."),
    tracking_uri: str | None = _tracking_option(),
) -> None:
    """Point an alias (default: champion) at a version; rollback can undo it."""
    # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.registry import open_store, promote

    store = open_store(tracking_uri)
    promoted = promote(name, version, alias=alias, store=store)
    _console().print(
        f"models:/{name}@{alias} -> version {promoted.version} "
        f"(aliases now: {', '.join(promoted.aliases)})"
    )


@models_app.command("rollback")
def rollback_command(
    name: str = typer.Argument(..., help="Registered model name.", show_default=False),
    alias: str = typer.Option("champion", "--alias", help="The alias to move back."),
    tracking_uri: str | None = _tracking_option(),
) -> None:
    """Move the champion (or --alias) back to the version that held it before."""
    # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.registry import open_store, rollback

    store = open_store(tracking_uri)
    restored, previous = rollback(name, alias=alias, store=store)
    _console().print(
        f"models:/{name}@{alias} -> version {restored.version} (was version {previous})"
    )


@models_app.command("delete")
def delete_command(
    name: str = typer.Argument(..., help="Registered model name.", show_default=False),
    version: str | None = typer.Argument(
        None, help="Version to delete; without it, the whole model.", show_default=False
    ),
    force: bool = typer.Option(
        False, "--force", help="Also delete the champion version (or a model with one)."
    ),
    tracking_uri: str | None = _tracking_option(),
) -> None:
    """Delete a version of a registered model, or the whole model."""
    # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.registry import delete, open_store

    store = open_store(tracking_uri)
    deleted = delete(name, version, force=force, store=store)
    numbers = ", ".join(map(str, deleted)) or "none"
    if version is None:
        _console().print(f"Deleted model '{name}' (versions: {numbers}).")
    else:
        _console().print(f"Deleted version {numbers} of '{name}'.")


@app.command("reproduce")
def reproduce_command(
    run_id: str = typer.Argument(..., help="The MLflow run id of an `mlwright train`."),
    data: str | None = typer.Option(
        None,
        "--data",
        help="Training data to use (default: the recorded path, else the copy stored in the "
        "run). Must have the recorded fingerprint.",
        show_default=False,
    ),
    output: str | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Artifact directory to write (default: ./models/reproduce-<run>-<time>).",
        show_default=False,
    ),
    register: str | None = typer.Option(
        None, "--register", help="Register the new model as a version of NAME.", show_default=False
    ),
    tracking_uri: str | None = _tracking_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Re-run a recorded training with its settings and data; report the metric difference."""
    # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.registry import reproduce

    result = reproduce(
        run_id, data=data, output=output, tracking_uri=tracking_uri, register=register
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    console = _console()
    console.print(
        f"Reproduced run {result.original_run_id} as run {result.run_id} on {result.data} "
        f"({result.data_origin}, fingerprint matches)."
    )

    def shown(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    difference = result.difference
    console.print(
        f"Validation {result.metric}: original {shown(result.original_score)}, reproduced "
        f"{shown(result.score)}, difference "
        f"{'n/a' if difference is None else f'{difference:+.4f}'}"
    )
    console.print(f"Model saved to {result.model_path}")
    for note in result.notes:
        console.print(f"Note: {note}")


# -- the MLflow run of `mlwright train` (used by cli/_model_commands.py) ----------------------
class TrainingTracking:
    """The MLflow run around one ``mlwright train``; a no-op with ``--no-track``.

    Opened before training (so a crash or a kill is recorded), it logs the saved model, and
    after the run has finished registers it under ``--register NAME`` and prints where to
    browse it.

    Importing MLflow and opening its store costs seconds, so it happens in a background thread
    while the data is read and the search runs; only the cheap checks (the model name, an HTTP
    server's health) run before training, so mistakes still fail at once.
    """

    def __init__(
        self,
        data: str,
        *,
        settings: dict[str, Any],
        tracking_uri: str | None,
        register: str | None,
        track: bool,
    ) -> None:
        if register and not track:
            raise ConfigError(
                "--register needs the MLflow run that --no-track turns off: drop --no-track "
                "to register the model."
            )
        self.register_name = register
        self.run: Any = None
        self._thread: Any = None
        self._error: BaseException | None = None
        if not track:
            return

        # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
        from mlwright.registry import check_model_name

        # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
        from mlwright.registry._store import check_reachable

        if register:
            # A bad name fails now, not after the training it was meant to register.
            check_model_name(register)
        check_reachable(tracking_uri)
        self._thread = threading.Thread(
            target=self._start,
            args=(data, settings, tracking_uri),
            name="mlwright-tracking",
            daemon=True,
        )
        self._thread.start()

    def _start(self, data: str, settings: dict[str, Any], tracking_uri: str | None) -> None:
        try:
            # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
            from mlwright.registry import start_training_run

            self.run = start_training_run(data=data, settings=settings, tracking_uri=tracking_uri)
        except BaseException as err:  # re-raised in the main thread by _wait
            self._error = err

    def _wait(self) -> Any:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self.run

    def __enter__(self) -> TrainingTracking:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if error is not None:
            # The training's own error is the one to report, even if the store failed too.
            try:
                self._wait()
            except Exception:
                return
        run = self._wait()
        if run is not None:
            run.__exit__(kind, error, traceback)

    def log_model(self, model: Any, data: Any) -> None:
        """Log the saved model and its lineage into the run."""
        run = self._wait()
        if run is not None:
            run.log_model(model, data=data)

    def finish(self, out: Any, *, hint: bool = True) -> None:
        """Register (with ``--register``) and print the run and version (and, with ``hint``,
        how to promote it)."""
        run = self._wait()
        if run is None:
            return
        out.print(f"MLflow run {run.run_id} (model: {run.model_reference})")
        out.print(f"Browse it: {run.url}")
        if self.register_name:
            version = run.register(self.register_name)
            advice = f" (promote it with `mlwright models promote {version.name} "
            advice += f"{version.version}`)"
            out.print(f"Registered {version.reference}{advice if hint else ''}")


# -- the train-and-register stage of `mlwright run` (listed in cli/_data_commands.py) ----------
def registered_name(data: str) -> str:
    """The registered model name `mlwright run` uses: the dataset's name (``credit-g``)."""
    if "://" in data:
        return "query-model"
    path = Path(data)
    stem = path.stem
    if stem.lower() in {"train", "training", "data", "dataset", "input", "full"}:
        stem = path.resolve().parent.name or stem
    cleaned = "".join(char if char.isalnum() or char in "-_." else "-" for char in stem)
    return cleaned.strip("-.") or "model"


def run_stage_train_and_register(state: Any) -> None:
    """Train on the run's data, log the MLflow run, register a version of the dataset's name.

    The stage of `mlwright run` that trains and registers (add it to ``RUN_STAGES``). ``state``
    is `mlwright run`'s RunState (``data``, ``target``, ``output``, ``console``,
    ``artifacts``); optional attributes ``time_limit``, ``max_trials`` and ``models`` bound the
    training (default: train's 60 s budget). The first version of a name becomes its champion;
    later ones are left for `mlwright models promote` (after evaluating them).
    """
    # deferred: mlwright.model loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.model._train_api import train

    name = registered_name(state.data)
    settings = {"target": state.target, "output": str(state.output / "model")}
    if getattr(state, "na_values", None) is not None:
        settings["na_values"] = state.na_values
    tracking = TrainingTracking(
        state.data, settings=settings, tracking_uri=None, register=name, track=True
    )
    with tracking:
        model = train(
            state.data,
            target=state.target,
            output=state.output / "model",
            overwrite=True,
            time_limit=getattr(state, "time_limit", None),
            max_trials=getattr(state, "max_trials", None),
            models=getattr(state, "models", None),
            na_values=getattr(state, "na_values", None),
        )
        # deferred: mlwright.report loads matplotlib (~0.25 s), not paid by `mlwright --help`
        from mlwright.report import attach_model_report

        report = attach_model_report(model)  # the model card, inside the artifact
        tracking.log_model(model, state.data)
    state.console.print(summary_line(model.metrics))
    tracking.finish(state.console, hint=False)
    state.artifacts["model"] = model.path
    if report is not None:
        state.artifacts["report.html"] = report
    version = tracking.run.version if tracking.run is not None else None
    if version is not None and version.version == 1:
        # deferred: mlwright.registry loads scikit-learn (~1.5 s), not paid by `mlwright --help`
        from mlwright.registry import CHAMPION, promote

        promote(name, 1, alias=CHAMPION, store=tracking.run.store)
        state.console.print(f"models:/{name}@{CHAMPION} -> version 1 (the first version)")
