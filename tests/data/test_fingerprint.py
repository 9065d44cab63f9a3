"""The content fingerprint: stable, order-sensitive, independent of the file format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlwright.data import fingerprint, open_table, read


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(200),
            "amount": rng.normal(100, 20, 200).round(3),
            "city": pd.Series(rng.choice(["Oslo", "Bergen", "Tromsø"], 200), dtype="str"),
            "flag": rng.integers(0, 2, 200),
            "char_freq_;": rng.random(200),
        }
    ).assign(amount=lambda data: data["amount"].mask(data.index % 17 == 0))


def test_format_is_sha256(frame):
    value = fingerprint(frame)
    assert value.startswith("sha256:")
    assert len(value) == len("sha256:") + 64
    assert value == fingerprint(frame.copy())


def test_csv_and_parquet_of_the_same_data_agree(tmp_path, frame):
    csv_path = tmp_path / "data.csv"
    parquet_path = tmp_path / "data.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path)
    expected = fingerprint(frame)
    with open_table(csv_path) as csv_table, open_table(parquet_path) as parquet_table:
        assert fingerprint(csv_table) == expected
        assert fingerprint(parquet_table) == expected
    assert fingerprint(read(csv_path)) == expected


def test_row_order_values_and_names_matter(frame):
    base = fingerprint(frame)
    assert fingerprint(frame.iloc[::-1].reset_index(drop=True)) != base
    changed = frame.copy()
    changed.loc[5, "city"] = "Bodø"
    assert fingerprint(changed) != base
    assert fingerprint(frame.rename(columns={"city": "town"})) != base
    assert fingerprint(frame.iloc[:-1]) != base


def test_numbers_compare_by_value_and_missing_is_one_thing():
    ints = pd.DataFrame({"a": [1, 2, 3]})
    floats = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    assert fingerprint(ints) == fingerprint(floats)
    with_nan = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", None]})
    with_none = pd.DataFrame({"a": [1.0, None], "b": pd.Series(["x", np.nan], dtype="str")})
    assert fingerprint(with_nan) == fingerprint(with_none)
    # A missing value differs from the text "n" or an empty string.
    assert fingerprint(pd.DataFrame({"b": ["n"]})) != fingerprint(pd.DataFrame({"b": [None]}))
    assert fingerprint(pd.DataFrame({"b": [""]})) != fingerprint(pd.DataFrame({"b": [None]}))


def test_blocks_beyond_one_chunk_are_ordered():
    # More rows than one hashing block (65,536): moving a row across blocks changes the hash.
    frame = pd.DataFrame({"x": np.arange(70_000)})
    swapped = frame.copy()
    swapped.loc[[10, 69_000], "x"] = [69_000, 10]
    assert fingerprint(frame) != fingerprint(swapped)


def test_rejects_other_types():
    with pytest.raises(TypeError, match="DataFrame or a Table"):
        fingerprint([1, 2, 3])


def test_batch_size_does_not_matter(frame, monkeypatch):
    import mlwright.data._fingerprint as module

    whole = fingerprint(frame)
    monkeypatch.setattr(module, "_BATCH_ROWS", 7)
    assert fingerprint(frame) == whole


def test_dates_booleans_and_text_kinds():
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2024-01-01", None, "2024-03-01"]),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "note": ["a", "", None],
        }
    )
    assert fingerprint(frame) == fingerprint(frame.copy())
    other = frame.assign(when=pd.to_datetime(["2024-01-02", None, "2024-03-01"]))
    assert fingerprint(other) != fingerprint(frame)
    # The same digits as text and as numbers are different data.
    assert fingerprint(pd.DataFrame({"a": ["1"]})) != fingerprint(pd.DataFrame({"a": [1]}))
