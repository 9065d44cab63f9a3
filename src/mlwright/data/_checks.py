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

import re
from typing import Any

from mlwright.data._finding import Finding, pct, sort_findings
from mlwright.data._leakage import leakage_findings
from mlwright.data._profile import SAMPLE_ROWS, opened, require_rows
from mlwright.data._schema import Schema
from mlwright.data._shift import shift_findings
from mlwright.data._stats import TableStats, compute_stats, duplicate_counts, plain, quote
from mlwright.data._table import Table

__all__ = ["Finding", "check", "check_table", "sort_findings"]

NEAR_CONSTANT_SHARE = 0.99
HIGH_CARDINALITY = 100
CV_FOLDS = 5
#: Characters that break model libraries' feature names (LightGBM rejects JSON specials).
_BREAKING_NAME_CHARACTERS = re.compile(r'[\[\]{}",:<>\x00-\x1f]')
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
                    f"({pct(share)}){cause or marker_note}; these rows have no label, so "
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
                f"{stats.n_rows} rows ({pct(share)}){marker_note}.",
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
                    message=f"Column {name!r} is {value!r} in {pct(share)} of rows; only "
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
                message=f"Column {name!r} mixes numbers ({pct(share)}, e.g. {number_examples}) "
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
                f"value{'s' if low + high != 1 else ''} ({pct(share)}) "
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
                message=f"{duplicates} rows ({pct(share)}) are exact copies of an earlier row.",
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
                f"{n_minor} ({pct(minority_share)}), a {ratio:.1f}:1 imbalance.",
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
