"""``profile``: statistics over DuckDB, associations, JSON and the self-contained HTML page."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from mlwright.data import Profile, open_table, profile
from mlwright.data import _stats as stats_module
from mlwright.errors import DataError
from mlwright.report import save_profile_page


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    label = rng.choice(["yes", "no"], size=n, p=[0.4, 0.6])
    income = np.where(label == "yes", 60.0, 40.0) + rng.normal(0, 5, n)
    age = rng.integers(18, 80, n).astype(float)
    age[:60] = np.nan
    return pd.DataFrame(
        {
            "age": age,
            "income": income.round(3),
            "city": rng.choice(["Oslo", "Bergen", "Tromsø"], size=n, p=[0.5, 0.3, 0.2]),
            "noise": rng.normal(size=n).round(4),
            "label": label,
        }
    )


def test_column_statistics_match_pandas(frame):
    result = profile(frame, target="label")
    assert isinstance(result, Profile)
    assert (result.n_rows, result.n_columns) == (600, 5)
    age = result.column("age")
    assert age.semantic_type == "numeric"
    assert (age.count, age.missing) == (540, 60)
    assert age.missing_share == pytest.approx(0.1)
    assert age.distinct == frame["age"].nunique()
    assert age.minimum == frame["age"].min()
    assert age.maximum == frame["age"].max()
    assert age.mean == pytest.approx(frame["age"].mean())
    assert age.std == pytest.approx(frame["age"].std())
    assert age.quantiles["0.5"] == pytest.approx(frame["age"].median())
    assert age.quantiles["0.25"] == pytest.approx(frame["age"].quantile(0.25))
    assert sum(age.histogram["counts"]) == 540
    income = result.column("income")
    assert income.histogram["type"] == "bins"
    assert sum(income.histogram["counts"]) == 600
    assert len(income.histogram["edges"]) == len(income.histogram["counts"]) + 1
    city = result.column("city")
    assert city.semantic_type == "categorical"
    counts = frame["city"].value_counts()
    assert [(t["value"], t["count"]) for t in city.top_values] == list(counts.items())
    assert result.column("label").is_target
    assert result.task == "binary"


def test_associations_rank_the_informative_feature_first(frame):
    result = profile(frame, target="label")
    assert list(result.associations)[0] == "income"
    assert result.associations["income"]["method"] == "correlation_ratio"
    assert result.associations["income"]["value"] > 0.8
    assert result.associations["noise"]["value"] < 0.15
    assert result.associations["city"]["method"] == "cramers_v"
    assert result.column("income").association == result.associations["income"]
    assert result.sample_rows == 600


def test_regression_target_uses_spearman():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    data = pd.DataFrame({"x": x, "z": rng.normal(size=300), "y": np.exp(x) * 3.7})
    result = profile(data, target="y")
    assert result.task == "regression"
    assert result.associations["x"] == {"method": "spearman", "value": pytest.approx(1.0)}
    assert result.associations["z"]["value"] < 0.2


def test_profile_without_target_has_no_associations(frame):
    result = profile(frame)
    assert result.target is None
    assert result.associations == {}
    assert result.sample_rows == 0


def test_profile_reads_files_and_matches_the_frame(frame, tmp_path):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    from_file = profile(path, target="label")
    from_frame = profile(frame, target="label")
    for name in frame.columns:
        a, b = from_file.column(name), from_frame.column(name)
        assert (a.count, a.missing, a.distinct) == (b.count, b.missing, b.distinct)
    assert from_file.source.endswith("data.csv")


def test_an_open_table_is_not_closed(frame):
    with open_table(frame) as table:
        profile(table, target="label")
        assert table.connection.execute(f"SELECT count(*) FROM {table.ref}").fetchone()[0] == 600


def test_large_tables_switch_to_approximate_statistics(frame, monkeypatch):
    monkeypatch.setattr(stats_module, "EXACT_LIMIT", 100)
    result = profile(frame, target="label")
    assert not result.exact
    income = result.column("income")
    assert not income.distinct_exact
    assert income.distinct == pytest.approx(frame["income"].nunique(), rel=0.1)
    assert income.quantiles["0.5"] == pytest.approx(frame["income"].median(), rel=0.05)


def test_json_is_strict_and_complete(frame, tmp_path):
    result = profile(frame, target="label")
    path = result.save_json(tmp_path / "out" / "profile.json")
    document = json.loads(path.read_text(), parse_constant=pytest.fail)
    assert document["target"] == "label"
    assert [c["name"] for c in document["columns"]] == list(frame.columns)
    assert document["columns"][0]["histogram"]["counts"]


def test_html_page_is_self_contained(frame, tmp_path):
    result = profile(frame, target="label")
    path = save_profile_page(result, tmp_path / "profile.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "Data profile" in page
    assert "income" in page
    assert page.count("data:image/png;base64,") >= 5
    # Nothing is fetched from elsewhere: no external scripts, styles, images or links.
    references = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert references, "the page should reference its embedded plots"
    assert all(ref.startswith(("data:", "#")) for ref in references), references
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page


def test_html_escapes_values(tmp_path):
    data = pd.DataFrame({"x": ["<script>alert(1)</script>", "b"] * 10, "y": [0, 1] * 10})
    page = save_profile_page(profile(data, target="y"), tmp_path / "p.html").read_text()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;" in page


def test_misspelled_target_names_the_closest_column(frame):
    with pytest.raises(DataError, match=r"'Label'.*Did you mean 'label'"):
        profile(frame, target="Label")


def test_single_valued_target_is_refused(frame):
    with pytest.raises(DataError, match="single value"):
        profile(frame.assign(label="yes"), target="label")


def test_one_row_is_refused():
    with pytest.raises(DataError, match="only 1 row"):
        profile(pd.DataFrame({"a": [1], "b": ["x"]}))


def test_markers_per_column_in_the_profile_and_its_page(tmp_path):
    path = tmp_path / "visits.csv"
    rows = [
        f"{i},{'?' if i % 10 == 0 else 30 + i % 40},{'?' if i % 4 == 0 else 'ward' + str(i % 3)}"
        for i in range(100)
    ]
    path.write_text("patient,age,ward\n" + "\n".join(rows) + "\n")
    result = profile(path)
    age = result.column("age")
    assert age.semantic_type == "numeric"
    assert age.missing == 10
    assert age.missing_markers == {"?": 10}
    assert age.kept_markers == {}
    ward = result.column("ward")
    assert ward.missing == 0
    assert ward.kept_markers == {"?": 25}
    assert json.loads(json.dumps(result.to_dict()))["columns"][2]["kept_markers"] == {"?": 25}
    page = save_profile_page(result, tmp_path / "profile.html").read_text()
    assert "read as missing" in page
    assert "markers kept as values" in page
    explicit = profile(path, na_values=["?"]).column("ward")
    assert explicit.missing_markers == {"?": 25}
    assert explicit.kept_markers == {}
