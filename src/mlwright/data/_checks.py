"""``check``: data-quality findings that matter before training a model.

Each :class:`Finding` has a kind, a severity, the columns involved, the numbers that support it
and a fix. Severities mean:

* ``error``: the data would give a wrong or misleading model as it is (target leakage, a test set
  without the training columns); ``mlwright check`` exits with code 3.
* ``warning``: worth fixing or at least knowing before training (many missing values, strong
  imbalance, identifier columns, distribution shift, ...).
* ``info``: facts that mlwright's training handles by itself (a few missing values, outliers,
  near-constant flags).

Whole-table facts (missing values, distinct counts, constants, duplicates, outlier counts,
numbers mixed with words) are DuckDB aggregates over every row. Row-level statistics (target
leakage, distribution shift) use a uniform random sample of at most 100,000 rows per table
(``evidence["sample_rows"]`` says how many).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from mlwright.data._profile import SAMPLE_ROWS, opened, require_rows
from mlwright.data._schema import Schema
from mlwright.data._stats import TableStats, compute_stats, duplicate_counts, plain, quote
from mlwright.data._table import Table

__all__ = ["Finding", "check"]

SEVERITIES = ("error", "warning", "info")
_ORDER = {severity: index for index, severity in enumerate(SEVERITIES)}

#: A single feature whose out-of-fold score reaches this predicts the target "almost perfectly".
LEAKAGE_ERROR = 0.99
LEAKAGE_WARNING = 0.95
NEAR_CONSTANT_SHARE = 0.99
HIGH_CARDINALITY = 100
CV_FOLDS = 5
#: Distribution shift needs both a significant test and at least this effect size.
SHIFT_EFFECT = 0.1
SHIFT_ALPHA = 0.001
#: Characters that break model libraries' feature names (LightGBM rejects JSON specials).
_BREAKING_NAME_CHARACTERS = re.compile(r'[\[\]{}",:<>\x00-\x1f]')
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Finding:
    """One data-quality finding.

    Attributes
    ----------
    kind
        What was found (``missing_values``, ``target_leakage``, ...).
    severity
        ``"error"``, ``"warning"`` or ``"info"``.
    columns
        The columns involved (empty for whole-table findings such as duplicate rows).
    evidence
        The numbers behind the finding (counts, shares, test statistics).
    fix
        What to do about it.
    message
        One sentence stating the finding.
    """

    kind: str
    severity: str
    columns: list[str]
    evidence: dict[str, Any]
    fix: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary."""
        return _json_safe(asdict(self))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


def _pct(share: float) -> str:
    if share == 0:
        return "0%"
    if share < 0.001:
        return "<0.1%"
    if 0.99 < share < 1:  # "100.0%" would hide the few rows that differ
        return f"{share:.2%}"
    return f"{share:.1%}"


def check(data: Any, *, target: str, test: Any = None, na_values: Any = None) -> list[Finding]:
    """Check a dataset for problems that would hurt or fake a model trained on it.

    Parameters
    ----------
    data
        The training data: a path, SQL source, open :class:`~mlwright.data.Table` or DataFrame.
    target
        The column to predict.
    test
        Optional test data with the same columns; adds ``distribution_shift`` findings.
    na_values
        Which cells are missing when the data (and ``test``) are read (see
        :func:`mlwright.data.read`). ``missing_values`` findings say how many cells each
        marker turned into missing; ``kept_markers`` findings name markers kept as values.

    Returns
    -------
    list of Finding
        Sorted by severity (errors first), then kind and column.

    Raises
    ------
    DataError
        The data cannot be read, has fewer than two rows, or ``target`` is absent, entirely
        missing or constant.

    Examples
    --------
    >>> from mlwright.data import check
    >>> findings = check("examples/credit-g/train.csv", target="class")
    >>> [f.kind for f in findings if f.severity == "error"]
    []
    """
    findings: list[Finding] = []
    if not isinstance(data, Table) and _is_frame(data):
        data, renamed = _deduplicate_frame_columns(data)
        findings.extend(renamed)
    with opened(data, na_values) as table:
        if test is None:
            findings.extend(check_table(table, target=target))
        else:
            with opened(test, na_values) as test_table:
                findings.extend(check_table(table, target=target, test=test_table))
    return sort_findings(findings)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (_ORDER.get(f.severity, 9), f.kind, ",".join(f.columns)),
    )


def _is_frame(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns")


def _deduplicate_frame_columns(frame):
    """Rename exact duplicate column names of a DataFrame (``a`` -> ``a__2``) and report them."""
    names = [str(name) for name in frame.columns]
    seen: dict[str, int] = {}
    duplicates: list[str] = []
    unique: list[str] = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            duplicates.append(name)
            unique.append(f"{name}__{seen[name]}")
        else:
            unique.append(name)
    if not duplicates:
        return frame, []
    frame = frame.copy()
    frame.columns = unique
    distinct = sorted(set(duplicates))
    finding = Finding(
        kind="duplicate_column_names",
        severity="error",
        columns=distinct,
        evidence={"duplicated_names": len(distinct), "extra_columns": len(duplicates)},
        fix="Give every column a unique name (rename or drop the copies) before training; "
        "a model cannot tell which of two same-named columns a value belongs to.",
        message=f"Column name(s) {', '.join(repr(n) for n in distinct)} appear more than once; "
        "they were checked as " + ", ".join(repr(n) for n in unique if "__" in n) + ".",
    )
    return frame, [finding]


def check_table(
    table: Any,
    *,
    target: str,
    test: Any = None,
    stats: TableStats | None = None,
    schema: Any = None,
) -> list[Finding]:
    """:func:`check` on an open table (``stats`` and ``schema`` reused when given)."""
    # Schema inference validates the target (present, not empty, not constant).
    if schema is None:
        schema = Schema.infer(table, target=target)
    require_rows(table)
    columns = list(table.columns)
    if stats is None:
        stats = compute_stats(table.connection, table.ref, table.n_rows, columns, histograms=False)
    semantic = {column.name: column.semantic_type for column in schema.columns}
    findings: list[Finding] = []
    findings += _name_findings(columns)
    findings += _missing_findings(table, stats, target)
    findings += kept_marker_findings(getattr(table, "kept_markers", None) or {}, target)
    findings += _constant_findings(stats, target, semantic)
    findings += _identifier_findings(schema, stats, target)
    findings += _cardinality_findings(stats, target, semantic)
    findings += _mixed_type_findings(stats)
    findings += _outlier_findings(stats, semantic)
    duplicates = duplicate_counts(table.connection, table.ref, columns, target)
    classification = schema.task in ("binary", "multiclass")
    findings += _duplicate_findings(duplicates, table.n_rows, classification)
    if classification:
        findings += _class_findings(table, target)
    sample = table.sample(SAMPLE_ROWS, seed=0)
    findings += leakage_findings(sample, schema, target, semantic)
    if test is not None:
        test_sample = test.sample(SAMPLE_ROWS, seed=0)
        findings += shift_findings(sample, test_sample, schema, target, str(test.source))
    return findings


# --- column names -----------------------------------------------------------------------------


def _name_findings(columns: list[str]) -> list[Finding]:
    findings = []
    breaking = [
        name
        for name in columns
        if _BREAKING_NAME_CHARACTERS.search(name) or name != name.strip() or not name
    ]
    unusual = [n for n in columns if n not in breaking and not _PLAIN_NAME.match(n)]
    if breaking:
        findings.append(
            Finding(
                kind="column_name_characters",
                severity="warning",
                columns=breaking,
                evidence={"columns": len(breaking)},
                fix="Rename these columns to letters, digits and underscores; some model "
                'libraries (LightGBM) reject names with [ ] { } " , : and spreadsheets or SQL '
                "need them quoted. mlwright's training sanitises names internally.",
                message=f"{len(breaking)} column name(s) hold characters that break model "
                f"libraries or leading/trailing spaces, e.g. {breaking[0]!r}.",
            )
        )
    if unusual:
        findings.append(
            Finding(
                kind="column_name_characters",
                severity="info",
                columns=unusual,
                evidence={"columns": len(unusual)},
                fix="Prefer letters, digits and underscores (snake_case) so the names work "
                "unquoted in SQL, code and formulas.",
                message=f"{len(unusual)} column name(s) contain spaces or punctuation, "
                f"e.g. {unusual[0]!r}.",
            )
        )
    folded: dict[str, list[str]] = {}
    for name in columns:
        folded.setdefault(re.sub(r"\s+", " ", name.strip()).lower(), []).append(name)
    for group in folded.values():
        if len(group) > 1:
            findings.append(
                Finding(
                    kind="duplicate_column_names",
                    severity="warning",
                    columns=group,
                    evidence={"columns": len(group)},
                    fix="Rename or drop one of them: names that differ only by case or spaces "
                    "are easy to confuse and collide in case-insensitive tools (SQL, Excel).",
                    message="Column names "
                    + " and ".join(repr(n) for n in group)
                    + " differ only by letter case or spaces.",
                )
            )
    return findings


# --- whole-table findings ---------------------------------------------------------------------


def _missing_findings(table: Any, stats: TableStats, target: str) -> list[Finding]:
    findings = []
    markers = getattr(table, "missing_markers", None) or {}
    for name, column in stats.columns.items():
        if column.missing == 0 or (column.count == 0 and name != target):
            continue  # an all-missing feature is reported as a constant column
        share = column.missing_share
        evidence: dict[str, Any] = {"missing": column.missing, "share": share}
        used = {str(k): int(v) for k, v in (markers.get(name) or {}).items() if v}
        if used:
            evidence["markers"] = used
        marker_note = (
            " (read from markers " + ", ".join(f"{k!r}: {v}" for k, v in used.items()) + ")"
            if used
            else ""
        )
        if name == target:
            read_as = [
                f"{count:,} empty cell{'s' if count != 1 else ''}"
                if marker == ""
                else f"{count:,} cell{'s' if count != 1 else ''} {marker!r}"
                for marker, count in used.items()
            ]
            cause = (
                ": " + _and(read_as) + " in the target were read as missing"
                if any(marker for marker in used)
                else ""
            )
            findings.append(
                Finding(
                    kind="missing_values",
                    severity="warning",
                    columns=[name],
                    evidence=evidence,
                    fix="Rows without a label cannot be used for training; fill in the labels "
                    "or accept that these rows are dropped. If a marker is a real value of the "
                    "target, list only the true missing markers with --na-values (na_values= "
                    "in Python).",
                    message=f"The target {name!r} is missing in {column.missing} rows "
                    f"({_pct(share)}){cause or marker_note}; these rows have no label, so "
                    "training leaves them out.",
                )
            )
            continue
        severity = "warning" if share >= 0.2 else "info"
        fix = (
            "Find out why the values are missing; drop the column if it is mostly empty, or "
            "keep it: mlwright's preprocessing imputes numbers (median) and treats missing "
            "as its own category, and missingness itself can be informative."
            if severity == "warning"
            else "Nothing required: mlwright's preprocessing imputes missing values. Check "
            "that missing does not mean something specific (e.g. 'none' or 0)."
        )
        findings.append(
            Finding(
                kind="missing_values",
                severity=severity,
                columns=[name],
                evidence=evidence,
                fix=fix,
                message=f"Column {name!r} is missing in {column.missing} of "
                f"{stats.n_rows} rows ({_pct(share)}){marker_note}.",
            )
        )
    return findings


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def kept_marker_findings(kept: dict[str, dict[str, int]], target: str) -> list[Finding]:
    """Markers (``?``, ``-``, ``NA``, ...) kept as values because their column holds text."""
    findings = []
    for name, counts in kept.items():
        used = {str(marker): int(count) for marker, count in counts.items() if count}
        if not used:
            continue
        role = "label" if name == target else "category"
        cells = _and(
            [f"{count:,} cell{'s' if count != 1 else ''} {m!r}" for m, count in used.items()]
        )
        listed = ",".join(used)
        these = f"{next(iter(used))!r} means" if len(used) == 1 else "these mean"
        findings.append(
            Finding(
                kind="kept_markers",
                severity="info",
                columns=[name],
                evidence={"kept": used},
                fix="Nothing to do if it is a real value of the column. If it stands for a "
                f"missing value, read the data with --na-values '{listed}' (na_values="
                f"{list(used)!r} in Python).",
                message=f"Column {name!r} has {cells} kept as "
                f"{'a ' + role if len(used) == 1 else role + ' values'} (the column holds "
                f"text). If {these} missing, pass --na-values '{listed}'.",
            )
        )
    return findings


def _constant_findings(stats: TableStats, target: str, semantic: dict[str, str]) -> list[Finding]:
    findings = []
    for name, column in stats.columns.items():
        if name == target:
            continue
        if column.distinct <= 1:
            if column.count == 0:
                message = f"Column {name!r} is missing in every row."
                evidence = {"distinct": 0, "missing_share": 1.0}
            else:
                value = column.top_values[0][0] if column.top_values else column.minimum
                message = (
                    f"Column {name!r} holds the single value {value!r}"
                    + (f" (and is missing in {column.missing} rows)" if column.missing else "")
                    + "."
                )
                evidence = {"distinct": column.distinct, "missing_share": column.missing_share}
            findings.append(
                Finding(
                    kind="constant_column",
                    severity="warning",
                    columns=[name],
                    evidence=evidence,
                    fix="Drop it: a column without variation carries no information "
                    "(mlwright's training drops it automatically).",
                    message=message,
                )
            )
            continue
        share = column.top_share
        if share >= NEAR_CONSTANT_SHARE and column.count >= 100:
            value = column.top_values[0][0]
            others = column.count - column.top_values[0][1]
            findings.append(
                Finding(
                    kind="near_constant_column",
                    severity="info",
                    columns=[name],
                    evidence={
                        "top_share": share,
                        "other_values": others,
                        "distinct": column.distinct,
                    },
                    fix="Usually harmless for tree models; drop it if the rare values are "
                    "errors, or keep it if they are rare but meaningful events.",
                    message=f"Column {name!r} is {value!r} in {_pct(share)} of rows; only "
                    f"{others} rows differ.",
                )
            )
    return findings


def _identifier_findings(schema: Any, stats: TableStats, target: str) -> list[Finding]:
    findings = []
    for column_schema in schema.columns:
        name = column_schema.name
        if name == target or column_schema.semantic_type != "identifier":
            continue
        column = stats[name]
        ratio = column.distinct / column.count if column.count else 0.0
        findings.append(
            Finding(
                kind="identifier_column",
                severity="warning",
                columns=[name],
                evidence={"distinct": column.distinct, "distinct_ratio": ratio},
                fix="Drop it from the features (mlwright's training does): a row key does not "
                "generalise to new rows, and if it was assigned in label order it leaks.",
                message=f"Column {name!r} looks like an identifier ({column.distinct} distinct "
                f"values in {column.count} rows; {column_schema.reason}).",
            )
        )
    return findings


def _cardinality_findings(
    stats: TableStats, target: str, semantic: dict[str, str]
) -> list[Finding]:
    findings = []
    for name, column in stats.columns.items():
        if name == target or semantic.get(name) != "categorical":
            continue
        if column.distinct >= HIGH_CARDINALITY:
            ratio = column.distinct / column.count if column.count else 0.0
            findings.append(
                Finding(
                    kind="high_cardinality",
                    severity="warning",
                    columns=[name],
                    evidence={"distinct": column.distinct, "distinct_ratio": ratio},
                    fix="Group rare categories into 'other', or use a target/frequency "
                    "encoding (mlwright's preprocessing does this for many-level columns); "
                    "one-hot encoding would create a column per value.",
                    message=f"Categorical column {name!r} has {column.distinct} distinct values.",
                )
            )
    return findings


def _mixed_type_findings(stats: TableStats) -> list[Finding]:
    findings = []
    for name, column in stats.columns.items():
        if column.kind != "string" or not column.numeric_parsable or not column.count:
            continue
        numbers = column.numeric_parsable
        words = column.count - numbers
        if words == 0:
            continue
        share = numbers / column.count
        examples = ", ".join(repr(v) for v in column.non_numeric_examples[:3])
        number_examples = ", ".join(repr(v) for v in column.numeric_examples[:3])
        if share >= 0.9:
            severity = "warning"
            fix = (
                "Clean the non-numeric entries (typos, units, thousands separators, missing-"
                "value codes) so the column can be read as numbers; as is, it is treated as "
                "categorical."
            )
        else:
            severity = "info"
            fix = (
                "Fine if the numbers are codes (the column is treated as categorical); if the "
                "words stand for numbers (e.g. '5more'), map them to numbers to keep the order."
            )
        findings.append(
            Finding(
                kind="mixed_types",
                severity=severity,
                columns=[name],
                evidence={"numeric_values": numbers, "other_values": words, "numeric_share": share},
                fix=fix,
                message=f"Column {name!r} mixes numbers ({_pct(share)}, e.g. {number_examples}) "
                f"with other text ({words} values, e.g. {examples}).",
            )
        )
    return findings


def _outlier_findings(stats: TableStats, semantic: dict[str, str]) -> list[Finding]:
    findings = []
    for name, column in stats.columns.items():
        # Few-valued numbers (counts, pixel levels, ratings) have no meaningful "extremes".
        if column.kind != "numeric" or semantic.get(name) != "numeric" or column.distinct <= 20:
            continue
        low, high = column.outliers_low or 0, column.outliers_high or 0
        if low + high == 0 or not column.count:
            continue
        share = (low + high) / column.count
        q1, q3 = column.quantiles.get("0.25"), column.quantiles.get("0.75")
        iqr = (q3 - q1) if q1 is not None and q3 is not None else 0.0
        # How far the most extreme value lies beyond its fence, in IQRs: hundreds of IQRs
        # away usually means a sentinel (99999) or a unit/typing error, not a real value.
        reach = 0.0
        if iqr > 0:
            if high and column.maximum is not None:
                reach = max(reach, (column.maximum - column.fence_high) / iqr)
            if low and column.minimum is not None:
                reach = max(reach, (column.fence_low - column.minimum) / iqr)
        # A heavy tail (many values beyond the fences) is a shape, not a data error; a handful
        # of values far beyond everything else is worth a look.
        heavy_tail = share > 0.05
        severity = "warning" if reach >= 100 and share <= 0.01 else "info"
        findings.append(
            Finding(
                kind="outliers",
                severity=severity,
                columns=[name],
                evidence={
                    "below": low,
                    "above": high,
                    "share": share,
                    "fence_low": column.fence_low,
                    "fence_high": column.fence_high,
                    "minimum": column.minimum,
                    "maximum": column.maximum,
                    "max_iqrs_beyond_fence": reach,
                },
                fix=(
                    "Look at the most extreme values: sentinels (e.g. 99999) or unit errors "
                    "should be set to missing; genuine extremes can stay (tree models are "
                    "robust to them)."
                    if severity == "warning"
                    else "Usually fine: tree models are robust to extreme values. Check that "
                    "they are real, not codes for 'unknown'."
                ),
                message=f"Column {name!r} has {low + high} extreme "
                f"value{'s' if low + high != 1 else ''} ({_pct(share)}) "
                f"beyond Q1-3*IQR={column.fence_low:.6g} / Q3+3*IQR={column.fence_high:.6g}"
                f" (range {column.minimum:.6g} to {column.maximum:.6g})"
                + ("; the distribution is heavy-tailed." if heavy_tail else "."),
            )
        )
    return findings


def _duplicate_findings(counts: dict[str, int], n_rows: int, classification: bool) -> list[Finding]:
    findings = []
    duplicates = counts["duplicate_rows"]
    if duplicates:
        share = duplicates / n_rows
        findings.append(
            Finding(
                kind="duplicate_rows",
                severity="warning" if share >= 0.01 else "info",
                columns=[],
                evidence={"duplicate_rows": duplicates, "share": share},
                fix="Drop exact duplicates unless they are genuine repeated observations; "
                "duplicates that fall in both a training and a validation fold inflate "
                "cross-validation scores.",
                message=f"{duplicates} rows ({_pct(share)}) are exact copies of an earlier row.",
            )
        )
    if counts["conflicting_groups"]:
        rows = counts["conflicting_rows"]
        findings.append(
            Finding(
                kind="conflicting_duplicates",
                # For a continuous target, equal features with different values is expected
                # noise; for classes it is contradictory labelling.
                severity="warning" if classification else "info",
                columns=[],
                evidence={
                    "groups": counts["conflicting_groups"],
                    "rows": rows,
                    "share": rows / n_rows,
                },
                fix="Rows with identical features but different labels are label noise or a "
                "sign that a feature is missing; check how the labels were assigned, then "
                "keep one label per group or add the distinguishing feature.",
                message=f"{counts['conflicting_groups']} groups of rows ({rows} rows) have "
                "identical features but different target values.",
            )
        )
    return findings


def _class_findings(table: Any, target: str) -> list[Finding]:
    findings = []
    column = quote(target)
    # Every class with its count (a classification target has at most 10,000 classes).
    counts = table.connection.execute(
        f"SELECT {column}, count(*) AS n FROM {table.ref} WHERE {column} IS NOT NULL "
        f"GROUP BY {column} ORDER BY n DESC, {column}"
    ).fetchall()
    counts = [(plain(value), int(count)) for value, count in counts]
    labelled = sum(count for _, count in counts)
    if len(counts) < 2:
        return findings
    (major, n_major), (minor, n_minor) = counts[0], counts[-1]
    ratio = n_major / n_minor
    minority_share = n_minor / labelled
    if ratio >= 3:
        severity = "warning" if ratio >= 10 else "info"
        findings.append(
            Finding(
                kind="class_imbalance",
                severity=severity,
                columns=[target],
                evidence={
                    "majority_count": n_major,
                    "minority_count": n_minor,
                    "ratio": ratio,
                    "minority_share": minority_share,
                    "classes": len(counts),
                },
                fix="Judge models with a metric that sees the minority (ROC AUC, log loss, "
                "balanced accuracy, PR AUC), not accuracy; mlwright stratifies its "
                "cross-validation folds. Consider class weights or collecting more minority "
                "examples.",
                message=f"Class {major!r} has {n_major} rows and class {minor!r} only "
                f"{n_minor} ({_pct(minority_share)}), a {ratio:.1f}:1 imbalance.",
            )
        )
    rare = [(value, count) for value, count in counts if count < CV_FOLDS]
    if rare:
        findings.append(
            Finding(
                kind="rare_class",
                severity="warning",
                columns=[target],
                evidence={
                    "classes": len(rare),
                    "rows": sum(c for _, c in rare),
                    "smallest": min(c for _, c in rare),
                    "folds": CV_FOLDS,
                },
                fix=f"Each class needs at least {CV_FOLDS} rows for stratified {CV_FOLDS}-fold "
                "cross-validation: collect more examples, merge these classes into a related "
                "one, or drop their rows.",
                message="Class(es) "
                + ", ".join(f"{value!r} ({count} rows)" for value, count in rare[:5])
                + f" have fewer than {CV_FOLDS} rows.",
            )
        )
    return findings


# --- target leakage ---------------------------------------------------------------------------


def _discretise(values, numeric: bool, bins: int):
    """Integer codes: quantile bins for many-valued numbers, levels otherwise; missing = own."""
    import numpy as np
    import pandas as pd

    if numeric:
        numbers = pd.to_numeric(values, errors="coerce")
        present = numbers.notna().to_numpy()
        if numbers.nunique() > bins:
            ranks = np.nan_to_num(numbers.rank(method="average", pct=True).to_numpy())
            codes = np.where(present, np.minimum((ranks * bins).astype(int), bins - 1), -1)
        else:
            codes = pd.factorize(numbers, use_na_sentinel=True)[0]
    else:
        codes = pd.factorize(values.astype("string"), use_na_sentinel=True)[0]
    codes = np.asarray(codes, dtype=np.int64)
    codes[codes < 0] = codes.max() + 1 if len(codes) else 0  # missing as its own level
    return codes


def _oof_accuracy(x, y, folds) -> float:
    """Out-of-fold accuracy of the map 'value of x -> most frequent y' (2 folds)."""
    import numpy as np

    n_x, n_y = x.max() + 1, y.max() + 1
    correct = 0
    for fold in (0, 1):
        train, hold = folds != fold, folds == fold
        table = np.zeros((n_x, n_y), dtype=np.int64)
        np.add.at(table, (x[train], y[train]), 1)
        fallback = np.bincount(y[train], minlength=n_y).argmax()
        prediction = np.where(table.sum(axis=1) > 0, table.argmax(axis=1), fallback)
        correct += int((prediction[x[hold]] == y[hold]).sum())
    return correct / len(x)


def _oof_r2(x, y, folds) -> float:
    """Out-of-fold R^2 of the map 'value of x -> mean y' (2 folds)."""
    import numpy as np

    n_x = x.max() + 1
    predictions = np.empty(len(y))
    for fold in (0, 1):
        train, hold = folds != fold, folds == fold
        sums = np.bincount(x[train], weights=y[train], minlength=n_x)
        counts = np.bincount(x[train], minlength=n_x)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), y[train].mean())
        predictions[hold] = means[x[hold]]
    total = ((y - y.mean()) ** 2).sum()
    return 0.0 if total == 0 else float(1 - ((y - predictions) ** 2).sum() / total)


def _step_function_score(target, codes) -> float:
    """How close a categorical feature is to a step function of a numeric target.

    Sorted by the target, a feature derived from it (price bands from the price) changes
    value only at its k - 1 band edges; an unrelated feature changes about
    (n - 1) * (1 - sum p_i^2) times. The score maps the observed number of changes onto
    [0, 1] between these two: 1 means a perfect step function of the target.
    """
    import numpy as np

    # Ties in the target are broken at random: a feature that is a function of the target
    # is constant within ties anyway, while ordering ties by the feature would hide
    # unrelated features behind a few-valued target (abalone's rings vs sex).
    shuffle = np.random.default_rng(0).permutation(len(codes))
    order = shuffle[np.argsort(target[shuffle], kind="stable")]
    ordered = codes[order]
    changes = int((ordered[1:] != ordered[:-1]).sum())
    shares = np.bincount(codes) / len(codes)
    levels = int((shares > 0).sum())
    expected = (len(codes) - 1) * (1 - float((shares**2).sum()))
    minimum = levels - 1
    if expected <= minimum:
        return 0.0
    return float(min(1.0, max(0.0, 1 - (changes - minimum) / (expected - minimum))))


#: Least share of the target's entropy a feature must carry for the reverse test to count.
_REVERSE_INFORMATION = 1 / 3


def _entropy(codes) -> float:
    import numpy as np

    shares = np.bincount(codes) / len(codes)
    shares = shares[shares > 0]
    return float(-(shares * np.log(shares)).sum())


def _normalised(accuracy: float, base: float) -> float:
    return 0.0 if base >= 1 else max(0.0, (accuracy - base) / (1 - base))


def _gini(values, labels) -> tuple[float | None, float]:
    """|2*AUC-1| of a numeric feature for a binary label, on rows where it is present."""
    import numpy as np
    from scipy.stats import rankdata

    present = ~np.isnan(values)
    coverage = float(present.mean()) if len(values) else 0.0
    x, y = values[present], labels[present]
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None, coverage
    ranks = rankdata(x)
    auc = (ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    return float(abs(2 * auc - 1)), coverage


def leakage_scores(sample, schema: Any, target: str, semantic: dict[str, str]) -> dict:
    """Single-feature predictive power for every feature, out of fold on ``sample``.

    Each feature is discretised (numbers into up to 100 quantile bins, missing as its own
    level) and scored in both directions with 2-fold cross-fitting:

    * forward: how well 'value -> majority label' (classification, normalised accuracy
      (acc - base) / (1 - base)) or 'value -> mean target' (regression, R^2) predicts the target;
    * reverse: how well the target determines the feature (the feature is a function of the
      label: each class has its own value; or, for regression, target bins predict the feature);
    * for a numeric feature and a binary target, also |2*AUC - 1| where it is present.

    The score is the largest of these; 1.0 means the feature alone reproduces the target.
    """
    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr

    labelled = sample[sample[target].notna()].reset_index(drop=True)
    n = len(labelled)
    scores: dict[str, dict[str, Any]] = {}
    if n < 30:
        return scores
    bins = int(min(100, max(10, n // 50)))
    folds = np.random.default_rng(0).permutation(n) % 2
    classification = schema.task in ("binary", "multiclass")
    if classification:
        y_codes = pd.factorize(labelled[target].astype("string"))[0].astype(np.int64)
        base = np.bincount(y_codes).max() / n
        y_values = None
        y_bins = y_codes
    else:
        y_values = pd.to_numeric(labelled[target], errors="coerce").to_numpy(dtype=float)
        keep = ~np.isnan(y_values)
        y_bins = _discretise(pd.Series(y_values), True, bins)
    for column_schema in schema.columns:
        name = column_schema.name
        kind = semantic.get(name)
        if name == target or kind in ("identifier", "constant", "text"):
            continue
        numeric = kind == "numeric"
        x_codes = _discretise(labelled[name], numeric, bins)
        if x_codes.max() < 1:
            continue
        x_base = np.bincount(x_codes).max() / n
        evidence: dict[str, Any] = {}
        if classification:
            evidence["forward"] = _normalised(_oof_accuracy(x_codes, y_codes, folds), base)
            # Reverse: within each class, how concentrated the feature is on one value. It
            # counts only for a feature that carries a real share of the target's information
            # (entropy at least a third of the target's): a rare symptom that appears in one
            # class of nineteen (soybean's sclerotia) is pure within classes without leaking.
            if x_base < 0.95 and _entropy(x_codes) >= _REVERSE_INFORMATION * _entropy(y_codes):
                table = np.zeros((x_codes.max() + 1, y_codes.max() + 1), dtype=np.int64)
                np.add.at(table, (x_codes, y_codes), 1)
                purity = table.max(axis=0).sum() / n
                evidence["reverse"] = _normalised(purity, x_base)
            if schema.task == "binary" and numeric:
                numbers = pd.to_numeric(labelled[name], errors="coerce").to_numpy(dtype=float)
                gini, coverage = _gini(numbers, y_codes == y_codes.max())
                if gini is not None and coverage >= 0.9:
                    evidence["gini"] = gini
        else:
            xs, ys, fs = x_codes[keep], y_values[keep], folds[keep]
            evidence["forward"] = max(0.0, _oof_r2(xs, ys, fs))
            if numeric:
                numbers = pd.to_numeric(labelled[name], errors="coerce").to_numpy(dtype=float)
                present = keep & ~np.isnan(numbers)
                if present.mean() >= 0.9 and np.ptp(numbers[present]) > 0:
                    evidence["reverse"] = max(
                        0.0, _oof_r2(y_bins[present], numbers[present], folds[present])
                    )
                    rho = spearmanr(numbers[present], y_values[present]).statistic
                    if np.isfinite(rho):
                        evidence["spearman"] = abs(rho)
            elif x_base < 0.95:
                evidence["reverse"] = _step_function_score(y_values[keep], x_codes[keep])
        evidence = {key: float(value) for key, value in evidence.items()}
        # Rank correlation only counts when (almost) perfect: strong real predictors of a
        # quantity (a diamond's carat for its price) reach 0.95 without leaking anything.
        counted = {
            key: value
            for key, value in evidence.items()
            if key != "spearman" or value >= LEAKAGE_ERROR
        }
        best = max(counted, key=counted.get)
        scores[name] = {"score": evidence[best], "method": best, **evidence, "sample_rows": n}
    return scores


_LEAKAGE_METHODS = {
    "forward": "the value -> label map alone predicts the target out of fold",
    "reverse": "the feature is (almost) a deterministic function of the target",
    "gini": "its ranking separates the two classes (|2*AUC-1|)",
    "spearman": "it is a monotone function of the target (|Spearman|)",
}


def leakage_findings(sample, schema: Any, target: str, semantic: dict[str, str]) -> list:
    findings = []
    for name, result in leakage_scores(sample, schema, target, semantic).items():
        score = result["score"]
        if score < LEAKAGE_WARNING:
            continue
        severity = "error" if score >= LEAKAGE_ERROR else "warning"
        evidence = {key: value for key, value in result.items() if key != "method"}
        how = _LEAKAGE_METHODS[result["method"]]
        findings.append(
            Finding(
                kind="target_leakage",
                severity=severity,
                columns=[name],
                evidence=evidence,
                fix="Check whether this value is known at prediction time; if it is recorded "
                "after (or from) the outcome, drop the column (mlwright's training drops "
                "columns with a target_leakage finding). If it is a genuinely decisive "
                "feature, the finding can be ignored.",
                message=f"Feature {name!r} alone scores {score:.3f} against target {target!r}: "
                f"{how} (on {result['sample_rows']} sampled rows).",
            )
        )
    return findings


# --- train/test distribution shift ------------------------------------------------------------


def _holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (controls the family-wise error rate)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    m = len(p_values)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def shift_findings(train, test, schema: Any, target: str, test_source: str) -> list[Finding]:
    """Compare every feature's distribution in ``train`` and ``test`` samples.

    Numeric features: two-sample Kolmogorov-Smirnov test, effect size = the KS statistic D.
    Categorical features: chi-square test of the level counts (top 50 levels, missing as its
    own level), effect size = Cramér's V. p-values are Holm-adjusted across features; a
    feature is flagged when the adjusted p < 0.001 *and* the effect size >= 0.1, so that large
    samples do not flag trivial differences.
    """
    import numpy as np
    import pandas as pd
    from scipy import stats as scipy_stats

    findings: list[Finding] = []
    missing = [c.name for c in schema.columns if c.name != target and c.name not in test.columns]
    if missing:
        findings.append(
            Finding(
                kind="distribution_shift",
                severity="error",
                columns=missing,
                evidence={"missing_in_test": len(missing)},
                fix="Make the test data carry the same feature columns as the training data "
                "(same names); a model trained on these columns cannot score it.",
                message=f"{len(missing)} training column(s) are absent from {test_source}, "
                f"e.g. {missing[0]!r}.",
            )
        )
    tests: list[tuple[str, str, float, float, dict]] = []
    for column_schema in schema.columns:
        name = column_schema.name
        kind = column_schema.semantic_type
        if name == target or name not in test.columns or kind in ("identifier", "constant"):
            continue
        if kind == "numeric":
            a = pd.to_numeric(train[name], errors="coerce").dropna().to_numpy(dtype=float)
            b = pd.to_numeric(test[name], errors="coerce").dropna().to_numpy(dtype=float)
            if len(a) < 20 or len(b) < 20:
                continue
            result = scipy_stats.ks_2samp(a, b)
            extra = {
                "train_median": float(np.median(a)),
                "test_median": float(np.median(b)),
            }
            tests.append((name, "ks", float(result.statistic), float(result.pvalue), extra))
        elif kind in ("categorical", "boolean", "text"):
            a = train[name].astype("string").fillna("<missing>")
            b = test[name].astype("string").fillna("<missing>")
            if len(a) < 20 or len(b) < 20:
                continue
            levels = a.value_counts().index[:50]
            a = a.where(a.isin(levels), "<other>")
            b = b.where(b.isin(levels), "<other>")
            table = pd.crosstab(
                pd.concat([a, b], ignore_index=True),
                np.repeat([0, 1], [len(a), len(b)]),
            ).to_numpy(dtype=float)
            if table.shape[0] < 2:
                continue
            chi2, p_value, _, _ = scipy_stats.chi2_contingency(table, correction=False)
            effect = math.sqrt(chi2 / table.sum())  # Cramér's V of a 2-column table
            unseen = int((~b.isin(set(a))).sum())
            tests.append((name, "chi2", effect, float(p_value), {"unseen_in_train": unseen}))
    adjusted = _holm([p for _, _, _, p, _ in tests])
    for (name, method, effect, p_value, extra), p_adjusted in zip(tests, adjusted, strict=True):
        if p_adjusted >= SHIFT_ALPHA or effect < SHIFT_EFFECT:
            continue
        label = "KS statistic D" if method == "ks" else "Cramér's V"
        findings.append(
            Finding(
                kind="distribution_shift",
                severity="warning",
                columns=[name],
                evidence={
                    "test": method,
                    "effect_size": effect,
                    "p_value": p_value,
                    "p_value_holm": p_adjusted,
                    "train_rows": len(train),
                    "test_rows": len(test),
                    **extra,
                },
                fix="Check how the two sets were split or collected (time, source, filters); "
                "a model validated on the training distribution may do worse on this one. "
                "Split at random, or validate on data like the test set.",
                message=f"Column {name!r} is distributed differently in {test_source} "
                f"({label} = {effect:.3f}, Holm-adjusted p = {p_adjusted:.2g}).",
            )
        )
    return findings
