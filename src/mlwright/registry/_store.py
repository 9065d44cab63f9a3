"""Where the MLflow tracking store and model registry live, and a client that reaches them.

By default mlwright keeps an embedded MLflow store in the project folder (``.mlwright/`` in the
working directory, ``MLWRIGHT_HOME`` overrides): the runs and registry in SQLite
(``<home>/mlflow.db``) and the artifacts in ``<home>/artifacts``. Nothing has to be started.
``--tracking-uri``, ``MLWRIGHT_TRACKING_URI`` or MLflow's own ``MLFLOW_TRACKING_URI`` point
it anywhere else, e.g. a team's ``mlflow server``.

MLflow is imported inside the functions only: the command line and the serving hot path must not
pay for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from mlwright.config import get_settings
from mlwright.errors import RegistryError

DEFAULT_EXPERIMENT = "mlwright"
DATABASE_NAME = "mlflow.db"
ARTIFACTS_FOLDER = "artifacts"

# MLflow retries an unreachable server 7 times with exponential back-off (minutes of silence)
# and waits 120 s per request. A command line must fail fast and say why, so mlwright lowers
# these unless the user set them.
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    # Download progress bars would interleave with mlwright's own output.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# Seconds to wait for an HTTP server's health check before calling it unreachable.
_HEALTH_TIMEOUT = 5.0


def home() -> Path:
    """The project folder holding the embedded store (``MLWRIGHT_HOME`` or ``./.mlwright``)."""
    configured = os.environ.get("MLWRIGHT_HOME")
    if configured:
        return Path(configured).expanduser().resolve()

    return Path(get_settings().home).expanduser().resolve()


def default_tracking_uri() -> str:
    """The embedded store: ``sqlite:///<home>/mlflow.db``."""
    return f"sqlite:///{(home() / DATABASE_NAME).as_posix()}"


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """Decide which tracking store to use.

    Parameters
    ----------
    tracking_uri
        An explicit URI (``--tracking-uri``); wins over everything else.

    Returns
    -------
    str
        ``tracking_uri`` if given, else ``MLWRIGHT_TRACKING_URI``, else
        ``MLFLOW_TRACKING_URI``, else the embedded SQLite store in the project folder.
    """
    for candidate in (
        tracking_uri,
        os.environ.get("MLWRIGHT_TRACKING_URI"),
        os.environ.get("MLFLOW_TRACKING_URI"),
    ):
        if candidate and candidate.strip():
            return _normalise(candidate.strip())
    return default_tracking_uri()


def _normalise(uri: str) -> str:
    # A bare directory or "file:" path means MLflow's deprecated file store; anything with a
    # scheme is passed to MLflow unchanged.
    if "://" in uri or uri.startswith(("databricks", "file:")):
        return uri
    return Path(uri).expanduser().resolve().as_uri()


def is_embedded(uri: str) -> bool:
    """Whether ``uri`` is the default SQLite store inside the project folder."""
    return uri == default_tracking_uri()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    location = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not location or location == ":memory:":
        return None
    return Path(location)


def artifact_root() -> Path:
    """Where the embedded store keeps run artifacts (``<home>/artifacts``)."""
    return home() / ARTIFACTS_FOLDER


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's and its dependencies' chatter around a call.

    Creating a SQLite store logs alembic migrations, SQLAlchemy 2.1 warns about a loader
    strategy MLflow still uses, and MLflow warns about optional features mlwright does not use.
    None of it is actionable for an mlwright user; real failures still raise.
    """
    # MLflow sets its logger's level when first imported; import it before overriding.
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    import mlflow  # noqa: F401

    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@dataclass
class Store:
    """An open tracking store and model registry.

    Attributes
    ----------
    uri
        The tracking (and registry) URI.
    client
        An ``mlflow.MlflowClient`` bound to ``uri``.
    embedded
        Whether this is the default SQLite store in the project folder.
    """

    uri: str
    client: Any
    embedded: bool

    def experiment_id(self, name: str = DEFAULT_EXPERIMENT) -> str:
        """Return the id of experiment ``name``, creating it on first use.

        Two processes creating it at the same time both end up with the same experiment.
        """
        # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
        from mlflow.exceptions import MlflowException

        with quiet_mlflow(), translate_errors(self.uri):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None:
                if experiment.lifecycle_stage == "deleted":
                    self.client.restore_experiment(experiment.experiment_id)
                return experiment.experiment_id
            location = None
            if self.embedded:
                location = (artifact_root() / _folder_name(name)).as_uri()
            try:
                return self.client.create_experiment(name, artifact_location=location)
            except MlflowException as err:
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment = self.client.get_experiment_by_name(name)
                return experiment.experiment_id

    def run_url(self, run_id: str, experiment_id: str) -> str:
        """Where to look at a run: the server's page, or the ``mlflow ui`` command to run."""
        if self.uri.startswith(("http://", "https://")):
            return f"{self.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        page = f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}"
        return f"run `mlflow ui --backend-store-uri {self.uri}`, then open {page}"


def _folder_name(name: str) -> str:
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in name)
    return safe.strip(".") or "experiment"


def configure_http() -> None:
    """Make MLflow give up on an unreachable server within seconds and download without
    progress bars (unless the user set these variables)."""
    for key, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def open_store(tracking_uri: str | None = None) -> Store:
    """Open the tracking store and registry, checking that they can be reached.

    Parameters
    ----------
    tracking_uri
        An explicit URI; see :func:`resolve_tracking_uri` for the default.

    Returns
    -------
    Store

    Raises
    ------
    RegistryError
        The store cannot be reached or opened; the message names the URI and the fix.
    """
    uri = resolve_tracking_uri(tracking_uri)
    embedded = is_embedded(uri)
    configure_http()
    if uri.startswith(("http://", "https://")):
        _check_server(uri)
    database = sqlite_path(uri)
    creating = database is not None and not _is_initialised(database)
    with _creation_lock(database if creating else None, uri):
        if database is not None:
            _prepare_sqlite(database, uri)
        with quiet_mlflow(), translate_errors(uri):
            # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            # Touch both stores now, so that a broken store fails here with the URI in the
            # message rather than half-way through a training run, and so that a new database
            # is fully created while the creation lock is held.
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
    return Store(uri=uri, client=client, embedded=embedded)


def _is_initialised(database: Path) -> bool:
    """Whether MLflow has created its tables in ``database`` (cheap: no MLflow import)."""
    if not database.is_file():
        return False
    try:
        uri = f"{database.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as connection:
            row = connection.execute("select version_num from alembic_version").fetchone()
            tables = connection.execute(
                "select count(*) from sqlite_master where type = 'table' and name in "
                "('experiments', 'registered_models', 'model_versions')"
            ).fetchone()
    except sqlite3.Error:
        return False
    return bool(row) and tables[0] == 3


@contextlib.contextmanager
def _creation_lock(database: Path | None, uri: str) -> Iterator[None]:
    """Let one process at a time create a new SQLite store.

    MLflow creates its tables with a series of schema migrations; two processes migrating the
    same new file at once (two `mlwright train` started together in a fresh folder) corrupt
    the migration bookkeeping. A lock file beside the database serialises the creation; the
    second process then finds the tables and skips it.
    """
    if database is None:
        yield
        return
    try:
        # deferred: fcntl is POSIX-only; on Windows the ImportError skips the lock
        import fcntl
    except ImportError:  # Windows: MLflow's own (weaker) guard only
        yield
        return
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        handle = open(database.parent / f".{database.name}.lock", "a+b")  # noqa: SIM115
    except OSError as err:
        doing = "open" if database.exists() else "create"
        raise RegistryError(
            f"Cannot {doing} the MLflow store {uri} in '{database.parent}' ({err}). Set "
            "MLWRIGHT_HOME to a writable folder, or point --tracking-uri elsewhere."
        ) from err
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def check_reachable(tracking_uri: str | None = None) -> str:
    """The cheap part of :func:`open_store`: without importing MLflow, check that an HTTP server
    answers its health check and that a SQLite store's folder can be created.

    Returns
    -------
    str
        The resolved URI.

    Raises
    ------
    RegistryError
        Naming the URI and the fix.
    """
    uri = resolve_tracking_uri(tracking_uri)
    configure_http()
    if uri.startswith(("http://", "https://")):
        _check_server(uri)
    database = sqlite_path(uri)
    if database is not None:
        try:
            database.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RegistryError(
                f"Cannot create the folder '{database.parent}' for the MLflow store {uri} "
                f"({err}). Set MLWRIGHT_HOME to a writable folder, or point --tracking-uri "
                "elsewhere."
            ) from err
    return uri


def _prepare_sqlite(database: Path, uri: str) -> None:
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RegistryError(
            f"Cannot create the folder '{database.parent}' for the MLflow store {uri} ({err}). "
            "Set MLWRIGHT_HOME to a writable folder, or point --tracking-uri elsewhere."
        ) from err
    if database.exists():
        return
    # MLflow creates its tables with a series of migrations, each committed on its own: a
    # process killed half-way (kill -9 of the first `mlwright train` in a folder) left a store
    # that no later command could open ("table ... already exists"). So a new store is built
    # whole in a hidden file beside it and renamed into place: it exists complete or not at all.
    migrated = database.with_name(f".{database.name}.{uuid.uuid4().hex[:12]}.migrating")
    copied = migrated.with_suffix(".copy")
    try:
        with quiet_mlflow(), translate_errors(uri):
            # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
            from mlflow import MlflowClient

            staging_uri = f"sqlite:///{migrated}"
            client = MlflowClient(tracking_uri=staging_uri, registry_uri=staging_uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        # MLflow keeps its connections to the migrated file open: the store that is renamed
        # into place is a copy made and closed here, attached to no open connection.
        with contextlib.closing(sqlite3.connect(migrated, timeout=30)) as source:
            with contextlib.closing(sqlite3.connect(copied, timeout=30)) as target:
                source.backup(target)
                # Write-ahead logging lets readers (models list, serving's reference lookups)
                # proceed while a training run writes, and makes concurrent writers wait on
                # each other instead of failing. The mode is stored in the file.
                target.execute("PRAGMA journal_mode=WAL")
        with copied.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(copied, database)
    except (sqlite3.Error, OSError) as err:
        raise RegistryError(
            f"Cannot create the MLflow store {uri} ({err}). Check that '{database.parent}' is "
            "writable and has free space, or point --tracking-uri elsewhere."
        ) from err
    finally:
        for leftover in (migrated, copied):
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{leftover}{suffix}").unlink(missing_ok=True)


def _check_server(uri: str) -> None:
    health = f"{uri.rstrip('/')}/health"
    try:
        response = requests.get(health, timeout=_HEALTH_TIMEOUT)
    except requests.RequestException as err:
        raise RegistryError(
            f"Cannot reach the MLflow tracking server at {uri} ({type(err).__name__}: "
            f"{_first_line(err)}). Start it (e.g. `mlflow server --host 127.0.0.1 --port "
            "5000`), correct --tracking-uri / MLFLOW_TRACKING_URI, or unset them to use the "
            "local store in the project folder."
        ) from err
    if response.status_code >= 400:
        raise RegistryError(
            f"The MLflow tracking server at {uri} answered its health check with HTTP "
            f"{response.status_code}. Check that the URI points at an MLflow server (and the "
            "credentials in MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or "
            "MLFLOW_TRACKING_TOKEN, if it needs them)."
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


@contextlib.contextmanager
def translate_errors(uri: str, doing: str = "use the MLflow store") -> Iterator[None]:
    """Turn MLflow and database failures into a :class:`RegistryError` naming the store.

    ``RESOURCE_DOES_NOT_EXIST`` and the like are left to the callers, which know what was
    being looked up; this catches what no caller can explain better (connection refused,
    a damaged database file, a server error).
    """
    try:
        yield
    except RegistryError:
        raise
    except Exception as err:
        # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
        from mlflow.exceptions import MlflowException

        if isinstance(err, MlflowException) and err.error_code in _CALLER_HANDLED:
            raise
        if not _is_store_failure(err):
            raise
        reason = _first_line(err)
        advice = "Check that the store is reachable and intact"
        if any(sign in reason.lower() for sign in _DISK_SIGNS):
            advice = "Its disk is full or read-only: free space, or make its folder writable"
        raise RegistryError(
            f"Could not {doing} at {uri}: {reason}. {advice}; --tracking-uri or "
            "MLFLOW_TRACKING_URI choose another store, and without them mlwright uses the "
            "SQLite store in MLWRIGHT_HOME (default ./.mlwright)."
        ) from err


#: How SQLite and the OS word a full or read-only disk (a full disk under write-ahead logging
#: is often reported as an I/O error).
_DISK_SIGNS = (
    "disk is full",
    "disk i/o error",
    "readonly database",
    "read-only file system",
    "no space left",
)


_CALLER_HANDLED = frozenset(
    {"RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "INVALID_PARAMETER_VALUE"}
)


def _is_store_failure(err: BaseException) -> bool:
    # deferred: MLflow (~0.9 s) loads when a store is used, not with mlwright.registry
    from mlflow.exceptions import MlflowException

    if isinstance(err, (MlflowException, sqlite3.Error, OSError, ConnectionError)):
        return True
    module = type(err).__module__ or ""
    return module.startswith(("sqlalchemy", "requests", "urllib3", "alembic"))
