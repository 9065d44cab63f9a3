"""Re-run a recorded training from its settings and data, and compare the scores.

The run's ``model/lineage.json`` holds every setting (after defaults), the seed and the data's
fingerprint. The data is taken from, in order: the path the caller gives, the path the run
recorded, the copy stored in the run (small files are copied at training). Whatever is used
must have the recorded fingerprint: otherwise the "reproduction" would train on other data, so
it is refused. The new training is itself a tracked run, tagged with the run it reproduces.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwright.data import fingerprint, read
from mlwright.data._markers import LEGACY_MARKERS
from mlwright.errors import RegistryError
from mlwright.model import train
from mlwright.model._train_api import _prepare_frame
from mlwright.registry._registry import MODEL_PATH
from mlwright.registry._store import Store, home, open_store, quiet_mlflow, translate_errors
from mlwright.registry._tracking import (
    TAG_DATA_COPY,
    TAG_REPRODUCES,
    TAG_SOURCE,
    start_training_run,
)

__all__ = ["ReproduceResult", "reproduce"]


@dataclass
class ReproduceResult:
    """The outcome of :func:`reproduce`.

    Attributes
    ----------
    original_run_id, run_id
        The reproduced run and the new run.
    metric, greater_is_better
        The validation metric and its direction.
    original_score, score
        The validation scores of the original and the new training.
    data, data_origin
        The data file used and where it came from (``"given"``, ``"recorded path"``,
        ``"stored copy"``).
    fingerprint
        The data's fingerprint (equal to the recorded one).
    model_path
        The new artifact directory.
    deterministic
        Whether the settings make training deterministic (a trial limit, not a time budget).
    notes
        Remarks on what may differ.
    """

    original_run_id: str
    run_id: str
    metric: str
    greater_is_better: bool
    original_score: float | None
    score: float | None
    data: str
    data_origin: str
    fingerprint: str
    model_path: str
    deterministic: bool
    notes: list[str] = field(default_factory=list)

    @property
    def difference(self) -> float | None:
        """New score minus original score."""
        if self.score is None or self.original_score is None:
            return None
        return self.score - self.original_score

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "original_run_id": self.original_run_id,
            "run_id": self.run_id,
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "original_score": self.original_score,
            "score": self.score,
            "difference": self.difference,
            "data": self.data,
            "data_origin": self.data_origin,
            "fingerprint": self.fingerprint,
            "model_path": self.model_path,
            "deterministic": self.deterministic,
            "notes": list(self.notes),
        }


def reproduce(
    run_id: str,
    *,
    data: str | None = None,
    output: str | None = None,
    tracking_uri: str | None = None,
    register: str | None = None,
    progress: Any = None,
) -> ReproduceResult:
    """Train again exactly as run ``run_id`` did, on the same data, and compare the scores.

    Parameters
    ----------
    run_id
        The MLflow run of an ``mlwright train``.
    data
        The training data to use instead of the recorded path (it must have the recorded
        fingerprint).
    output
        Where to write the new artifact (default ``./models/reproduce-<run>-<time>``).
    tracking_uri
        The store (see :func:`mlwright.registry.resolve_tracking_uri`).
    register
        Register the new model as a version of this name.
    progress
        Passed to training (search progress events).

    Returns
    -------
    ReproduceResult

    Raises
    ------
    RegistryError
        The run does not exist or holds no model; no data with the recorded fingerprint can
        be found.
    """
    store = open_store(tracking_uri)
    run = _get_run(store, run_id)
    with tempfile.TemporaryDirectory(prefix="mlwright-reproduce-") as scratch:
        lineage = _download_json(store, run_id, f"{MODEL_PATH}/lineage.json", Path(scratch))
        metrics = _download_json(store, run_id, f"{MODEL_PATH}/metrics.json", Path(scratch))
        settings = dict(lineage.get("settings") or {})
        recorded = str((lineage.get("data") or {}).get("fingerprint") or "")
        if not settings.get("target") or not recorded:
            raise RegistryError(
                f"Run {run_id} does not record its training settings and data fingerprint "
                "(its model/lineage.json lacks them), so it cannot be reproduced."
            )

        # Runs recorded before the missing-value rule was read every marker as missing.
        settings.setdefault("na_values", list(LEGACY_MARKERS))
        candidates = _data_candidates(data, run.data.tags.get(TAG_SOURCE), lineage)
        chosen, origin = _find_data(
            store,
            run,
            candidates,
            settings["target"],
            recorded,
            Path(scratch),
            na_values=settings["na_values"],
        )
        request = {key: settings.get(key) for key in _TRAIN_SETTINGS if key in settings}
        destination = Path(output) if output else _default_output(run_id)
        training = start_training_run(
            data=chosen,
            settings=request,
            store=store,
            experiment=_experiment_name(store, run),
            extra_tags={TAG_REPRODUCES: run_id},
        )

        with training:
            model = train(
                chosen,
                output=destination,
                progress=progress,
                **request,
            )
            training.log_model(model, data=chosen)
        if register:
            training.register(register)
    new_metrics = model.metrics or {}
    notes = []
    deterministic = settings.get("max_trials") is not None and settings.get("time_limit") is None
    if not deterministic:
        notes.append(
            "The original run was bounded by a time limit, so the number of candidates tried "
            "depends on the machine's speed and load; scores may differ. Train with "
            "--max-trials (and no --time-limit) for bit-for-bit reproducible runs."
        )
    recorded_versions = lineage.get("versions") or lineage.get("library_versions") or {}
    current_versions = (
        (model.lineage or {}).get("versions") or (model.lineage or {}).get("library_versions") or {}
    )
    changed = sorted(
        name
        for name, version in recorded_versions.items()
        if isinstance(version, str) and current_versions.get(name) not in (None, version)
    )
    if changed:
        notes.append(
            "Library versions differ from the original run: "
            + ", ".join(
                f"{name} {recorded_versions[name]} -> {current_versions[name]}" for name in changed
            )
            + "."
        )
    return ReproduceResult(
        original_run_id=run_id,
        run_id=training.run_id,
        metric=str(metrics.get("metric") or new_metrics.get("metric") or "score"),
        greater_is_better=bool(metrics.get("greater_is_better", True)),
        original_score=_number(metrics.get("validation_score")),
        score=_number(new_metrics.get("validation_score")),
        data=str(chosen),
        data_origin=origin,
        fingerprint=recorded,
        model_path=str(model.path),
        deterministic=deterministic,
        notes=notes,
    )


# The arguments of mlwright.train that lineage.json records under "settings".
_TRAIN_SETTINGS = (
    "target",
    "time_limit",
    "metric",
    "seed",
    "max_trials",
    "models",
    "task",
    "n_jobs",
    "drop_flagged_columns",
    "feature_types",
    "na_values",
)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _get_run(store: Store, run_id: str) -> Any:
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.exceptions import MlflowException

    with quiet_mlflow(), translate_errors(store.uri, f"read run {run_id}"):
        try:
            run = store.client.get_run(run_id)
        except MlflowException as err:
            if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            raise RegistryError(
                f"No run '{run_id}' in the MLflow store {store.uri}. `mlwright train` prints "
                "the run id; `mlflow ui` lists the runs. Pass --tracking-uri if the run is in "
                "another store."
            ) from err
    if run.info.status != "FINISHED":
        raise RegistryError(
            f"Run {run_id} did not finish (status {run.info.status}): it recorded no complete "
            "model, so there is nothing to reproduce. Pick a finished run."
        )
    return run


def _download_json(store: Store, run_id: str, path: str, scratch: Path) -> dict[str, Any]:
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    import mlflow.artifacts

    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.exceptions import MlflowException

    with quiet_mlflow(), translate_errors(store.uri, f"read {path} of run {run_id}"):
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=str(scratch), tracking_uri=store.uri
            )
        except (MlflowException, OSError) as err:
            raise RegistryError(
                f"Run {run_id} has no {path} (was it an `mlwright train` run?), so it cannot "
                "be reproduced."
            ) from err
    return json.loads(Path(local).read_text(encoding="utf-8"))


def _data_candidates(
    given: str | None, recorded_source: str | None, lineage: dict[str, Any]
) -> list[tuple[str, str]]:
    if given:
        return [(given, "given")]
    candidates = []
    for source in (recorded_source, (lineage.get("data") or {}).get("source")):
        if source and not source.startswith(("in-memory", "the ")):
            candidates.append((source, "recorded path"))
    return candidates


def _find_data(
    store: Store,
    run: Any,
    candidates: list[tuple[str, str]],
    target: str,
    recorded: str,
    scratch: Path,
    *,
    na_values: Any = None,
) -> tuple[str, str]:

    tried = []
    for source, origin in candidates:
        if not Path(source).is_file():
            tried.append(f"{source} ({origin}: not found)")
            if origin == "given":
                raise RegistryError(
                    f"The data file '{source}' does not exist. Pass the file the run was "
                    "trained on, or leave --data out to use the recorded path or stored copy."
                )
            continue
        actual = _fingerprint(source, target, na_values)
        if actual == recorded:
            return source, origin
        tried.append(f"{source} ({origin}: fingerprint {actual[:19]}...)")
        if origin == "given":
            break
    copy = run.data.tags.get(TAG_DATA_COPY)
    if copy and not any(origin == "given" for _, origin in candidates):
        # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
        import mlflow.artifacts

        with quiet_mlflow(), translate_errors(store.uri, "download the stored training data"):
            local = mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id,
                artifact_path=copy,
                dst_path=str(scratch / "data"),
                tracking_uri=store.uri,
            )
        stored = _keep(Path(local))
        actual = _fingerprint(str(stored), target, na_values)
        if actual == recorded:
            return str(stored), "stored copy"
        tried.append(f"stored copy {copy} (fingerprint {actual[:19]}...)")
    raise RegistryError(
        f"Refusing to reproduce run {run.info.run_id}: no data with its recorded fingerprint "
        f"{recorded} was found. Tried: {'; '.join(tried) or 'nothing (no path recorded)'}. "
        "Reproducing on different data would not reproduce anything; pass the original file "
        "with --data."
    )


def _keep(path: Path) -> Path:
    # The stored copy is downloaded into a temporary folder; the new run records it as its
    # data, so keep it where the user can find it.

    destination = home() / "reproduce-data" / f"{int(time.time())}-{path.name}"
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(path.read_bytes())
    return destination


def _fingerprint(source: str, target: str, na_values: Any = None) -> str:
    frame = read(source, na_values=na_values)
    # Training fingerprints the frame after dropping rows without a target; do the same.
    frame, _ = _prepare_frame(frame, target, source)
    return fingerprint(frame)


def _experiment_name(store: Store, run: Any) -> str:
    with quiet_mlflow():
        return store.client.get_experiment(run.info.experiment_id).name


def _default_output(run_id: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return Path("models") / f"reproduce-{run_id[:8]}-{stamp}"
