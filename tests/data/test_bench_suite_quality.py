"""Profile and check on every dataset of the shared benchmark suite, with known facts asserted.

These are real, clean public datasets: the checks must find what is known about them and
must not raise false errors (no target leakage anywhere).
"""

from __future__ import annotations

import json

import pytest

from mlwright.data import check, open_table, profile

pytestmark = [pytest.mark.bench_suite, pytest.mark.slow]


@pytest.fixture(scope="module")
def results(bench_suite):
    """Profile (of train) and findings (train against test) of every suite dataset."""
    outcome = {}
    for entry in bench_suite:
        with open_table(entry["train"]) as train, open_table(entry["test"]) as test:
            outcome[entry["name"]] = (
                profile(train, target=entry["target"]),
                check(train, target=entry["target"], test=test),
            )
    return outcome


def _columns_with(findings, kind):
    return {column for finding in findings if finding.kind == kind for column in finding.columns}


def test_every_dataset_is_profiled_and_checked(bench_suite, results):
    for entry in bench_suite:
        result, findings = results[entry["name"]]
        assert result.n_rows == entry["train_rows"], entry["name"]
        assert result.n_columns == entry["columns"], entry["name"]
        assert result.task == entry["task"], entry["name"]
        assert result.associations, entry["name"]
        json.dumps(result.to_dict(), allow_nan=False)
        for finding in findings:
            json.dumps(finding.to_dict(), allow_nan=False)


def test_no_false_errors_on_clean_datasets(results):
    errors = {
        name: [(f.kind, f.columns) for f in findings if f.severity == "error"]
        for name, (_, findings) in results.items()
    }
    assert all(not found for found in errors.values()), errors


def test_no_target_leakage_anywhere(results):
    leaks = {
        name: _columns_with(findings, "target_leakage") for name, (_, findings) in results.items()
    }
    assert all(not columns for columns in leaks.values()), leaks


def test_adult_missing_values(results):
    result, findings = results["adult"]
    missing = _columns_with(findings, "missing_values")
    assert {"workclass", "occupation", "native_country"} <= missing
    assert result.column("workclass").missing == 1836
    assert result.column("age").missing == 0


def test_spambase_column_names_have_special_characters(results):
    _, findings = results["spambase"]
    flagged = _columns_with(findings, "column_name_characters")
    assert {"char_freq_;", "char_freq_(", "char_freq_[", "char_freq_!", "char_freq_$"} <= flagged
    assert "word_freq_make" not in flagged


def test_sick_has_many_missing_values(results):
    result, findings = results["sick"]
    missing = _columns_with(findings, "missing_values")
    assert {"TSH", "T3", "TT4", "T4U", "FTI", "sex"} <= missing
    assert result.column("T3").missing_share > 0.15
    # TBG is never measured: empty, so it is reported as a constant (dropped by training).
    assert "TBG" in _columns_with(findings, "constant_column")
    assert result.missing_cells > 4000


def test_known_class_imbalance(results):
    _, sick = results["sick"]
    assert any(f.kind == "class_imbalance" and f.severity == "warning" for f in sick)
    _, credit = results["credit-g"]
    assert not any(f.kind == "class_imbalance" for f in credit)


def test_known_constant_columns(results):
    _, segment = results["segment"]
    assert "region-pixel-count" in _columns_with(segment, "constant_column")
    _, optdigits = results["optdigits"]
    assert {"input1", "input40"} <= _columns_with(optdigits, "constant_column")


def test_car_mixes_numbers_and_words(results):
    _, findings = results["car"]
    assert {"doors", "persons"} <= _columns_with(findings, "mixed_types")


def test_random_splits_show_no_distribution_shift(results):
    shifted = {
        name: _columns_with(findings, "distribution_shift")
        for name, (_, findings) in results.items()
    }
    assert sum(len(columns) for columns in shifted.values()) <= 2, shifted
