"""The prediction log: every prediction, appended without the request path waiting on disk.

The request path calls :meth:`PredictionLog.append`, which only puts one tuple on a bounded
in-memory queue (a few microseconds). A background thread drains the queue in batches and
writes them to a store in one transaction per batch. When the queue is full the record is not
written: it is counted in :attr:`PredictionLog.dropped` (exposed in ``/metrics``), never lost
silently. :meth:`PredictionLog.close` drains everything still queued, so a graceful shutdown
loses nothing.

Stores are chosen by URI scheme behind :class:`LogStore` (``sqlite:///path.db`` by default,
``jsonl:///path.jsonl``); :func:`register_log_store` adds more (e.g. PostgreSQL).
"""

from __future__ import annotations

import abc
import json
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlwright.errors import ConfigError
from mlwright.serve import _json as fast_json

__all__ = [
    "LOG_COLUMNS",
    "JsonlLogStore",
    "LogRecord",
    "LogStore",
    "PredictionLog",
    "SQLiteLogStore",
    "open_log_store",
    "read_predictions",
    "register_log_store",
]

#: Columns of one logged prediction (one row of the input), in store order.
LOG_COLUMNS = (
    "request_id",
    "row",
    "timestamp",
    "model",
    "version",
    "arm",
    "features",
    "prediction",
    "probabilities",
    "latency_ms",
)

# One request as queued: (request_id, unix time, model, version, arm, features, predictions,
# probabilities, latency_ms). ``features`` is a list of row dicts or a dict of columns;
# ``probabilities`` a list of per-row dicts or None. Rows are built in the writer thread.
LogRecord = tuple[str, float, str, str, str, Any, Sequence[Any], Any, float]


def _plain(value: Any) -> Any:
    # numpy scalars, NaN and timestamps must become JSON values; NaN is logged as null.
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)
    if item is not None:
        return _plain(item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _dumps(value: Any) -> str:
    return fast_json.dumps(value).decode()


def _dumps_plain(value: Any) -> str:
    """JSON of request values; values JSON cannot hold (numpy scalars, ...) are converted."""
    try:
        return _dumps(value)
    except TypeError:
        if isinstance(value, dict):
            return _dumps({str(key): _plain(item) for key, item in value.items()})
        return _dumps(_plain(value))


def _rows(record: LogRecord) -> list[tuple[Any, ...]]:
    request_id, stamp, model, version, arm, features, predictions, probabilities, latency = record
    if isinstance(features, dict):
        names = list(features)
        columns = [features[name] for name in names]
        feature_rows = [
            dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)
        ]
    else:
        feature_rows = features
    # Request values are already plain JSON values (they came from JSON or from tensors via
    # tolist()), so they are serialised as they are; NaN becomes null.
    return [
        (
            request_id,
            index,
            stamp,
            model,
            version,
            arm,
            _dumps_plain(feature_rows[index]),
            _dumps_plain(prediction),
            None if probabilities is None else _dumps_plain(probabilities[index]),
            latency,
        )
        for index, prediction in enumerate(predictions)
    ]


class LogStore(abc.ABC):
    """Where logged predictions are kept. Used from one writer thread at a time."""

    uri: str

    @abc.abstractmethod
    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Append rows (tuples in :data:`LOG_COLUMNS` order) durably, all or none."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store."""


class SQLiteLogStore(LogStore):
    """The default store: one SQLite file in WAL mode, table ``predictions``.

    WAL lets ``mlwright monitor`` and the dashboard read while the server writes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.uri = f"sqlite:///{self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The writer thread, not the creating thread, uses the connection.
        self._connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(
            """
            CREATE TABLE IF NOT EXISTS predictions (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                request_id TEXT NOT NULL,
                "row" INTEGER NOT NULL,
                timestamp REAL NOT NULL,
                model TEXT NOT NULL,
                version TEXT NOT NULL,
                arm TEXT NOT NULL,
                features TEXT NOT NULL,
                prediction TEXT NOT NULL,
                probabilities TEXT,
                latency_ms REAL NOT NULL
            );
            CREATE INDEX IF NOT EXISTS predictions_model_time
                ON predictions (model, timestamp);
            CREATE INDEX IF NOT EXISTS predictions_request ON predictions (request_id);
            """
        )
        self._connection.commit()

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._connection:
            self._connection.executemany(
                'INSERT INTO predictions (request_id, "row", timestamp, model, version, arm, '
                "features, prediction, probabilities, latency_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def close(self) -> None:
        self._connection.close()


class JsonlLogStore(LogStore):
    """One JSON object per prediction row, appended to a file (easy to ship elsewhere)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.uri = f"jsonl:///{self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        lines = []
        for row in rows:
            document = dict(zip(LOG_COLUMNS, row, strict=True))
            for key in ("features", "prediction", "probabilities"):
                if document[key] is not None:
                    document[key] = json.loads(document[key])
            lines.append(json.dumps(document) + "\n")
        self._handle.write("".join(lines))
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


_STORES: dict[str, Callable[[str], LogStore]] = {
    "sqlite": SQLiteLogStore,
    "jsonl": JsonlLogStore,
}


def register_log_store(scheme: str, factory: Callable[[str], LogStore]) -> None:
    """Add a prediction-log backend for URIs ``<scheme>://...``.

    Parameters
    ----------
    scheme
        The URI scheme, e.g. ``"postgresql"``.
    factory
        Called with the path part of the URI (everything after ``scheme:///``, or the whole
        URI for schemes without a path); returns a :class:`LogStore`.
    """
    _STORES[scheme] = factory


def _split(uri: str) -> tuple[str, str]:
    scheme, separator, rest = uri.partition("://")
    if not separator:
        # A bare path: the file suffix says which store.
        return ("jsonl" if uri.endswith((".jsonl", ".ndjson")) else "sqlite"), uri
    if rest.startswith("/"):
        # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them.
        rest = rest[1:] if not rest.startswith("//") else rest[1:]
    return scheme, rest


def open_log_store(uri: str) -> LogStore:
    """Open the prediction-log store a URI names.

    Parameters
    ----------
    uri
        ``sqlite:///path.db``, ``jsonl:///path.jsonl``, or a bare path (``.db`` or
        ``.jsonl``).

    Raises
    ------
    ConfigError
        Unknown scheme, or the store cannot be opened.
    """
    scheme, path = _split(uri)
    factory = _STORES.get(scheme)
    if factory is None:
        raise ConfigError(
            f"Unknown prediction log store '{uri}': the scheme '{scheme}' is not one of "
            f"{', '.join(sorted(_STORES))}. Use e.g. sqlite:///.mlwright/predictions.db, "
            "or 'none' to turn the log off."
        )
    try:
        return factory(path)
    except (OSError, sqlite3.Error) as err:
        raise ConfigError(
            f"Cannot open the prediction log '{uri}' ({err}). Check that the folder exists and "
            "is writable, or choose another location with --log."
        ) from err


class PredictionLog:
    """Bounded queue plus background writer in front of a :class:`LogStore`.

    Parameters
    ----------
    store
        Where rows go.
    max_queue
        Requests that may wait for the writer; beyond that they are dropped and counted.
    batch_size
        Requests written per transaction at most.
    interval
        Seconds the writer lets records gather after the first one arrives: one transaction
        per interval instead of one per request keeps the writer's share of the interpreter
        (and so its effect on request latency) small.
    on_drop
        Called with the number of rows dropped (the server counts them in ``/metrics``).
    """

    def __init__(
        self,
        store: LogStore,
        *,
        max_queue: int = 100_000,
        batch_size: int = 2048,
        interval: float = 0.05,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval = interval
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self._on_drop = on_drop
        self._queue: queue.Queue[LogRecord | None] = queue.Queue(maxsize=max_queue)
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name="mlwright-prediction-log", daemon=True
        )
        self._thread.start()

    def append(
        self,
        request_id: str,
        model: str,
        version: str,
        features: Any,
        predictions: Sequence[Any],
        probabilities: Any,
        latency_ms: float,
        *,
        arm: str = "main",
        timestamp: float | None = None,
    ) -> bool:
        """Queue one request's predictions; never blocks.

        Returns
        -------
        bool
            False when the queue was full and the rows were dropped (and counted).
        """
        record: LogRecord = (
            request_id,
            time.time() if timestamp is None else timestamp,
            model,
            version,
            arm,
            features,
            predictions,
            probabilities,
            latency_ms,
        )
        if self._closed:
            self._count_drop(len(predictions))
            return False
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._count_drop(len(predictions))
            return False
        return True

    def _count_drop(self, rows: int) -> None:
        self.dropped += rows
        if self._on_drop is not None:
            self._on_drop(rows)

    @property
    def pending(self) -> int:
        """Requests queued and not yet written."""
        return self._queue.qsize()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            batch: list[LogRecord] = []
            if first is None:
                stop = True
            else:
                batch.append(first)
                if self.interval > 0 and not self._closed:
                    time.sleep(self.interval)
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            if batch:
                self._write(batch)
            for _ in range(len(batch) + (1 if stop else 0)):
                self._queue.task_done()

    def _write(self, batch: list[LogRecord]) -> None:
        rows: list[tuple[Any, ...]] = []
        for record in batch:
            try:
                rows.extend(_rows(record))
            except (TypeError, ValueError):
                # A value that cannot be logged must not stop the writer; count it.
                self.failed += len(record[6])
                self._count_drop(len(record[6]))
        if not rows:
            return
        try:
            self.store.write(rows)
        except Exception:
            # Disk full or store unreachable: the rows are lost, so they are counted as dropped
            # and the writer keeps going for the next batch.
            self.failed += len(rows)
            self._count_drop(len(rows))
        else:
            self.written += len(rows)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is written (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        # unfinished_tasks falls only after the writer stored (or counted) a record.
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write everything still queued, stop the writer and close the store."""
        if self._closed:
            return
        self._closed = True
        # The sentinel goes after every queued record, so they are all written first.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self.store.close()


def read_predictions(
    uri: str,
    *,
    model: str | None = None,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    limit: int | None = None,
) -> Any:
    """Read logged predictions as a DataFrame (for monitoring and the dashboard).

    Parameters
    ----------
    uri
        The log store (as given to ``mlwright serve --log``).
    model
        Only this model's predictions.
    since, until
        Time window (unix seconds or datetimes).
    limit
        Newest rows at most.

    Returns
    -------
    pandas.DataFrame
        One row per logged prediction row, columns :data:`LOG_COLUMNS`; ``features``,
        ``prediction`` and ``probabilities`` decoded from JSON; ``time`` as UTC datetimes.
    """
    import pandas as pd

    def seconds(value: float | datetime | None) -> float | None:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.timestamp()
        return value

    scheme, path = _split(uri)
    if scheme == "sqlite":
        if not Path(path).expanduser().is_file():
            raise ConfigError(
                f"No prediction log at '{uri}'. Serve a model first (mlwright serve logs to "
                "<home>/predictions.db), or pass the --log the server used."
            )
        clauses, parameters = [], []
        if model is not None:
            clauses.append("model = ?")
            parameters.append(model)
        if (start := seconds(since)) is not None:
            clauses.append("timestamp >= ?")
            parameters.append(start)
        if (end := seconds(until)) is not None:
            clauses.append("timestamp < ?")
            parameters.append(end)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        columns = ", ".join(f'"{name}"' for name in LOG_COLUMNS)
        if limit is None:
            sql = f"SELECT {columns} FROM predictions {where} ORDER BY id"
        else:
            # The newest rows, returned oldest first.
            sql = (
                f"SELECT {columns} FROM (SELECT id, {columns} FROM predictions {where} "
                "ORDER BY id DESC LIMIT ?) ORDER BY id"
            )
            parameters.append(int(limit))
        connection = sqlite3.connect(Path(path).expanduser())
        try:
            rows = connection.execute(sql, parameters).fetchall()
        finally:
            connection.close()
        frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
        for key in ("features", "prediction", "probabilities"):
            frame[key] = [None if text is None else json.loads(text) for text in frame[key]]
    elif scheme == "jsonl":
        records = _read_jsonl(Path(path).expanduser())
        frame = pd.DataFrame(records, columns=list(LOG_COLUMNS))
        if model is not None:
            frame = frame[frame["model"] == model]
        if (start := seconds(since)) is not None:
            frame = frame[frame["timestamp"] >= start]
        if (end := seconds(until)) is not None:
            frame = frame[frame["timestamp"] < end]
        if limit is not None:
            frame = frame.tail(int(limit))
        frame = frame.reset_index(drop=True)
    else:
        raise ConfigError(f"Cannot read the prediction log '{uri}': unknown scheme '{scheme}'.")
    frame["time"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    return frame


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(f"No prediction log at '{path}'.")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
