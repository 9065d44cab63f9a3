"""Schema inference (semantic types, task detection), validation and JSON round-trips."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlwright.data import Schema, ValidationReport, load_for_target, open_table
from mlwright.errors import DataError, SchemaValidationError

N = 200


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    words = ["late delivery again", "great service and fast", "the parcel was damaged badly"]
    return pd.DataFrame(
        {
            "RowNumber": np.arange(1, N + 1),
            "CustomerId": rng.permutation(np.arange(15_600_000, 15_600_000 + 10 * N, 10)),
            "Surname": [f"Name{index:04d}" for index in range(N)],
            "CreditScore": rng.integers(350, 850, N),
            "Geography": rng.choice(["France", "Spain", "Germany"], N),
            "NumOfProducts": rng.integers(1, 5, N),
            "HasCrCard": rng.integers(0, 2, N),
            "Balance": rng.normal(50_000, 20_000, N).round(2),
            "Joined": pd.date_range("2020-01-01", periods=N, freq="D").strftime("%Y-%m-%d"),
            "Opened": pd.date_range("2019-03-01", periods=N, freq="D").strftime("%d/%m/%Y"),
            "Review": [
                f"{rng.choice(words)} order {index} {rng.choice(words)}" for index in range(N)
            ],
            "Active": rng.choice(["yes", "no"], N),
            "Country": ["NO"] * N,
            "Ratio": rng.random(N),
            "Exited": rng.integers(0, 2, N),
        }
    )


def _types(schema: Schema) -> dict[str, str]:
    return {column.name: column.semantic_type for column in schema.columns}


def test_semantic_types(frame):
    schema = Schema.infer(frame, target="Exited")
    types = _types(schema)
    assert types == {
        "RowNumber": "identifier",
        "CustomerId": "identifier",
        "Surname": "identifier",
        "CreditScore": "numeric",
        "Geography": "categorical",
        "NumOfProducts": "categorical",
        "HasCrCard": "boolean",
        "Balance": "numeric",
        "Joined": "datetime",
        "Opened": "datetime",
        "Review": "text",
        "Active": "boolean",
        "Country": "constant",
        "Ratio": "numeric",
        "Exited": "boolean",
    }
    assert [column.name for column in schema.columns] == list(frame.columns)
    assert schema.feature_names == list(frame.columns[:-1])
    for column in schema.columns:
        assert column.reason, column.name


def test_column_details(frame):
    frame.loc[3, "Balance"] = np.nan
    schema = Schema.infer(frame)
    balance = schema.column("Balance")
    assert balance.dtype == "float"
    assert balance.nullable
    assert balance.missing_share == pytest.approx(1 / N)
    assert balance.minimum == pytest.approx(frame["Balance"].min())
    assert balance.maximum == pytest.approx(frame["Balance"].max())
    geography = schema.column("Geography")
    assert sorted(geography.categories) == ["France", "Germany", "Spain"]
    counts = frame["Geography"].value_counts()
    assert geography.categories[0] == counts.index[0]  # most frequent first
    assert geography.minimum is None
    assert geography.n_distinct == 3
    joined = schema.column("Joined")
    assert joined.dtype == "string"
    assert joined.datetime_format == "ISO8601"
    assert joined.minimum.startswith("2020-01-01")
    assert schema.column("Opened").datetime_format == "%d/%m/%Y"
    assert schema.target is None
    assert schema.task is None
    with pytest.raises(DataError, match="Did you mean 'Geography'"):
        schema.column("geografy")


def test_float_measurement_is_never_an_identifier():
    frame = pd.DataFrame({"price_id_like": np.linspace(0.5, 99.5, 100), "y": [0, 1] * 50})
    assert _types(Schema.infer(frame))["price_id_like"] == "numeric"
    frame = pd.DataFrame({"account_id": np.arange(100, dtype=float), "y": [0, 1] * 50})
    assert _types(Schema.infer(frame))["account_id"] == "identifier"


def test_numbers_in_small_ranges_are_categorical_only_when_integer():
    frame = pd.DataFrame({"rating": [1, 2, 3, 4, 5] * 10, "score": [1.0, 2.5, 3.0, 4.5, 5.0] * 10})
    types = _types(Schema.infer(frame))
    assert types == {"rating": "categorical", "score": "numeric"}


@pytest.mark.parametrize(
    ("values", "task", "reason"),
    [
        (["yes", "no"] * 30, "binary", "2 distinct values"),
        ([0, 1] * 30, "binary", "2 distinct values"),
        (["a", "b", "c"] * 20, "multiclass", "text labels with 3"),
        ([1, 2, 3, 4, 5, 6] * 10, "multiclass", "whole numbers with 6"),
        ([1.0, 2.0, 3.0] * 20, "multiclass", "whole numbers with 3"),
        (list(range(60)), "regression", "numeric with 60 distinct"),
        (list(np.linspace(0, 1, 60)), "regression", "not all whole numbers"),
    ],
)
def test_task_detection(values, task, reason):
    frame = pd.DataFrame({"x": range(len(values)), "target": values})
    schema = Schema.infer(frame, target="target")
    assert schema.task == task
    assert reason in schema.task_reason
    if task != "regression":
        assert schema.class_labels == sorted(set(values), key=str)
    else:
        assert schema.class_labels is None


def test_task_override_and_impossible_overrides():
    frame = pd.DataFrame({"x": range(60), "target": [1, 2, 3, 4, 5, 6] * 10})
    schema = Schema.infer(frame, target="target", task="regression")
    assert schema.task == "regression"
    assert "set explicitly" in schema.task_reason
    text = pd.DataFrame({"x": range(60), "target": ["a", "b", "c"] * 20})
    with pytest.raises(DataError, match=r"task='regression' needs a numeric target.*'a'"):
        Schema.infer(text, target="target", task="regression")
    with pytest.raises(DataError, match=r"task='binary' needs exactly 2 target values.*has 3"):
        Schema.infer(text, target="target", task="binary")
    with pytest.raises(DataError, match="Unknown task 'clustering'"):
        Schema.infer(text, target="target", task="clustering")


def test_class_labels_keep_types_and_sort_by_text():
    frame = pd.DataFrame({"x": range(40), "target": [10, 9, 2, 1] * 10})
    schema = Schema.infer(frame, target="target")
    assert schema.class_labels == [1, 10, 2, 9]
    assert all(isinstance(label, int) for label in schema.class_labels)


def test_infer_on_table_matches_frame(tmp_path, frame):
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False)
    with open_table(path) as table:
        from_table = Schema.infer(table, target="Exited")
    from_frame = Schema.infer(frame, target="Exited")
    assert _types(from_table) == _types(from_frame)
    assert from_table.task == from_frame.task == "binary"


def test_json_round_trip(tmp_path, frame):
    schema = Schema.infer(frame, target="Geography")
    path = schema.save(tmp_path / "schema.json")
    loaded = Schema.load(path)
    assert loaded == schema
    assert loaded.to_dict() == json.loads(path.read_text())
    assert loaded.task == "multiclass"
    assert loaded.class_labels == ["France", "Germany", "Spain"]
    assert Schema.from_dict(schema.to_dict()).column("Joined").datetime_format == "ISO8601"


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        Schema.load(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        Schema.load(broken)
    with pytest.raises(DataError, match="Not a valid mlwright schema"):
        Schema.from_dict({"target": "x"})


def test_load_for_target(tmp_path, frame):
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False)
    data, schema = load_for_target(path, "Exited")
    assert len(data) == N
    assert schema.task == "binary"
    assert "missing_markers" in data.attrs


# ------------------------------------------------------------------------------ validate


@pytest.fixture
def schema(frame) -> Schema:
    return Schema.infer(frame, target="Exited")


def _by_kind(report: ValidationReport) -> dict[tuple[str, str], object]:
    return {(problem.column, problem.kind): problem for problem in report.problems}


def test_training_data_validates_cleanly(schema, frame):
    report = schema.validate(frame.drop(columns="Exited"))
    assert report.ok
    assert report.problems == []
    report.raise_for_errors("the training data")


def test_validate_reports_every_kind(schema, frame):
    new = frame.drop(columns=["Exited", "Ratio"]).head(10).copy()
    new["CreditScore"] = new["CreditScore"].astype(object)
    new.loc[2, "CreditScore"] = "abc"
    new.loc[4, "Balance"] = 10_000_000.0
    new.loc[5, "Geography"] = "Italy"
    new.loc[6, "NumOfProducts"] = 9
    new.loc[7, "Joined"] = "not a date"
    new.loc[8, "Surname"] = None
    new.loc[1, "Active"] = "maybe"
    new["Extra"] = 1
    report = schema.validate(new)
    problems = _by_kind(report)
    assert not report.ok
    missing = problems[("Ratio", "missing_column")]
    assert missing.severity == "error"
    wrong = problems[("CreditScore", "wrong_type")]
    assert wrong.severity == "error"
    assert wrong.count == 1
    assert wrong.examples == [(2, "abc")]
    assert "'abc' in row 2" in wrong.message
    assert "expected a number" in wrong.message
    assert problems[("Joined", "wrong_type")].examples == [(7, "not a date")]
    out = problems[("Balance", "out_of_range")]
    assert out.severity == "warning"
    assert out.examples == [(4, 10_000_000.0)]
    unseen = problems[("Geography", "unseen_category")]
    assert unseen.severity == "warning"
    assert "'Italy' in row 5" in unseen.message
    assert problems[("NumOfProducts", "unseen_category")].examples == [(6, 9)]
    assert problems[("Active", "unseen_category")].examples == [(1, "maybe")]
    assert problems[("Surname", "missing_value")].severity == "warning"
    assert problems[("Extra", "extra_column")].severity == "warning"
    assert ("Exited", "missing_column") not in problems
    assert {problem.kind for problem in report.errors} == {"missing_column", "wrong_type"}

    with pytest.raises(SchemaValidationError) as caught:
        report.raise_for_errors("scoring.csv")
    error = caught.value
    assert "scoring.csv" in error.message
    assert {problem["kind"] for problem in error.problems} == {"missing_column", "wrong_type"}
    assert all(problem["severity"] == "error" for problem in error.problems)
    json.dumps(report.to_dict())  # structured results serialise for HTTP 422 bodies


def test_validate_requires_target_when_asked(schema, frame):
    report = schema.validate(frame.drop(columns="Exited"), require_target=True)
    assert [problem.kind for problem in report.errors] == ["missing_column"]
    assert report.errors[0].column == "Exited"


def test_numbers_sent_as_text_are_accepted(schema, frame):
    new = frame.drop(columns="Exited").head(3).astype(str)
    report = schema.validate(new)
    assert report.ok, [problem.message for problem in report.errors]


def test_missing_markers_count_as_missing(schema, frame):
    new = frame.drop(columns="Exited").head(3).copy()
    new["CreditScore"] = new["CreditScore"].astype(object)
    new.loc[0, "CreditScore"] = "NA"
    report = schema.validate(new)
    assert report.ok
    assert _by_kind(report)[("CreditScore", "missing_value")].count == 1


def test_boolean_columns_accept_any_spelling_of_true_and_false():
    frame = pd.DataFrame({"flag": [True, False] * 10, "x": range(20)})
    schema = Schema.infer(frame)
    new = pd.DataFrame({"flag": ["True", "false", True, "maybe"], "x": [1, 2, 3, 4]})
    report = schema.validate(new)
    assert [(problem.kind, problem.examples) for problem in report.problems] == [
        ("unseen_category", [(3, "maybe")])
    ]


def test_a_marker_that_is_a_known_category_is_that_category(tmp_path):
    path = tmp_path / "adult.csv"
    rows = [f"{i},{['Private', 'State-gov', '?'][i % 3]},{i % 2}" for i in range(60)]
    path.write_text("age,workclass,label\n" + "\n".join(rows) + "\n")
    schema = Schema.infer(path, target="label")
    assert "?" in schema.column("workclass").categories
    new = pd.DataFrame({"age": ["?", 30], "workclass": ["?", "-"]})
    problems = _by_kind(schema.validate(new))
    # '?' is a workclass; '-' is not one, so it still counts as missing; '?' among ages too.
    assert problems[("workclass", "missing_value")].count == 1
    assert problems[("workclass", "missing_value")].examples == [(1, None)]
    assert ("workclass", "unseen_category") not in problems
    assert problems[("age", "missing_value")].count == 1


def test_the_reading_rule_is_recorded_in_the_schema(tmp_path):
    from mlwright.data._markers import LEGACY_MARKERS, schema_rule

    path = tmp_path / "data.csv"
    path.write_text("x,grade,y\n1,A,a\n2,?,b\n-999,B,a\n4,C,b\n")
    automatic = Schema.infer(path, target="y")
    assert automatic.na_values is None
    explicit = Schema.infer(path, target="y", na_values=["-999"])
    assert explicit.na_values == ["-999"]
    assert explicit.column("x").nullable
    restored = Schema.from_dict(json.loads(json.dumps(explicit.to_dict())))
    assert restored == explicit
    assert restored.na_values == ["-999"]
    # New data for a model is read the way its training data was.
    rule = schema_rule(automatic)
    assert rule.markers_for("grade") == ()  # text at training: markers are values
    assert rule.markers_for("x") == LEGACY_MARKERS  # numeric: markers are missing
    assert not rule.strict
    assert schema_rule(explicit).markers_for("grade") == ("-999",)
    # A schema saved before the rule was recorded read every marker as missing.
    legacy = automatic.to_dict()
    del legacy["na_values"]
    assert Schema.from_dict(legacy).na_values == list(LEGACY_MARKERS)
