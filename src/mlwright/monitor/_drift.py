"""Data and prediction drift: current data against a model's reference, feature by feature.

Every statistic comes from scipy: Kolmogorov-Smirnov (``ks_2samp``) and the Wasserstein
distance for numbers, Pearson's chi-squared on the reference-vs-current contingency table
(``chi2_contingency``) and the Jensen-Shannon distance for categories, the population
stability index (PSI, from ``rel_entr``) for both, and a binomial test for a changed share of
missing values. What decides "drifted" depends on the sample size, as Evidently's defaults do:

- small samples (either side has at most ``small_sample_rows`` values): a statistical test at
  ``alpha``, corrected for testing many features at once (Holm by default, so the chance of
  any false alarm on undrifted data stays at most ``alpha``);
- large samples: a distance with a threshold (Wasserstein distance in reference standard
  deviations, Jensen-Shannon distance, absolute change of the missing share), because with
  many rows every test rejects for differences too small to matter.

New categories (values the training data never had) flag a feature when their share passes
``new_category_share``. The dataset verdict is "drifted" when the share of drifted features
reaches ``drift_share``. Every threshold is a field of :class:`DriftSettings`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr
from scipy.stats import false_discovery_control

from mlwright.errors import ConfigError, DataError
from mlwright.monitor._reference import (
    CATEGORICAL,
    NUMERIC,
    build_reference,
    category_strings,
    infer_kinds,
    numeric_values,
)

_CORRECTIONS = ("holm", "bonferroni", "fdr_bh", "none")
_METHODS = ("auto", "test", "distance")
# Shares are clipped here before logarithms (PSI), as the usual PSI definitions do.
_EPSILON = 1e-4
# Expected count below which a chi-squared cell is merged into a "rare" bucket.
_MIN_EXPECTED = 5.0


@dataclass
class DriftSettings:
    """Every threshold of drift detection (defaults in brackets).

    Attributes
    ----------
    method
        ``"auto"`` [default]: tests for small samples, distances for large ones; ``"test"`` or
        ``"distance"`` to force one.
    small_sample_rows
        Up to this many values on either side, ``auto`` uses tests [1000].
    alpha
        Significance level of the tests, family-wise after the correction [0.05].
    correction
        Multiple-testing correction across features: ``holm`` [default], ``bonferroni``,
        ``fdr_bh`` (Benjamini-Hochberg) or ``none``.
    numeric_distance, categorical_distance
        The distance used for large samples: ``wasserstein`` or ``psi`` [wasserstein];
        ``jensenshannon`` or ``psi`` [jensenshannon].
    wasserstein_threshold
        In standard deviations of the reference [0.1].
    jensenshannon_threshold
        Jensen-Shannon distance, base 2, between 0 and 1 [0.1].
    psi_threshold
        Population stability index [0.2; 0.1-0.2 is usually read as "moderate"].
    missing_share_threshold
        Absolute change of the missing share that counts as drift for large samples [0.05].
    new_category_share
        Share of current rows holding categories the reference never saw [0.01].
    drift_share
        Share of drifted features that makes the whole dataset "drifted" [0.5].
    max_rows
        Two-sample tests and the Wasserstein distance use at most this many current values (a
        uniform sample; PSI, missing shares and category counts always use all rows). At a
        million rows the sampling error of the distances is far below their thresholds
        [100000].
    seed
        Seed of that sample [0].
    """

    method: str = "auto"
    small_sample_rows: int = 1000
    alpha: float = 0.05
    correction: str = "holm"
    numeric_distance: str = "wasserstein"
    categorical_distance: str = "jensenshannon"
    wasserstein_threshold: float = 0.1
    jensenshannon_threshold: float = 0.1
    psi_threshold: float = 0.2
    missing_share_threshold: float = 0.05
    new_category_share: float = 0.01
    drift_share: float = 0.5
    max_rows: int = 100_000
    seed: int = 0

    def __post_init__(self) -> None:
        def choice(name: str, options: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in options:
                raise ConfigError(
                    f"Drift setting {name}={value!r} is not one of {', '.join(options)}."
                )

        choice("method", _METHODS)
        choice("correction", _CORRECTIONS)
        choice("numeric_distance", ("wasserstein", "psi"))
        choice("categorical_distance", ("jensenshannon", "psi"))
        for name in (
            "alpha",
            "jensenshannon_threshold",
            "missing_share_threshold",
            "new_category_share",
            "drift_share",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < float(value) <= 1:
                raise ConfigError(
                    f"Drift setting {name}={value!r} must be a number in (0, 1], e.g. 0.05."
                )
        for name in ("wasserstein_threshold", "psi_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not float(value) > 0:
                raise ConfigError(f"Drift setting {name}={value!r} must be a positive number.")
        for name in ("small_sample_rows", "max_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"Drift setting {name}={value!r} must be a positive integer.")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> DriftSettings:
        """Settings from a mapping (e.g. the ``drift`` section of an alert config)."""
        values = dict(values or {})
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"Unknown drift setting {unknown[0]!r}; the settings are: "
                f"{', '.join(sorted(known))}."
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FeatureDrift:
    """Drift of one feature (or of the predictions).

    Attributes
    ----------
    name, kind
        The feature and ``numeric`` / ``categorical``.
    method
        ``test`` or ``distance``: which rule decided.
    statistic, value, threshold
        The deciding statistic's name, value and threshold (for tests: the p-value after
        correction and ``alpha``).
    drifted
        The verdict.
    reasons
        Why it drifted (distribution, missing share, new categories), empty otherwise.
    stats
        Every statistic computed: ``ks``, ``ks_p_value``, ``wasserstein``,
        ``wasserstein_normed``, ``psi``, ``chi2``, ``chi2_p_value``, ``jensenshannon``,
        ``missing_reference``, ``missing_current``, ``missing_p_value``, ``new_categories``,
        ``new_category_share``, ``vanished_categories``, ``p_value_adjusted``,
        ``missing_p_value_adjusted``.
    n_reference, n_current
        Values compared (missing excluded).
    plot
        Reference and current distributions for the report: ``edges`` with ``reference`` and
        ``current`` shares (numeric) or ``categories`` with shares (categorical).
    """

    name: str
    kind: str
    method: str
    statistic: str
    value: float | None
    threshold: float
    drifted: bool
    reasons: list[str]
    stats: dict[str, Any]
    n_reference: int
    n_current: int
    plot: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, with_plot: bool = True) -> dict[str, Any]:
        document = _json_safe(asdict(self))
        if not with_plot:
            document.pop("plot", None)
        return document


@dataclass
class DriftReport:
    """Drift of a dataset against a reference.

    Attributes
    ----------
    features
        Per-feature results, drifted features first (largest deciding statistic first).
    drifted_features
        Names of the drifted features.
    share
        Share of features drifted.
    dataset_drift
        Whether ``share >= settings.drift_share``.
    prediction
        Drift of the model's outputs (None without predictions).
    n_reference, n_current
        Rows on each side.
    method
        ``test`` or ``distance`` (what ``auto`` chose for the feature with most values).
    settings
        The :class:`DriftSettings` used.
    """

    features: list[FeatureDrift]
    drifted_features: list[str]
    share: float
    dataset_drift: bool
    prediction: FeatureDrift | None
    n_reference: int
    n_current: int
    method: str
    settings: DriftSettings

    @property
    def any_drift(self) -> bool:
        """Whether at least one feature drifted (what the false-alarm rate is measured on)."""
        return bool(self.drifted_features)

    def feature(self, name: str) -> FeatureDrift:
        for item in self.features:
            if item.name == name:
                return item
        raise KeyError(name)

    def summary(self) -> str:
        """One sentence."""
        total = len(self.features)
        head = "Dataset drift" if self.dataset_drift else "No dataset drift"
        listed = ", ".join(self.drifted_features[:8]) or "none"
        text = (
            f"{head}: {len(self.drifted_features)} of {total} features drifted "
            f"({self.share:.0%}; threshold {self.settings.drift_share:.0%}): {listed}."
        )
        if self.prediction is not None:
            text += " Predictions drifted." if self.prediction.drifted else " Predictions stable."
        return text

    def to_dict(self, *, with_plot: bool = False) -> dict[str, Any]:
        return {
            "dataset_drift": self.dataset_drift,
            "share": self.share,
            "drifted_features": list(self.drifted_features),
            "n_features": len(self.features),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "method": self.method,
            "summary": self.summary(),
            "features": [item.to_dict(with_plot=with_plot) for item in self.features],
            "prediction": None
            if self.prediction is None
            else self.prediction.to_dict(with_plot=with_plot),
            "settings": self.settings.to_dict(),
        }


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# -- statistics ---------------------------------------------------------------------------------
def _psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    # PSI = sum (c - r) ln(c / r) = KL(c || r) + KL(r || c), on clipped shares.
    r = np.clip(reference_shares, _EPSILON, None)
    c = np.clip(current_shares, _EPSILON, None)
    return float(np.sum(rel_entr(c, r) + rel_entr(r, c)))


def _sample(values: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if values.size <= limit:
        return values
    # Uniform positions drawn with replacement: O(limit), where a sample without replacement
    # permutes all rows; at limit << rows the two are the same for every statistic here.
    return values[np.random.default_rng(seed).integers(0, values.size, limit)]


def bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values per bin, bin ``k`` holding ``edges[k-1] <= value < edges[k]``.

    The same bins as ``searchsorted(edges, values, side="right")``, counted with one
    vectorised comparison per edge: for a handful of edges over a million values that is
    several times faster than a binary search per value.
    """
    below = np.array([np.count_nonzero(values < edge) for edge in edges], dtype=np.int64)
    return np.diff(np.concatenate([[0], below, [values.size]]))


def _numeric_stats(
    summary: dict[str, Any],
    reference_values: np.ndarray,
    current: np.ndarray,
    settings: Any,
    compared: np.ndarray | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if reference_values.size == 0 or current.size == 0:
        return out
    if compared is None:
        compared = _sample(current, settings.max_rows, settings.seed)
    # Exact p-values for small samples, the asymptotic distribution for large ones (the exact
    # computation is slow there and can fail, which scipy reports as a warning).
    exact = reference_values.size * compared.size <= 1_000_000
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="ks_2samp: Exact calculation unsuccessful", category=RuntimeWarning
        )
        ks = stats.ks_2samp(reference_values, compared, method="exact" if exact else "asymp")
    out["ks"] = float(ks.statistic)
    out["ks_p_value"] = float(ks.pvalue)
    distance = float(stats.wasserstein_distance(reference_values, compared))
    scale = float(summary.get("std") or 0.0)
    if not scale > 0:
        quantiles = summary.get("quantiles") or []
        scale = float(quantiles[75] - quantiles[25]) if len(quantiles) == 101 else 0.0
    out["wasserstein"] = distance
    out["wasserstein_normed"] = (
        distance / scale if scale > 0 else (0.0 if distance == 0 else math.inf)
    )
    edges = np.asarray(summary.get("edges") or [], dtype=float)
    reference_shares = np.asarray(summary.get("shares") or [1.0], dtype=float)
    counts = bin_counts(edges, current)
    out["psi"] = _psi(reference_shares, counts / counts.sum())
    return out


def _numeric_plot(reference_values: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    both = [array for array in (reference_values, current) if array.size]
    if not both:
        return {}
    low = min(float(np.quantile(array, 0.005)) for array in both)
    high = max(float(np.quantile(array, 0.995)) for array in both)
    if not high > low:
        high = low + 1.0
    edges = np.linspace(low, high, 31)

    def shares(array: np.ndarray) -> list[float]:
        if array.size == 0:
            return [0.0] * 30
        counts, _ = np.histogram(np.clip(array, low, high), bins=edges)
        return (counts / array.size).tolist()

    return {
        "type": "bins",
        "edges": edges.tolist(),
        "reference": shares(reference_values),
        "current": shares(current),
    }


def _categorical_stats(
    summary: dict[str, Any], current_counts: pd.Series, settings: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    reference_counts = {str(k): float(v) for k, v in (summary.get("categories") or {}).items()}
    reference_other = float(summary.get("other") or 0)
    names = list(reference_counts)
    current = {str(k): float(v) for k, v in current_counts.items()}
    n_current = float(sum(current.values()))
    new = {name: count for name, count in current.items() if name not in reference_counts}
    ref_vector = np.array([reference_counts[n] for n in names] + [reference_other], dtype=float)
    cur_vector = np.array(
        [current.get(n, 0.0) for n in names] + [float(sum(new.values()))], dtype=float
    )
    out: dict[str, Any] = {}
    n_reference = ref_vector.sum()
    if n_reference == 0 or n_current == 0:
        return out, {}
    ref_shares = ref_vector / n_reference
    cur_shares = cur_vector / n_current
    out["jensenshannon"] = float(jensenshannon(ref_shares, cur_shares, base=2))
    out["psi"] = _psi(ref_shares, cur_shares)
    # Categories the reference never saw are only known when it listed all of its categories.
    if reference_other == 0:
        out["new_categories"] = sorted(new, key=lambda name: -new[name])[:20]
        out["new_category_share"] = float(sum(new.values()) / n_current)
    else:
        out["new_categories"] = []
        out["new_category_share"] = 0.0
    expected_current = ref_shares[:-1] * n_current
    out["vanished_categories"] = [
        name
        for name, expected, count in zip(names, expected_current, cur_vector[:-1], strict=True)
        if count == 0 and expected >= _MIN_EXPECTED
    ][:20]
    # Pearson chi-squared on the 2 x K table; categories with an expected count below 5 in
    # either row are pooled (the test's approximation needs it).
    table = np.vstack([ref_vector, cur_vector])
    total = table.sum()
    expected_min = np.minimum(
        table.sum(axis=1)[0] * table.sum(axis=0) / total,
        table.sum(axis=1)[1] * table.sum(axis=0) / total,
    )
    keep = expected_min >= _MIN_EXPECTED
    pooled = table[:, ~keep].sum(axis=1, keepdims=True)
    table = table[:, keep]
    if pooled.sum() > 0:
        table = np.hstack([table, pooled])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2:
        result = stats.chi2_contingency(table, correction=False)
        out["chi2"] = float(result.statistic)
        out["chi2_p_value"] = float(result.pvalue)
    else:
        out["chi2"] = 0.0
        out["chi2_p_value"] = 1.0
    # Plot: the categories that matter most on either side, the rest as "(other)".
    order = np.argsort(-np.maximum(ref_shares[:-1], cur_shares[:-1]))[:15]
    shown = [names[i] for i in order]
    plot = {
        "type": "categories",
        "categories": shown + ["(other)"],
        "reference": [float(ref_shares[i]) for i in order] + [float(1 - ref_shares[order].sum())],
        "current": [float(cur_shares[i]) for i in order] + [float(1 - cur_shares[order].sum())],
    }
    return out, plot


def category_counts(values: pd.Series) -> pd.Series:
    """Rows per category (as :func:`category_strings` spells them), missing values left out.

    Counting first and converting the few distinct values to strings afterwards is what keeps
    a million rows fast: converting every value to a string costs far more than hashing it.
    """
    counts = values.value_counts(dropna=True, sort=False)
    if counts.empty:
        return pd.Series([], dtype=np.int64)
    labels = category_strings(pd.Series(counts.index, dtype=values.dtype))
    # 1 and 1.0, or True and "True", are the same category once spelled as text.
    return pd.Series(counts.to_numpy(), index=labels.to_numpy()).groupby(level=0).sum()


def _missing_p_value(reference_share: float, missing: int, n_total: int) -> float:
    if n_total == 0:
        return 1.0
    if reference_share <= 0:
        return 1.0 if missing == 0 else 0.0
    if reference_share >= 1:
        return 1.0 if missing == n_total else 0.0
    return float(stats.binomtest(int(missing), int(n_total), float(reference_share)).pvalue)


def _adjust(p_values: list[float], correction: str) -> list[float]:
    """Adjusted p-values: Holm's step-down and Bonferroni control the family-wise error rate
    (the chance of any false alarm); Benjamini-Hochberg (scipy) controls the false discovery
    rate."""
    if not p_values or correction == "none":
        return list(p_values)
    array = np.asarray(p_values, dtype=float)
    m = array.size
    if correction == "fdr_bh":
        return [float(p) for p in false_discovery_control(array, method="bh")]
    if correction == "bonferroni":
        return [float(p) for p in np.minimum(array * m, 1.0)]
    order = np.argsort(array)
    stepped = np.maximum.accumulate(array[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(p) for p in adjusted]


# -- the computation -----------------------------------------------------------------------------
def _current_column(current: pd.DataFrame, name: str) -> pd.Series:
    if name in current.columns:
        return current[name]
    # A feature absent from the current data is all missing (the missing share flags it).
    return pd.Series([None] * len(current), dtype=object, index=current.index)


def _reference_values(reference: dict[str, Any], name: str) -> np.ndarray:
    values = reference.get("sample", {}).get("columns", {}).get(name, [])
    array = np.array([np.nan if v is None else v for v in values], dtype=float)
    return array[np.isfinite(array)]


def drift(
    reference: dict[str, Any] | pd.DataFrame,
    current: pd.DataFrame,
    *,
    settings: DriftSettings | dict[str, Any] | None = None,
    predictions: dict[str, Any] | None = None,
    features: list[str] | None = None,
) -> DriftReport:
    """Measure drift of ``current`` against a reference.

    Parameters
    ----------
    reference
        A model's reference (``reference.json`` as a dict, see
        :func:`mlwright.monitor.load_reference`) or a reference DataFrame.
    current
        The current data: one column per feature (extra columns are ignored).
    settings
        Thresholds (:class:`DriftSettings` or a dict of its fields).
    predictions
        The model's current outputs: ``{"labels": [...], "scores": [...]}`` (scores: the
        positive-class probability of a binary model, or the values of a regression), compared
        with the reference's prediction distribution.
    features
        Only these features (default: every feature of the reference).

    Returns
    -------
    DriftReport
    """
    if not isinstance(settings, DriftSettings):
        settings = DriftSettings.from_dict(settings)
    if not isinstance(current, pd.DataFrame):
        raise DataError("The current data must be a pandas DataFrame with one column per feature.")
    if isinstance(reference, pd.DataFrame):
        reference = frame_reference(reference, columns=list(current.columns))
    specs: dict[str, Any] = reference.get("features") or {}
    names = list(specs) if features is None else [name for name in features if name in specs]
    if not names:
        raise DataError(
            "The reference and the current data have no feature in common to compare; check "
            "that the current data has the model's feature columns "
            f"({', '.join(list(specs)[:10])})."
        )
    n_rows = len(current)
    items: list[FeatureDrift] = []
    family: list[tuple[int, str, float]] = []
    for name in names:
        spec = specs[name]
        column = _current_column(current, name)
        if spec["kind"] == NUMERIC:
            reference_values = _reference_values(reference, name)
            values = numeric_values(column)
            drawn = _sample(values, settings.max_rows, settings.seed)
            stats = _numeric_stats(spec, reference_values, values, settings, drawn)
            # The plot is a picture: the sample the tests use draws it as well as all rows.
            plot = _numeric_plot(reference_values, drawn)
            n_reference, n_current = int(reference_values.size), int(values.size)
        else:
            counts = category_counts(column)
            stats, plot = _categorical_stats(spec, counts, settings)
            n_reference, n_current = int(spec.get("n", 0)), int(counts.sum())
        stats["missing_reference"] = float(spec.get("missing_share") or 0.0)
        stats["missing_current"] = float(1 - n_current / n_rows) if n_rows else 0.0
        stats["missing_p_value"] = _missing_p_value(
            stats["missing_reference"], n_rows - n_current, n_rows
        )
        method = settings.method
        if method == "auto":
            small = min(n_reference, max(n_current, 1)) <= settings.small_sample_rows
            method = "test" if small else "distance"
        item = FeatureDrift(
            name=name,
            kind=spec["kind"],
            method=method,
            statistic="",
            value=None,
            threshold=0.0,
            drifted=False,
            reasons=[],
            stats=stats,
            n_reference=n_reference,
            n_current=n_current,
            plot=plot,
        )
        index = len(items)
        items.append(item)
        if method == "test":
            test_p = stats.get("ks_p_value" if spec["kind"] == NUMERIC else "chi2_p_value")
            if test_p is not None:
                family.append((index, "distribution", float(test_p)))
            family.append((index, "missing", float(stats["missing_p_value"])))
    adjusted = _adjust([p for _, _, p in family], settings.correction)
    for (index, what, _), p_adjusted in zip(family, adjusted, strict=True):
        key = "p_value_adjusted" if what == "distribution" else "missing_p_value_adjusted"
        items[index].stats[key] = p_adjusted
    for item in items:
        _decide(item, settings)
    items.sort(key=lambda item: (not item.drifted, -_severity(item)))
    drifted = [item.name for item in items if item.drifted]
    share = len(drifted) / len(items)
    prediction = None
    if predictions is not None and reference.get("predictions"):
        prediction = _prediction_drift(reference["predictions"], predictions, settings)
    methods = [item.method for item in items]
    return DriftReport(
        features=items,
        drifted_features=drifted,
        share=share,
        dataset_drift=share >= settings.drift_share,
        prediction=prediction,
        n_reference=int(reference.get("n_rows", 0)),
        n_current=n_rows,
        method=max(set(methods), key=methods.count),
        settings=settings,
    )


def _severity(item: FeatureDrift) -> float:
    if item.value is None or not item.threshold:
        return 0.0
    if item.method == "test":
        return -math.log10(max(item.value, 1e-300))
    return item.value / item.threshold


def _decide(item: FeatureDrift, settings: DriftSettings) -> None:
    stats = item.stats
    reasons: list[str] = []
    numeric = item.kind == NUMERIC
    if item.method == "test":
        item.statistic = "ks_p_value" if numeric else "chi2_p_value"
        p_value = stats.get("p_value_adjusted")
        item.value = p_value
        item.threshold = settings.alpha
        if p_value is not None and p_value < settings.alpha:
            test = "Kolmogorov-Smirnov" if numeric else "chi-squared"
            reasons.append(f"distribution changed ({test} p={p_value:.2g} after correction)")
        missing_p = stats.get("missing_p_value_adjusted", 1.0)
        if missing_p < settings.alpha:
            reasons.append(
                f"missing share {stats['missing_reference']:.1%} -> "
                f"{stats['missing_current']:.1%} (p={missing_p:.2g})"
            )
    else:
        if numeric:
            name = "wasserstein_normed" if settings.numeric_distance == "wasserstein" else "psi"
            threshold = (
                settings.wasserstein_threshold
                if settings.numeric_distance == "wasserstein"
                else settings.psi_threshold
            )
        else:
            name = "jensenshannon" if settings.categorical_distance == "jensenshannon" else "psi"
            threshold = (
                settings.jensenshannon_threshold
                if settings.categorical_distance == "jensenshannon"
                else settings.psi_threshold
            )
        item.statistic = name
        item.value = stats.get(name)
        item.threshold = threshold
        if item.value is not None and item.value >= threshold:
            reasons.append(f"distribution changed ({name} {item.value:.3g} >= {threshold:g})")
        change = abs(stats["missing_current"] - stats["missing_reference"])
        if change >= settings.missing_share_threshold:
            reasons.append(
                f"missing share {stats['missing_reference']:.1%} -> {stats['missing_current']:.1%}"
            )
    new_share = stats.get("new_category_share", 0.0)
    if new_share >= settings.new_category_share:
        shown = ", ".join(repr(name) for name in stats.get("new_categories", [])[:3])
        reasons.append(f"{new_share:.1%} of rows hold new categories ({shown})")
    item.reasons = reasons
    item.drifted = bool(reasons)


def _prediction_drift(
    summary: dict[str, Any], predictions: dict[str, Any], settings: DriftSettings
) -> FeatureDrift | None:
    scores = predictions.get("scores")
    score_summary = summary.get("score") if summary.get("task") != "regression" else None
    if summary.get("task") == "regression":
        score_summary = summary.get("label")
        scores = predictions.get("scores", predictions.get("labels"))
    if score_summary and scores is not None and score_summary.get("values"):
        reference_values = np.asarray(score_summary["values"], dtype=float)
        values = numeric_values(pd.Series(scores))
        stats = _numeric_stats(score_summary, reference_values, values, settings)
        kind, plot = NUMERIC, _numeric_plot(reference_values, values)
        n_reference, n_current = int(reference_values.size), int(values.size)
    else:
        labels = predictions.get("labels")
        if labels is None or not summary.get("label"):
            return None
        counts = category_counts(pd.Series(np.asarray(labels, dtype=object)))
        stats, plot = _categorical_stats(summary["label"], counts, settings)
        kind = CATEGORICAL
        n_reference, n_current = int(summary["label"].get("n", 0)), int(counts.sum())
    if not stats:
        return None
    stats["missing_reference"] = stats["missing_current"] = 0.0
    method = settings.method
    if method == "auto":
        method = "test" if min(n_reference, n_current) <= settings.small_sample_rows else "distance"
    stats["p_value_adjusted"] = stats.get("ks_p_value" if kind == NUMERIC else "chi2_p_value")
    stats["missing_p_value_adjusted"] = 1.0
    item = FeatureDrift(
        name="prediction",
        kind=kind,
        method=method,
        statistic="",
        value=None,
        threshold=0.0,
        drifted=False,
        reasons=[],
        stats=stats,
        n_reference=n_reference,
        n_current=n_current,
        plot=plot,
    )
    _decide(item, settings)
    return item


def frame_reference(frame: pd.DataFrame, *, columns: list[str] | None = None) -> dict[str, Any]:
    """A reference built from a DataFrame (for ``mlwright monitor --reference A.csv``).

    Every row is kept as the sample up to 200,000 rows, so the two-sample tests see the data
    itself rather than a sample of it.
    """
    kinds = infer_kinds(frame)
    if columns is not None:
        kinds = {name: kind for name, kind in kinds.items() if name in set(columns)}
    return build_reference(frame, kinds, sample_rows=200_000)
