"""Loaded models: what the server can predict with, matched by name, swapped atomically.

Model names in URLs are only ever looked up in :class:`ModelRegistry`; nothing from a request
is used to build a path or a registry reference. A swap replaces the entry in one assignment,
so a request that already holds the old :class:`ServedModel` finishes with it and the next one
gets the new version: no request fails during ``--watch`` swaps.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright._categories import category_key as _category_key
from mlwright.errors import ModelError
from mlwright.model import load
from mlwright.registry import get_version
from mlwright.serve._fastpath import FastPath

__all__ = ["FieldSpec", "ModelRegistry", "ServedModel", "load_served_model", "model_name_for"]

logger = logging.getLogger("mlwright.serve")

# JSON type per schema dtype: what a request must send for a column.
_NUMERIC_DTYPES = ("integer", "float")


@dataclass(frozen=True)
class FieldSpec:
    """One input column as the server checks and documents it.

    Attributes
    ----------
    name
        Column name (any characters).
    kind
        ``"number"``, ``"string"``, ``"boolean"`` or ``"datetime"``: the JSON type accepted.
    semantic_type
        The schema's semantic type (``numeric``, ``categorical``, ...).
    nullable
        Whether null (missing) is accepted.
    required
        Whether the field must be present (the predictor uses it and it is not nullable).
    categories
        Known categories (for documentation and the unseen-category rule), or None.
    reject_unseen
        Whether an unseen category is an error (422) rather than handled by the model.
    minimum, maximum
        Training range (documentation only).
    integer
        Whether training saw only whole numbers (documentation only).
    """

    name: str
    kind: str
    semantic_type: str
    nullable: bool
    required: bool
    categories: tuple[Any, ...] | None = None
    reject_unseen: bool = False
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    category_set: frozenset[Any] = field(default=frozenset(), compare=False)


def model_name_for(reference: str) -> str:
    """The name a model is served under, derived from its reference.

    ``models:/credit@champion`` and ``models:/credit/3`` -> ``credit``; a path -> its folder
    name; ``runs:/<id>/model`` -> ``<id>``. Names keep only URL-safe characters.
    """
    text = reference.rstrip("/")
    if text.startswith("models:/"):
        base = re.split(r"[@/]", text[len("models:/") :], maxsplit=1)[0]
    elif text.startswith("runs:/"):
        base = text[len("runs:/") :].split("/", 1)[0]
    else:
        base = Path(text).name or "model"
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.")
    return cleaned or "model"


def _artifact_digest(path: Path | None) -> str:
    if path is None:
        return ""
    manifest = path / "MANIFEST"
    if not manifest.is_file():
        return ""
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


class ServedModel:
    """A loaded :class:`mlwright.model.Model` prepared for fast serving.

    Built once per model version: the column order, per-field checks, OpenAPI and Open
    Inference Protocol metadata are computed here, so the request path only loops over fields.

    Parameters
    ----------
    model
        The loaded model.
    name
        Served name (URL segment).
    version
        Version string (registry version, or a digest of the artifact).
    reference
        The reference it was loaded from (for ``--watch``).
    """

    def __init__(self, model: Any, *, name: str, version: str, reference: str = "") -> None:
        self.model = model
        self.name = name
        self.version = version
        self.reference = reference
        self.loaded_at = time.time()
        self.task: str = model.task
        self.classes: list[Any] | None = list(model.classes) if model.classes is not None else None
        self.feature_names: list[str] = list(model.feature_names)
        self.target: str = model.target
        self.fields: list[FieldSpec] = self._build_fields()
        self.field_by_name = {spec.name: spec for spec in self.fields}
        self.accepted = frozenset(self.field_by_name) | {self.target}
        self.numeric_features = [
            name for name in self.feature_names if self.field_by_name[name].kind == "number"
        ]
        self.all_numeric = len(self.numeric_features) == len(self.feature_names)
        self.class_index = {label: i for i, label in enumerate(self.classes or [])}
        self.fast_path = self._build_fast_path()
        self.decide = getattr(model.predictor, "decide", None)

    def _build_fast_path(self) -> Any:

        fast = FastPath.build(self.model.predictor)
        if fast is None:
            return None
        columns, n_rows = self.probe_columns()
        predictor = self.model.predictor

        def slow(values: dict[str, list[Any]], n: int) -> Any:
            frame = self.frame(values, n)
            if self.task == "regression":
                return predictor.predict(frame)
            return predictor.predict_proba(frame)

        if not fast.verify(slow, columns, n_rows):
            logger.warning("model %s: fast path disagrees with the predictor; not used", self.name)
            return None
        return fast

    def probe_columns(self) -> tuple[dict[str, list[Any]], int]:
        """A few valid rows spanning each field (training range ends, categories, missing)."""
        columns: dict[str, list[Any]] = {}
        for spec in self.fields:
            if spec.kind == "number":
                low = spec.minimum if spec.minimum is not None else 0.0
                high = spec.maximum if spec.maximum is not None else 1.0
                middle = (low + high) / 2
                if spec.categories:
                    values = [spec.categories[0], spec.categories[-1], middle, low]
                else:
                    values = [low, high, middle, middle]
            elif spec.kind == "boolean":
                values = [True, False, True, False]
            elif spec.kind == "datetime":
                values = ["2020-01-01T00:00:00"] * 4
            else:
                known = list(spec.categories or ["a"])
                values = [str(known[0]), str(known[-1]), "\x00unseen", str(known[len(known) // 2])]
            if spec.nullable:
                values[3] = None
            columns[spec.name] = values
        return columns, 4

    # -- schema ------------------------------------------------------------------------------
    def _build_fields(self) -> list[FieldSpec]:
        schema = self.model.schema
        used = set(self.feature_names)
        specs = []
        columns = list(getattr(schema, "columns", []) or [])
        by_name = {column.name: column for column in columns}
        # The predictor's inputs first (in its order), then schema columns it ignores (accepted
        # and logged, so clients may send whole records).
        ordered = [by_name[name] for name in self.feature_names if name in by_name]
        ordered += [c for c in columns if c.name not in used and c.name != self.target]
        missing = [name for name in self.feature_names if name not in by_name]
        for column in ordered:
            specs.append(self._field(column, column.name in used))
        for name in missing:
            # A predictor input without a schema entry: accept any number or null.
            specs.append(FieldSpec(name, "number", "numeric", True, False))
        return specs

    def _field(self, column: Any, used: bool) -> FieldSpec:
        semantic = str(getattr(column, "semantic_type", "") or "")
        dtype = str(getattr(column, "dtype", "") or "")
        nullable = bool(getattr(column, "nullable", True))
        categories = getattr(column, "categories", None)
        if dtype == "boolean":
            kind = "boolean"
        elif semantic == "datetime" or dtype == "datetime":
            kind = "datetime"
        elif dtype in _NUMERIC_DTYPES and semantic in ("numeric", "constant", "identifier", ""):
            kind = "number"
        elif dtype in _NUMERIC_DTYPES and semantic == "categorical":
            # Numeric codes used as categories: numbers are what clients have.
            kind = "number"
        else:
            kind = "string"
        reject = bool(
            used
            and semantic == "categorical"
            and categories
            and _unseen_is_error(self.model.schema, column)
        )
        minimum = _finite(getattr(column, "minimum", None))
        maximum = _finite(getattr(column, "maximum", None))
        cats = tuple(categories) if categories else None
        return FieldSpec(
            name=column.name,
            kind=kind,
            semantic_type=semantic or "numeric",
            # Columns the predictor does not use may always be left out.
            nullable=nullable or not used,
            required=used and not nullable,
            categories=cats,
            reject_unseen=reject,
            minimum=minimum,
            maximum=maximum,
            integer=dtype == "integer",
            category_set=frozenset(_category_keys(cats or ())),
        )

    # -- prediction ----------------------------------------------------------------------------
    def frame(self, columns: dict[str, Sequence[Any]], n_rows: int) -> Any:
        """The predictor's input frame from per-column values (already validated)."""
        data: dict[str, Any] = {}
        for name in self.feature_names:
            values = columns.get(name)
            spec = self.field_by_name[name]
            if values is None:
                data[name] = np.full(n_rows, np.nan)
            elif spec.kind == "number":
                data[name] = np.asarray(values, dtype=np.float64)
            elif spec.kind == "boolean":
                data[name] = pd.array(values, dtype="boolean")
            else:
                # Object arrays: the predictor's preprocessing normalises category text itself,
                # and building a string-dtype array costs more than the prediction of one row.
                column = np.empty(n_rows, dtype=object)
                column[:] = [np.nan if value is None else str(value) for value in values]
                data[name] = column
        return pd.DataFrame(data)

    def predict_frame(self, frame: Any) -> tuple[list[Any], Any]:
        """Predictions (plain Python values) and the probability matrix (or None)."""
        predictor = self.model.predictor
        if self.task == "regression":
            values = np.asarray(predictor.predict(frame), dtype=np.float64)
            return values.tolist(), None
        probabilities = np.asarray(predictor.predict_proba(frame), dtype=np.float64)
        classes = self.classes or []
        # A decision threshold stored with the model replaces the arg-max.
        decide = getattr(predictor, "decide", None)
        positions = decide(probabilities) if decide is not None else probabilities.argmax(axis=1)
        labels = [classes[index] for index in np.asarray(positions).tolist()]
        return labels, probabilities

    def predict_columns(
        self, columns: dict[str, Sequence[Any]], n_rows: int
    ) -> tuple[list[Any], Any]:
        """Validated columns in, predictions and probabilities out."""
        fast = self.fast_path
        if fast is None:
            return self.predict_frame(self.frame(columns, n_rows))

        output = fast.predict(columns, n_rows)
        if self.task == "regression":
            return output.tolist(), None
        classes = self.classes or []
        if self.decide is not None:
            # A decision threshold stored with the model replaces the arg-max.
            positions = np.asarray(self.decide(output)).tolist()
            return [classes[index] for index in positions], output
        if n_rows == 1:
            row = output[0]
            best = 0
            for index in range(1, len(row)):
                if row[index] > row[best]:
                    best = index
            return [classes[best]], output
        return [classes[index] for index in output.argmax(axis=1).tolist()], output

    def describe(self) -> dict[str, Any]:
        """A JSON summary (for ``GET /models``)."""
        return {
            "name": self.name,
            "version": self.version,
            "reference": self.reference,
            "task": self.task,
            "target": self.target,
            "classes": self.classes,
            "features": [spec.name for spec in self.fields if spec.name in self.feature_names],
        }


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _category_keys(values: Sequence[Any]) -> list[str]:
    return [key for key in (_category_key(value) for value in values) if key is not None]


def _unseen_is_error(schema: Any, column: Any) -> bool:
    """Whether the schema treats an unseen category in ``column`` as an error.

    The schema's own rule decides: ``Schema.validate`` is run on one row holding a value that
    cannot be a known category, and the severity of the ``unseen_category`` problem it reports
    (if any) is the answer.
    """
    try:
        probe = pd.DataFrame({column.name: ["\x00mlwright-unseen-probe\x00"]})
        report = schema.validate(probe)
    except Exception:
        return False
    for problem in getattr(report, "problems", []) or []:
        if (
            getattr(problem, "column", None) == column.name
            and getattr(problem, "kind", None) == "unseen_category"
        ):
            return getattr(problem, "severity", "warning") == "error"
    return False


def load_served_model(reference: str, *, name: str | None = None) -> ServedModel:
    """Resolve a reference once, load and verify the model, and prepare it for serving.

    Parameters
    ----------
    reference
        Any model reference (path, ``runs:/``, ``models:/NAME/VERSION``, ``models:/NAME@alias``).
        An alias is pinned to the version it points at now, so the loaded files and the
        reported version always agree.
    name
        Served name; derived from the reference when omitted.
    """
    pinned, version = _pin(reference)
    model = load(pinned)
    return ServedModel(
        model,
        name=name or model_name_for(reference),
        version=version or _short_version(model),
        reference=reference,
    )


def _short_version(model: Any) -> str:
    digest = _artifact_digest(getattr(model, "path", None))
    return digest[:12] if digest else "1"


def _pin(reference: str) -> tuple[str, str | None]:
    """``(reference to load, registry version or None)``; aliases become ``NAME/VERSION``."""
    if not reference.startswith("models:/"):
        return reference, None
    rest = reference[len("models:/") :].rstrip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        version = _alias_version(name, alias)
        return f"models:/{name}/{version}", version
    parts = rest.split("/")
    if len(parts) == 2 and parts[1].isdigit():
        return reference, parts[1]
    if len(parts) == 2 and parts[1] == "latest":
        version = _alias_version(parts[0], "latest")
        return f"models:/{parts[0]}/{version}", version
    return reference, None


def _alias_version(name: str, alias: str) -> str:
    # MLflow is needed to ask the registry (get_version imports it), never on the prediction path.
    return str(get_version(name, alias).version)


def current_identity(reference: str) -> str:
    """What identifies the model a reference names right now (cheap; used by ``--watch``).

    Registry references: the version they point at; paths: the digest of the artifact's
    MANIFEST (so an artifact replaced in place is noticed).
    """
    _, version = _pin(reference)
    if version is not None:
        return version
    if reference.startswith(("runs:/", "models:/")):
        return reference
    return _artifact_digest(Path(reference).expanduser())


class ModelRegistry:
    """The models a server holds, by name; the first is the default for ``/predict``."""

    def __init__(self, models: Sequence[ServedModel] = ()) -> None:
        self._models: dict[str, ServedModel] = {}
        self._lock = threading.Lock()
        self.default_name: str | None = None
        self.swaps = 0
        for model in models:
            self.add(model)

    def add(self, model: ServedModel) -> None:
        """Add a model; names must be unique."""
        with self._lock:
            if model.name in self._models:
                raise ModelError(
                    f"Two models would be served under the name '{model.name}'. Give them "
                    "different names with NAME=REFERENCE (e.g. credit-a=models/a)."
                )
            self._models[model.name] = model
            if self.default_name is None:
                self.default_name = model.name

    def swap(self, model: ServedModel) -> ServedModel | None:
        """Replace the model of the same name (one assignment: requests never see a gap)."""
        with self._lock:
            previous = self._models.get(model.name)
            self._models[model.name] = model
            self.swaps += 1
            return previous

    def get(self, name: str | None = None, version: str | None = None) -> ServedModel | None:
        """The loaded model called ``name`` (default model when None), if ``version`` matches."""
        model = self._models.get(self.default_name if name is None else name)  # type: ignore[arg-type]
        if model is None:
            return None
        if version and version != model.version:
            return None
        return model

    def names(self) -> list[str]:
        return list(self._models)

    def models(self) -> list[ServedModel]:
        return list(self._models.values())

    def __len__(self) -> int:
        return len(self._models)


class Watcher:
    """Follows the references of served models and swaps in new versions (``--watch``).

    A background thread checks every ``interval`` seconds what each reference names
    (:func:`current_identity`); when it changed, the new version is loaded and prepared while
    the old one keeps serving, then swapped in.

    Parameters
    ----------
    registry
        The served models.
    interval
        Seconds between checks.
    loader
        Builds a :class:`ServedModel` from ``(reference, name)``.
    on_swap
        Called with ``(old, new)`` after each swap.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        interval: float = 5.0,
        loader: Callable[..., ServedModel] = load_served_model,
        on_swap: Callable[[ServedModel | None, ServedModel], None] | None = None,
    ) -> None:
        self.registry = registry
        self.interval = interval
        self.loader = loader
        self.on_swap = on_swap
        self.errors: list[str] = []
        self._identities = {
            model.name: self._identity(model.reference) for model in registry.models()
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlwright-watch", daemon=True)

    @staticmethod
    def _identity(reference: str) -> str | None:
        try:
            return current_identity(reference)
        except Exception as err:  # the registry may be briefly unreachable
            logger.warning("cannot check %s: %s", reference, err)
            return None

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def check_once(self) -> list[str]:
        """Check every reference now; returns the names of the models swapped."""
        swapped = []
        for model in self.registry.models():
            if not model.reference:
                continue
            identity = self._identity(model.reference)
            # "" : the artifact is being replaced right now (or gone); look again next time.
            if not identity or identity == self._identities.get(model.name):
                continue
            try:
                new = self.loader(model.reference, name=model.name)
            except Exception as err:
                # Keep serving the old version; say why the new one was refused.
                message = f"cannot load the new version of '{model.name}': {err}"
                logger.error(message)
                self.errors.append(message)
                self._identities[model.name] = identity
                continue
            old = self.registry.swap(new)
            self._identities[model.name] = identity
            swapped.append(model.name)
            logger.info(
                "swapped %s: version %s -> %s",
                model.name,
                old.version if old else "-",
                new.version,
            )
            if self.on_swap is not None:
                self.on_swap(old, new)
        return swapped

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_once()
