"""Feedback: true outcomes joined to logged predictions, and fast reads of the prediction log.

Labels arrive late and one by one (``POST /feedback`` on the server) or in batches
(``mlwright feedback LOG LABELS.csv``). They are kept beside the predictions, in a table
``feedback`` of the same SQLite file (or a ``<log>.feedback.jsonl`` file next to a JSON lines
log), keyed by request id and row. A batch can also be joined on a user column that was sent
as a feature (``--key customer_id``): each label then goes to the newest prediction whose
logged features hold that key value.
"""

from __future__ import annotations

import io
import json
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json

from mlwright.errors import ConfigError, DataError
from mlwright.monitor._reference import category_strings

_FEEDBACK_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    "row" INTEGER NOT NULL DEFAULT 0,
    actual TEXT NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id, "row");
"""


def split_log_uri(uri: str) -> tuple[str, Path]:
    """``(scheme, path)`` of a prediction-log URI (``sqlite:///x.db``, ``jsonl:///x.jsonl``)."""
    scheme, separator, rest = str(uri).partition("://")
    if not separator:
        path = Path(uri)
        return ("jsonl" if path.suffix in (".jsonl", ".ndjson") else "sqlite"), path.expanduser()
    if rest.startswith("/"):
        rest = rest[1:]
    if scheme not in ("sqlite", "jsonl"):
        raise ConfigError(
            f"Monitoring reads prediction logs in SQLite or JSON lines; '{uri}' uses '{scheme}'. "
            "Pass the --log the server wrote, e.g. sqlite:///.mlwright/predictions.db."
        )
    return scheme, Path(rest).expanduser()


def _require_log(uri: str) -> tuple[str, Path]:
    scheme, path = split_log_uri(uri)
    if not path.is_file():
        raise ConfigError(
            f"No prediction log at '{path}'. Serve a model first (mlwright serve logs to "
            "<home>/predictions.db), or pass the --log the server used."
        )
    return scheme, path


def _feedback_path(path: Path) -> Path:
    return path.with_name(path.name + ".feedback.jsonl")


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    item = getattr(value, "item", None)
    return item() if item is not None else value


@dataclass
class FeedbackResult:
    """What a batch of labels did: rows stored, rows that matched no prediction."""

    stored: int
    unmatched: int
    unmatched_examples: list[Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "unmatched": self.unmatched,
            "unmatched_examples": self.unmatched_examples,
        }


def record_feedback(uri: str, items: list[dict[str, Any]]) -> int:
    """Store outcomes for logged predictions.

    Parameters
    ----------
    uri
        The prediction log.
    items
        ``{"request_id": ..., "actual": ..., "row": 0, "timestamp": unix seconds}``
        (``row`` and ``timestamp`` optional).

    Returns
    -------
    int
        Items stored.
    """
    now = time.time()
    rows = []
    for item in items:
        request_id = item.get("request_id")
        if request_id is None or str(request_id) == "":
            raise DataError("Every feedback item needs a request_id (the one /predict returned).")
        if "actual" not in item or item["actual"] is None:
            raise DataError(
                f"The feedback for request {request_id!r} has no 'actual' value (the true outcome)."
            )
        stamp = item.get("timestamp")
        rows.append(
            (
                str(request_id),
                int(item.get("row") or 0),
                json.dumps(_plain(item["actual"])),
                float(stamp) if stamp is not None else now,
            )
        )
    scheme, path = split_log_uri(uri)
    if scheme == "jsonl":
        with _feedback_path(path).open("a", encoding="utf-8") as handle:
            for request_id, row, actual, stamp in rows:
                handle.write(
                    json.dumps(
                        {
                            "request_id": request_id,
                            "row": row,
                            "actual": json.loads(actual),
                            "timestamp": stamp,
                        }
                    )
                    + "\n"
                )
        return len(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30)
    try:
        connection.executescript(_FEEDBACK_SCHEMA)
        with connection:
            connection.executemany(
                'INSERT INTO feedback (request_id, "row", actual, timestamp) VALUES (?, ?, ?, ?)',
                rows,
            )
    except sqlite3.Error as err:
        raise ConfigError(f"Cannot write feedback to the log '{path}' ({err}).") from err
    finally:
        connection.close()
    return len(rows)


def join_feedback(
    uri: str,
    labels: pd.DataFrame,
    *,
    target: str | None = None,
    key: str | None = None,
) -> FeedbackResult:
    """Store a batch of labels, joined to logged predictions on request id or a user key.

    Parameters
    ----------
    uri
        The prediction log.
    labels
        One row per outcome: ``request_id`` (and optionally ``row``) or the ``key`` column,
        plus the outcome in ``actual`` or in the model's ``target`` column.
    target
        The name of the outcome column when it is not ``actual``.
    key
        Join on this logged feature instead of the request id.
    """
    label_column = next(
        (name for name in ("actual", target) if name and name in labels.columns), None
    )
    if label_column is None:
        wanted = " or ".join(repr(n) for n in ("actual", target) if n)
        raise DataError(
            f"The labels have no outcome column {wanted}; columns found: "
            f"{', '.join(map(str, labels.columns[:20]))}. Name the column with the true outcome "
            "'actual' (or the model's target)."
        )
    join_on = key or "request_id"
    if join_on not in labels.columns:
        raise DataError(
            f"The labels have no column {join_on!r} to join on; columns found: "
            f"{', '.join(map(str, labels.columns[:20]))}. Add the request_id each prediction "
            "returned, or pass --key with a column that was sent as a feature."
        )
    _require_log(uri)
    labels = labels.loc[labels[label_column].notna()]
    if key is None:
        known = _logged_requests(uri)
        request_ids = labels["request_id"].astype(str)
        rows = labels["row"].fillna(0).astype(int) if "row" in labels.columns else 0
        frame = pd.DataFrame(
            {"request_id": request_ids, "row": rows, "actual": labels[label_column]}
        )
        matched = frame["request_id"].isin(known)
    else:
        log = read_log(uri, columns=[key])
        if key not in log.features.columns:
            raise DataError(
                f"The prediction log holds no feature {key!r} to join the labels on; logged "
                f"features: {', '.join(map(str, log.features.columns[:20]))}."
            )
        index = pd.DataFrame(
            {
                "k": _key_strings(log.features[key]),
                "request_id": log.meta["request_id"].to_numpy(),
                "row": log.meta["row"].to_numpy(),
            }
        ).drop_duplicates("k", keep="last")
        keys = _key_strings(labels[key])
        joined = pd.DataFrame({"k": keys.to_numpy(), "actual": labels[label_column].to_numpy()})
        frame = joined.merge(index, on="k", how="left")
        matched = frame["request_id"].notna()
    stored_frame = frame.loc[matched]
    items = [
        {"request_id": r, "row": int(w), "actual": a}
        for r, w, a in zip(
            stored_frame["request_id"], stored_frame["row"], stored_frame["actual"], strict=True
        )
    ]
    stored = record_feedback(uri, items) if items else 0
    missed = frame.loc[~matched, "k" if key else "request_id"].head(5).tolist()
    return FeedbackResult(stored=stored, unmatched=int((~matched).sum()), unmatched_examples=missed)


def _key_strings(values: pd.Series) -> pd.Series:

    return category_strings(values).reindex(values.index).astype(object)


def _logged_requests(uri: str) -> set[str]:
    scheme, path = _require_log(uri)
    if scheme == "sqlite":
        connection = sqlite3.connect(path)
        try:
            return {
                row[0] for row in connection.execute("SELECT DISTINCT request_id FROM predictions")
            }
        finally:
            connection.close()
    with path.open(encoding="utf-8") as handle:
        return {json.loads(line)["request_id"] for line in handle if line.strip()}


@dataclass
class LogData:
    """Logged predictions of one model as columns.

    Attributes
    ----------
    meta
        ``request_id``, ``row``, ``timestamp``, ``model``, ``version``, ``arm``,
        ``latency_ms``, ``prediction`` and (when labelled) ``actual``.
    features
        The logged input features, one column per feature.
    probabilities
        One column per class (classification), else None.
    """

    meta: pd.DataFrame
    features: pd.DataFrame
    probabilities: pd.DataFrame | None

    def __len__(self) -> int:
        return len(self.meta)

    def labelled(self) -> LogData:
        """Only the rows with feedback."""
        if "actual" not in self.meta.columns:
            return LogData(self.meta.iloc[:0], self.features.iloc[:0], None)
        keep = self.meta["actual"].notna().to_numpy()
        return LogData(
            self.meta.loc[keep].reset_index(drop=True),
            self.features.loc[keep].reset_index(drop=True),
            None
            if self.probabilities is None
            else self.probabilities.loc[keep].reset_index(drop=True),
        )


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


def read_log(
    uri: str,
    *,
    model: str | None = None,
    since: Any = None,
    until: Any = None,
    limit: int | None = None,
    columns: list[str] | None = None,
    with_feedback: bool = False,
    labelled_only: bool = False,
) -> LogData:
    """Read logged predictions (and their feedback) as columns, fast.

    The JSON of a million logged rows is parsed by Arrow's multithreaded JSON reader (falling
    back to Python's ``json`` for what Arrow cannot type), not row by row in Python.

    Parameters
    ----------
    uri
        The prediction log.
    model
        Only this model's rows.
    since, until
        Unix seconds or datetimes.
    limit
        The newest rows at most.
    columns
        Only these features (all by default).
    with_feedback
        Join the newest feedback of each row as ``meta["actual"]``.
    labelled_only
        Only rows with feedback (implies ``with_feedback``; ``limit`` then counts labelled
        rows).
    """
    with_feedback = with_feedback or labelled_only
    scheme, path = _require_log(uri)
    start, end = _seconds(since), _seconds(until)
    if scheme == "jsonl":
        data = _read_jsonl_log(
            path, model, start, end, None if labelled_only else limit, columns, with_feedback
        )
        if labelled_only:
            data = data.labelled()
            if limit is not None and len(data) > limit:
                keep = slice(len(data) - int(limit), None)
                data = LogData(
                    data.meta.iloc[keep].reset_index(drop=True),
                    data.features.iloc[keep].reset_index(drop=True),
                    None
                    if data.probabilities is None
                    else data.probabilities.iloc[keep].reset_index(drop=True),
                )
        return data
    clauses: list[str] = []
    parameters: list[Any] = []
    # With a limit the newest ids are wanted: "+" keeps SQLite walking the primary key down
    # from the newest row (stopping after ``limit``) instead of collecting every row of the
    # model through the (model, timestamp) index and sorting them (1.2 s at 1M rows).
    plus = "+" if limit is not None or labelled_only else ""
    if model is not None:
        clauses.append(f"{plus}p.model = ?")
        parameters.append(model)
    if start is not None:
        clauses.append(f"{plus}p.timestamp >= ?")
        parameters.append(start)
    if end is not None:
        clauses.append(f"{plus}p.timestamp < ?")
        parameters.append(end)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        has_feedback = bool(
            connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='feedback'"
            ).fetchone()
        )
        actual = "NULL"
        if labelled_only and not has_feedback:
            return _assemble(_empty_meta(), [], columns, True)
        if with_feedback and has_feedback:
            # The newest outcome of each row, looked up through the (request_id, row) index.
            actual = (
                "(SELECT f.actual FROM feedback f WHERE f.request_id = p.request_id "
                'AND f."row" = p."row" ORDER BY f.id DESC LIMIT 1)'
            )
        # Choose the ids first (cheap: integers), then build the text of those rows only:
        # SQLite would otherwise build it for every matching row before sorting and limiting.
        chosen = "predictions p"
        if labelled_only:
            # Driven from the labels (CROSS JOIN fixes the order), each prediction found
            # through the request index: the cost follows the labels, not the log's size.
            chosen = (
                '(SELECT DISTINCT request_id, "row" FROM feedback) g '
                'CROSS JOIN predictions p ON p.request_id = g.request_id AND p."row" = g."row"'
            )
        if limit is not None or labelled_only:
            tail = " ORDER BY p.id DESC LIMIT ?" if limit is not None else ""
            where = f"WHERE p.id IN (SELECT p.id FROM {chosen} {where}{tail})"
        order = "ORDER BY p.id"
        if limit is not None:
            parameters.append(int(limit))
        sql = (
            f'SELECT p.request_id, p."row", p.timestamp, p.model, p.version, p.arm, '
            f"p.latency_ms, '{{\"f\":' || p.features || ',\"p\":' || p.prediction || "
            f"',\"q\":' || COALESCE(p.probabilities, 'null') || ',\"a\":' || "
            f"COALESCE({actual}, 'null') || '}}' FROM predictions p {where} {order}"
        )
        rows = connection.execute(sql, parameters).fetchall()
    except sqlite3.Error as err:
        raise ConfigError(f"Cannot read the prediction log '{path}' ({err}).") from err
    finally:
        connection.close()
    meta = pd.DataFrame([row[:7] for row in rows], columns=_META_COLUMNS)
    documents = [row[7] for row in rows]
    return _assemble(meta, documents, columns, with_feedback)


_META_COLUMNS = ["request_id", "row", "timestamp", "model", "version", "arm", "latency_ms"]


def _empty_meta() -> pd.DataFrame:
    return pd.DataFrame(columns=_META_COLUMNS)


def _assemble(
    meta: pd.DataFrame, documents: list[str], columns: list[str] | None, with_feedback: bool
) -> LogData:
    if not documents:
        empty = pd.DataFrame(columns=columns or [])
        meta["prediction"] = pd.Series([], dtype=object)
        if with_feedback:
            meta["actual"] = pd.Series([], dtype=object)
        return LogData(meta, empty, None)
    parsed = _parse_documents(documents)
    features = parsed["f"]
    if columns is not None:
        features = features[[name for name in columns if name in features.columns]]
    meta["prediction"] = parsed["p"]
    if with_feedback:
        meta["actual"] = parsed["a"]
    return LogData(meta, features.reset_index(drop=True), parsed["q"])


def _parse_documents(documents: list[str]) -> dict[str, Any]:
    try:
        return _parse_with_arrow(documents)
    except Exception:  # Arrow could not type a column (e.g. mixed numbers and text)
        return _parse_with_json(documents)


def _parse_with_arrow(documents: list[str]) -> dict[str, Any]:
    buffer = io.BytesIO("\n".join(documents).encode("utf-8"))
    options = pa_json.ReadOptions(block_size=1 << 24)
    table = pa_json.read_json(buffer, read_options=options)
    out: dict[str, Any] = {}
    for name in ("f", "q"):
        if name in table.column_names and pa.types.is_struct(table.schema.field(name).type):
            column = table.column(name).combine_chunks()
            names = [field.name for field in column.type]
            out[name] = pa.Table.from_arrays(column.flatten(), names=names).to_pandas()
        else:
            out[name] = None if name == "q" else pd.DataFrame(index=range(table.num_rows))
    for name in ("p", "a"):
        if name in table.column_names:
            column = table.column(name)
            if not (
                pa.types.is_primitive(column.type)
                or pa.types.is_string(column.type)
                or pa.types.is_large_string(column.type)
                or pa.types.is_null(column.type)
            ):
                raise TypeError("non-scalar outcome")
            out[name] = np.asarray(column.to_pylist(), dtype=object)
        else:
            out[name] = np.full(table.num_rows, None, dtype=object)
    return out


def _parse_with_json(documents: list[str]) -> dict[str, Any]:
    loaded = [json.loads(text) for text in documents]
    features = pd.DataFrame([document["f"] for document in loaded])
    probabilities = [document["q"] for document in loaded]
    return {
        "f": features,
        "q": None
        if all(item is None for item in probabilities)
        else pd.DataFrame([item or {} for item in probabilities]),
        "p": np.asarray([document["p"] for document in loaded], dtype=object),
        "a": np.asarray([document["a"] for document in loaded], dtype=object),
    }


def _read_jsonl_log(
    path: Path,
    model: str | None,
    start: float | None,
    end: float | None,
    limit: int | None,
    columns: list[str] | None,
    with_feedback: bool,
) -> LogData:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            if model is not None and record["model"] != model:
                continue
            if start is not None and record["timestamp"] < start:
                continue
            if end is not None and record["timestamp"] >= end:
                continue
            records.append(record)
    if limit is not None:
        records = records[-int(limit) :]
    outcomes: dict[tuple[str, int], Any] = {}
    feedback = _feedback_path(path)
    if with_feedback and feedback.is_file():
        with feedback.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    item = json.loads(line)
                    outcomes[(item["request_id"], int(item.get("row", 0)))] = item["actual"]
    meta = pd.DataFrame(
        [
            (
                r["request_id"],
                r["row"],
                r["timestamp"],
                r["model"],
                r["version"],
                r["arm"],
                r["latency_ms"],
            )
            for r in records
        ],
        columns=["request_id", "row", "timestamp", "model", "version", "arm", "latency_ms"],
    )
    documents = [
        json.dumps(
            {
                "f": r["features"],
                "p": r["prediction"],
                "q": r.get("probabilities"),
                "a": outcomes.get((r["request_id"], int(r["row"]))),
            }
        )
        for r in records
    ]
    return _assemble(meta, documents, columns, with_feedback)
