"""``check``: every finding kind fires on data made to have the problem, and not on clean data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlwright.data import Finding, check

N = 400


def clean_frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.choice(["good", "bad"], size=n, p=[0.6, 0.4])
    return pd.DataFrame(
        {
            "amount": (rng.normal(100, 15, n) + np.where(label == "good", 5, 0)).round(2),
            "duration": rng.uniform(1, 60, n).round(1),
            "purpose": rng.choice(["car", "tv", "education", "business"], size=n),
            "label": label,
        }
    )


def kinds(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.kind for f in findings if severity is None or f.severity == severity}


def only(findings: list[Finding], kind: str, column: str | None = None) -> Finding:
    matches = [f for f in findings if f.kind == kind and (column is None or column in f.columns)]
    assert len(matches) == 1, [f.to_dict() for f in findings]
    return matches[0]


def test_clean_data_has_no_errors_or_warnings():
    findings = check(clean_frame(), target="label")
    assert [f for f in findings if f.severity != "info"] == []


def test_findings_are_complete_and_json_serialisable():
    frame = clean_frame()
    frame.loc[:150, "amount"] = np.nan
    findings = check(frame, target="label")
    assert findings
    for finding in findings:
        assert finding.severity in ("error", "warning", "info")
        assert finding.fix
        assert finding.message
        assert isinstance(finding.evidence, dict)
        json.dumps(finding.to_dict(), allow_nan=False)


def test_missing_values():
    frame = clean_frame()
    frame.loc[:119, "amount"] = np.nan  # 30%
    frame.loc[:9, "purpose"] = None  # 2.5%
    findings = check(frame, target="label")
    amount = only(findings, "missing_values", "amount")
    assert amount.severity == "warning"
    assert amount.evidence["missing"] == 120
    assert amount.evidence["share"] == pytest.approx(0.3)
    assert only(findings, "missing_values", "purpose").severity == "info"


def test_missing_markers_are_reported(tmp_path):
    frame = clean_frame()
    text = frame.astype(object)
    text.loc[:30, "amount"] = "?"
    path = tmp_path / "markers.csv"
    text.to_csv(path, index=False)
    finding = only(check(path, target="label"), "missing_values", "amount")
    assert finding.evidence["markers"] == {"?": 31}
    assert "'?': 31" in finding.message


def test_markers_kept_as_categories_are_an_info_finding(tmp_path):
    frame = clean_frame().astype(object)
    frame.loc[:1835, "purpose"] = "?"
    frame = pd.concat([frame] * 5, ignore_index=True)  # 2,000 rows, 1,836 of them '?'
    frame.loc[1836:, "purpose"] = "car"
    path = tmp_path / "kept.csv"
    frame.to_csv(path, index=False)
    findings = check(path, target="label")
    finding = only(findings, "kept_markers", "purpose")
    assert finding.severity == "info"
    assert finding.evidence == {"kept": {"?": 1836}}
    assert finding.message == (
        "Column 'purpose' has 1,836 cells '?' kept as a category (the column holds text). "
        "If '?' means missing, pass --na-values '?'."
    )
    assert "na_values=['?']" in finding.fix
    assert not [f for f in findings if f.kind == "missing_values" and "purpose" in f.columns]
    # Read with the markers given, the same cells are missing values instead.
    explicit = check(path, target="label", na_values=["?"])
    assert only(explicit, "missing_values", "purpose").evidence["markers"] == {"?": 1836}
    assert not [f for f in explicit if f.kind == "kept_markers"]


def test_markers_in_a_numeric_target_leave_rows_unlabelled(tmp_path):
    rng = np.random.default_rng(0)
    values = [f"{value:.2f}" for value in rng.normal(100, 10, 200)]
    values[3] = "?"
    values[7] = ""
    values[9] = "-"
    path = tmp_path / "prices.csv"
    path.write_text("size,price\n" + "".join(f"{i},{value}\n" for i, value in enumerate(values)))
    finding = only(check(path, target="price"), "missing_values", "price")
    assert finding.evidence["markers"] == {"": 1, "?": 1, "-": 1}
    assert "The target 'price' is missing in 3 rows" in finding.message
    assert "1 empty cell, 1 cell '?' and 1 cell '-' in the target were read as missing" in (
        finding.message
    )
    assert "training leaves them out" in finding.message


def test_plus_minus_target_is_checked_with_both_labels(tmp_path):
    frame = clean_frame()
    frame["label"] = frame["label"].map({"good": "+", "bad": "-"})
    path = tmp_path / "signs.csv"
    frame.to_csv(path, index=False)
    findings = check(path, target="label")
    kept = only(findings, "kept_markers", "label")
    assert "kept as a label" in kept.message
    assert not [f for f in findings if f.kind == "missing_values"]


def test_missing_target_values_are_a_warning():
    frame = clean_frame()
    frame.loc[:4, "label"] = None
    finding = only(check(frame, target="label"), "missing_values", "label")
    assert finding.severity == "warning"
    assert "dropped" in finding.fix


def test_duplicate_rows():
    frame = clean_frame()
    frame = pd.concat([frame, frame.iloc[:20]], ignore_index=True)
    finding = only(check(frame, target="label"), "duplicate_rows")
    assert finding.evidence["duplicate_rows"] == 20
    assert finding.severity == "warning"


def test_conflicting_duplicates():
    frame = clean_frame()
    flipped = frame.iloc[:6].copy()
    flipped["label"] = flipped["label"].map({"good": "bad", "bad": "good"})
    findings = check(pd.concat([frame, flipped], ignore_index=True), target="label")
    finding = only(findings, "conflicting_duplicates")
    assert finding.evidence["groups"] == 6
    assert finding.evidence["rows"] == 12
    assert finding.severity == "warning"
    assert "duplicate_rows" not in kinds(findings)


def test_constant_and_near_constant_columns():
    frame = clean_frame().assign(country="NO", empty=np.nan)
    frame["flag"] = "no"
    frame.loc[:1, "flag"] = "yes"
    findings = check(frame, target="label")
    assert only(findings, "constant_column", "country").severity == "warning"
    assert only(findings, "constant_column", "empty").evidence["distinct"] == 0
    near = only(findings, "near_constant_column", "flag")
    assert near.evidence["other_values"] == 2
    assert near.severity == "info"


def test_identifier_column():
    frame = clean_frame()
    frame.insert(0, "customer_id", np.arange(1000, 1000 + N))
    finding = only(check(frame, target="label"), "identifier_column", "customer_id")
    assert finding.evidence["distinct_ratio"] == 1.0


def test_target_leakage_from_a_copy_of_the_label():
    frame = clean_frame()
    frame["outcome_code"] = frame["label"].map({"good": "G", "bad": "B"})
    finding = only(check(frame, target="label"), "target_leakage", "outcome_code")
    assert finding.severity == "error"
    assert finding.evidence["score"] >= 0.99


def test_target_leakage_from_a_number_that_separates_the_classes():
    frame = clean_frame()
    rng = np.random.default_rng(3)
    frame["days_in_collection"] = np.where(
        frame["label"] == "bad", rng.uniform(30, 90, N), rng.uniform(0, 29, N)
    ).round(1)
    finding = only(check(frame, target="label"), "target_leakage", "days_in_collection")
    assert finding.severity == "error"


def test_target_leakage_in_regression():
    rng = np.random.default_rng(4)
    price = rng.lognormal(8, 1, N).round(2)
    frame = pd.DataFrame(
        {
            "size": (price / 100 * rng.uniform(0.5, 1.5, N)).round(2),
            "price_with_tax": (price * 1.25).round(2),
            "rooms": rng.integers(1, 6, N),
            "price": price,
        }
    )
    findings = check(frame, target="price")
    assert only(findings, "target_leakage", "price_with_tax").severity == "error"
    assert "size" not in {c for f in findings if f.kind == "target_leakage" for c in f.columns}


def test_a_feature_derived_from_the_target_is_leakage():
    rng = np.random.default_rng(5)
    price = rng.lognormal(8, 1, N).round(2)
    bucket = pd.cut(price, [0, 1000, 3000, 10000, np.inf], labels=["low", "mid", "high", "top"])
    frame = pd.DataFrame(
        {"rooms": rng.integers(1, 6, N), "bucket": bucket.astype(str), "price": price}
    )
    finding = only(check(frame, target="price"), "target_leakage", "bucket")
    assert finding.severity == "error"


def test_a_rare_symptom_of_one_class_is_not_leakage_but_a_grouping_of_the_classes_is():
    rng = np.random.default_rng(8)
    n = 600
    disease = rng.choice([f"d{i}" for i in range(12)], size=n)
    frame = pd.DataFrame(
        {
            # 'present' in one disease only, absent elsewhere: pure within every class, yet
            # it carries little of the target's information (soybean's sclerotia).
            "sclerotia": np.where(disease == "d3", "present", "absent"),
            # The disease's family: a grouping of the label, known only from the label.
            "family": pd.Series(disease).map(lambda d: f"f{int(d[1:]) % 4}").to_numpy(),
            "x": rng.normal(size=n),
            "disease": disease,
        }
    )
    leaks = {
        c for f in check(frame, target="disease") if f.kind == "target_leakage" for c in f.columns
    }
    assert "sclerotia" not in leaks
    assert "family" in leaks


def test_class_imbalance_and_rare_classes():
    rng = np.random.default_rng(6)
    label = np.array(["ok"] * 380 + ["fraud"] * 17 + ["chargeback"] * 3)
    frame = pd.DataFrame({"x": rng.normal(size=N), "label": label})
    findings = check(frame, target="label")
    imbalance = only(findings, "class_imbalance")
    assert imbalance.severity == "warning"
    assert imbalance.evidence["ratio"] == pytest.approx(380 / 3)
    rare = only(findings, "rare_class")
    assert rare.evidence["smallest"] == 3
    assert "'chargeback' (3 rows)" in rare.message


def test_moderate_imbalance_is_info():
    frame = clean_frame()
    frame["label"] = ["yes"] * 80 + ["no"] * (N - 80)
    assert only(check(frame, target="label"), "class_imbalance").severity == "info"


def test_high_cardinality_categorical():
    rng = np.random.default_rng(7)
    n = 3000
    frame = pd.DataFrame(
        {
            "merchant": [f"m{int(v)}" for v in rng.integers(0, 150, n)],
            "x": rng.normal(size=n),
            "label": rng.choice(["a", "b"], size=n),
        }
    )
    finding = only(check(frame, target="label"), "high_cardinality", "merchant")
    assert finding.evidence["distinct"] == 150


def test_mixed_types():
    frame = clean_frame()
    values = frame["duration"].astype(str).astype(object)
    values.iloc[:8] = "unknown"
    frame["duration"] = values
    finding = only(check(frame, target="label"), "mixed_types", "duration")
    assert finding.severity == "warning"
    assert finding.evidence["other_values"] == 8
    assert "'unknown'" in finding.message


def test_words_among_codes_are_info():
    frame = clean_frame()
    frame["doors"] = np.resize(["2", "3", "4", "5more"], N)
    assert only(check(frame, target="label"), "mixed_types", "doors").severity == "info"


def test_outliers():
    frame = clean_frame()
    frame.loc[:2, "amount"] = 99999.0
    finding = only(check(frame, target="label"), "outliers", "amount")
    assert finding.evidence["above"] == 3
    assert finding.severity == "warning"  # hundreds of IQRs away: a sentinel, not a value


def test_distribution_shift():
    train = clean_frame(seed=1)
    test = clean_frame(seed=2)
    test["amount"] = test["amount"] + 30
    test["purpose"] = "car"
    findings = check(train, target="label", test=test)
    amount = only(findings, "distribution_shift", "amount")
    assert amount.evidence["test"] == "ks"
    assert amount.evidence["effect_size"] > 0.5
    assert amount.evidence["p_value_holm"] < 0.001
    assert only(findings, "distribution_shift", "purpose").evidence["test"] == "chi2"
    assert "duration" not in {c for f in findings for c in f.columns}


def test_no_shift_between_two_random_halves():
    frame = clean_frame(n=2000)
    findings = check(frame.iloc[:1000], target="label", test=frame.iloc[1000:])
    assert "distribution_shift" not in kinds(findings)


def test_test_data_without_a_training_column_is_an_error():
    train = clean_frame()
    test = clean_frame(seed=3).drop(columns=["duration"])
    finding = only(check(train, target="label", test=test), "distribution_shift", "duration")
    assert finding.severity == "error"


def test_column_name_characters():
    frame = clean_frame().rename(columns={"amount": "amount[eur]", "duration": "loan duration"})
    findings = check(frame, target="label")
    assert only(findings, "column_name_characters", "amount[eur]").severity == "warning"
    assert only(findings, "column_name_characters", "loan duration").severity == "info"


def test_duplicate_column_names():
    frame = clean_frame()
    frame.insert(1, "Purpose ", frame["purpose"])
    frame = pd.concat([frame, frame[["duration"]]], axis=1)
    findings = check(frame, target="label")
    exact = [f for f in findings if f.kind == "duplicate_column_names" and f.severity == "error"]
    assert exact[0].columns == ["duration"]
    assert findings[0].severity == "error"  # errors come first
    near = [f for f in findings if f.kind == "duplicate_column_names" and f.severity == "warning"]
    assert set(near[0].columns) == {"purpose", "Purpose "}


def test_findings_are_sorted_errors_first():
    frame = clean_frame()
    frame["outcome_code"] = frame["label"]
    frame.loc[:150, "amount"] = np.nan
    severities = [f.severity for f in check(frame, target="label")]
    order = {"error": 0, "warning": 1, "info": 2}
    assert severities == sorted(severities, key=order.__getitem__)


def test_rare_class_among_many_classes():
    rng = np.random.default_rng(8)
    labels = np.repeat([f"c{i}" for i in range(11)], 36)[:396].tolist() + ["c11"] * 4
    frame = pd.DataFrame({"x": rng.normal(size=N), "label": labels})
    rare = only(check(frame, target="label"), "rare_class")
    assert rare.evidence["smallest"] == 4
    assert "'c11' (4 rows)" in rare.message
