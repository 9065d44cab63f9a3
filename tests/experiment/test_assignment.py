"""Sticky assignment, weights, ramp-up and shadow routing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlwright.experiment import (
    ExperimentError,
    Ramp,
    assign,
    assign_many,
    parse_arms,
    route,
    srm_check,
    weights_at,
)


@given(st.text(min_size=0, max_size=40))
def test_same_key_same_arm(key: str) -> None:
    w = {"champion": 0.5, "challenger": 0.5}
    assert assign(key, w, salt="exp") == assign(key, w, salt="exp")
    assert assign(key, w, salt="exp") in w


@pytest.mark.parametrize("share", [0.5, 0.1, 0.9])
def test_shares_match_weights_and_srm_passes(share: float) -> None:
    weights = {"champion": 1 - share, "challenger": share}
    arms = assign_many((f"user-{i}" for i in range(40_000)), weights, salt="exp-1")
    counts = {arm: int((arms == arm).sum()) for arm in weights}
    result = srm_check(counts, weights)
    assert not result.mismatch, result
    assert counts["challenger"] / 40_000 == pytest.approx(share, abs=0.01)


def test_experiments_split_independently() -> None:
    w = {"a": 0.5, "b": 0.5}
    first = assign_many(range(20_000), w, salt="one")
    second = assign_many(range(20_000), w, salt="two")
    assert ((first == "a") == (second == "a")).mean() == pytest.approx(0.5, abs=0.02)


def test_ramp_only_moves_units_towards_the_challenger() -> None:
    declared = {"champion": 0.5, "challenger": 0.5}
    ramp = Ramp("challenger", (0.05, 0.25, 0.5), every=60)
    keys = [str(i) for i in range(20_000)]
    previous = None
    for elapsed, share in ((0, 0.05), (60, 0.25), (125, 0.5), (10_000, 0.5)):
        weights = weights_at(declared, ramp, elapsed)
        assert weights["challenger"] == share
        arms = assign_many(keys, weights, salt="canary")
        assert (arms == "challenger").mean() == pytest.approx(share, abs=0.012)
        if previous is not None:
            assert not ((previous == "challenger") & (arms == "champion")).any()
        previous = arms
    assert route("u", declared, salt="s", ramp=ramp, elapsed=0).arm in declared


def test_shadow_mode_serves_the_champion_and_shadows_the_rest() -> None:
    routing = route("any", {"champion": 0.5, "challenger": 0.5}, salt="s", shadow=True)
    assert routing.arm == "champion"
    assert routing.shadow == ("challenger",)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("champion", "NAME=WEIGHT"),
        ("a=1", "at least two arms"),
        ("a=1,a=2", "twice"),
        ("a=-1,b=1", "NAME=WEIGHT"),
        ("a=x,b=1", "NAME=WEIGHT"),
    ],
)
def test_parse_arms_errors(text: str, fragment: str) -> None:
    with pytest.raises(ExperimentError, match=fragment):
        parse_arms(text)
