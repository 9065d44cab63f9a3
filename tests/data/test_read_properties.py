"""Property: any frame of numbers and text survives CSV and Parquet with the same fingerprint."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlwright.data import MISSING_MARKERS, fingerprint, read

_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
    | st.sampled_from([",", ";", '"', "\n", " ", "\t", "|"]),
    min_size=1,
    max_size=12,
).filter(lambda value: any(ch.isalpha() for ch in value) and value.strip() not in MISSING_MARKERS)


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.integers(min_value=1, max_value=12).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(-(10**12), 10**12), min_size=n, max_size=n),
            st.lists(
                st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=n, max_size=n
            ),
            st.lists(_TEXT, min_size=n, max_size=n),
        )
    )
)
def test_csv_and_parquet_round_trip(tmp_path, rows):
    integers, floats, texts = rows
    frame = pd.DataFrame({"int col": integers, "float;col": floats, 'text "col"': texts})
    frame['text "col"'] = frame['text "col"'].astype("str")
    csv_path = tmp_path / "data.csv"
    parquet_path = tmp_path / "data.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path)
    from_csv = read(csv_path)
    assert list(from_csv.columns) == list(frame.columns)
    assert from_csv['text "col"'].tolist() == texts
    assert from_csv["int col"].tolist() == integers
    assert fingerprint(from_csv) == fingerprint(frame) == fingerprint(read(parquet_path))
