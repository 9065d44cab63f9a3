"""Helpers of the monitoring tests."""

from __future__ import annotations


def shifted(frame, seed: int = 0):
    """adult's rows with three shifts, each on one column only.

    Ages +10 years; the share of race 'Black' tripled (values replaced in random rows, so
    no other column moves with it); the missing share of occupation raised to about 25%.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    out = frame.copy()
    out["age"] = out["age"] + 10
    share = float((frame["race"] == "Black").mean())
    others = (out["race"] != "Black").to_numpy()
    # Turn enough other rows into 'Black' that its share becomes three times larger.
    flip = others & (rng.random(len(out)) < 2 * share / (1 - share))
    out.loc[flip, "race"] = "Black"
    hide = rng.random(len(out)) < 0.2
    out.loc[hide, "occupation"] = None
    return out
