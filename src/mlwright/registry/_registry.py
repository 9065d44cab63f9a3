"""The model registry: register versions, list and show them, promote, roll back, delete.

MLflow's registry holds the versions and the aliases; mlwright adds one convention on top: when
an alias moves to a version, the versions that held it before (newest first) are recorded in a
tag of the new holder (``mlwright.previous.<alias>``). :func:`rollback` follows that tag, so
``champion`` can go back one step, and again, skipping deleted versions, without a separate
history store.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from mlwright.errors import RegistryError
from mlwright.registry._store import Store, open_store, quiet_mlflow, translate_errors

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_TAG = "mlwright.previous."  # + alias -> earlier holders, newest first, comma-separated
_HISTORY_LENGTH = 50
PROMOTED_TAG = "mlwright.promoted."  # + alias -> when this version last received the alias
MODEL_PATH = "model"  # where a training run logs the artifact

# SQLite serialises writers; MLflow waits up to 20 s per statement, but a writer that started
# as a reader can still get "database is locked" at once. These are retried.
_RETRIES = 8
_TRANSIENT_MARKERS = ("database is locked", "database is busy", "TEMPORARILY_UNAVAILABLE")


@dataclass
class VersionInfo:
    """One registered model version, as mlwright shows it.

    Attributes
    ----------
    name, version
        The registered model and the version number.
    aliases
        Aliases pointing at this version (e.g. ``["champion"]``).
    run_id
        The training run that produced it.
    source
        Where MLflow keeps the model files.
    status
        MLflow's status (``READY``).
    created
        Creation time, milliseconds since the epoch.
    tags
        The version's tags.
    metrics
        The training run's metrics (empty if the run is gone).
    description
        Free text.
    """

    name: str
    version: int
    aliases: list[str]
    run_id: str | None
    source: str
    status: str
    created: int
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    description: str = ""

    @property
    def reference(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "version": self.version,
            "reference": self.reference,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "source": self.source,
            "status": self.status,
            "created": self.created,
            "tags": dict(self.tags),
            "metrics": dict(self.metrics),
            "description": self.description,
        }


@dataclass
class ModelInfo:
    """A registered model with its versions (newest first) and aliases."""

    name: str
    aliases: dict[str, int]
    versions: list[VersionInfo]
    description: str = ""

    @property
    def latest(self) -> VersionInfo | None:
        return self.versions[0] if self.versions else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "aliases": dict(self.aliases),
            "description": self.description,
            "versions": [version.to_dict() for version in self.versions],
        }


def _with_retries(action: Any, what: str, uri: str) -> Any:
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.exceptions import MlflowException

    delay = 0.1
    for attempt in range(_RETRIES):
        try:
            return action()
        except MlflowException as err:
            transient = err.error_code == "TEMPORARILY_UNAVAILABLE" or any(
                marker in str(err) for marker in _TRANSIENT_MARKERS
            )
            if not transient or attempt == _RETRIES - 1:
                raise
        except Exception as err:
            if not any(marker in str(err) for marker in _TRANSIENT_MARKERS):
                raise
            if attempt == _RETRIES - 1:
                raise RegistryError(
                    f"Could not {what} at {uri}: the store stayed locked by other writers for "
                    "too long. Try again; if it persists, check for a stuck process holding "
                    "the database."
                ) from err
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def register_version(
    name: str,
    *,
    run_id: str,
    artifact_path: str = MODEL_PATH,
    tags: dict[str, str] | None = None,
    description: str | None = None,
    store: Store | None = None,
    tracking_uri: str | None = None,
) -> VersionInfo:
    """Register the model logged by run ``run_id`` as a new version of ``name``.

    Call it only once the run's artifact is completely logged: a process killed before this
    call leaves no version behind.

    Parameters
    ----------
    name
        The registered model's name; created on first use.
    run_id
        The training run that logged the model under ``artifact_path``.
    artifact_path
        Where in the run's artifacts the model is.
    tags, description
        Stored on the new version.
    store, tracking_uri
        The store to use (an open one, or a URI to open).

    Returns
    -------
    VersionInfo
    """
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.exceptions import MlflowException

    check_model_name(name)
    store = store or open_store(tracking_uri)
    client = store.client
    with quiet_mlflow(), translate_errors(store.uri, f"register model '{name}'"):
        run = client.get_run(run_id)
        source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"

        def create_model() -> None:
            try:
                client.create_registered_model(name)
            except MlflowException as err:
                # Another run registered the first version of this name a moment ago.
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise

        _with_retries(create_model, f"create registered model '{name}'", store.uri)
        created = _with_retries(
            lambda: client.create_model_version(
                name,
                source,
                run_id=run_id,
                tags=tags or None,
                description=description,
                await_creation_for=0,
            ),
            f"register a version of '{name}'",
            store.uri,
        )
        return _version_info(client, created, with_metrics=False)


def check_model_name(name: str) -> None:
    """Raise :class:`RegistryError` unless ``name`` can be a registered model's name."""
    if not name or not name.strip() or "/" in name or "@" in name or ":" in name:
        raise RegistryError(
            f"'{name}' cannot be a registered model name: it must be non-empty and contain no "
            "'/', '@' or ':' (they separate name, version and alias in models:/NAME/VERSION "
            "and models:/NAME@alias). Use e.g. 'credit-risk'."
        )


def _version_info(client: Any, version: Any, *, with_metrics: bool = True) -> VersionInfo:
    metrics: dict[str, float] = {}
    if with_metrics and version.run_id:
        try:
            metrics = dict(client.get_run(version.run_id).data.metrics)
        except Exception:  # the run may have been deleted; the version still stands
            metrics = {}
    return VersionInfo(
        name=version.name,
        version=int(version.version),
        aliases=sorted(version.aliases or []),
        run_id=version.run_id,
        source=version.source,
        status=str(version.status),
        created=int(version.creation_timestamp or 0),
        tags=dict(version.tags or {}),
        metrics=metrics,
        description=version.description or "",
    )


def _model_info(client: Any, registered: Any, *, with_metrics: bool) -> ModelInfo:
    versions = client.search_model_versions(f"name = '{_quote(registered.name)}'")
    infos = sorted(
        (_version_info(client, version, with_metrics=with_metrics) for version in versions),
        key=lambda info: info.version,
        reverse=True,
    )
    aliases = {alias: int(version) for alias, version in (registered.aliases or {}).items()}
    return ModelInfo(
        name=registered.name,
        aliases=aliases,
        versions=infos,
        description=registered.description or "",
    )


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def list_models(*, store: Store | None = None, tracking_uri: str | None = None) -> list[ModelInfo]:
    """Every registered model with its versions and aliases, sorted by name.

    Parameters
    ----------
    store, tracking_uri
        The store to use (an open one, or a URI to open).
    """
    store = store or open_store(tracking_uri)
    with quiet_mlflow(), translate_errors(store.uri, "list the registered models"):
        models = []
        token = None
        while True:
            page = store.client.search_registered_models(max_results=200, page_token=token)
            models.extend(page)
            token = page.token
            if not token:
                break
        return sorted(
            (_model_info(store.client, model, with_metrics=False) for model in models),
            key=lambda info: info.name,
        )


def get_model(
    name: str, *, store: Store | None = None, tracking_uri: str | None = None
) -> ModelInfo:
    """One registered model with all its versions (newest first), aliases and metrics."""
    store = store or open_store(tracking_uri)
    with quiet_mlflow(), translate_errors(store.uri, f"read model '{name}'"):
        registered = _registered_model(store, name)
        return _model_info(store.client, registered, with_metrics=True)


def get_version(
    name: str,
    version: int | str,
    *,
    store: Store | None = None,
    tracking_uri: str | None = None,
) -> VersionInfo:
    """One version of a registered model, by number or by alias (``"champion"``)."""
    store = store or open_store(tracking_uri)
    with quiet_mlflow(), translate_errors(store.uri, f"read model '{name}'"):
        return _version_info(store.client, _model_version(store, name, version))


def _registered_model(store: Store, name: str) -> Any:
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.exceptions import MlflowException

    try:
        return store.client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    known = [model.name for model in store.client.search_registered_models(max_results=50)]
    hint = f" Registered models: {', '.join(sorted(known))}." if known else " None is registered."
    raise RegistryError(
        f"No registered model named '{name}' in the MLflow store {store.uri}.{hint} Register "
        "one with `mlwright train DATA --target COLUMN --register NAME`; `mlwright models list` "
        "shows what exists."
    )


def _model_version(store: Store, name: str, version: int | str) -> Any:
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.exceptions import MlflowException

    registered = _registered_model(store, name)
    text = str(version).strip()
    try:
        if text.isdigit():
            return store.client.get_model_version(name, text)
        if text == "latest":
            versions = store.client.search_model_versions(f"name = '{_quote(name)}'")
            if versions:
                return max(versions, key=lambda item: int(item.version))
        else:
            return store.client.get_model_version_by_alias(name, text)
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
    versions = sorted(
        int(item.version) for item in store.client.search_model_versions(f"name = '{_quote(name)}'")
    )
    aliases = ", ".join(f"@{alias}->{number}" for alias, number in registered.aliases.items())
    raise RegistryError(
        f"Model '{name}' has no version or alias '{text}' in {store.uri}. It has versions "
        f"{', '.join(map(str, versions)) or 'none'}"
        f"{' and aliases ' + aliases if aliases else ' and no aliases'}. "
        f"`mlwright models show {name}` lists them."
    )


def promote(
    name: str,
    version: int | str,
    *,
    alias: str = CHAMPION,
    store: Store | None = None,
    tracking_uri: str | None = None,
) -> VersionInfo:
    """Point ``alias`` (default ``champion``) at a version of ``name``.

    The version that held the alias before is recorded on the new holder, so that
    :func:`rollback` can undo the promotion. Promoting a version to ``champion`` takes the
    ``challenger`` alias off it (a model cannot challenge itself).

    Returns
    -------
    VersionInfo
        The promoted version, aliases updated.
    """
    _check_alias(alias)
    store = store or open_store(tracking_uri)
    client = store.client
    with quiet_mlflow(), translate_errors(store.uri, f"promote model '{name}'"):
        target = _model_version(store, name, version)
        registered = _registered_model(store, name)
        current = registered.aliases.get(alias)
        number = str(target.version)
        if current is not None and str(current) != number:
            # The new holder remembers every earlier holder, newest first, so rollback can
            # skip versions deleted since.
            history = [str(current), *_history(client, name, str(current), alias)]
            history = [item for item in dict.fromkeys(history) if item != number]
            client.set_model_version_tag(
                name, number, PREVIOUS_TAG + alias, ",".join(history[:_HISTORY_LENGTH])
            )
        client.set_model_version_tag(name, number, PROMOTED_TAG + alias, _now())
        client.set_registered_model_alias(name, alias, number)
        if alias == CHAMPION and registered.aliases.get(CHALLENGER) is not None:
            if str(registered.aliases[CHALLENGER]) == number:
                client.delete_registered_model_alias(name, CHALLENGER)
        return _version_info(client, client.get_model_version(name, number))


def rollback(
    name: str,
    *,
    alias: str = CHAMPION,
    store: Store | None = None,
    tracking_uri: str | None = None,
) -> tuple[VersionInfo, int]:
    """Move ``alias`` back to the version that held it before the last promotion.

    Versions deleted since are skipped.

    Returns
    -------
    tuple
        The version now holding the alias, and the version number it was taken from.

    Raises
    ------
    RegistryError
        The alias is not set, or no earlier holder exists.
    """
    _check_alias(alias)
    store = store or open_store(tracking_uri)
    client = store.client
    with quiet_mlflow(), translate_errors(store.uri, f"roll back model '{name}'"):
        registered = _registered_model(store, name)
        current = registered.aliases.get(alias)
        if current is None:
            raise RegistryError(
                f"Model '{name}' has no '{alias}' alias to roll back. Set one with `mlwright "
                f"models promote {name} VERSION --alias {alias}`."
            )
        existing = {
            str(item.version) for item in client.search_model_versions(f"name = '{_quote(name)}'")
        }
        previous = next(
            (
                item
                for item in _history(client, name, str(current), alias)
                if item in existing and item != str(current)
            ),
            None,
        )
        if previous is None:
            raise RegistryError(
                f"Model '{name}' has no earlier '{alias}' to roll back to: version {current} "
                f"is the first that held the alias (or the earlier ones were deleted). Promote "
                f"a version explicitly with `mlwright models promote {name} VERSION`."
            )
        client.set_registered_model_alias(name, alias, previous)
        client.set_model_version_tag(name, str(current), f"mlwright.rolled_back.{alias}", _now())
        return _version_info(client, client.get_model_version(name, previous)), int(current)


def _history(client: Any, name: str, version: str, alias: str) -> list[str]:
    tags = client.get_model_version(name, version).tags or {}
    value = tags.get(PREVIOUS_TAG + alias, "")
    return [item.strip() for item in value.split(",") if item.strip().isdigit()]


def delete(
    name: str,
    version: int | str | None = None,
    *,
    force: bool = False,
    store: Store | None = None,
    tracking_uri: str | None = None,
) -> list[int]:
    """Delete one version of ``name``, or the whole registered model.

    Deleting the version that is ``champion`` (or a model that has a champion) needs
    ``force=True``: whatever serves ``models:/NAME@champion`` would break.

    Returns
    -------
    list of int
        The version numbers deleted.
    """
    store = store or open_store(tracking_uri)
    client = store.client
    with quiet_mlflow(), translate_errors(store.uri, f"delete model '{name}'"):
        registered = _registered_model(store, name)
        champion = registered.aliases.get(CHAMPION)
        if version is None:
            numbers = sorted(
                int(item.version)
                for item in client.search_model_versions(f"name = '{_quote(name)}'")
            )
            if champion is not None and not force:
                raise RegistryError(
                    f"Model '{name}' has a champion (version {champion}); deleting the model "
                    "would break anything serving models:/" + name + "@champion. Pass --force "
                    "to delete it anyway."
                )
            client.delete_registered_model(name)
            return numbers
        target = _model_version(store, name, version)
        number = str(target.version)
        if champion is not None and str(champion) == number and not force:
            raise RegistryError(
                f"Version {number} of '{name}' is the champion; deleting it would break anything "
                f"serving models:/{name}@champion. Promote another version first (or `mlwright "
                f"models rollback {name}`), or pass --force."
            )
        client.delete_model_version(name, number)
        return [int(number)]


def _check_alias(alias: str) -> None:
    if not alias or not alias.replace("_", "").replace("-", "").isalnum() or alias.isdigit():
        raise RegistryError(
            f"'{alias}' cannot be an alias: use letters, digits, '-' or '_', not only digits "
            "(numbers name versions). mlwright uses 'champion' and 'challenger'."
        )
    if alias.lower() == "latest":
        raise RegistryError(
            "'latest' is reserved by MLflow (models:/NAME/latest is the newest version); "
            "choose another alias such as 'champion' or 'challenger'."
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
