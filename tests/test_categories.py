"""One rule for "the same category" in training, serving and the ONNX runtime."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlwright._categories import category_key


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (3, "3"),
        (3.0, "3"),
        ("3", "3"),
        (np.int64(7), "7"),
        (np.float32(1.5), "1.5"),
        (2.5, "2.5"),
        (True, "True"),
        (np.bool_(False), "False"),
        (" a ", "a"),
        ("<0", "<0"),
        ("é", "é"),
        (np.str_(" b"), "b"),
        ("", None),
        ("  ", None),
        (None, None),
        (np.nan, None),
        (pd.NA, None),
        (pd.NaT, None),
    ],
)
def test_a_value_maps_to_its_category_key(value, key):
    assert category_key(value) == key


def test_training_serving_and_the_onnx_runtime_share_the_rule():
    from mlwright.automl import _preprocess
    from mlwright.compiled import _runtime
    from mlwright.serve import _fastpath, _registry

    for module in (_preprocess, _runtime):
        assert module.category_key is category_key
    for module in (_fastpath, _registry):
        assert module._category_key is category_key
