"""Ingest and schema inference over every dataset of the shared benchmark suite."""

from __future__ import annotations

import csv
import json

import pytest

from mlwright.data import Schema, fingerprint, open_table, read

pytestmark = pytest.mark.bench_suite


def _header(path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


@pytest.mark.slow
def test_every_dataset_reads_and_gets_its_task(bench_suite, tmp_path):
    assert len(bench_suite) >= 14
    for entry in bench_suite:
        name = entry["name"]
        with open_table(entry["train"]) as table:
            assert table.n_rows == entry["train_rows"], name
            assert table.columns == _header(entry["train"]), name
            assert len(table.columns) == entry["columns"], name
            schema = Schema.infer(table, target=entry["target"])
            table_fingerprint = fingerprint(table)
        assert schema.task == entry["task"], f"{name}: {schema.task_reason}"
        assert schema.task_reason, name
        assert [column.name for column in schema.columns] == _header(entry["train"])
        if entry["task"] == "binary":
            assert len(schema.class_labels) == 2, name
        elif entry["task"] == "multiclass":
            assert len(schema.class_labels) >= 3, name
        else:
            assert schema.class_labels is None, name
        # The schema survives JSON, and the held-out test split validates against it.
        path = schema.save(tmp_path / f"{name}.json")
        assert Schema.load(path) == schema
        json.loads(path.read_text())
        test_frame = read(entry["test"])
        report = schema.validate(test_frame, require_target=True)
        assert report.ok, f"{name}: {[problem.message for problem in report.errors]}"
        # The pandas copy hashes like the DuckDB table it came from.
        assert fingerprint(read(entry["train"])) == table_fingerprint, name


def test_adult_missing_values(bench_dataset):
    entry = bench_dataset("adult")
    frame = read(entry["train"])
    schema = Schema.infer(frame, target="income")
    for column in ("workclass", "occupation", "native_country"):
        described = schema.column(column)
        assert described.nullable, column
        assert 0.01 < described.missing_share < 0.1, column
        assert described.semantic_type == "categorical"
        assert frame.attrs["missing_markers"][column][""] == frame[column].isna().sum()
    assert not schema.column("age").nullable
    assert schema.column("age").semantic_type == "numeric"
    assert schema.class_labels == ["<=50K", ">50K"]


def test_spambase_special_column_names_survive(bench_dataset):
    entry = bench_dataset("spambase")
    special = ["char_freq_;", "char_freq_(", "char_freq_[", "char_freq_!", "char_freq_$"]
    frame = read(entry["train"])
    for name in special + ["char_freq_#"]:
        assert name in frame.columns
    schema = Schema.infer(frame, target="class")
    assert all(schema.column(name).semantic_type == "numeric" for name in special)
    with open_table(entry["train"]) as table:
        quoted = ", ".join(f'avg("{name}")' for name in special)
        averages = table.connection.execute(f"SELECT {quoted} FROM {table.ref}").fetchone()
    assert averages == pytest.approx([frame[name].mean() for name in special])
    assert set(schema.class_labels) == {0, 1}


def test_sick_has_many_missing_values(bench_dataset):
    entry = bench_dataset("sick")
    schema = Schema.infer(read(entry["train"]), target="Class")
    nullable = [column.name for column in schema.columns if column.nullable]
    assert {"sex", "TSH", "T3", "TT4", "T4U", "FTI", "TBG"} <= set(nullable)
    assert schema.column("T3").missing_share > 0.15
    tbg = schema.column("TBG")
    assert tbg.missing_share == 1.0
    assert tbg.semantic_type == "constant"
    assert schema.column("on thyroxine").semantic_type == "boolean"


def test_integer_targets(bench_dataset):
    abalone = Schema.infer(read(bench_dataset("abalone")["train"]), target="Class_Rings")
    assert abalone.task == "regression"
    assert "27 distinct" in abalone.task_reason
    optdigits = Schema.infer(read(bench_dataset("optdigits")["train"]), target="class")
    assert optdigits.task == "multiclass"
    assert optdigits.class_labels == list(range(10))
