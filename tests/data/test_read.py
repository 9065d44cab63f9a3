"""Reading every supported source into pandas (read) and DuckDB (open_table)."""

from __future__ import annotations

import codecs
import sqlite3

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlwright.data import MISSING_MARKERS, Table, open_table, read
from mlwright.errors import ConfigError, DataError

SPECIAL = ["char_freq_;", "char_freq_(", 'quote"d', "with space", "ünïcode"]


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [41, 35, 29, 52],
            "income": [1200.5, np.nan, 980.25, 4000.0],
            "city": pd.Series(["Oslo", "Bergen", None, "Oslo"], dtype="str"),
            "count": [1.0, np.nan, 3.0, 4.0],
        }
    )


def test_csv_types_and_missing_markers(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        "id,age,income,city\n"
        "1,41,1200.5,Oslo\n"
        "2,NA,?,Bergen\n"
        "3,-,980.25,null\n"
        "4,52,N/A,\n"
        "5,33,12.0,-\n"
    )
    frame = read(path)
    assert list(frame.columns) == ["id", "age", "income", "city"]
    assert frame["id"].dtype == np.int64
    # An integer column with missing values becomes float64 (documented convention).
    assert frame["age"].dtype == np.float64
    assert frame["income"].dtype == np.float64
    assert pd.api.types.is_string_dtype(frame["city"].dtype)
    assert frame["age"].isna().sum() == 2
    # Among numbers the markers are anomalous; in a text column they are its values.
    assert frame["city"].isna().sum() == 1
    assert frame["city"].iloc[[0, 1, 2, 4]].tolist() == ["Oslo", "Bergen", "null", "-"]
    assert frame["income"].tolist()[0] == 1200.5
    markers = frame.attrs["missing_markers"]
    assert markers["age"] == {"NA": 1, "-": 1}
    assert markers["income"] == {"?": 1, "N/A": 1}
    assert markers["city"] == {"": 1}
    assert "id" not in markers
    assert frame.attrs["kept_markers"] == {"city": {"null": 1, "-": 1}}


def test_every_documented_marker_reads_as_missing(tmp_path):
    path = tmp_path / "markers.csv"
    rows = "\n".join(f"{index},{marker}" for index, marker in enumerate(MISSING_MARKERS))
    path.write_text("row,value\n" + rows + "\n99,7\n")
    frame = read(path)
    assert frame["value"].isna().sum() == len(MISSING_MARKERS)
    assert frame["value"].dtype == np.float64
    assert sum(frame.attrs["missing_markers"]["value"].values()) == len(MISSING_MARKERS)


@pytest.mark.parametrize(
    ("delimiter", "suffix"), [("\t", ".tsv"), (";", ".csv"), ("|", ".txt"), ("\t", ".csv")]
)
def test_delimiters_are_sniffed(tmp_path, delimiter, suffix):
    path = tmp_path / f"data{suffix}"
    lines = [delimiter.join(["a", "b", "c"])] + [
        delimiter.join([str(index), f"x{index}", str(index * 0.5)]) for index in range(20)
    ]
    path.write_text("\n".join(lines) + "\n")
    frame = read(path)
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame.shape == (20, 3)
    assert frame["c"].iloc[3] == 1.5


def test_semicolon_file_with_decimal_commas(tmp_path):
    path = tmp_path / "european.csv"
    path.write_text("Preis;Menge;Ort\n1,5;3;Köln\n2,25;4;Bonn\n")
    frame = read(path)
    assert frame["Preis"].tolist() == [1.5, 2.25]
    assert frame["Menge"].tolist() == [3, 4]


def test_quoted_fields(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('name,note\n"Smith, John","said ""hi"""\nDoe,"line one\nline two"\n')
    frame = read(path)
    assert frame["name"].tolist() == ["Smith, John", "Doe"]
    assert frame["note"].tolist() == ['said "hi"', "line one\nline two"]


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-8-sig"])
def test_encodings(tmp_path, encoding):
    path = tmp_path / "encoded.csv"
    path.write_bytes("name,score\ncafé,1\nnaïve,2\nZürich,3\n".encode(encoding))
    frame = read(path)
    assert list(frame.columns) == ["name", "score"]
    assert frame["name"].tolist() == ["café", "naïve", "Zürich"]
    assert frame["score"].tolist() == [1, 2, 3]


def test_utf16_little_endian_without_bom(tmp_path):
    path = tmp_path / "u16.csv"
    path.write_bytes("x,y\n1,2\n3,4\n".encode("utf-16-le"))
    assert not path.read_bytes().startswith(codecs.BOM_UTF16_LE)
    assert read(path)["y"].tolist() == [2, 4]


def test_file_without_header_gets_positional_names(tmp_path):
    path = tmp_path / "noheader.csv"
    path.write_text("1,2.5,a\n3,4.5,b\n")
    frame = read(path)
    assert list(frame.columns) == ["column0", "column1", "column2"]
    assert len(frame) == 2


def test_special_column_names_survive_every_format(tmp_path):
    data = pd.DataFrame(
        {name: [float(index), float(index) + 1] for index, name in enumerate(SPECIAL)}
    )
    csv_path = tmp_path / "special.csv"
    data.to_csv(csv_path, index=False)
    parquet_path = tmp_path / "special.parquet"
    data.to_parquet(parquet_path)
    jsonl_path = tmp_path / "special.jsonl"
    data.to_json(jsonl_path, orient="records", lines=True)
    for path in (csv_path, parquet_path, jsonl_path):
        frame = read(path)
        assert list(frame.columns) == SPECIAL, path
        pd.testing.assert_frame_equal(frame, data, check_dtype=False)


def test_late_non_numeric_value_makes_the_column_text(tmp_path):
    path = tmp_path / "late.csv"
    lines = ["code,value"] + [f"{index},{index}" for index in range(30000)] + ["A12,1.5"]
    path.write_text("\n".join(lines) + "\n")
    frame = read(path)
    assert pd.api.types.is_string_dtype(frame["code"].dtype)
    assert frame["code"].iloc[-1] == "A12"
    assert frame["value"].dtype == np.float64
    assert frame["value"].iloc[-1] == 1.5


def test_types_sampled_on_large_files_are_widened_when_a_later_value_does_not_fit(
    tmp_path, monkeypatch
):
    import mlwright.data._read_csv as read_module

    monkeypatch.setattr(read_module, "_FULL_SNIFF_BYTES", 0)  # as for a file of gigabytes
    path = tmp_path / "late.csv"
    lines = ["code,value,label"] + [f"{index},{index},{index % 3}" for index in range(30000)]
    lines.append("A12,1.5,x")
    path.write_text("\n".join(lines) + "\n")
    frame = read(path)
    assert pd.api.types.is_string_dtype(frame["code"].dtype)
    assert frame["value"].dtype == np.float64
    assert frame["value"].iloc[-1] == 1.5
    assert frame["label"].iloc[-1] == "x"
    assert frame["label"].iloc[4] == "1"


def test_gzip_csv(tmp_path):
    import gzip

    path = tmp_path / "data.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("a,b\n1,x\n2,y\n")
    assert read(path)["b"].tolist() == ["x", "y"]


def test_parquet_and_jsonl(tmp_path, frame):
    parquet_path = tmp_path / "data.parquet"
    frame.to_parquet(parquet_path)
    jsonl_path = tmp_path / "data.jsonl"
    frame.to_json(jsonl_path, orient="records", lines=True)
    for path in (parquet_path, jsonl_path):
        result = read(path)
        assert list(result.columns) == list(frame.columns)
        assert result["age"].dtype == np.int64
        assert result["income"].isna().sum() == 1
        assert result["city"].isna().sum() == 1
        assert result.attrs["missing_markers"] == {}


def test_arff_nominals_become_strings(tmp_path):
    path = tmp_path / "data.arff"
    path.write_text(
        "@relation demo\n"
        "@attribute age numeric\n"
        "@attribute color {red,green}\n"
        "@attribute 'char_freq_(' real\n"
        "@attribute class {yes,no}\n"
        "@data\n"
        "1,red,0.5,yes\n"
        "?,green,?,no\n"
        "3,?,1.5,yes\n"
    )
    frame = read(path)
    assert list(frame.columns) == ["age", "color", "char_freq_(", "class"]
    assert pd.api.types.is_string_dtype(frame["color"].dtype)
    assert frame["color"].isna().sum() == 1
    assert frame["color"].iloc[0] == "red"
    assert frame["age"].dtype == np.float64
    assert frame.attrs["missing_markers"]["age"] == {"?": 1}


def test_invalid_arff(tmp_path):
    path = tmp_path / "broken.arff"
    path.write_text("@relation x\n@attribute a numeric\n@data\n1,2,3\n")
    with pytest.raises(DataError, match=r"broken\.arff is not valid ARFF"):
        read(path)


def test_excel(tmp_path, frame):
    path = tmp_path / "book.xlsx"
    frame.to_excel(path, index=False)
    result = read(path)
    assert list(result.columns) == list(frame.columns)
    assert result["age"].tolist() == [41, 35, 29, 52]
    assert result["city"].isna().sum() == 1


def test_excel_without_openpyxl(tmp_path, frame, monkeypatch):
    import builtins

    path = tmp_path / "book.xlsx"
    frame.to_excel(path, index=False)
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "openpyxl":
            raise ImportError("No module named 'openpyxl'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError, match=r"pip install 'mlwright\[excel\]'"):
        read(path)


def test_sqlite_file_and_url(tmp_path, frame):
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as connection:
        frame.to_sql("people", connection, index=False)
    # A database with one table is read whole; a query selects.
    assert len(read(path)) == 4
    result = read(f"sqlite:///{path}", query="SELECT age, city FROM people WHERE age > 30")
    assert list(result.columns) == ["age", "city"]
    assert result["age"].tolist() == [41, 35, 52]


def test_duckdb_file_with_query(tmp_path, frame):
    path = tmp_path / "warehouse.duckdb"
    connection = duckdb.connect(str(path))
    connection.register("frame_view", frame)
    connection.execute("CREATE TABLE people AS SELECT * FROM frame_view")
    connection.execute("CREATE TABLE other AS SELECT 1 AS x")
    connection.close()
    result = read(path, query="SELECT * FROM people ORDER BY age")
    assert result["age"].tolist() == [29, 35, 41, 52]
    with pytest.raises(DataError, match=r"Its tables: other, people"):
        read(path)
    with pytest.raises(DataError, match=r"The query 'SELECT \* FROM nope' failed"):
        read(path, query="SELECT * FROM nope")


def test_dataframe_is_returned_as_is(frame):
    assert read(frame) is frame


def test_columns_and_nrows(tmp_path, frame):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    result = read(path, columns=["city", "age"], nrows=2)
    assert list(result.columns) == ["city", "age"]
    assert len(result) == 2
    with pytest.raises(DataError, match=r"Did you mean 'city'"):
        read(path, columns=["cty"])


def test_open_table_queries_and_converts(tmp_path, frame):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    with open_table(path) as table:
        assert isinstance(table, Table)
        assert table.n_rows == 4
        assert table.columns == list(frame.columns)
        assert table.source == str(path)
        (mean_age,) = table.connection.execute(f"SELECT avg(age) FROM {table.ref}").fetchone()
        assert mean_age == pytest.approx(39.25)
        assert table.to_pandas(columns=["age"], limit=2)["age"].tolist() == [41, 35]
        sample = table.sample(2, seed=1)
        assert len(sample) == 2
        pd.testing.assert_frame_equal(sample, table.sample(2, seed=1))
        assert table.sample(10).shape == (4, 4)
        assert table.missing_markers == {"income": {"": 1}, "city": {"": 1}, "count": {"": 1}}


def test_open_table_from_frame_keeps_names(frame):
    data = frame.rename(columns={"age": "char_freq_;"})
    with open_table(data) as table:
        assert table.columns[0] == "char_freq_;"
        assert table.to_pandas()["char_freq_;"].tolist() == [41, 35, 29, 52]


def test_closed_table_removes_its_files(tmp_path, frame):
    table = open_table(frame)
    workdir = table._workdir
    assert workdir.exists()
    table.close()
    assert not workdir.exists()
    table.close()  # closing twice is harmless


def test_header_names_are_kept_exactly_and_crlf_lines(tmp_path):
    path = tmp_path / "windows.csv"
    path.write_bytes(b'a, b ,"x,y",\r\n1,2,3,4\r\n5,6,7,8\r\n')
    frame = read(path)
    # Spaces and delimiters inside names survive; an empty name gets a positional one.
    assert list(frame.columns) == ["a", " b ", "x,y", "column3"]
    assert frame.values.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_single_column_file(tmp_path):
    path = tmp_path / "single.csv"
    path.write_text("value\n1\n2\n3\n")
    assert read(path)["value"].tolist() == [1, 2, 3]


def test_excel_duplicate_headers_are_reported(tmp_path):
    import openpyxl

    path = tmp_path / "dups.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["age", "city", "age"])
    sheet.append([41, "Oslo", 40])
    sheet.append([35, "NA", 30])
    workbook.save(path)
    with pytest.raises(DataError, match="duplicate column names: 'age'"):
        read(path)
    sheet.cell(row=1, column=3, value="age2")
    workbook.save(path)
    frame = read(path)
    # "NA" among the words of a text column is one of its values (the rule of text files).
    assert frame["city"].tolist() == ["Oslo", "NA"]
    assert frame.attrs["missing_markers"] == {}
    assert frame.attrs["kept_markers"] == {"city": {"NA": 1}}
    assert frame["age2"].tolist() == [40, 30]


def test_reading_an_open_table_leaves_it_open(frame):
    from mlwright.data import load_for_target

    with open_table(frame) as table:
        assert read(table, columns=["age"], nrows=2)["age"].tolist() == [41, 35]
        data, schema = load_for_target(table, "city")
        assert len(data) == 4
        assert schema.task == "binary"
        assert table.n_rows == 4
        assert table.to_pandas()["age"].tolist() == [41, 35, 29, 52]


# ------------------------------------------------------------------------------ markers
# The rule (docs/data.md): empty cells are missing; a marker is missing only where it is
# anomalous for its column (among numbers, or in a column of nothing but markers); na_values
# sets the markers explicitly.


def test_plus_minus_labels_keep_every_label(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("x,label\n" + "".join(f"{i},{'+' if i % 2 else '-'}\n" for i in range(10)))
    frame = read(path)
    assert frame["label"].tolist() == ["-", "+"] * 5
    assert frame.attrs["missing_markers"] == {}
    assert frame.attrs["kept_markers"] == {"label": {"-": 5}}


def test_dash_as_a_category_is_kept(tmp_path):
    path = tmp_path / "wards.csv"
    path.write_text("ward,n\nA,1\n-,2\nB,3\n - ,4\n,5\n")
    frame = read(path)
    assert frame["ward"].tolist()[:4] == ["A", "-", "B", " - "]
    assert frame["ward"].isna().tolist() == [False] * 4 + [True]
    assert frame.attrs["kept_markers"] == {"ward": {"-": 2}}  # compared after stripping spaces
    assert frame.attrs["missing_markers"] == {"ward": {"": 1}}


def test_question_mark_among_numbers_is_missing_and_the_column_numeric(tmp_path):
    path = tmp_path / "ages.csv"
    path.write_text("age,income\n34,1.5\n?,2.5\n51, ? \n 28 ,NA\n")
    frame = read(path)
    assert frame["age"].dtype == np.float64  # whole numbers with missing values: float64
    assert frame["age"].tolist()[0] == 34
    assert np.isnan(frame["age"].iloc[1])
    assert frame["income"].dtype == np.float64
    assert frame["income"].isna().tolist() == [False, False, True, True]
    assert frame.attrs["missing_markers"] == {"age": {"?": 1}, "income": {"?": 1, "NA": 1}}
    assert frame.attrs["kept_markers"] == {}
    with open_table(path) as table:
        assert table.column_types == {"age": "BIGINT", "income": "DOUBLE"}


def test_large_whole_numbers_stay_exact_when_markers_make_the_column_text(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("id,x\n9007199254740993,1\n?,2\n")
    with open_table(path) as table:
        assert table.column_types["id"] == "BIGINT"
        (value,) = table.connection.execute(f"SELECT id FROM {table.ref} LIMIT 1").fetchone()
    assert value == 9007199254740993


def test_a_column_of_markers_only_and_a_column_of_empty_cells(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("x,markers,empty\n1,?,\n2,NA,\n3,?,\n")
    frame = read(path)
    assert frame["markers"].isna().all()
    assert frame["empty"].isna().all()
    assert frame.attrs["missing_markers"] == {
        "markers": {"?": 2, "NA": 1},
        "empty": {"": 3},
    }
    assert frame.attrs["kept_markers"] == {}


def test_explicit_na_values_list_applies_to_every_column_numbers_included(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("income,code,city\n-999,a,Oslo\n1200,-999,?\n-999.0,b,NA\n300,?,-\n")
    frame = read(path, na_values=["-999", "?"])
    assert frame["income"].isna().tolist() == [True, False, True, False]
    assert frame["income"].dtype == np.float64
    assert frame["code"].isna().tolist() == [False, True, False, True]
    # Only the listed markers: NA and - are values now, the automatic rule is off.
    assert frame["city"].tolist()[2:] == ["NA", "-"]
    assert frame.attrs["missing_markers"] == {
        "income": {"-999": 2},
        "code": {"-999": 1, "?": 1},
        "city": {"?": 1},
    }
    assert frame.attrs["kept_markers"] == {}
    assert frame.attrs["na_values"] == ["-999", "?"]


def test_empty_na_values_means_only_empty_cells(tmp_path):
    path = tmp_path / "ages.csv"
    path.write_text("age,city\n34,Oslo\n?,\n")
    frame = read(path, na_values=[])
    assert frame["age"].tolist() == ["34", "?"]
    assert frame.attrs["missing_markers"] == {"city": {"": 1}}


def test_na_values_dict_sets_listed_columns_the_others_are_automatic(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("income,grade,age\n-999,-,30\n1200,A,?\n5,B,40\n")
    frame = read(path, na_values={"income": ["-999"], "grade": ["-"]})
    assert frame["income"].isna().tolist() == [True, False, False]
    assert frame["grade"].isna().tolist() == [True, False, False]
    assert frame["age"].isna().tolist() == [False, True, False]
    assert frame.attrs["missing_markers"] == {
        "income": {"-999": 1},
        "grade": {"-": 1},
        "age": {"?": 1},
    }


@pytest.mark.parametrize(
    ("na_values", "message"),
    [
        ("?,-", r"must be a list of strings, got the string '\?,-'. Pass na_values=\['\?', '-'\]"),
        (5, "must be None, a list of strings or a dict"),
        (["?", None], r"na_values holds None"),
        ([True], r"na_values holds True"),
        ({"income": "?"}, r"na_values\['income'\] must be a list of strings"),
        ({1: ["?"]}, r"keys of a na_values dict are column names"),
        ([float("nan")], "give the marker as it appears in the file"),
    ],
)
def test_bad_na_values_are_a_config_error(tmp_path, na_values, message):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match=message):
        read(path, na_values=na_values)


def test_na_values_for_an_unknown_column_names_the_close_ones(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("income,city\n1,Oslo\n")
    with pytest.raises(
        ConfigError, match=r"'incme', which .* does not have\. Did you mean 'income'"
    ):
        read(path, na_values={"incme": ["-999"]})
    # A column left out by columns= is still a column of the file.
    assert read(path, columns=["city"], na_values={"income": ["1"]})["city"].tolist() == ["Oslo"]


def test_decimal_comma_columns_with_markers(tmp_path):
    path = tmp_path / "semicolons.csv"
    path.write_text("price;name\n1,5;a\n?;-\n2,25;b\n")
    frame = read(path)
    assert frame["price"].tolist()[0] == 1.5
    assert np.isnan(frame["price"].iloc[1])
    assert frame["price"].iloc[2] == 2.25
    assert frame["name"].tolist() == ["a", "-", "b"]


def test_marker_after_the_sampled_rows_of_a_large_file(tmp_path, monkeypatch):
    import mlwright.data._read_csv as reader

    monkeypatch.setattr(reader, "_FULL_SNIFF_BYTES", 1024)  # force the sampled path
    path = tmp_path / "big.csv"
    rows = [f"{i},{i * 0.5},{'xyz'[i % 3]}" for i in range(30_000)]
    path.write_text("count,ratio,kind\n" + "\n".join(rows) + "\n?,NA,-\n7,1.25,?\n")
    frame = read(path)
    assert frame["count"].dtype == np.float64
    assert frame["count"].iloc[-1] == 7
    assert np.isnan(frame["count"].iloc[-2])
    assert frame["ratio"].isna().sum() == 1
    assert frame["kind"].tolist()[-2:] == ["-", "?"]
    assert frame.attrs["missing_markers"] == {"count": {"?": 1}, "ratio": {"NA": 1}}
    assert frame.attrs["kept_markers"] == {"kind": {"-": 1, "?": 1}}
    with open_table(path) as table:
        assert table.column_types["count"] == "BIGINT"


def test_excel_and_csv_make_the_same_decisions(tmp_path):
    import openpyxl

    rows = [
        ["age", "city", "label", "code", "nothing"],
        [41, "Oslo", "+", -999, "?"],
        ["?", "NA", "-", 3, None],
        [35, "-", "+", None, "NA"],
    ]
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(tmp_path / "book.xlsx")
    (tmp_path / "book.csv").write_text(
        "\n".join(",".join("" if cell is None else str(cell) for cell in row) for row in rows)
        + "\n"
    )
    for na_values in (None, ["-999", "NA"]):
        excel = read(tmp_path / "book.xlsx", na_values=na_values)
        text = read(tmp_path / "book.csv", na_values=na_values)
        assert excel.attrs["missing_markers"] == text.attrs["missing_markers"], na_values
        assert excel.attrs["kept_markers"] == text.attrs["kept_markers"], na_values
        for name in ("city", "label", "nothing"):
            assert excel[name].isna().tolist() == text[name].isna().tolist(), (name, na_values)
    excel = read(tmp_path / "book.xlsx")
    assert excel["label"].tolist() == ["+", "-", "+"]
    assert excel["age"].isna().tolist() == [False, True, False]


def test_typed_sources_keep_markers_unless_na_values_lists_them(tmp_path):
    frame = pd.DataFrame({"grade": ["A", "?", "-"], "code": [1, -999, 3]})
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    assert read(path)["grade"].tolist() == ["A", "?", "-"]
    explicit = read(path, na_values=["?", "-999"])
    assert explicit["grade"].isna().tolist() == [False, True, False]
    assert explicit["code"].isna().tolist() == [False, True, False]
    assert explicit.attrs["missing_markers"] == {"grade": {"?": 1}, "code": {"-999": 1}}
    # A DataFrame is used as it is, unless na_values is given.
    assert read(frame) is frame
    assert read(frame, na_values=["-"])["grade"].isna().tolist() == [False, False, True]
    with open_table(frame) as table, pytest.raises(ConfigError, match="already been read"):
        read(table, na_values=["?"])
