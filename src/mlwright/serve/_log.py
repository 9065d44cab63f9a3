"""The prediction log: every prediction, appended without the request path touching the disk.

The request path calls :meth:`PredictionLog.append`, which only puts one tuple on a bounded
in-memory queue (a few microseconds). A background thread drains the queue in batches and
writes them to a store in one transaction per batch. When the queue is full the record is not
written: it is counted in :attr:`PredictionLog.dropped` (exposed in ``/metrics``), never lost
silently. :meth:`PredictionLog.close` drains everything still queued, so a graceful shutdown
loses nothing.

A *durable* log (``durable=True``, the server's default) numbers every queued record and lets
the server wait, before it answers, until the writer committed that number
(:meth:`PredictionLog.wait_logged`): then a process killed outright (``kill -9``) has logged
every prediction it answered. The writer then writes whatever is queued as soon as it can
(group commit: requests arriving during one transaction share the next) instead of letting
records gather for ``interval`` seconds.

Stores are chosen by URI scheme behind :class:`LogStore` (``sqlite:///path.db`` by default,
``jsonl:///path.jsonl``); :func:`register_log_store` adds more (e.g. PostgreSQL).

The SQLite store also keeps *aggregates* of the log beside it (table
``prediction_aggregates``: per model, per second, minute and hour, per predicted label: count,
latency sum and maximum, and sum/min/max of numeric predictions). Each write transaction folds
the rows above a watermark (``prediction_log_state.aggregated_id``) into them, so the
aggregates cover exactly the rows with ``id <= aggregated_id`` whichever process wrote them,
and a fresh server reads them instead of the whole log (:func:`aggregate_pending`). A log
written before the aggregates existed is backfilled once, in the background, when a store
opens it.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import contextvars
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

import pandas as pd

from mlwright.errors import ConfigError
from mlwright.serve import _json as fast_json

__all__ = [
    "AGGREGATE_RESOLUTIONS",
    "LAST_APPENDED",
    "LOG_COLUMNS",
    "JsonlLogStore",
    "LogRecord",
    "LogStore",
    "PredictionLog",
    "SQLiteLogStore",
    "aggregate_pending",
    "aggregated_id",
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

#: The number :meth:`PredictionLog.append` gave the record it queued last in this context (a
#: request's task, a gRPC thread): 0 when nothing was appended, -1 when the record was dropped.
#: The server sets it to 0 before a request and waits for the number after it.
LAST_APPENDED: contextvars.ContextVar[int] = contextvars.ContextVar(
    "mlwright_log_last_appended", default=0
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


#: Time resolutions (seconds) the aggregates are kept at: a chart bucket is summed from the
#: coarsest one that divides it, so a day of traffic reads 1,440 minute rows, not 86,400.
AGGREGATE_RESOLUTIONS = (1, 60, 3600)
#: Rows above the watermark folded into the aggregates per transaction at most (a backfill of
#: an old log goes in steps of this size, each a short transaction).
AGGREGATE_CHUNK = 50_000

_AGGREGATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS prediction_aggregates (
    model TEXT NOT NULL,
    resolution INTEGER NOT NULL,
    start INTEGER NOT NULL,
    label TEXT NOT NULL,
    count INTEGER NOT NULL,
    latency_sum REAL NOT NULL,
    latency_max REAL NOT NULL,
    value_count INTEGER NOT NULL,
    value_sum REAL NOT NULL,
    value_min REAL,
    value_max REAL,
    PRIMARY KEY (model, resolution, start, label)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS prediction_log_state (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

#: SQL of a logged prediction's aggregate label: its JSON text (a class, ``null``), or ``''``
#: for a real number (a regression output), which is summarised by sum, min and max instead
#: of one row per distinct value. Text that is not JSON (written by hand) stays a label rather
#: than failing the writer's transaction.
_IS_REAL = "json_type(CASE WHEN json_valid(prediction) THEN prediction ELSE 'null' END) = 'real'"
LABEL_SQL = f"CASE WHEN {_IS_REAL} THEN '' ELSE prediction END"
_VALUE_SQL = f"CASE WHEN {_IS_REAL} THEN CAST(prediction AS REAL) END"

# One pass over the new rows groups them per second into a temporary table; each resolution
# is then summed from that (small) table, not from the rows again.
_FOLD_TEMP_SQL = """
CREATE TEMP TABLE IF NOT EXISTS prediction_fold (
    model TEXT, start INTEGER, label TEXT, count INTEGER, latency_sum REAL, latency_max REAL,
    value_count INTEGER, value_sum REAL, value_min REAL, value_max REAL
)
"""
_FOLD_SECONDS_SQL = f"""
INSERT INTO temp.prediction_fold
SELECT model, CAST(timestamp AS INTEGER) AS second, {LABEL_SQL} AS label, COUNT(*),
    TOTAL(latency_ms), MAX(latency_ms), COUNT({_VALUE_SQL}), TOTAL({_VALUE_SQL}),
    MIN({_VALUE_SQL}), MAX({_VALUE_SQL})
FROM predictions WHERE id > ? AND id <= ?
GROUP BY model, second, label
"""
_FOLD_SQL = """
INSERT INTO prediction_aggregates (model, resolution, start, label, count, latency_sum,
    latency_max, value_count, value_sum, value_min, value_max)
SELECT model, ?1, start / ?1 * ?1 AS bucket, label, SUM(count), TOTAL(latency_sum),
    MAX(latency_max), SUM(value_count), TOTAL(value_sum), MIN(value_min), MAX(value_max)
FROM temp.prediction_fold WHERE true
GROUP BY model, bucket, label
ON CONFLICT (model, resolution, start, label) DO UPDATE SET
    count = count + excluded.count,
    latency_sum = latency_sum + excluded.latency_sum,
    latency_max = MAX(latency_max, excluded.latency_max),
    value_count = value_count + excluded.value_count,
    value_sum = value_sum + excluded.value_sum,
    value_min = COALESCE(MIN(value_min, excluded.value_min), value_min, excluded.value_min),
    value_max = COALESCE(MAX(value_max, excluded.value_max), value_max, excluded.value_max)
"""


def aggregated_id(connection: sqlite3.Connection) -> int:
    """The id up to which the log's rows are folded into ``prediction_aggregates``.

    0 when the log has no aggregate tables yet (written by an older mlwright).
    """
    try:
        row = connection.execute(
            "SELECT value FROM prediction_log_state WHERE key = 'aggregated_id'"
        ).fetchone()
    except sqlite3.OperationalError:  # no such table: a log from before the aggregates
        return 0
    return int(row[0]) if row else 0


def aggregate_pending(connection: sqlite3.Connection, limit: int = AGGREGATE_CHUNK) -> int:
    """Fold logged rows above the watermark into the aggregates, at most ``limit`` ids.

    Must run inside a write transaction of ``connection`` (SQLite's single writer lock is what
    makes the watermark exact: no other transaction can add rows below ``MAX(id)`` meanwhile).

    Returns
    -------
    int
        Ids still above the watermark afterwards (0 when the aggregates are complete).
    """
    done = aggregated_id(connection)
    top = connection.execute("SELECT MAX(id) FROM predictions").fetchone()[0] or 0
    if top <= done:
        return 0
    upto = min(top, done + max(1, int(limit)))
    connection.execute(_FOLD_TEMP_SQL)
    connection.execute("DELETE FROM temp.prediction_fold")
    connection.execute(_FOLD_SECONDS_SQL, (done, upto))
    for resolution in AGGREGATE_RESOLUTIONS:
        connection.execute(_FOLD_SQL, (resolution,))
    connection.execute("DELETE FROM temp.prediction_fold")
    connection.execute(
        "INSERT INTO prediction_log_state (key, value) VALUES ('aggregated_id', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (upto,),
    )
    return top - upto


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

    WAL lets ``mlwright monitor`` and the dashboard read while the server writes. Every write
    transaction also folds the new rows into ``prediction_aggregates`` (see
    :func:`aggregate_pending`); a log from an older mlwright, whose rows are not aggregated
    yet, is backfilled once by a background thread in steps of :data:`AGGREGATE_CHUNK` rows.
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
            + _AGGREGATE_SCHEMA
        )
        self._connection.commit()
        self._closing = threading.Event()
        #: Write transactions whose aggregation failed (their rows were written).
        self.aggregate_errors = 0
        self.backfill: threading.Thread | None = None
        pending = self._connection.execute(
            "SELECT COALESCE(MAX(id), 0) FROM predictions"
        ).fetchone()[0] - aggregated_id(self._connection)
        if pending > 0:
            # Rows not aggregated yet (a log from an older mlwright, or one written without
            # a store): fold them in the background so opening stays instant.
            self.backfill = threading.Thread(
                target=self._backfill, name="mlwright-log-aggregates", daemon=True
            )
            self.backfill.start()

    def _backfill(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            while not self._closing.is_set():
                connection.execute("BEGIN IMMEDIATE")
                try:
                    left = aggregate_pending(connection)
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
                if left == 0:
                    break
        except sqlite3.Error:
            # The writer folds pending rows in its own transactions too: a failed backfill
            # only delays the aggregates, it loses nothing.
            return
        finally:
            connection.close()

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._connection:
            self._connection.executemany(
                'INSERT INTO predictions (request_id, "row", timestamp, model, version, arm, '
                "features, prediction, probabilities, latency_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            # The same transaction aggregates them (and, while an old log is backfilled,
            # a bounded share of the backlog, so a batch never waits on the whole backfill).
            # In a savepoint: should aggregating fail, the rows are still written and only
            # the watermark stays behind (the dashboard groups the rows above it itself).
            self._connection.execute("SAVEPOINT aggregates")
            try:
                aggregate_pending(self._connection, limit=len(rows) + 10_000)
            except sqlite3.Error:
                self._connection.execute("ROLLBACK TO aggregates")
                self.aggregate_errors += 1
            self._connection.execute("RELEASE aggregates")

    def close(self) -> None:
        self._closing.set()
        if self.backfill is not None:
            self.backfill.join(timeout=30)
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
    durable
        Number the records so that :meth:`wait_logged` can wait for their commit, and write
        each batch at once (``interval`` is then not waited).
    """

    def __init__(
        self,
        store: LogStore,
        *,
        max_queue: int = 100_000,
        batch_size: int = 2048,
        interval: float = 0.05,
        on_drop: Callable[[int], None] | None = None,
        durable: bool = False,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval = interval
        self.durable = durable
        self.dropped = 0
        self.written = 0
        self.failed = 0
        #: Why the last write failed (shown in the answer of a request that waited for it).
        self.last_error = ""
        self._on_drop = on_drop
        self._queue: queue.Queue[tuple[int, LogRecord] | None] = queue.Queue(maxsize=max_queue)
        self._closed = False
        # Records are numbered 1, 2, ... in queue order (the lock keeps numbering and queueing
        # together when gRPC threads append beside the event loop); every number <= _done was
        # written or failed, and the recent failures are kept as (first, last) ranges.
        self._sequence = 0
        self._append_lock = threading.Lock()
        self._done = 0
        self._done_condition = threading.Condition()
        self._failures: collections.deque[tuple[int, int]] = collections.deque(maxlen=4096)
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[bool]]] = []
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
            LAST_APPENDED.set(-1)
            return False
        with self._append_lock:
            try:
                self._queue.put_nowait((self._sequence + 1, record))
            except queue.Full:
                dropped = True
            else:
                dropped = False
                self._sequence += 1
                sequence = self._sequence
        if dropped:
            self._count_drop(len(predictions))
            LAST_APPENDED.set(-1)
            return False
        LAST_APPENDED.set(sequence)
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
            batch: list[tuple[int, LogRecord]] = []
            if first is None:
                stop = True
            else:
                batch.append(first)
                if self.interval > 0 and not self._closed and not self.durable:
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
                self._settle(batch[-1][0])
            for _ in range(len(batch) + (1 if stop else 0)):
                self._queue.task_done()

    def _write(self, batch: list[tuple[int, LogRecord]]) -> None:
        rows: list[tuple[Any, ...]] = []
        for sequence, record in batch:
            try:
                rows.extend(_rows(record))
            except (TypeError, ValueError) as err:
                # A value that cannot be logged must not stop the writer; count it.
                self.failed += len(record[6])
                self._count_drop(len(record[6]))
                self.last_error = f"a value cannot be logged: {err}"
                self._failures.append((sequence, sequence))
        if not rows:
            return
        try:
            self.store.write(rows)
        except Exception as err:
            # Disk full or store unreachable: the rows are lost, so they are counted as dropped
            # and the writer keeps going for the next batch.
            self.failed += len(rows)
            self._count_drop(len(rows))
            self.last_error = f"{type(err).__name__}: {err}"
            self._failures.append((batch[0][0], batch[-1][0]))
        else:
            self.written += len(rows)

    def _failed(self, sequence: int) -> bool:
        # tuple() copies the deque in one step, while the writer thread may append to it.
        return any(first <= sequence <= last for first, last in tuple(self._failures))

    def _settle(self, last: int) -> None:
        # Every record numbered <= last is now written or failed: wake who waits for them.
        with self._done_condition:
            self._done = last
            ready = [waiter for waiter in self._waiters if waiter[0] <= last]
            if ready:
                self._waiters = [waiter for waiter in self._waiters if waiter[0] > last]
            self._done_condition.notify_all()
        for sequence, loop, future in ready:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_resolve, future, not self._failed(sequence))

    async def wait_logged(self, sequence: int, timeout: float = 30.0) -> bool:
        """Wait until the record numbered ``sequence`` is committed to the store.

        Parameters
        ----------
        sequence
            What :data:`LAST_APPENDED` held after :meth:`append` (-1 or 0: nothing queued).
        timeout
            Seconds to wait at most.

        Returns
        -------
        bool
            True once the record is in the store; False if it was dropped, its write failed,
            or ``timeout`` passed first.
        """
        if sequence <= 0:
            return False
        loop = asyncio.get_running_loop()
        with self._done_condition:
            if sequence <= self._done:
                return not self._failed(sequence)
            future: asyncio.Future[bool] = loop.create_future()
            self._waiters.append((sequence, loop, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False

    def wait_logged_blocking(self, sequence: int, timeout: float = 30.0) -> bool:
        """:meth:`wait_logged` for a thread (the gRPC handlers)."""
        if sequence <= 0:
            return False
        with self._done_condition:
            if not self._done_condition.wait_for(lambda: self._done >= sequence, timeout):
                return False
        return not self._failed(sequence)

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


def _resolve(future: asyncio.Future[bool], logged: bool) -> None:
    if not future.done():  # a waiter that timed out cancelled its future
        future.set_result(logged)


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
        clauses: list[str] = []
        parameters: list[Any] = []
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
