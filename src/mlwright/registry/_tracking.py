"""Every training is an MLflow run: settings, scores, leaderboard, data, artifact.

:func:`start_training_run` opens the run *before* training starts, so a crashed or killed
training is visible in the store. Used as a context manager, the run is marked ``FAILED`` when
training raises and ``KILLED`` on Ctrl-C. A process killed outright (SIGKILL, power cut) cannot
mark anything: its run stays ``RUNNING``; the next run in the same store finds such runs (their
process, recorded in tags, is gone) and marks them ``KILLED``. Nothing is ever registered from
an unfinished run: :meth:`TrainingRun.register` needs the completely logged artifact.

What a finished run holds:

- params: every training setting (after defaults), the data's shape and task;
- metrics: the validation score, its spread over the folds and each fold's score (as steps),
  the number of candidates, seconds per phase, counts of data-quality findings;
- the leaderboard of every candidate as an MLflow table (``leaderboard.json``);
- the model artifact under ``model/`` (an MLflow pyfunc model, see
  :mod:`mlwright.registry._pyfunc`), ``schema.json`` and ``findings.json`` at the top;
- the training data as an MLflow dataset input whose digest is mlwright's data fingerprint,
  and, when the file is small, a copy of it under ``data/`` for :func:`reproduce`;
- tags: mlwright's version, the git commit when the working directory is a repository, the
  data fingerprint, and the process that ran it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from mlwright import __version__
from mlwright.errors import RegistryError
from mlwright.registry._flavor import add_pyfunc_flavor
from mlwright.registry._references import _MODELS_ALIAS, _MODELS_VERSION
from mlwright.registry._registry import MODEL_PATH, VersionInfo, _model_version, register_version
from mlwright.registry._store import (
    DEFAULT_EXPERIMENT,
    Store,
    open_store,
    quiet_mlflow,
    translate_errors,
)

# Training data files up to this size are copied into the run, so the run can be reproduced
# even after the original file changed or moved. Larger data is referenced by path only.
DATA_COPY_LIMIT_BYTES = 50 * 1024 * 1024
DATA_FOLDER = "data"

TAG_PREFIX = "mlwright."
TAG_VERSION = "mlwright.version"
TAG_FINGERPRINT = "mlwright.data.fingerprint"
TAG_SOURCE = "mlwright.data.source"
TAG_REQUEST = "mlwright.request"
TAG_HOST = "mlwright.host"
TAG_PID = "mlwright.pid"
TAG_PROCESS_START = "mlwright.process_start"
TAG_REPRODUCES = "mlwright.reproduces"
TAG_DATA_COPY = "mlwright.data.copy"

_MAX_PARAM_LENGTH = 6000


class TrainingRun:
    """An MLflow run around one training; see the module docstring.

    Create it with :func:`start_training_run`. Use as a context manager around the training
    call, then :meth:`log_model` inside it and :meth:`register` after it.

    Attributes
    ----------
    store
        The open :class:`~mlwright.registry.Store`.
    run_id, experiment_id
        MLflow's identifiers.
    status
        ``RUNNING`` until the run ends, then ``FINISHED``, ``FAILED`` or ``KILLED``.
    version
        The registered version, after :meth:`register`.
    """

    def __init__(self, store: Store, run_id: str, experiment_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.status = "RUNNING"
        self.version: VersionInfo | None = None
        self._logged_model = False

    # -- context manager ---------------------------------------------------------------------
    def __enter__(self) -> TrainingRun:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if error is None:
            self.end("FINISHED" if self._logged_model else "FAILED")
            return
        # Recording the failure must not replace it: a store that fails now is left alone
        # (the next run marks this one KILLED).
        with contextlib.suppress(Exception):
            if isinstance(error, KeyboardInterrupt | SystemExit):
                self.end("KILLED")
            else:
                self.end("FAILED", message=f"{type(error).__name__}: {error}")

    @property
    def url(self) -> str:
        """Where to browse the run."""
        return self.store.run_url(self.run_id, self.experiment_id)

    @property
    def model_reference(self) -> str:
        """``runs:/<run id>/model``."""
        return f"runs:/{self.run_id}/{MODEL_PATH}"

    def end(self, status: str, message: str | None = None) -> None:
        """Mark the run ended (``FINISHED``, ``FAILED`` or ``KILLED``); idempotent."""
        if self.status != "RUNNING":
            return
        with quiet_mlflow(), contextlib.suppress(Exception):
            # Failing to record a failure must not hide the failure itself.
            if message:
                self.store.client.set_tag(self.run_id, "mlwright.error", message[:5000])
        with quiet_mlflow(), translate_errors(self.store.uri, f"end run {self.run_id}"):
            self.store.client.set_terminated(self.run_id, status=status)
        self.status = status

    # -- logging -----------------------------------------------------------------------------
    def log_model(self, model: Any, *, data: Any = None) -> None:
        """Log a trained model and everything known about how it was made.

        Parameters
        ----------
        model
            A saved :class:`mlwright.model.Model` (``model.path`` set).
        data
            The training data as given to training (a path or a DataFrame), for the dataset
            input and the stored copy; defaults to the source recorded in the model's lineage.
        """
        if model.path is None:
            raise RegistryError(
                "Only a saved model can be logged to MLflow: call model.save(DIRECTORY) first "
                "(`mlwright train` saves it for you)."
            )

        client = self.store.client
        lineage = model.lineage or {}
        metrics = model.metrics or {}
        data_info = lineage.get("data") or {}
        with quiet_mlflow(), translate_errors(self.store.uri, f"log run {self.run_id}"):
            add_pyfunc_flavor(model.path)
            client.log_batch(
                self.run_id,
                params=_params(lineage, model),
                metrics=_metrics(metrics, lineage, model.findings),
                tags=_result_tags(data_info),
            )
            _log_leaderboard(client, self.run_id, metrics.get("leaderboard") or [])
            _log_dataset(client, self.run_id, model, data_info)
            source = data if data is not None else data_info.get("source")
            _log_data_copy(client, self.run_id, source, data_info)
            for name in ("schema.json", "findings.json", "metrics.json", "lineage.json"):
                document = Path(model.path) / name
                if document.is_file():
                    client.log_artifact(self.run_id, str(document))
            client.log_artifacts(self.run_id, str(model.path), artifact_path=MODEL_PATH)
        self._logged_model = True

    def register(self, name: str, *, description: str | None = None) -> VersionInfo:
        """Register the logged model as a new version of ``name`` (after :meth:`log_model`).

        The run is marked ``FINISHED`` first: a registered version always comes from a
        finished run.
        """
        if not self._logged_model:
            raise RegistryError(
                f"Run {self.run_id} has no complete model yet; nothing was registered under "
                f"'{name}'. Register after training finished."
            )
        self.end("FINISHED")
        with quiet_mlflow(), translate_errors(self.store.uri, f"read run {self.run_id}"):
            run = self.store.client.get_run(self.run_id)
        self.version = register_version(
            name,
            run_id=self.run_id,
            store=self.store,
            tags={
                TAG_FINGERPRINT: run.data.tags.get(TAG_FINGERPRINT, ""),
                TAG_VERSION: run.data.tags.get(TAG_VERSION, ""),
            },
            description=description,
        )
        return self.version


def start_training_run(
    *,
    data: Any,
    settings: dict[str, Any],
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    store: Store | None = None,
    extra_tags: dict[str, str] | None = None,
) -> TrainingRun:
    """Open the tracking store and start the MLflow run of a training.

    Parameters
    ----------
    data
        The training data as the user gave it (a path, or a DataFrame).
    settings
        The settings as requested (recorded as a tag now; the settings after defaults become
        params when the model is logged).
    tracking_uri
        The store (see :func:`mlwright.registry.resolve_tracking_uri`).
    experiment
        MLflow experiment name (default ``mlwright``, or ``MLWRIGHT_EXPERIMENT``).
    run_name
        A display name for the run (default: the data's name and the time).
    store
        An already open store (then ``tracking_uri`` is ignored).
    extra_tags
        More tags to set on the run.

    Returns
    -------
    TrainingRun

    Raises
    ------
    RegistryError
        The store cannot be reached (the message names the URI).
    """

    store = store or open_store(tracking_uri)
    name = experiment or os.environ.get("MLWRIGHT_EXPERIMENT") or DEFAULT_EXPERIMENT
    experiment_id = store.experiment_id(name)
    _mark_dead_runs(store, experiment_id)
    source = _describe(data)
    tags = {
        TAG_VERSION: __version__,
        TAG_SOURCE: source,
        TAG_REQUEST: _truncate(json.dumps(_plain(settings), sort_keys=True, default=str)),
        TAG_HOST: socket.gethostname(),
        TAG_PID: str(os.getpid()),
        "mlflow.source.name": "mlwright train",
        "mlflow.source.type": "LOCAL",
        "mlflow.user": _user(),
    }
    start_ticks = _process_start_ticks(os.getpid())
    if start_ticks is not None:
        tags[TAG_PROCESS_START] = str(start_ticks)
    tags.update(_git_tags())
    tags.update(extra_tags or {})
    with quiet_mlflow(), translate_errors(store.uri, "start a run"):
        run = store.client.create_run(
            experiment_id, tags=tags, run_name=run_name or _run_name(source)
        )
    return TrainingRun(store, run.info.run_id, experiment_id)


# -- what gets logged -----------------------------------------------------------------------
def _params(lineage: dict[str, Any], model: Any) -> list[Any]:
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.entities import Param

    values: dict[str, Any] = {}
    for key, value in (lineage.get("settings") or {}).items():
        values[key] = value
    data_info = lineage.get("data") or {}
    for key in ("source", "n_rows", "n_columns", "task", "fingerprint"):
        if key in data_info:
            values[f"data.{key}"] = data_info[key]
    values.setdefault("target", getattr(model, "target", None))
    values["task"] = getattr(model, "task", None)
    if "seed" in lineage:
        values.setdefault("seed", lineage["seed"])
    return [
        Param(_param_key(key), _truncate(_text(value), _MAX_PARAM_LENGTH))
        for key, value in sorted(values.items())
    ]


def _param_key(key: str) -> str:
    return "".join(char if char.isalnum() or char in "_-. /" else "_" for char in str(key))[:250]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(_plain(value), sort_keys=True, default=str)


def _metrics(metrics: dict[str, Any], lineage: dict[str, Any], findings: Any) -> list[Any]:
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    name = _param_key(str(metrics.get("metric") or "score"))
    result = []

    def add(key: str, value: Any, step: int = 0) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        if value != value or value in (float("inf"), float("-inf")):
            return
        result.append(Metric(_param_key(key), float(value), now, step))

    add(f"validation_{name}", metrics.get("validation_score"))
    add(f"validation_{name}_std", metrics.get("validation_std"))
    for step, score in enumerate(metrics.get("fold_scores") or []):
        add(f"validation_{name}_fold", score, step)
    add("n_folds", metrics.get("n_folds"))
    add("n_candidates", len(metrics.get("leaderboard") or []))
    for phase, seconds in (lineage.get("timings") or {}).items():
        add(f"seconds_{phase}", seconds)
    counts = {"error": 0, "warning": 0, "info": 0}
    for finding in findings or []:
        severity = finding.get("severity") if isinstance(finding, dict) else None
        if severity in counts:
            counts[severity] += 1
    for severity, count in counts.items():
        add(f"data_findings_{severity}", count)
    return result


def _result_tags(data_info: dict[str, Any]) -> list[Any]:
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.entities import RunTag

    tags = []
    if data_info.get("fingerprint"):
        tags.append(RunTag(TAG_FINGERPRINT, str(data_info["fingerprint"])))
    return tags


def _log_leaderboard(client: Any, run_id: str, leaderboard: list[dict[str, Any]]) -> None:
    if not leaderboard:
        return
    columns: dict[str, list[Any]] = {}
    keys: list[str] = []
    for row in leaderboard:
        for key in row:
            if key not in keys:
                keys.append(key)
    for key in keys:
        columns[key] = [_cell(row.get(key)) for row in leaderboard]
    client.log_table(run_id, data=columns, artifact_file="leaderboard.json")


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if value == value else None
    return json.dumps(_plain(value), sort_keys=True, default=str)


def _log_dataset(client: Any, run_id: str, model: Any, data_info: dict[str, Any]) -> None:
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.entities import Dataset, DatasetInput, InputTag

    fingerprint = str(data_info.get("fingerprint") or "")
    if not fingerprint:
        return
    source = str(data_info.get("source") or "in-memory DataFrame")
    # MLflow stores at most 36 characters of digest; the full fingerprint is in the profile
    # and in the run's tags.
    digest = fingerprint.split(":", 1)[-1][:32]
    columns = []
    for column in getattr(getattr(model, "schema", None), "columns", []) or []:
        columns.append(
            {
                "name": column.name,
                "type": _mlflow_type(getattr(column, "dtype", "string")),
                "required": not getattr(column, "nullable", True),
            }
        )
    profile = {
        "num_rows": data_info.get("n_rows"),
        "num_columns": data_info.get("n_columns"),
        "fingerprint": fingerprint,
        "target": data_info.get("target"),
        "task": data_info.get("task"),
    }
    path = Path(source)
    is_file = path.is_file()
    dataset = Dataset(
        name=_dataset_name(path if is_file else None),
        digest=digest,
        source_type="local" if is_file else "code",
        source=json.dumps({"uri": path.resolve().as_uri()} if is_file else {"tags": {}}),
        schema=json.dumps({"mlflow_colspec": columns}) if columns else None,
        profile=json.dumps(profile, default=str),
    )
    client.log_inputs(
        run_id,
        datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])],
    )


def _mlflow_type(dtype: str) -> str:
    return {
        "integer": "long",
        "float": "double",
        "boolean": "boolean",
        "datetime": "datetime",
    }.get(str(dtype), "string")


def _dataset_name(path: Path | None) -> str:
    if path is None:
        return "training-data"
    stem = path.stem
    if stem.lower() in {"train", "training", "data", "dataset"} and path.parent.name:
        return f"{path.resolve().parent.name}/{path.name}"
    return path.name


def _log_data_copy(client: Any, run_id: str, source: Any, data_info: dict[str, Any]) -> None:
    if not isinstance(source, str | os.PathLike):
        return
    path = Path(source)
    try:
        if not path.is_file() or path.stat().st_size > DATA_COPY_LIMIT_BYTES:
            return
    except OSError:
        return
    client.log_artifact(run_id, str(path), artifact_path=DATA_FOLDER)
    client.set_tag(run_id, TAG_DATA_COPY, f"{DATA_FOLDER}/{path.name}")


# -- runs whose process died ----------------------------------------------------------------
def _mark_dead_runs(store: Store, experiment_id: str) -> None:
    """Mark ``KILLED`` the RUNNING runs of this host whose training process is gone."""
    host = socket.gethostname()
    with quiet_mlflow(), contextlib.suppress(Exception):
        # Best effort: tidying up after others must never stop a new training.
        runs = store.client.search_runs(
            [experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and tags.`{TAG_HOST}` = '{host}'",
            max_results=200,
        )
        for run in runs:
            tags = run.data.tags
            try:
                pid = int(tags.get(TAG_PID, ""))
            except ValueError:
                continue
            if _process_alive(pid, tags.get(TAG_PROCESS_START)):
                continue
            store.client.set_tag(
                run.info.run_id,
                "mlwright.error",
                f"the training process (pid {pid}) ended without closing the run",
            )
            store.client.set_terminated(run.info.run_id, status="KILLED")


def _process_alive(pid: int, start_ticks: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start_ticks:
        # A live process with the same pid but another start time is a reused pid.
        current = _process_start_ticks(pid)
        if current is not None and str(current) != start_ticks:
            return False
    return True


def _process_start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


# -- small helpers -------------------------------------------------------------------------
def _describe(data: Any) -> str:
    if isinstance(data, str | os.PathLike):
        text = os.fspath(data)
        if "://" in text:
            return text
        return str(Path(text).expanduser().resolve())
    if hasattr(data, "shape"):
        return f"in-memory DataFrame ({data.shape[0]} rows x {data.shape[1]} columns)"
    return type(data).__name__


def _run_name(source: str) -> str:
    stem = Path(source).stem if not source.startswith("in-memory") else "dataframe"
    if stem.lower() in {"train", "training", "data", "dataset"}:
        stem = Path(source).parent.name or stem
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and not hasattr(value, "__len__"):
        return value.item()
    return value


def _truncate(text: str, limit: int = 5000) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers): MLflow shows "unknown"
        return "unknown"


def _git_tags() -> dict[str, str]:
    """The working directory's git commit (and whether it had uncommitted changes)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if commit.returncode != 0 or not commit.stdout.strip():
        return {}
    head = commit.stdout.strip()
    tags = {"mlflow.source.git.commit": head, "mlwright.git.commit": head}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if status.returncode == 0:
            tags["mlwright.git.dirty"] = "true" if status.stdout.strip() else "false"
    return tags


# -- evaluations of registered models ---------------------------------------------------------
def log_evaluation(
    reference: str,
    evaluation: Any,
    data: Any,
    *,
    tracking_uri: str | None = None,
) -> str | None:
    """Record an evaluation on the training run of a registry model.

    ``mlwright evaluate models:/NAME@champion test.csv`` calls this, so that the run of the
    evaluated model holds its test scores next to its validation scores.

    Parameters
    ----------
    reference
        ``runs:/<id>/...`` or ``models:/NAME/VERSION`` / ``models:/NAME@alias``; local paths
        have no run and are ignored.
    evaluation
        A :class:`mlwright.evaluate.Evaluation` (``flat_metrics()`` and ``to_dict()``).
    data
        The evaluation data (a path, or a DataFrame), recorded as a tag and in the JSON.
    tracking_uri
        The store (see :func:`mlwright.registry.resolve_tracking_uri`).

    Returns
    -------
    str or None
        The run id the evaluation was logged to, or None for a reference without a run.

    Notes
    -----
    Metrics are logged as ``test_<metric>`` (with ``_lower`` / ``_upper`` bootstrap bounds),
    one step per evaluation; the whole result goes to ``evaluations/<time>-<data>.json``.
    """
    text = str(reference)
    if not text.startswith(("runs:/", "models:/")):
        return None
    store = open_store(tracking_uri)
    if text.startswith("runs:/"):
        run_id = text.removeprefix("runs:/").split("/", 1)[0]
    else:
        match = _MODELS_VERSION.match(text) or _MODELS_ALIAS.match(text)
        if match is None:
            return None
        wanted = match.groupdict().get("version") or match.groupdict().get("alias")
        with quiet_mlflow():
            run_id = _model_version(store, match["name"], wanted).run_id
    if not run_id:
        return None
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.entities import Metric, RunTag

    client = store.client
    source = _describe(data)
    now = int(time.time() * 1000)
    with quiet_mlflow():
        step = len(client.get_metric_history(run_id, "test_rows"))
        flat = dict(evaluation.flat_metrics())
        flat["rows"] = float(getattr(evaluation, "n_rows", 0) or 0)
        metrics = [
            Metric(_param_key(f"test_{name}"), float(value), now, step)
            for name, value in flat.items()
        ]
        client.log_batch(
            run_id, metrics=metrics, tags=[RunTag("mlwright.evaluated_on", _truncate(source))]
        )
        document = dict(evaluation.to_dict())
        document["data"] = source
        document["step"] = step
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        name = _folder_safe(Path(source).name if not source.startswith("in-memory") else "frame")
        client.log_dict(
            run_id,
            json.loads(json.dumps(_plain(document), default=str)),
            f"evaluations/{stamp}-{name}.json",
        )
    return run_id


def _folder_safe(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in name) or "data"
