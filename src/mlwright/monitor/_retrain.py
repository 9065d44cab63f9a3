"""Retraining: a challenger trained with the champion's settings, promoted only on evidence.

``retrain`` takes new labelled data (a file, or the prediction log's features joined with
their feedback, optionally plus the original training data), keeps a fresh held-out part of
the new data aside, trains a challenger on the rest with the champion's recorded settings,
registers it under the ``challenger`` alias, and compares champion and challenger on the
held-out rows with :func:`mlwright.evaluate.compare` (paired bootstrap). The promotion policy
decides: ``never``, ``if-better`` (only when the verdict is "better" at ``alpha``) or
``always``. The decision and its evidence are logged to the challenger's MLflow run.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mlwright
from mlwright.data import read
from mlwright.data._markers import LEGACY_MARKERS
from mlwright.errors import ConfigError, DataError
from mlwright.evaluate import compare
from mlwright.monitor._feedback import read_log
from mlwright.monitor._reference import category_strings
from mlwright.registry import CHALLENGER, CHAMPION, promote, start_training_run
from mlwright.registry._registry import quiet_mlflow

POLICIES = ("never", "if-better", "always")
# Settings recorded in lineage that train() accepts again.
_TRAIN_SETTINGS = (
    "time_limit",
    "metric",
    "seed",
    "max_trials",
    "models",
    "task",
    "n_jobs",
    "drop_flagged_columns",
    "feature_types",
)


@dataclass
class RetrainResult:
    """The outcome of a retraining.

    Attributes
    ----------
    decision
        ``promoted`` or ``kept champion``.
    reason
        One sentence: the policy and the verdict.
    comparison
        The champion-vs-challenger :class:`mlwright.evaluate.Comparison` as a dict.
    challenger_path
        Where the challenger's artifact is.
    registered
        ``{"name", "version", "run_id"}`` when registered, else None.
    n_train, n_holdout
        Rows used to train and to compare.
    """

    decision: str
    promoted: bool
    reason: str
    policy: str
    comparison: dict[str, Any]
    challenger_path: str
    registered: dict[str, Any] | None
    n_train: int
    n_holdout: int
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "promoted": self.promoted,
            "reason": self.reason,
            "policy": self.policy,
            "comparison": self.comparison,
            "challenger_path": self.challenger_path,
            "registered": self.registered,
            "n_train": self.n_train,
            "n_holdout": self.n_holdout,
            "settings": self.settings,
        }


def registered_name(reference: str) -> str | None:
    """``NAME`` of ``models:/NAME@alias`` or ``models:/NAME/3``; None for other references."""
    text = str(reference)
    if not text.startswith("models:/"):
        return None
    rest = text[len("models:/") :]
    return rest.split("@", 1)[0].split("/", 1)[0] or None


def _labels_as_classes(model: Any, values: Any) -> np.ndarray:

    series = pd.Series(values, dtype=object).reset_index(drop=True)
    if model.task == "regression":
        return pd.to_numeric(series, errors="coerce").to_numpy(float)
    by_text = {str(label): label for label in model.classes or []}
    texts = category_strings(series).reindex(series.index)
    return np.asarray(
        [by_text.get(t, t) if isinstance(t, str) else None for t in texts], dtype=object
    )


def data_from_log(
    model: Any,
    log_uri: str,
    *,
    name: str | None = None,
    since: float | None = None,
) -> pd.DataFrame:
    """Logged features of labelled predictions, with the outcome in the target column."""

    log = read_log(log_uri, model=name, since=since, with_feedback=True).labelled()
    if len(log) == 0:
        raise DataError(
            f"The prediction log '{log_uri}' holds no labelled predictions"
            f"{f' for {name!r}' if name else ''}, so there is nothing to retrain on. Send "
            "outcomes first (POST /feedback or mlwright feedback), or pass --data NEW.csv."
        )
    frame = log.features.copy()
    frame[model.target] = _labels_as_classes(model, log.meta["actual"].to_numpy())
    return frame.loc[frame[model.target].notna()].reset_index(drop=True)


def _split(frame: pd.DataFrame, target: str, task: str, share: float, seed: int):
    rng = np.random.default_rng(seed)
    n = len(frame)
    holdout = np.zeros(n, dtype=bool)
    if task == "regression":
        holdout[rng.permutation(n)[: max(1, round(share * n))]] = True
    else:
        # Stratified: the same share of every class goes to the held-out part.
        labels = frame[target].astype(str).to_numpy()
        for label in np.unique(labels):
            rows = np.flatnonzero(labels == label)
            chosen = rng.permutation(rows)[: max(1, round(share * rows.size))]
            holdout[chosen] = True
    return frame.loc[~holdout].reset_index(drop=True), frame.loc[holdout].reset_index(drop=True)


def retrain(
    champion: str | os.PathLike[str],
    *,
    data: Any = None,
    from_log: str | None = None,
    log_name: str | None = None,
    include_original: bool = False,
    promote: str = "if-better",
    name: str | None = None,
    holdout: float = 0.3,
    alpha: float = 0.05,
    output: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    since: float | None = None,
) -> RetrainResult:
    """Train a challenger on new data and promote it only when it is proven better.

    Parameters
    ----------
    champion
        The current model: a registry reference (``models:/NAME@champion``) or a path.
    data
        New labelled data (path or DataFrame with the target column).
    from_log
        Instead of ``data``: the prediction log whose labelled predictions become the data.
    log_name
        The served model name to take from the log.
    include_original
        Add the champion's original training data (when its source file still exists) to the
        challenger's training rows (never to the held-out rows).
    promote
        ``never``, ``if-better`` or ``always``.
    name
        The registered model name (default: taken from a ``models:/`` reference). Without a
        name nothing is registered or promoted; the decision is still made and returned.
    holdout
        Share of the new data kept aside for the comparison.
    alpha
        Significance level of the comparison.
    output
        Where to save the challenger (default: a new temporary folder).
    tracking_uri
        MLflow store.
    overrides
        Training settings to change (e.g. ``{"max_trials": 2}``).
    seed
        Seed of the split and training (default: the champion's).
    since
        With ``from_log``: only predictions from then on.
    """
    if promote not in POLICIES:
        raise ConfigError(
            f"Unknown promotion policy {promote!r}; choose one of {', '.join(POLICIES)}."
        )
    if not 0 < float(holdout) < 1:
        raise ConfigError(f"The held-out share must be between 0 and 1; got {holdout}.")
    if (data is None) == (from_log is None):
        raise ConfigError(
            "Retraining needs exactly one source of new data: --data NEW.csv, or --from-log "
            "(the logged predictions joined with their feedback)."
        )
    name = name or registered_name(str(champion))
    model = mlwright.load(champion)
    lineage = model.lineage or {}
    recorded = dict(lineage.get("settings") or {})
    settings = {key: recorded[key] for key in _TRAIN_SETTINGS if key in recorded}
    settings.update(overrides or {})
    if settings.get("max_trials") is not None:
        # A bounded number of trials decides the search; the recorded time limit was a default.
        settings.setdefault("time_limit", None)
    seed = int(settings.get("seed", 0) if seed is None else seed)
    settings["seed"] = seed
    target = model.target

    if from_log is not None:
        frame = data_from_log(model, from_log, name=log_name, since=since)
        source = f"prediction log {from_log}"
    else:
        # Read as the champion's training data was read (its markers rule).
        frame = (
            read(data)
            if isinstance(data, pd.DataFrame)
            else read(data, na_values=model.reading_rule)
        )
        source = str(data) if not isinstance(data, pd.DataFrame) else "DataFrame"
        if target not in frame.columns:
            raise DataError(
                f"The new data {source} has no column {target!r} (the model's target); "
                "retraining needs labelled rows."
            )
        frame = frame.loc[frame[target].notna()].reset_index(drop=True)
    if len(frame) < 20:
        raise DataError(
            f"Only {len(frame)} labelled rows in {source}: too few to train a challenger and "
            "keep a held-out part to compare on. Collect more labelled predictions first."
        )
    train_part, heldout = _split(frame, target, model.task, float(holdout), seed)
    if include_original:
        original = (lineage.get("data") or {}).get("source")
        if not original or not Path(original).is_file():
            raise DataError(
                f"The champion's original training data ({original!r}) is not available, so "
                "it cannot be combined with the new data. Drop --with-original or pass the "
                "combined data with --data."
            )

        # The original data is read with the rule recorded at its training (runs recorded
        # before the rule existed read every marker as missing).
        old = read(original, na_values=recorded.get("na_values", list(LEGACY_MARKERS)))
        columns = [c for c in train_part.columns if c in old.columns]
        train_part = pd.concat([old[columns], train_part[columns]], ignore_index=True)
    destination = Path(output) if output else Path(tempfile.mkdtemp(prefix="mlwright-challenger-"))
    challenger = mlwright.train(
        train_part, target=target, output=destination, overwrite=True, **settings
    )
    comparison = compare(
        model, challenger, heldout, alpha=alpha, names=("champion", "challenger"), seed=seed
    )
    better = comparison.verdict == "better"
    promoted = promote == "always" or (promote == "if-better" and better)
    reason = (
        f"policy {promote}: {comparison.summary()}"
        if promote != "always"
        else f"policy always (verdict: {comparison.verdict}). {comparison.summary()}"
    )
    registered = None
    if name:
        registered = _register(
            name,
            challenger,
            train_part,
            settings,
            comparison,
            promoted=promoted,
            policy=promote,
            reason=reason,
            tracking_uri=tracking_uri,
            source=source,
        )
    elif promoted:
        reason += (
            " The champion is a path, not a registered model, so there is no alias to move: "
            f"deploy the challenger at {destination} yourself."
        )
    return RetrainResult(
        decision="promoted" if promoted else "kept champion",
        promoted=promoted,
        reason=reason,
        policy=promote,
        comparison=comparison.to_dict(),
        challenger_path=str(destination),
        registered=registered,
        n_train=len(train_part),
        n_holdout=len(heldout),
        settings={k: v for k, v in settings.items() if v is not None},
    )


def _register(
    name: str,
    challenger: Any,
    frame: pd.DataFrame,
    settings: dict[str, Any],
    comparison: Any,
    *,
    promoted: bool,
    policy: str,
    reason: str,
    tracking_uri: str | None,
    source: str,
) -> dict[str, Any]:
    run = start_training_run(
        data=frame,
        settings=settings,
        tracking_uri=tracking_uri,
        run_name=f"retrain {name}",
        extra_tags={"mlwright.retrain.source": source[:500]},
    )
    with run:
        run.log_model(challenger, data=frame)
        version = run.register(name, description=f"Challenger retrained on {source}.")
    promote(name, version.version, alias=CHALLENGER, store=run.store)
    if promoted:
        promote(name, version.version, alias=CHAMPION, store=run.store)
    decision = {
        "policy": policy,
        "promoted": promoted,
        "reason": reason,
        "comparison": comparison.to_dict(),
        "version": version.version,
    }
    client = run.store.client
    with quiet_mlflow():
        client.set_tag(run.run_id, "mlwright.retrain.decision", "promoted" if promoted else "kept")
        client.set_tag(run.run_id, "mlwright.retrain.verdict", comparison.verdict)
        client.log_metric(run.run_id, "retrain.difference", float(comparison.difference.value))
        client.log_metric(run.run_id, "retrain.p_value", float(comparison.p_value))
        client.log_metric(run.run_id, "retrain.champion_score", float(comparison.a.value))
        client.log_metric(run.run_id, "retrain.challenger_score", float(comparison.b.value))
        client.log_dict(
            run.run_id, json.loads(json.dumps(decision, default=str)), "retrain/decision.json"
        )
    return {"name": name, "version": version.version, "run_id": run.run_id}
