"""Bad input gets one clear DataError (what, where, fix), never a third-party traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from mlwright.data import Schema, load_for_target, open_table, read
from mlwright.errors import DataError

CORPUS = Path(__file__).parent / "bad_inputs"
CASES = json.loads((CORPUS / "cases.json").read_text())


def _assert_one_paragraph(message: str) -> None:
    assert "\n\n" not in message
    assert "Traceback" not in message
    assert len(message) < 800, message
    # A message ends with the fix, as a full sentence.
    assert message.rstrip().endswith((".", ")")), message


@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_corpus_file_gives_a_clear_error(case):
    with pytest.raises(DataError) as caught:
        load_for_target(CORPUS / case["file"], case["target"])
    message = str(caught.value)
    for fragment in case["match"]:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    _assert_one_paragraph(message)


def test_every_corpus_file_has_a_case():
    listed = {case["file"] for case in CASES}
    present = {path.name for path in CORPUS.iterdir()} - {"cases.json", "README.md"}
    assert present <= listed


def test_reading_without_a_target_still_rejects_unreadable_files():
    for name in ("empty.csv", "binary_image.csv", "ragged_rows.csv", "duplicate_columns.csv"):
        with pytest.raises(DataError, match=name.replace(".", r"\.")):
            read(CORPUS / name)
    # A one-row file is readable; it only fails once a model is to be trained on it.
    assert len(read(CORPUS / "one_row.csv")) == 1


def test_ragged_row_far_into_a_large_file(tmp_path):
    path = tmp_path / "big_ragged.csv"
    rows = ["a,b,c"] + [f"{index},{index},x" for index in range(40_000)] + ["1,2"]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"ragged rows: line 40002 \('1,2'\) has 2 fields"):
        read(path)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="is a folder, not a data file"):
        read(tmp_path)


def test_missing_file_suggests_close_names(tmp_path):
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"Did you mean .*train\.csv"):
        read(tmp_path / "trian.csv")


def test_query_on_a_plain_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="is a CSV file, not a database"):
        read(path, query="SELECT 1")


def test_unreachable_sql_url_masks_the_password():
    url = "postgresql+psycopg://analyst:hunter2@127.0.0.1:9/warehouse"
    with pytest.raises(DataError) as caught:
        read(url, query="SELECT * FROM customers")
    message = str(caught.value)
    assert "hunter2" not in message
    assert "analyst:***@127.0.0.1:9/warehouse" in message
    _assert_one_paragraph(message)


def test_sqlite_url_to_missing_file_is_not_created(tmp_path):
    database = tmp_path / "missing.db"
    with pytest.raises(DataError, match=r"SQLite database file .*missing\.db does not exist"):
        read(f"sqlite:///{database}", query="SELECT 1")
    assert not database.exists()


def test_sqlite_query_errors(tmp_path):
    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER, amount REAL)")
        connection.execute("CREATE TABLE customers (id INTEGER)")
    url = f"sqlite:///{database}"
    with pytest.raises(DataError, match=r"The query 'SELECT \* FROM order' failed"):
        read(url, query="SELECT * FROM order")
    with pytest.raises(DataError, match=r"say which data to read with a query.*customers, orders"):
        read(url)
    with pytest.raises(DataError, match="but no data rows"):
        read(url, query="SELECT * FROM orders")


def test_file_that_is_not_a_sqlite_database(tmp_path):
    path = tmp_path / "fake.sqlite"
    path.write_text("just text")
    with pytest.raises(DataError, match=r"fake\.sqlite is not an SQLite database file"):
        read(path, query="SELECT * FROM t")


def test_invalid_sqlalchemy_url():
    with pytest.raises(DataError, match="not a valid SQLAlchemy URL"):
        read("not a url://", query="SELECT 1")


def test_remote_files_are_not_downloaded():
    with pytest.raises(DataError, match="does not download data"):
        read("https://example.com/data.csv")


def test_unknown_column_in_columns_argument(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("income,age\n1,2\n")
    with pytest.raises(DataError, match=r"Column 'incme' is not in .*Did you mean 'income'"):
        read(path, columns=["incme"])


def test_target_checks_on_frames_and_tables():
    frame = pd.DataFrame({"x": range(5), "y": [None] * 5})
    with pytest.raises(DataError, match="all 5 values are missing"):
        Schema.infer(frame, target="y")
    with open_table(frame) as table, pytest.raises(DataError, match="Did you mean 'y'"):
        Schema.infer(table, target="Y")
    with pytest.raises(DataError, match="has only 1 row"):
        Schema.infer(frame.head(1), target="x")
    with pytest.raises(DataError, match="without a target"):
        Schema.infer(frame, task="binary")
    dates = pd.DataFrame({"x": range(30), "when": pd.date_range("2024-01-01", periods=30)})
    with pytest.raises(DataError, match="holds dates"):
        Schema.infer(dates, target="when")


def test_unsupported_source_type():
    with pytest.raises(DataError, match="Cannot read data from a list"):
        read([1, 2, 3])


def test_duplicate_names_in_a_frame():
    frame = pd.DataFrame([[1, 2]], columns=["a", "A"])
    with pytest.raises(DataError, match="duplicate column names: 'a' and 'A'"):
        open_table(frame)


def test_refused_connection_names_the_masked_url_and_the_fix(monkeypatch):
    import sqlalchemy
    from sqlalchemy.exc import OperationalError

    class RefusingEngine:
        def connect(self):
            raise OperationalError(
                "connect", {}, ConnectionRefusedError("connection refused (port 5432)")
            )

        def dispose(self):
            pass

    monkeypatch.setattr(sqlalchemy, "create_engine", lambda url: RefusingEngine())
    with pytest.raises(DataError) as caught:
        read("postgresql://analyst:hunter2@db.internal:5432/sales", query="SELECT 1")
    message = str(caught.value)
    assert "hunter2" not in message
    assert "Cannot connect to the database postgresql://analyst:***@db.internal:5432/sales" in (
        message
    )
    assert "connection refused" in message
    assert "Check the host, port, database name, user and password" in message
