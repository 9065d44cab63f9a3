"""Turn a raw frame into the numeric matrix every model family starts from.

The schema decides each column's role: identifier and constant columns (and columns the quality
checks flag as identifiers, constants or target leakage) are dropped and reported; numbers stay
numbers (missing as NaN); categoricals and booleans become integer codes with NaN for missing
and for categories never seen in training; datetimes expand into calendar parts; free text
becomes a few TF-IDF + SVD components, its length in characters and words, and (once the search
calls :meth:`Preprocessor.fit_text_scores` with its folds) the out-of-fold score of a linear model
over its n-grams (:mod:`mlwright.automl._text`). Internal feature names are positional, so column
names with any characters work in every library. Families encode further as they need (one-hot
for linear models, native categoricals for gradient boosting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline

from mlwright._categories import category_key
from mlwright.automl._text import TextScorer
from mlwright.errors import DataError

__all__ = ["Preprocessor", "FeatureSpec", "category_key"]

#: Quality-check findings whose columns training drops.
DROP_FINDINGS = {
    "target_leakage": "target leakage",
    "identifier_column": "identifier",
    "constant_column": "constant",
}
#: Categories beyond this many (the most frequent are kept) share one "other" code.
MAX_CATEGORIES = 512
_DATETIME_PARTS = ("year", "month", "day", "weekday", "hour", "epoch")
#: Text: characters and words, after the SVD components.
_TEXT_STATS = 2
#: Frames up to this many rows take a plain-Python path: per-column pandas calls would cost
#: milliseconds for a single row.
_SMALL_FRAME = 32


@dataclass
class FeatureSpec:
    """How one input column becomes output features."""

    column: str
    kind: str  # "numeric", "categorical", "datetime", "text"
    mapping: dict[str, int] = field(default_factory=dict)
    n_codes: int = 0
    #: Text: the unsupervised TF-IDF + SVD pipeline, and the supervised n-gram scorer (a
    #: :class:`~mlwright.automl._text.TextScorer`, fitted by the search) when there is one.
    text_model: Any = None
    scorer: Any = None
    n_outputs: int = 1

    @property
    def n_svd(self) -> int:
        """Text: the number of SVD components (the first outputs)."""
        if self.kind != "text":
            return 0
        return self.n_outputs - _TEXT_STATS - (self.scorer.n_outputs_ if self.scorer else 0)


def _semantic_types(schema: Any, frame: pd.DataFrame) -> dict[str, str]:
    types: dict[str, str] = {}
    for column in getattr(schema, "columns", None) or []:
        name = getattr(column, "name", None)
        if name is None and isinstance(column, dict):
            name, kind = column.get("name"), column.get("semantic_type")
        else:
            kind = getattr(column, "semantic_type", None)
        if name is not None and kind:
            types[name] = str(kind)
    for name in frame.columns:
        if name not in types:
            dtype = frame[name].dtype
            if pd.api.types.is_bool_dtype(dtype):
                types[name] = "boolean"
            elif pd.api.types.is_numeric_dtype(dtype):
                types[name] = "numeric"
            elif pd.api.types.is_datetime64_any_dtype(dtype):
                types[name] = "datetime"
            else:
                types[name] = "categorical"
    return types


def _finding_drops(findings: Any) -> dict[str, str]:
    drops: dict[str, str] = {}
    for finding in findings or []:
        if isinstance(finding, dict):
            kind, columns = finding.get("kind"), finding.get("columns") or []
            severity = finding.get("severity")
        else:
            kind = getattr(finding, "kind", None)
            columns = getattr(finding, "columns", None) or []
            severity = getattr(finding, "severity", None)
        if kind in DROP_FINDINGS and severity != "info":
            for column in columns:
                drops.setdefault(column, f"{DROP_FINDINGS[kind]} (quality check)")
    return drops


def _to_numeric(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _codes(series: pd.Series, mapping: dict[str, int], other: int | None) -> np.ndarray:
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.full(len(uniques) + 1, np.nan)
    for i, value in enumerate(uniques):
        key = category_key(value)
        if key is not None:
            code = mapping.get(key, other)
            if code is not None:
                table[i] = code
    return table[codes]  # sentinel -1 picks the last slot, NaN


def _float(value: Any) -> float:
    if value is None or value is pd.NA or value is pd.NaT:
        return np.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _datetimes(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = series
    else:
        stamps = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    epoch = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
    parts = [
        stamps.dt.year,
        stamps.dt.month,
        stamps.dt.day,
        stamps.dt.day_of_week,
        stamps.dt.hour,
        epoch,
    ]
    return np.column_stack([part.to_numpy(dtype=float, na_value=np.nan) for part in parts])


def _text(series: pd.Series) -> list[str]:
    return ["" if v is None or v is pd.NA or v != v else str(v) for v in series.tolist()]


def _text_stats(texts: list[str]) -> np.ndarray:
    """Length in characters and in words: a name's or a description's size is a signal too."""
    return np.array([[len(text), len(text.split())] for text in texts], dtype=float).reshape(-1, 2)


class Preprocessor:
    """Fitted mapping from raw columns to a float matrix (categoricals as integer codes).

    Parameters
    ----------
    schema
        The training data's :class:`mlwright.data.Schema` (its target and column types).
    findings
        Quality-check findings; columns with target-leakage, identifier or constant findings
        are dropped.
    seed
        Seed of the text SVD.
    """

    def __init__(self, schema: Any, findings: Any = None, seed: int = 0) -> None:
        self.schema = schema
        self.findings = findings
        self.seed = seed

    def fit(self, frame: pd.DataFrame, target: str) -> Preprocessor:
        """Learn categories, text vocabularies and which columns to drop."""
        types = _semantic_types(self.schema, frame)
        drops = _finding_drops(self.findings)
        self.specs_: list[FeatureSpec] = []
        self.dropped_columns_: list[dict[str, str]] = []
        for name in frame.columns:
            if name == target:
                continue
            kind = types.get(name, "categorical")
            reason = None
            if name in drops:
                reason = drops[name]
            elif kind == "identifier":
                reason = "identifier (a distinct value per row carries no signal)"
            elif kind == "constant":
                reason = "constant (a single value)"
            elif frame[name].isna().all():
                reason = "constant (every value missing)"
            if reason is not None:
                self.dropped_columns_.append({"column": name, "reason": reason})
                continue
            series = frame[name]
            if kind == "numeric" and not pd.api.types.is_numeric_dtype(series.dtype):
                parsed = pd.to_numeric(series, errors="coerce")
                # A "numeric" column of mostly non-numbers is used as a categorical instead.
                if parsed.notna().sum() < 0.9 * series.notna().sum():
                    kind = "categorical"
            if kind == "numeric":
                self.specs_.append(FeatureSpec(name, "numeric"))
            elif kind == "datetime":
                self.specs_.append(FeatureSpec(name, "datetime", n_outputs=len(_DATETIME_PARTS)))
            elif kind == "text":
                self.specs_.append(self._fit_text(name, series))
            else:
                # Count distinct raw values first, then merge those with the same key (3 and
                # "3"): one key computation per distinct value rather than per row.
                merged: dict[str, int] = {}
                for value, count in series.value_counts(dropna=True).items():
                    key = category_key(value)
                    if key is not None:
                        merged[key] = merged.get(key, 0) + int(count)
                ranked = sorted(merged, key=lambda k: (-merged[k], k))
                kept = ranked[:MAX_CATEGORIES]
                mapping = {key: i for i, key in enumerate(sorted(kept))}
                n_codes = len(mapping) + (1 if len(merged) > MAX_CATEGORIES else 0)
                self.specs_.append(FeatureSpec(name, "categorical", mapping, n_codes))
        if not self.specs_:
            raise DataError(
                "No usable feature columns remain after dropping "
                + ", ".join(f"{d['column']!r} ({d['reason']})" for d in self.dropped_columns_)
                + ". Provide at least one informative column besides the target."
            )
        self.feature_names_ = [spec.column for spec in self.specs_]
        self._layout()
        return self

    def _layout(self) -> None:
        """Output column names, and which outputs are categorical codes (of how many)."""
        self.output_names_: list[str] = []
        self.categorical_: list[int] = []
        self.cardinalities_: list[int] = []
        for spec in self.specs_:
            if spec.kind == "datetime":
                self.output_names_ += [f"{spec.column}.{part}" for part in _DATETIME_PARTS]
            elif spec.kind == "text":
                self.output_names_ += [f"{spec.column}.svd{i}" for i in range(spec.n_svd)]
                self.output_names_ += [f"{spec.column}.characters", f"{spec.column}.words"]
                if spec.scorer is not None:
                    width = spec.scorer.n_outputs_
                    self.output_names_ += [
                        f"{spec.column}.score" if width == 1 else f"{spec.column}.score{i}"
                        for i in range(width)
                    ]
            else:
                if spec.kind == "categorical":
                    self.categorical_.append(len(self.output_names_))
                    self.cardinalities_.append(max(spec.n_codes, 1))
                self.output_names_.append(spec.column)

    @property
    def text_columns_(self) -> list[str]:
        """The input columns used as free text."""
        return [spec.column for spec in self.specs_ if spec.kind == "text"]

    def fit_text_scores(
        self,
        frame: pd.DataFrame,
        y: np.ndarray,
        task: str,
        n_classes: int,
        folds: list[tuple[np.ndarray, np.ndarray]],
        deadline: float = math.inf,
    ) -> dict[int, np.ndarray]:
        """Fit each text column's n-gram scorer; out-of-fold scores by output position.

        ``frame`` holds the training rows (in the order of ``y``) and ``folds`` are the
        search's cross-validation folds. After this call :meth:`transform` appends each text
        column's score, from the scorer fitted on all rows; the search puts the returned
        out-of-fold scores in those positions of its training matrix instead, so that no row's
        feature comes from a model that saw its label.
        """

        fitted: list[tuple[FeatureSpec, np.ndarray]] = []
        for spec in self.specs_:
            if spec.kind != "text" or spec.column not in frame.columns:
                continue
            scorer = TextScorer(task, n_classes, self.seed)
            oof = scorer.fit(_text(frame[spec.column]), y, folds, deadline)
            if scorer.model_ is None:
                continue
            spec.scorer = scorer
            spec.n_outputs += scorer.n_outputs_
            fitted.append((spec, oof))
        self._layout()
        oof_by_spec = {id(spec): oof for spec, oof in fitted}
        scores: dict[int, np.ndarray] = {}
        position = 0
        for spec in self.specs_:
            position += spec.n_outputs
            oof = oof_by_spec.get(id(spec))
            if oof is not None:  # the scores are the last outputs of their column
                for i in range(oof.shape[1]):
                    scores[position - oof.shape[1] + i] = oof[:, i]
        return scores

    def _fit_text(self, name: str, series: pd.Series) -> FeatureSpec:
        # deferred: sklearn.decomposition adds ~0.2 s to loading any model; only text columns use it
        from sklearn.decomposition import TruncatedSVD

        texts = _text(series)
        vectorizer = TfidfVectorizer(max_features=20000, min_df=2, sublinear_tf=True)
        try:
            matrix = vectorizer.fit_transform(texts)
        except ValueError:  # empty vocabulary: every text is blank or unique
            vectorizer = TfidfVectorizer(max_features=20000, sublinear_tf=True)
            matrix = vectorizer.fit_transform(texts)
        n_components = int(max(1, min(32, matrix.shape[1] - 1, len(texts) - 1)))
        svd = TruncatedSVD(n_components=n_components, random_state=self.seed)
        svd.fit(matrix)
        return FeatureSpec(
            name,
            "text",
            text_model=make_pipeline(vectorizer, svd),
            n_outputs=n_components + _TEXT_STATS,
        )

    @staticmethod
    def _text_block(spec: FeatureSpec, series: pd.Series) -> np.ndarray:
        texts = _text(series)
        blocks = [
            np.asarray(spec.text_model.transform(texts), dtype=float),
            _text_stats(texts),
        ]
        if spec.scorer is not None:
            blocks.append(spec.scorer.transform(texts))
        return np.hstack(blocks)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The float matrix for ``frame``; missing columns become missing values."""
        if len(frame) <= _SMALL_FRAME:
            return self._transform_small(frame)
        n = len(frame)
        blocks: list[np.ndarray] = []
        for spec in self.specs_:
            if spec.column in frame.columns:
                series = frame[spec.column]
            else:
                series = pd.Series([None] * n, index=frame.index, dtype=object)
            if spec.kind == "numeric":
                blocks.append(_to_numeric(series)[:, None])
            elif spec.kind == "categorical":
                other = len(spec.mapping) if spec.n_codes > len(spec.mapping) else None
                blocks.append(_codes(series, spec.mapping, other)[:, None])
            elif spec.kind == "datetime":
                blocks.append(_datetimes(series))
            else:
                blocks.append(self._text_block(spec, series))
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0]

    def _transform_small(self, frame: pd.DataFrame) -> np.ndarray:
        n = len(frame)
        index = {name: i for i, name in enumerate(frame.columns)}
        positions = [index.get(name, -1) for name in self.feature_names_]
        arrays = getattr(frame, "_iter_column_arrays", None)
        # pandas' per-column arrays avoid building a mixed-type matrix (slow with Arrow strings).
        columns = (
            [list(a) for a in arrays()]
            if arrays is not None
            else [frame.iloc[:, i].tolist() for i in range(frame.shape[1])]
        )
        out = np.empty((n, len(self.output_names_)))
        column = 0
        for spec, position in zip(self.specs_, positions, strict=True):
            if spec.kind == "numeric":
                if position < 0:
                    out[:, column] = np.nan
                else:
                    out[:, column] = [_float(v) for v in columns[position]]
            elif spec.kind == "categorical":
                other = len(spec.mapping) if spec.n_codes > len(spec.mapping) else None
                if position < 0:
                    out[:, column] = np.nan
                else:
                    for row, value in enumerate(columns[position]):
                        key = category_key(value)
                        code = None if key is None else spec.mapping.get(key, other)
                        out[row, column] = np.nan if code is None else code
            else:
                series = (
                    frame.iloc[:, position]
                    if position >= 0
                    else pd.Series([None] * n, index=frame.index, dtype=object)
                )
                if spec.kind == "datetime":
                    block = _datetimes(series)
                else:
                    block = self._text_block(spec, series)
                out[:, column : column + spec.n_outputs] = np.asarray(block, dtype=float)
            column += spec.n_outputs
        return out
