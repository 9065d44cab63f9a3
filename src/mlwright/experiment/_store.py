"""Experiment definitions and outcomes, kept in the prediction log's SQLite file.

Two tables sit beside ``predictions`` (and the monitoring stage's ``feedback``):
``experiments`` (one row per experiment: model, arms with weights and model references, unit
key, shadow flag, ramp, status) and ``experiment_outcomes`` (one row per observed outcome:
request id and/or unit key, arm, metric, value, time). Keeping them in the same file means
the server, the CLI and the analysis need one location only, and outcomes join predictions
(and their arms) on the request id with plain SQL.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlwright.experiment._assignment import Ramp, assign, weights_at
from mlwright.experiment._errors import ExperimentError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    arms TEXT NOT NULL,
    unit_key TEXT,
    shadow INTEGER NOT NULL DEFAULT 0,
    ramp TEXT,
    metric TEXT,
    mde REAL,
    alpha REAL NOT NULL DEFAULT 0.05,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    stopped REAL,
    result TEXT
);
CREATE TABLE IF NOT EXISTS experiment_outcomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment TEXT NOT NULL,
    request_id TEXT,
    unit TEXT,
    arm TEXT,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS experiment_outcomes_experiment
    ON experiment_outcomes (experiment, metric);
"""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass
class Arm:
    """One arm: its traffic weight and the model reference that serves it."""

    name: str
    weight: float
    reference: str


@dataclass
class Experiment:
    """An experiment's definition and state.

    Attributes
    ----------
    name
        Unique name (also the hashing salt, so experiments split users independently).
    model
        The served model name whose traffic is split.
    arms
        The arms in declaration order; the first is the control (the champion).
    unit_key
        Request field (or ``X-Unit-Key`` header) identifying the unit for sticky assignment;
        ``None`` assigns each request independently.
    shadow
        The control answers every request; the other arms score it in the background.
    ramp
        Canary schedule ``{"arm", "steps", "every"}`` or ``None``.
    metric
        The primary outcome metric deciding the experiment (``None``: the first recorded).
    mde, alpha
        Effect the sequential test is tuned to (its mixing scale) and the significance level.
    status
        ``"running"`` or ``"stopped"``.
    started, stopped
        Unix times.
    result
        The last analysis (a dict) or ``None``.
    """

    name: str
    model: str
    arms: list[Arm]
    unit_key: str | None = None
    shadow: bool = False
    ramp: dict[str, Any] | None = None
    metric: str | None = None
    mde: float | None = None
    alpha: float = 0.05
    status: str = "running"
    started: float = field(default_factory=time.time)
    stopped: float | None = None
    result: dict[str, Any] | None = None

    @property
    def control(self) -> str:
        """The control arm's name (the first arm)."""
        return self.arms[0].name

    @property
    def weights(self) -> dict[str, float]:
        """Arm name -> weight, in declaration order."""
        return {arm.name: arm.weight for arm in self.arms}

    def arm(self, name: str) -> Arm:
        """The arm called ``name``."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise ExperimentError(
            f"the experiment {self.name!r} has no arm {name!r}; its arms are "
            f"{[a.name for a in self.arms]}."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form."""
        return asdict(self)


def sqlite_file(log_uri: str) -> Path:
    """The SQLite file of a prediction log URI (experiments need the SQLite log)."""
    if not log_uri.lower().startswith("sqlite:///"):
        raise ExperimentError(
            f"experiments are kept in the SQLite prediction log, but the log is {log_uri!r}; "
            "serve with the default log or --log sqlite:///path.db and pass the same --log."
        )
    return Path(log_uri[len("sqlite:///") :]).expanduser()


class ExperimentStore:
    """Read and write experiments and outcomes in a prediction log's SQLite file.

    Parameters
    ----------
    log_uri
        ``sqlite:///path.db``, the log the server writes.
    """

    def __init__(self, log_uri: str) -> None:
        self.log_uri = log_uri
        self.path = sqlite_file(log_uri)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as connection:
                connection.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise ExperimentError(
                f"cannot open the experiment store in {self.path} ({err}); check the --log path "
                "and that the folder is writable."
            ) from err

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    # -- definitions ------------------------------------------------------------------------
    def create(self, experiment: Experiment) -> Experiment:
        """Store a new running experiment; one running experiment per model at a time."""
        if not _NAME.match(experiment.name):
            raise ExperimentError(
                f"the experiment name {experiment.name!r} must start with a letter or digit and "
                "hold only letters, digits, '.', '_' or '-' (at most 100 characters)."
            )
        existing = self.get(experiment.name, missing_ok=True)
        if existing is not None:
            raise ExperimentError(
                f"an experiment called {experiment.name!r} already exists ({existing.status}); "
                "pick another name."
            )
        for other in self.list(status="running"):
            if other.model == experiment.model:
                raise ExperimentError(
                    f"the model {experiment.model!r} is already under experiment {other.name!r}; "
                    f"stop it first with `mlwright experiment stop {other.name}`."
                )
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO experiments (name, model, arms, unit_key, shadow, ramp, metric, mde, "
                "alpha, status, started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    experiment.name,
                    experiment.model,
                    json.dumps([asdict(a) for a in experiment.arms]),
                    experiment.unit_key,
                    int(experiment.shadow),
                    json.dumps(experiment.ramp) if experiment.ramp else None,
                    experiment.metric,
                    experiment.mde,
                    experiment.alpha,
                    experiment.status,
                    experiment.started,
                ),
            )
        return experiment

    def get(self, name: str, *, missing_ok: bool = False) -> Experiment | None:
        """The experiment called ``name`` (an error naming the known ones when absent)."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT name, model, arms, unit_key, shadow, ramp, metric, mde, alpha, status, "
                "started, stopped, result FROM experiments WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            if missing_ok:
                return None
            known = [e.name for e in self.list()]
            raise ExperimentError(
                f"no experiment called {name!r} in {self.path}; known experiments: "
                f"{known or 'none'}. Start one with `mlwright experiment start`, or pass the "
                "--log the server uses."
            )
        return _experiment(row)

    def list(self, *, status: str | None = None) -> list[Experiment]:
        """All experiments (optionally only those with ``status``), oldest first."""
        sql = (
            "SELECT name, model, arms, unit_key, shadow, ramp, metric, mde, alpha, status, "
            "started, stopped, result FROM experiments"
        )
        parameters: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            parameters = (status,)
        with self._connect() as connection:
            rows = connection.execute(sql + " ORDER BY started", parameters).fetchall()
        return [_experiment(row) for row in rows]

    def stop(self, name: str) -> Experiment:
        """Mark an experiment stopped (traffic returns to the model's normal version)."""
        experiment = self.get(name)
        assert experiment is not None
        if experiment.status != "stopped":
            experiment.status, experiment.stopped = "stopped", time.time()
            with self._connect() as connection:
                connection.execute(
                    "UPDATE experiments SET status = ?, stopped = ? WHERE name = ?",
                    (experiment.status, experiment.stopped, name),
                )
        return experiment

    def save_result(self, name: str, result: Mapping[str, Any]) -> None:
        """Keep the latest analysis with the experiment."""
        with self._connect() as connection:
            connection.execute(
                "UPDATE experiments SET result = ? WHERE name = ?",
                (json.dumps(result, default=str), name),
            )

    # -- outcomes ---------------------------------------------------------------------------
    def add_outcomes(self, experiment: Experiment, items: Iterable[Mapping[str, Any]]) -> int:
        """Record outcomes; each needs ``metric``, ``value`` and ``request_id`` or ``unit``.

        The arm is resolved from the prediction log (by request id) or from the unit's
        sticky assignment; an outcome whose request is not logged yet keeps a NULL arm and is
        resolved at analysis time.
        """

        ramp = Ramp(**experiment.ramp) if experiment.ramp else None
        rows = []
        for index, item in enumerate(items):
            request_id = _text(item.get("request_id"))
            unit = _text(item.get("unit"))
            metric = _text(item.get("metric"))
            if not metric:
                raise ExperimentError(
                    f"outcome {index + 1} has no metric name; give e.g. "
                    '{"request_id": "...", "metric": "conversion", "value": 1}.'
                )
            try:
                value = float(item.get("value"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                value = float("nan")
            if value != value or value in (float("inf"), float("-inf")):
                raise ExperimentError(
                    f"outcome {index + 1} ({metric}) has the value {item.get('value')!r}; "
                    "values must be finite numbers (1/0 for a conversion)."
                )
            if not request_id and not unit:
                raise ExperimentError(
                    f"outcome {index + 1} ({metric}) names neither a request_id nor a unit; give "
                    "the request id /predict returned or the unit key value."
                )
            stamp = _timestamp(item.get("timestamp"))
            arm = _text(item.get("arm"))
            if arm is None and unit is not None and not experiment.shadow:
                weights = weights_at(experiment.weights, ramp, stamp - experiment.started)
                arm = assign(unit, weights, salt=experiment.name)
            rows.append((experiment.name, request_id, unit, arm, metric, value, stamp))
        with self._connect() as connection:
            connection.executemany(
                "INSERT INTO experiment_outcomes (experiment, request_id, unit, arm, metric, "
                "value, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def outcomes(self, experiment: Experiment) -> list[tuple[Any, ...]]:
        """``(request_id, unit, arm, metric, value, timestamp)`` rows in time order.

        A missing arm is filled from the logged prediction of the same request.
        """
        with self._connect() as connection:
            has_log = _has_table(connection, "predictions")
            if has_log:
                sql = (
                    "SELECT o.request_id, o.unit, COALESCE(o.arm, (SELECT p.arm FROM predictions p "
                    "WHERE p.request_id = o.request_id AND p.model = ? AND p.arm NOT LIKE "
                    "'shadow:%' LIMIT 1)), o.metric, o.value, o.timestamp FROM "
                    "experiment_outcomes o WHERE o.experiment = ? ORDER BY o.timestamp, o.id"
                )
                return connection.execute(sql, (experiment.model, experiment.name)).fetchall()
            return connection.execute(
                "SELECT request_id, unit, arm, metric, value, timestamp FROM experiment_outcomes "
                "WHERE experiment = ? ORDER BY timestamp, id",
                (experiment.name,),
            ).fetchall()

    def predictions(self, experiment: Experiment) -> list[tuple[Any, ...]]:
        """``(request_id, arm, latency_ms, prediction, actual)`` per logged request row of the
        experiment's model since it started (``actual`` from feedback, or ``None``)."""
        until = experiment.stopped or time.time() + 1.0
        with self._connect() as connection:
            if not _has_table(connection, "predictions"):
                return []
            if _has_table(connection, "feedback"):
                sql = (
                    "SELECT p.request_id, p.arm, p.latency_ms, p.prediction, f.actual FROM "
                    'predictions p LEFT JOIN (SELECT request_id, "row", actual FROM feedback '
                    'WHERE id IN (SELECT MAX(id) FROM feedback GROUP BY request_id, "row")) f '
                    'ON f.request_id = p.request_id AND f."row" = p."row" '
                    "WHERE p.model = ? AND p.timestamp >= ? AND p.timestamp < ? ORDER BY p.id"
                )
            else:
                sql = (
                    "SELECT request_id, arm, latency_ms, prediction, NULL FROM predictions "
                    "WHERE model = ? AND timestamp >= ? AND timestamp < ? ORDER BY id"
                )
            return connection.execute(sql, (experiment.model, experiment.started, until)).fetchall()


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    return (
        connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        is not None
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    text = str(value).strip()
    return text or None


def _timestamp(value: Any) -> float:
    if value is None or value == "":
        return time.time()
    try:
        return float(value)
    except (TypeError, ValueError):
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError as err:
            raise ExperimentError(
                f"cannot read the outcome timestamp {value!r}; use unix seconds or ISO 8601."
            ) from err
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()


def _experiment(row: tuple[Any, ...]) -> Experiment:
    (
        name,
        model,
        arms,
        unit_key,
        shadow,
        ramp,
        metric,
        mde,
        alpha,
        status,
        started,
        stopped,
        result,
    ) = row
    return Experiment(
        name=name,
        model=model,
        arms=[Arm(**a) for a in json.loads(arms)],
        unit_key=unit_key,
        shadow=bool(shadow),
        ramp=json.loads(ramp) if ramp else None,
        metric=metric,
        mde=mde,
        alpha=alpha,
        status=status,
        started=started,
        stopped=stopped,
        result=json.loads(result) if result else None,
    )
