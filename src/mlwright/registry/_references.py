"""Resolve registry model references to a local artifact directory, downloading once.

``runs:/<run id>/model``, ``models:/NAME/VERSION``, ``models:/NAME/latest`` and
``models:/NAME@alias`` name a model in the MLflow store. :func:`resolve` turns one into a
directory on disk that :func:`mlwright.model.load` reads. Downloads go to a cache in the project
folder (``<home>/cache/models``), keyed by store, run and path or by model and version: the
files of a version never change, so each is downloaded once. An alias is looked up each time
(it moves), and then served from the cache of the version it points at.

Serving resolves a reference once at start-up and then loads the directory; MLflow is only
imported here, never on the prediction path.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

from mlwright.errors import RegistryError
from mlwright.registry._registry import _model_version
from mlwright.registry._store import home, open_store, quiet_mlflow, translate_errors

_RUNS = re.compile(r"^runs:/(?P<run>[^/]+)(?:/(?P<path>.*))?$")
_MODELS_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[^/@]+)/?$")
_MODELS_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)/?$")
# A file MLflow writes into model directories it downloads from the registry (name and
# version as YAML). It is not part of the mlwright artifact, so the cached copy drops it.
_MLFLOW_META_FILE = "registered_model_meta"
_MANIFEST = "MANIFEST"


def cache_root(tracking_uri: str) -> Path:
    """The download cache of one tracking store (a folder per store URI)."""
    digest = hashlib.sha256(tracking_uri.encode("utf-8")).hexdigest()[:16]
    return home() / "cache" / "models" / digest


def resolve(reference: str, *, tracking_uri: str | None = None) -> Path:
    """Return the local artifact directory named by a registry reference.

    Parameters
    ----------
    reference
        ``runs:/<run id>/<path>`` (``path`` defaults to ``model``), ``models:/NAME/VERSION``,
        ``models:/NAME/latest`` or ``models:/NAME@alias``.
    tracking_uri
        The store; see :func:`mlwright.registry.resolve_tracking_uri` for the default.

    Returns
    -------
    pathlib.Path
        A complete copy of the artifact in the cache (verification is left to
        :func:`mlwright.model.load`).

    Raises
    ------
    RegistryError
        The reference is malformed or names nothing in the store.
    """
    text = str(reference).strip()
    runs = _RUNS.match(text)
    by_version = _MODELS_VERSION.match(text)
    by_alias = _MODELS_ALIAS.match(text)
    if not (runs or by_version or by_alias):
        raise RegistryError(
            f"'{text}' is not a model reference mlwright understands. Use a local artifact "
            "directory, runs:/<run id>/model, models:/NAME/VERSION or models:/NAME@alias "
            "(e.g. models:/credit-risk@champion)."
        )
    store = open_store(tracking_uri)
    root = cache_root(store.uri)
    if runs:
        run_id = runs["run"]
        path = (runs["path"] or "model").strip("/") or "model"
        target = root / "runs" / _safe(run_id) / _safe(path)
        if not _complete(target):
            source = _run_source(store, run_id, path, text)
            _download(store, source, target, text)
        return target

    name = (by_version or by_alias)["name"]
    wanted = by_version["version"] if by_version else by_alias["alias"]
    with quiet_mlflow(), translate_errors(store.uri, f"look up {text}"):
        version = _model_version(store, name, wanted)
    target = root / "registered" / _safe(name) / str(version.version)
    if not _complete(target):
        _download(store, version.source, target, text)
    return target


def _safe(part: str) -> str:
    # Keep cache paths readable but free of separators and dot-dot tricks.
    cleaned = "".join(char if char.isalnum() or char in "-_." else "_" for char in part)
    cleaned = cleaned.strip(".") or "_"
    if cleaned != part:
        cleaned += "-" + hashlib.sha256(part.encode("utf-8")).hexdigest()[:8]
    return cleaned


def _complete(directory: Path) -> bool:
    # Downloads land in a temporary folder renamed into place, so an existing directory with
    # a MANIFEST is a finished download.
    return (directory / _MANIFEST).is_file()


def _run_source(store, run_id: str, path: str, reference: str) -> str:  # type: ignore[no-untyped-def]
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.exceptions import MlflowException

    with quiet_mlflow(), translate_errors(store.uri, f"look up {reference}"):
        try:
            run = store.client.get_run(run_id)
        except MlflowException as err:
            if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            raise RegistryError(
                f"No run '{run_id}' in the MLflow store {store.uri} (from {reference}). Check "
                "the run id (`mlwright train` prints it), or --tracking-uri if the run is in "
                "another store."
            ) from err
        if run.info.status != "FINISHED":
            raise RegistryError(
                f"Run '{run_id}' did not finish (status {run.info.status}), so it has no "
                f"complete model to load from {reference}. Use a finished run, or train again."
            )
        return f"{run.info.artifact_uri.rstrip('/')}/{path}"


def _download(store, source: str, target: Path, reference: str) -> None:  # type: ignore[no-untyped-def]
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    import mlflow.artifacts

    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.exceptions import MlflowException

    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.parent / f".download-{target.name}-{uuid.uuid4().hex[:12]}"
    scratch.mkdir()
    try:
        with quiet_mlflow(), translate_errors(store.uri, f"download {reference}"):
            try:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=str(scratch), tracking_uri=store.uri
                )
            except MlflowException as err:
                if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    raise
                raise RegistryError(
                    f"The model files of {reference} are missing from the store ({source}): "
                    f"{err.message}. The artifact store may have been cleaned; register the "
                    "model again from its artifact directory."
                ) from err
        downloaded = Path(local)
        if not downloaded.is_dir() or not (downloaded / _MANIFEST).is_file():
            raise RegistryError(
                f"{reference} is not an mlwright model: {source} holds no {_MANIFEST}. "
                "Only models trained by mlwright (or saved with Model.save) can be loaded."
            )
        meta = downloaded / _MLFLOW_META_FILE
        if meta.is_file():
            meta.unlink()
        try:
            os.replace(downloaded, target)
        except OSError:
            # Another process finished the same download first; keep its copy.
            if not _complete(target):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
